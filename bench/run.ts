// `npm run bench [-- options]`: measures Tandem against the targets of docs/benchmarks.md.
//
//   creates  POST /api/v1/customers (record + outbox change in one transaction)   ≥  3,000/s
//   reads    GET /api/v1/customers/{id} over existing ids                        ≥ 10,000/s
//   log      embedded log delivery to a no-op consumer, until the group's lag is 0 ≥ 20,000/s
//
// Tandem runs as `node src/main.ts` in a child process (temp DATA_DIR, free loopback port, known
// admin key); wrk (bench/lib/wrk.ts) or autocannon (bench/load-worker.ts) runs in another. Each HTTP figure gets a fresh
// Tandem process: creates on an empty store, reads after a restart on the data the creates left.
// Targets are judged on SQLite at LOG_LEVEL=warn; the other rows (info, PostgreSQL) are reported.
// Exits 1 when a judged target is missed or a run saw errors, unless --no-fail.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runChild } from './lib/child.ts';
import { runLoad, type LoadResult, type LoadSpec } from './lib/load.ts';
import { runWrk, wrkAvailable } from './lib/wrk.ts';
import { describeMachine } from './lib/machine.ts';
import { NO_STATS, sampleProcess, waitForQuiet, type ProcessStats, type Sampler } from './lib/process-stats.ts';
import { formatProfile, summariseProfile } from './lib/profile.ts';
import { createBenchData, repoRoot, startTandem, type BenchData } from './lib/tandem.ts';
import type { LogDeliveryResult, LogDeliverySpec } from './log-delivery.ts';
import { chooseSuite, runSyncSuite, SUITE_USAGE } from './sync-lib/suite.ts';

// --suite foundation|sync|salesforce|all (default all): the sync suite is bench/sync.ts and the
// salesforce suite bench/salesforce.ts, run after these figures.
const suite = chooseSuite(process.argv.slice(2));
if (suite.suite === 'sync') process.exit(await runSyncSuite(suite.syncArgs));
if (suite.suite === 'salesforce') process.exit(await runSyncSuite(suite.syncArgs, 'salesforce.ts'));
if (suite.suite === 'scale-out') process.exit(await runSyncSuite(suite.syncArgs.length > 0 ? suite.syncArgs : ['--workers'], 'scale-out.ts'));

type Metric = 'creates' | 'reads' | 'log';
type StoreKind = 'sqlite' | 'postgres';

const TARGETS: Record<Metric, number> = { creates: 3_000, reads: 10_000, log: 20_000 };
const JUDGED = { store: 'sqlite', logLevel: 'warn' } as const;
const METRICS: readonly Metric[] = ['creates', 'reads', 'log'];
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const USAGE = `usage: npm run bench -- [options]

  --store <list>         sqlite, postgres or sqlite,postgres (default sqlite)
  --only <list>          creates, reads, log (default all three)
  --levels <list>        LOG_LEVELs for the HTTP figures (default warn,info; targets judge warn)
  --duration <s>         measured seconds per HTTP figure (default 10)
  --warmup <s>           warm-up seconds before each (default 3)
  --connections <n>      concurrent connections, pipelining 1 (default 50)
  --load <tool>          wrk or autocannon (default wrk when it is on the PATH: it needs a tenth
                         of autocannon's CPU, which Tandem shares on a small machine)
  --repeat <n>           measure each figure n times and report the run of median throughput
                         (default 1; the machine is shared, so 3 gives steadier figures)
  --read-ids <n>         how many existing ids the reads rotate over (default 10000)
  --log-changes <n>      changes appended, then delivered (default 100000)
  --postgres-url <url>   server for --store postgres; a fresh database is created on it and
                         dropped after (default postgres://postgres@127.0.0.1:5432/postgres)
  --no-analyze           PostgreSQL: skip the ANALYZE before the reads (see docs/benchmarks.md)
  --settle <s>           before each measure, wait up to s seconds for the machine to be idle
                         (< 25% of a core busy for 1 s; default 60, 0 to start at once)
  --profile              run Tandem under --cpu-prof and summarise where the time went
                         (slower: figures are reported, never judged)
  --out <file>           JSON results (default bench/results/latest.json; a .md table beside it)
  --no-fail              report only: exit 0 even when a target is missed
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number (got ${value})`);
  return n;
}

