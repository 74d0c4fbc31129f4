// `npm run bench -- --suite salesforce [options]` (or `node_modules/.bin/node bench/salesforce.ts …`):
// pushing bursts of changed customers to Salesforce, against the target of docs/benchmarks.md
// ("Salesforce"): a burst of 10,000 changed customers takes ≤ 60 API calls (sObject Collections,
// 200 records a collection, several collections in one Composite call) and stays within the
// simulator's limits. Every burst is judged.
//
// Tandem runs as `node src/main.ts` in a child process (bench/lib/tandem.ts: temp DATA_DIR, SQLite,
// demo off, LOG_LEVEL=warn), connected through its API to a Salesforce simulator in this process
// (client credentials). First N customers are created in Tandem and pushed (each an Account and its
// primary Contact); then three bursts change all N: Account fields only (company, phone), Contact
// fields only (name, email), and both. For each: the API calls the simulator counted from the first
// change until every change is visible in the simulator (every call: collections, queries, polls),
// the write calls (collections or composite), records per write call, and the time. Exits 1 when a judged figure
// misses its target, unless --no-fail.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startSalesforceSimulator, type SalesforceSimulator } from '../src/connectors/salesforce/simulator/index.ts';
import { describeMachine } from './lib/machine.ts';
import { createBenchData, repoRoot, startTandem } from './lib/tandem.ts';
import { tailOf, TandemApi } from './sync-lib/tandem.ts';

const USAGE = `usage: npm run bench -- --suite salesforce [options]

  --customers <n>     customers in each burst (default 10000)
  --rate <n>          API writes per second into Tandem while a burst is made (default 2000; the
                      burst is all made before most of it is pushed)
  --out <file>        JSON results (default bench/results/salesforce.json; a .md table beside it)
  --no-fail           report only: exit 0 even when a target is missed
`;

const CALL_TARGET = 60;
const TARGET_CUSTOMERS = 10_000;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    customers: { type: 'string', default: String(TARGET_CUSTOMERS) },
    rate: { type: 'string', default: '2000' },
    out: { type: 'string', default: join(repoRoot, 'bench', 'results', 'salesforce.json') },
    'no-fail': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const customers = Number(args.customers);
const rate = Number(args.rate);
if (!Number.isInteger(customers) || customers <= 0) fail('--customers must be a positive integer');
if (!Number.isFinite(rate) || rate <= 0) fail('--rate must be a positive number');

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

interface BurstResult {
  burst: string;
  customers: number;
  /** Every API call the simulator counted between the first change and the last one visible. */
  apiCalls: number;
  collectionCalls: number;
  /** Account and Contact records written by the collection calls, per call. */
  recordsPerCollectionCall: number;
  seconds: number;
  /** The allocation used and its limit at the end. */
  allocation: { used: number; limit: number };
  judged: boolean;
  met: boolean | null;
}

type Row = Record<string, unknown>;

/** Write calls: sObject Collections calls and Composite calls (which carry collections as subrequests). */
function collectionCalls(sim: SalesforceSimulator): number {
  return Object.entries(sim.admin.requests().byRoute)
    .filter(([route]) => route.includes('composite/sobjects') || route === 'POST composite')
    .reduce((n, [, count]) => n + count, 0);
}

function recordsWritten(sim: SalesforceSimulator, sinceSeq: number): number {
  return sim.admin.changes(sinceSeq).filter((c) => c.connectedApp !== null).length;
}

/** Sends `count` requests at about `perSecond`, 50 at a time. */
async function paced(count: number, perSecond: number, send: (i: number) => Promise<unknown>): Promise<void> {
  const started = Date.now();
  const lane = 50;
  for (let i = 0; i < count; i += lane) {
    await Promise.all(Array.from({ length: Math.min(lane, count - i) }, (_, j) => send(i + j)));
    const due = started + ((i + lane) / perSecond) * 1000;
    if (due > Date.now()) await delay(due - Date.now());
  }
}