function list<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) if (!allowed.includes(item as T)) fail(`--${name}: unknown ${item} (one of ${allowed.join(', ')})`);
  if (items.length === 0) fail(`--${name} is empty`);
  return items as T[];
}

const { values: args } = parseArgs({
  args: suite.foundationArgs,
  options: {
    store: { type: 'string', default: 'sqlite' },
    only: { type: 'string', default: METRICS.join(',') },
    levels: { type: 'string', default: 'warn,info' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    repeat: { type: 'string', default: '1' },
    'read-ids': { type: 'string', default: '10000' },
    'log-changes': { type: 'string', default: '100000' },
    'postgres-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    settle: { type: 'string', default: '60' },
    'no-analyze': { type: 'boolean', default: false },
    load: { type: 'string' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string', default: join(repoRoot, 'bench', 'results', 'latest.json') },
    'no-fail': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write(`${USAGE}${SUITE_USAGE}`);
  process.exit(0);
}

function loadTool(value: string | undefined): 'wrk' | 'autocannon' {
  if (value === 'wrk' || value === 'autocannon') {
    if (value === 'wrk' && !wrkAvailable()) fail('--load wrk: wrk is not on the PATH (Debian: apt-get install wrk)');
    return value;
  }
  if (value !== undefined) fail(`--load must be wrk or autocannon (got ${value})`);
  return wrkAvailable() ? 'wrk' : 'autocannon';
}

const options = {
  stores: list<StoreKind>('store', args.store, ['sqlite', 'postgres']),
  metrics: list<Metric>('only', args.only, METRICS),
  levels: list('levels', args.levels, LEVELS),
  durationSeconds: positive('duration', args.duration),
  warmupSeconds: Number(args.warmup) >= 0 ? Number(args.warmup) : fail('--warmup must be 0 or more'),
  connections: Math.round(positive('connections', args.connections)),
  repeat: Math.round(positive('repeat', args.repeat)),
  readIds: Math.round(positive('read-ids', args['read-ids'])),
  logChanges: Math.round(positive('log-changes', args['log-changes'])),
  postgresUrl: args['postgres-url'],
  analyze: !args['no-analyze'],
  load: loadTool(args.load),
  settleSeconds: Number(args.settle) >= 0 ? Number(args.settle) : fail('--settle must be 0 or more'),
  profile: args.profile,
  out: resolve(args.out),
  noFail: args['no-fail'],
};
const profileDir = join(dirname(options.out), 'profiles');

type Status = 'met' | 'MISSED' | 'reported' | 'ERRORS';

/** One measured period. */
interface Measurement {
  /** 2xx answers, or changes delivered, per second. */
  perSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Operations in the measured period (2xx answers, changes delivered). */
  ops: number;
  /** Failed requests (non-2xx, errors, timeouts) or undelivered changes. */
  failures: number;
  /** Of the process doing the work: Tandem, or for the log figure the process embedding the log. */
  process: ProcessStats;
  /** CPU time of that process per operation, microseconds: hardly moved by other load on the machine. */
  cpuUsPerOp: number;
  loadCpuPercent: number | null;
  /** CPU used meanwhile by everything else on the machine (not that process, the load generator, PostgreSQL). */
  otherCpuPercent: number;
  detail: LoadResult | LogDeliveryResult;
}

interface Row extends Measurement {
  metric: Metric;
  store: StoreKind;
  /** Tandem's LOG_LEVEL; null for the log figure (no HTTP, no request logs). */
  logLevel: string | null;
  target: number;
  judged: boolean;
  status: Status;
  /** Every repetition; the row shows the one of median throughput. */
  runs: Measurement[];
  profile?: string;
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

const QUIET_BUSY_PERCENT = 25;

/** Waits for a quiet machine (--settle) and says so when it had to wait or gave up. */
async function settle(): Promise<void> {
  if (options.settleSeconds <= 0) return;
  const { waitedSeconds, busyPercent } = await waitForQuiet(options.settleSeconds, QUIET_BUSY_PERCENT);
  if (busyPercent >= QUIET_BUSY_PERCENT) {
    log(`  the machine is still busy (${fmt(busyPercent)}% of a core) after ${fmt(waitedSeconds)} s; measuring anyway`);
  } else if (waitedSeconds > 1.5) {
    log(`  waited ${fmt(waitedSeconds)} s for the machine to be idle`);
  }
}

/** The command name of the database server's processes, sampled apart from "others". */
function serverComm(store: StoreKind): string | undefined {
  return store === 'postgres' ? 'postgres' : undefined;
}

function statusOf(judged: boolean, perSecond: number, target: number, failures: number): Status {
  if (failures > 0) return 'ERRORS';
  if (!judged) return 'reported';
  return perSecond >= target ? 'met' : 'MISSED';
}

function measurement(
  perSecond: number,
  latency: { p50Ms: number; p99Ms: number } | null,
  ops: number,
  failures: number,
  stats: ProcessStats,
  loadCpuPercent: number | null,
  detail: LoadResult | LogDeliveryResult,
): Measurement {
  return {
    perSecond,
    p50Ms: latency?.p50Ms ?? null,
    p99Ms: latency?.p99Ms ?? null,
    ops,
    failures,
    process: stats,
    cpuUsPerOp: ops > 0 ? (stats.cpuSeconds / ops) * 1e6 : Number.NaN,
    loadCpuPercent,
    otherCpuPercent: Math.max(0, stats.machineCpuPercent - stats.cpuPercent - stats.serverCpuPercent - (loadCpuPercent ?? 0)),
    detail,
  };
}

/** The run of median throughput (the lower middle one for an even count). */
function median(runs: Measurement[]): Measurement {
  const sorted = [...runs].sort((a, b) => a.perSecond - b.perSecond);
  const chosen = sorted[Math.floor((sorted.length - 1) / 2)];
  if (chosen === undefined) throw new Error('no runs');
  return chosen;
}

function row(metric: Metric, store: StoreKind, logLevel: string | null, judged: boolean, runs: Measurement[], profile: string | undefined): Row {
  const chosen = median(runs);
  const failures = runs.reduce((sum, run) => sum + run.failures, 0);
  return {
    metric,
    store,
    logLevel,
    target: TARGETS[metric],
    judged,
    ...chosen,
    process: { ...chosen.process, rssPeakMiB: Math.max(...runs.map((run) => run.process.rssPeakMiB)) },
    status: statusOf(judged, chosen.perSecond, TARGETS[metric], failures),
    runs,
    ...(profile === undefined ? {} : { profile }),
  };
}

function cpuProfArgs(name: string): string[] {
  if (!options.profile) return [];
  mkdirSync(profileDir, { recursive: true });
  rmSync(join(profileDir, `${name}.cpuprofile`), { force: true });
  return ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}.cpuprofile`];
}

function reportProfile(name: string): string | undefined {
  if (!options.profile) return undefined;
  const file = join(profileDir, `${name}.cpuprofile`);
  if (!readdirSync(profileDir).includes(`${name}.cpuprofile`)) {
    log(`no profile written for ${name}`);
    return undefined;
  }
  const text = formatProfile(summariseProfile(file, repoRoot));
  writeFileSync(join(profileDir, `${name}.txt`), `${text}\n`);
  log(`profile of ${name}:\n${text}`);
  return relative(repoRoot, file);
}

/** Copies a Tandem log next to the results (the data dir is removed after the run). */
function keepLog(file: string, name: string): string {
  const kept = join(dirname(options.out), 'logs', `${name}.log`);
  mkdirSync(dirname(kept), { recursive: true });
  try {
    copyFileSync(file, kept);
  } catch {
    return file;
  }
  return kept;
}

/** The last lines of a file, for a failure message. */
function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Up to `count` ids of existing customers, newest first, through the list API. */
async function customerIds(url: string, key: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  while (ids.length < count) {
    const query = new URLSearchParams({ limit: '100', ...(cursor === null ? {} : { cursor }) });
    const response = await fetch(`${url}/api/v1/customers?${query.toString()}`, { headers: { authorization: `Bearer ${key}` } });
    if (response.status !== 200) throw new Error(`listing customers answered ${response.status}`);
    const page = (await response.json()) as { data: { id: string }[]; next_cursor: string | null };
    ids.push(...page.data.map((record) => record.id));
    cursor = page.next_cursor;
    if (cursor === null) break;
  }
  return ids.slice(0, count);
}

function customerBody(n: string): string {
  return JSON.stringify({
    name: 'Ada Lovelace',
    email: `ada-${n}@example.com`,
    company: 'Analytical Engines Ltd',
    currency: 'gbp',
    billing_address: { line1: '12 St James Square', city: 'London', postal_code: 'SW1Y 4JH', country: 'GB' },
    metadata: { plan: 'pro', source: 'bench' },
  });
}

/** Creates `count` customers (when the creates figure did not run, the reads need records). */
async function seedCustomers(url: string, key: string, count: number): Promise<void> {
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  for (let done = 0; done < count; done += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, count - done) }, async (_, i) => {
        const response = await fetch(`${url}/api/v1/customers`, { method: 'POST', headers, body: customerBody(`seed-${done + i}`) });
        if (response.status !== 201) throw new Error(`seeding a customer answered ${response.status}`);
      }),
    );
  }
}

async function measureHttp(data: BenchData, metric: 'creates' | 'reads', logLevel: string): Promise<Row> {
  const name = `${data.store}-${metric}-${logLevel}`;
  const tandem = await startTandem(data, { logLevel, name, execArgv: cpuProfArgs(name) });
  const auth = { authorization: `Bearer ${data.adminKey}` };
  let spec: LoadSpec;
  if (metric === 'creates') {
    spec = {
      url: tandem.url,
      connections: options.connections,
      pipelining: 1,
      warmupSeconds: options.warmupSeconds,
      durationSeconds: options.durationSeconds,
      method: 'POST',
      path: '/api/v1/customers',
      headers: { ...auth, 'content-type': 'application/json' },
      body: customerBody('[<id>]'),
      idReplacement: true,
    };
  } else {
    let ids = await customerIds(tandem.url, data.adminKey, options.readIds);
    if (ids.length < Math.min(1000, options.readIds)) {
      log(`seeding ${options.readIds - ids.length} customers for the reads`);
      await seedCustomers(tandem.url, data.adminKey, options.readIds - ids.length);
      ids = await customerIds(tandem.url, data.adminKey, options.readIds);
    }
    spec = {
      url: tandem.url,
      connections: options.connections,
      pipelining: 1,
      warmupSeconds: options.warmupSeconds,
      durationSeconds: options.durationSeconds,
      method: 'GET',
      path: `/api/v1/customers/${ids[0] ?? ''}`,
      headers: auth,
      paths: ids.map((id) => `/api/v1/customers/${id}`),
    };
    log(`reads rotate over ${ids.length} existing customers`);
    if (options.analyze) {
      const autovacuum = await data.analyze();
      if (autovacuum !== undefined) log(`ANALYZE done (autovacuum is ${autovacuum ? 'on' : 'off'} on this server)`);
    }
  }
  log(
    `${name}: ${options.warmupSeconds} s warm-up, then ${options.repeat} × ${options.durationSeconds} s measured, ${options.connections} connections`,
  );
  const runs: Measurement[] = [];
  try {
    for (let i = 0; i < options.repeat; i++) {
      await settle();
      let sampler: Sampler | undefined;
      let stats = NO_STATS;
      let result: LoadResult;
      try {
        const generate = options.load === 'wrk' ? runWrk : runLoad;
        result = await generate({ ...spec, warmupSeconds: i === 0 ? spec.warmupSeconds : 0 }, () => {
          sampler = sampleProcess(tandem.pid, serverComm(data.store));
        });
      } finally {
        stats = sampler?.stop() ?? NO_STATS;
      }
      const failures = result.non2xx + result.errors + result.timeouts;
      runs.push(
        measurement(result.perSecond, { p50Ms: result.latencyMs.p50, p99Ms: result.latencyMs.p99 }, result.ok, failures, stats, result.loadCpuPercent, result),
      );
      log(`  ${fmt(result.perSecond)}/s, p99 ${fmt(result.latencyMs.p99, 1)} ms, Tandem CPU ${fmt(stats.cpuPercent)}%`);
    }
  } finally {
    const crashed = !tandem.running();
    const code = await tandem.stop();
    const failed = runs.some((run) => run.failures > 0);
    if (crashed || code !== 0 || failed) {
      const kept = keepLog(tandem.logFile, name);
      log(
        `Tandem (${name}) ${crashed ? 'exited during the measure' : `exited with code ${code ?? 'null'}`}` +
          `${failed ? ' and requests failed' : ''}; its log: ${kept}\n${tail(kept)}`,
      );
    }
  }
  const judged = !options.profile && data.store === JUDGED.store && logLevel === JUDGED.logLevel;
  return row(metric, data.store, logLevel, judged, runs, reportProfile(name));
}

async function measureLog(store: StoreKind): Promise<Row> {
  const name = `${store}-log`;
  const runs: Measurement[] = [];
  for (let i = 0; i < options.repeat; i++) {
    const data = await createBenchData(store, options.postgresUrl);
    try {
      const spec: LogDeliverySpec = {
        dataDir: data.dataDir,
        databaseUrl: data.databaseUrl,
        changes: options.logChanges,
        appendBatch: 1000,
        partitions: 16,
        timeoutMs: 10 * 60_000,
      };
      await settle();
      log(`${name}: appending ${spec.changes} changes, then delivering them to a no-op consumer`);
      let sampler: Sampler | undefined;
      let stats: ProcessStats | undefined;
      const result = await runChild<LogDeliveryResult>(join(repoRoot, 'bench', 'log-delivery.ts'), [JSON.stringify(spec)], {
        timeoutMs: 15 * 60_000,
        execArgv: i === 0 ? cpuProfArgs(name) : [],
        onMeasuring: (pid) => {
          sampler = sampleProcess(pid, serverComm(store));
        },
        onResult: () => {
          stats = sampler?.stop();
        },
      });
      runs.push(measurement(result.perSecond, null, result.changes, Math.max(0, result.changes - result.handled), stats ?? NO_STATS, null, result));
      log(`  appended ${fmt(result.appendPerSecond)}/s; delivered ${fmt(result.perSecond)}/s`);
    } finally {
      await data.cleanup();
    }
  }
  const judged = !options.profile && store === JUDGED.store;
  return row('log', store, null, judged, runs, reportProfile(name));
}

const LABELS: Record<Metric, string> = {
  creates: 'creates/s (POST /customers)',
  reads: 'reads/s (GET /customers/{id})',
  log: 'log changes/s (embedded, no-op)',
};

function fmt(n: number | null, digits = 0): string {
  if (n === null || !Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function tableRows(rows: Row[]): string[][] {
  return rows.map((r) => [
    LABELS[r.metric],
    r.store,
    r.logLevel ?? '—',
    `≥ ${fmt(r.target)}`,
    fmt(r.perSecond),
    fmt(r.p50Ms),
    fmt(r.p99Ms),
    fmt(r.process.rssPeakMiB),
    fmt(r.process.cpuPercent),
    fmt(r.cpuUsPerOp),
    r.store === 'postgres' ? fmt(r.process.serverCpuPercent) : '—',
    fmt(r.otherCpuPercent),
    r.status,
  ]);
}

const HEADER = ['metric', 'store', 'LOG_LEVEL', 'target', 'measured', 'p50 ms', 'p99 ms', 'RSS peak MiB', 'CPU %', 'CPU µs/op', 'PG CPU %', 'others CPU %', 'result'];

function textTable(rows: string[][]): string {
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function markdownTable(rows: string[][]): string {
  return [
    `| ${HEADER.join(' | ')} |`,
    `| ${HEADER.map((_, i) => (i === 0 || i === 1 || i === 2 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

const machine = describeMachine();
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const startedAt = new Date().toISOString();
log(`${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.os}; load average ${machine.loadAverage.join(' ')}`);
log(`load generator: ${options.load}${options.load === 'autocannon' ? ' (wrk is not on the PATH; Debian: apt-get install wrk)' : ''}`);

const rows: Row[] = [];
for (const store of options.stores) {
  const httpMetrics = options.metrics.filter((m): m is 'creates' | 'reads' => m !== 'log');
  if (httpMetrics.length > 0) {
    for (const level of options.levels) {
      const data = await createBenchData(store, options.postgresUrl);
      try {
        for (const metric of httpMetrics) rows.push(await measureHttp(data, metric, level));
      } finally {
        await data.cleanup();
      }
    }
  }
  if (options.metrics.includes('log')) rows.push(await measureLog(store));
}

const cells = tableRows(rows);
const missed = rows.filter((row) => row.status === 'MISSED' || row.status === 'ERRORS');
process.stdout.write(`\n${textTable(cells)}\n\n`);
process.stdout.write(
  [
    'measured: 2xx answers (or changes delivered) per second; p50/p99: latency seen by the load generator.',
    'RSS, CPU: of Tandem for the HTTP rows, of the process embedding the log for the log row, while measuring.',
    `CPU % is of one core (the machine has ${machine.cores}); CPU µs/op is that CPU time per operation, which other`,
    'load on the machine hardly moves; PG CPU %: the PostgreSQL server; others CPU %: every other process',
    'meanwhile (not Tandem, the load generator or PostgreSQL). Targets are judged on SQLite at LOG_LEVEL=warn only.',
  ].join('\n') + '\n\n',
);

mkdirSync(dirname(options.out), { recursive: true });
writeFileSync(
  options.out,
  `${JSON.stringify({ startedAt, finishedAt: new Date().toISOString(), command, machine, options, targets: TARGETS, judged: JUDGED, rows }, null, 2)}\n`,
);
writeFileSync(options.out.replace(/\.json$/, '') + '.md', `${markdownTable(cells)}\n`);
log(`results: ${relative(process.cwd(), options.out)}`);

if (missed.length === 0) {
  const judged = rows.filter((r) => r.judged).length;
  process.stdout.write(
    options.profile
      ? 'Profiled run: figures reported, not judged.\n'
      : judged === 0
        ? 'Nothing judged: targets are judged on SQLite at LOG_LEVEL=warn.\n'
        : `Every judged target is met (${judged} of ${judged}).\n`,
  );
} else {
  for (const row of missed) {
    process.stdout.write(
      row.status === 'ERRORS'
        ? `ERRORS: ${LABELS[row.metric]} on ${row.store} saw failed requests or undelivered changes (see ${relative(process.cwd(), options.out)}).\n`
        : `MISSED: ${LABELS[row.metric]} on ${row.store} measured ${fmt(row.perSecond)}, target ≥ ${fmt(row.target)}.\n`,
    );
  }
  if (options.noFail) process.stdout.write('(--no-fail: exiting 0)\n');
  else process.exitCode = 1;
}

if (suite.suite === 'all') {
  const code = await runSyncSuite(suite.syncArgs);
  if (code !== 0) process.exitCode = code;
  const salesforce = await runSyncSuite(suite.syncArgs.filter((arg) => arg === '--no-fail'), 'salesforce.ts');
  if (salesforce !== 0) process.exitCode = salesforce;
  if ((process.env.KAFKA_BROKERS ?? '') === '') process.stdout.write('\nscale-out suite skipped: KAFKA_BROKERS is not set (npm run kafka:start)\n');
  else {
    const scaleOut = await runSyncSuite(['--workers', ...suite.syncArgs.filter((arg) => arg === '--no-fail')], 'scale-out.ts');
    if (scaleOut !== 0) process.exitCode = scaleOut;
  }
}