async function waitFor(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}`);
    await delay(100);
  }
}

const sim = await startSalesforceSimulator({ dailyApiLimit: 100_000 });
const data = await createBenchData('sqlite', '');
const tandem = await startTandem(data, { logLevel: 'warn', name: 'salesforce' });
const api = new TandemApi(tandem.url, data.adminKey);
const results: BurstResult[] = [];
let exitCode = 0;
try {
  await api.createConnection({
    connector: 'salesforce',
    name: 'bench',
    credentials: { clientId: 'tandem-sim', clientSecret: 'tandem-sim-secret' },
    // Polls once a minute: the bursts go out, nothing is waited on from Salesforce.
    settings: { loginUrl: sim.url, pollIntervalMs: 60_000, rateLimitPerSecond: 1_000 },
  });
  const machine = describeMachine();
  log(`Salesforce bursts: ${String(customers)} customers, Tandem ${tandem.url}, simulator ${sim.url}, ${String(machine.cores)} × ${machine.cpu}, load ${machine.loadAverage.map((l) => l.toFixed(1)).join(' ')}`);

  const ids: string[] = [];
  const byTandemId = (): Map<unknown, Row> => new Map(sim.admin.records('Account').map((a) => [a.Tandem_Id__c, a]));
  const contactsByAccount = (): Map<unknown, Row> => new Map(sim.admin.records('Contact').map((c) => [c.AccountId, c]));

  const measure = async (burst: string, send: (i: number) => Promise<unknown>, visible: () => boolean, judged: boolean): Promise<void> => {
    const calls0 = sim.admin.apiUsage().used;
    const collections0 = collectionCalls(sim);
    const seq0 = sim.admin.changes().at(-1)?.seq ?? 0;
    const started = Date.now();
    await paced(customers, rate, send);
    await waitFor(visible, `${burst} visible in Salesforce`, 600_000);
    const seconds = (Date.now() - started) / 1000;
    const apiCalls = sim.admin.apiUsage().used - calls0;
    const collections = collectionCalls(sim) - collections0;
    const records = recordsWritten(sim, seq0);
    const scaled = judged && customers === TARGET_CUSTOMERS;
    const result: BurstResult = {
      burst,
      customers,
      apiCalls,
      collectionCalls: collections,
      recordsPerCollectionCall: collections === 0 ? 0 : Math.round((records / collections) * 10) / 10,
      seconds: Math.round(seconds * 10) / 10,
      allocation: sim.admin.apiUsage(),
      judged: scaled,
      met: scaled ? apiCalls <= CALL_TARGET : null,
    };
    results.push(result);
    log(
      `  ${burst.padEnd(40)} ${String(apiCalls).padStart(5)} API calls (${String(collections)} write calls: collections or composite, ${String(result.recordsPerCollectionCall)} records each)  ${result.seconds.toFixed(1)} s` +
        (result.met === null ? '' : result.met ? '  ✓' : `  ✗ (target ≤ ${String(CALL_TARGET)})`),
    );
    if (result.met === false) exitCode = 1;
  };

  await measure(
    'create: new customers (Account + Contact)',
    async (i) => {
      const created = await api.createCustomer({ name: `Person ${String(i)}`, email: `p${String(i)}@bench.example`, company: `Company ${String(i)}` });
      ids[i] = created.id;
    },
    () => {
      if (ids.length < customers) return false;
      const accounts = byTandemId();
      const contacts = contactsByAccount();
      return ids.every((id) => contacts.has(accounts.get(id)?.Id));
    },
    true,
  );
  await measure(
    'update: Account fields (company, phone)',
    (i) => api.updateCustomer(ids[i] ?? '', { company: `Renamed ${String(i)}`, phone: `+1 555 ${String(i).padStart(5, '0')}` }),
    () => {
      const accounts = byTandemId();
      return ids.every((id, i) => accounts.get(id)?.Name === `Renamed ${String(i)}`);
    },
    true,
  );
  await measure(
    'update: Contact fields (name, email)',
    (i) => api.updateCustomer(ids[i] ?? '', { name: `Changed Person ${String(i)}`, email: `c${String(i)}@bench.example` }),
    () => {
      const accounts = byTandemId();
      const contacts = contactsByAccount();
      return ids.every((id, i) => contacts.get(accounts.get(id)?.Id)?.Email === `c${String(i)}@bench.example`);
    },
    true,
  );
  await measure(
    'update: both (company and email)',
    (i) => api.updateCustomer(ids[i] ?? '', { company: `Both ${String(i)}`, email: `b${String(i)}@bench.example` }),
    () => {
      const accounts = byTandemId();
      const contacts = contactsByAccount();
      return ids.every((id, i) => accounts.get(id)?.Name === `Both ${String(i)}` && contacts.get(accounts.get(id)?.Id)?.Email === `b${String(i)}@bench.example`);
    },
    true,
  );
  const issues = await api.openIssues();
  if (issues > 0) {
    log(`  ${String(issues)} sync issues open: the run is not clean`);
    exitCode = 1;
  }
} catch (error) {
  log(`failed: ${error instanceof Error ? error.message : String(error)}\n${tailOf(tandem.logFile)}`);
  exitCode = 1;
} finally {
  await tandem.stop();
  await sim.stop();
  await data.cleanup();
}

const out = resolve(args.out);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), machine: describeMachine(), customers, rate, results }, null, 2)}\n`);
const table = [
  '| burst | customers | API calls | write calls (collection or composite) | records per write call | seconds | target |',
  '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ...results.map(
    (r) =>
      `| ${r.burst} | ${String(r.customers)} | ${String(r.apiCalls)} | ${String(r.collectionCalls)} | ${String(r.recordsPerCollectionCall)} | ${r.seconds.toFixed(1)} | ${r.met === null ? 'reported' : r.met ? `≤ ${String(CALL_TARGET)} ✓` : `≤ ${String(CALL_TARGET)} ✗`} |`,
  ),
].join('\n');
writeFileSync(out.replace(/\.json$/, '.md'), `${table}\n`);
log(`results: ${relative(repoRoot, out)}`);
if (args['no-fail']) exitCode = 0;
process.exit(exitCode);
