// `npm run bench -- --suite sync [--quick] [options]` (or `node_modules/.bin/node bench/sync.ts …`):
// the Stripe sync benchmarks, against the targets of docs/benchmarks.md ("Stripe sync").
//
//   latency at 50 changes/s, both directions (simulator limit off)        p99 < 500 ms each way
//   outbound throughput, simulator limit off, connection budget 5,000/s   ≥ 1,000 changes/s
//   a backlog of 750 changes at Stripe's 25/s (simulator and connection)  ≥ 23.75/s, < 1% 429s
//
// Tandem runs as `node src/main.ts` in a child process (bench/lib/tandem.ts: temp DATA_DIR, free
// loopback port, demo off, LOG_LEVEL=warn), connected through its API to an account of a Stripe
// simulator that runs in this process (the connection polls the events feed every second). Each
// scenario gets a fresh Tandem and simulator. Exits 1 when a judged target is missed, unless --no-fail.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startStripeSimulator, type StripeSimulator } from '../src/connectors/stripe/simulator/index.ts';
import { describeMachine } from './lib/machine.ts';
import { waitForQuiet } from './lib/process-stats.ts';
import { formatProfile, summariseProfile } from './lib/profile.ts';
import { createBenchData, repoRoot, startTandem, type RunningTandem } from './lib/tandem.ts';
import { seedLinkedCustomers, stripeClient, waitForSyncQuiet, type LinkedCustomer, type SyncContext } from './sync-lib/context.ts';
import { measureLatency, poolSizeFor, type LatencyOptions, type LatencyResult } from './sync-lib/latency.ts';
import { loadAverage, sampleCpu, type CpuUse } from './sync-lib/machine.ts';
import { fmt } from './sync-lib/stats.ts';
import { stripeConnectionInput, tailOf, TandemApi } from './sync-lib/tandem.ts';
import { bulkCreates, bulkUpdates, type ThroughputResult } from './sync-lib/throughput.ts';

const SCENARIOS = ['latency', 'throughput', 'limited'] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `usage: npm run bench -- --suite sync [options]   (or: node_modules/.bin/node bench/sync.ts [options])

  --quick             a short run (≈1 minute of measuring): fewer changes, figures less steady
  --only <list>       latency, throughput, limited (default all three)
                        latency:    50 changes/s each way, simulator limit off
                        throughput: thousands of outbound changes, simulator limit off
                        limited:    a backlog at Stripe's 25/s, and latency at 10 changes/s under it
  --rate <n>          changes/s of the latency figures (default 50)
  --duration <s>      measured seconds of each latency figure (default 20, --quick 5)
  --changes <n>       changes of each throughput figure (default 3000, --quick 600)
  --warmup <n>        throughput: live creates and renames before the judged figures, reported
                      as a fresh process's first changes (default: as many as --changes; 0: none)
  --backlog <n>       changes of the 25/s backlog (default 750, --quick 150)
  --settle <s>        before each figure, wait up to s seconds for the machine to be idle
                      (< 25% of a core busy for 1 s; default 15, 0 to start at once)
  --profile           run Tandem under --cpu-prof and summarise where its time went
                      (figures are reported, never judged)
  --tandem-root <dir> run the Tandem of another work tree (e.g. a copy with a fix to compare)
  --out <file>        JSON results (default bench/results/sync.json; a .md table beside it)
  --no-fail           report only: exit 0 even when a target is missed
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number (got ${value})`);
  return n;
}

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', default: SCENARIOS.join(',') },
    rate: { type: 'string' },
    duration: { type: 'string' },
    changes: { type: 'string' },
    warmup: { type: 'string' },
    backlog: { type: 'string' },
    settle: { type: 'string', default: '15' },
    profile: { type: 'boolean', default: false },
    'tandem-root': { type: 'string' },
    out: { type: 'string', default: join(repoRoot, 'bench', 'results', 'sync.json') },
    'no-fail': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const only = args.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
for (const s of only) if (!SCENARIOS.includes(s as Scenario)) fail(`--only: unknown ${s} (one of ${SCENARIOS.join(', ')})`);
const quick = args.quick;
const options = {
  quick,
  scenarios: only as Scenario[],
  rate: positive('rate', args.rate, 50),
  durationSeconds: positive('duration', args.duration, quick ? 5 : 20),
  warmupSeconds: quick ? 2 : 3,
  changes: Math.round(positive('changes', args.changes, quick ? 600 : 3000)),
  backlog: Math.round(positive('backlog', args.backlog, quick ? 150 : 750)),
  /** Live creates and renames made first in a fresh Tandem, before the judged throughput figures. */
  warmup: args.warmup === '0' ? 0 : Math.round(positive('warmup', args.warmup, quick ? 600 : 3000)),
  settleSeconds: Number(args.settle) >= 0 ? Number(args.settle) : fail('--settle must be 0 or more'),
  profile: args.profile,
  tandemRoot: args['tandem-root'] === undefined ? undefined : resolve(args['tandem-root']),
  out: resolve(args.out),
  noFail: args['no-fail'],
  /** Tandem's TANDEM_SYNC_POLL_MS and the connections' pollIntervalMs. */
  pollMs: 1000,
  /** The connection's budget when the simulator's limit is off. */
  unlimitedBudget: 5000,
  /** Stripe's test-mode limit, the simulator's and the connection's default. */
  stripeLimit: 25,
  /** Changes/s of the latency figures under the 25/s limit (each costs about two requests). */
  limitedRate: 10,
  concurrency: 16,
};
const profileDir = join(dirname(options.out), 'profiles');

function log(message: string): void {
  process.stderr.write(`[bench:sync] ${message}\n`);
}

// Results

type Status = 'met' | 'MISSED' | 'reported';

interface Row {
  id: string;
  metric: string;
  target: string;
  /** The judged value, in the row's unit. */
  measured: number;
  unit: string;
  p50Ms: number | null;
  p99Ms: number | null;
  status: Status;
  cpu: CpuUse;
  /**
   * Throughput rows: Tandem's CPU time per change, from the first write until the sync is quiet
   * again (the echoes handled too), the API write included. Other load hardly moves it.
   */
  cpuMsPerChange: number | null;
  note: string;
  detail: LatencyResult | ThroughputResult | Record<string, unknown>;
}

const rows: Row[] = [];

function judge(met: boolean): Status {
  return options.profile ? 'reported' : met ? 'met' : 'MISSED';
}

function latencyRow(id: string, metric: string, result: LatencyResult, cpu: CpuUse, judged: boolean): Row {
  const measuredOk = result.seen.lost === 0 && result.writeErrors === 0;
  return {
    id,
    metric,
    target: judged ? 'p99 < 500 ms' : '—',
    measured: result.seen.p99Ms,
    unit: 'ms (p99)',
    p50Ms: result.seen.p50Ms,
    p99Ms: result.seen.p99Ms,
    status: judged ? judge(result.seen.p99Ms < 500 && measuredOk) : 'reported',
    cpu,
    cpuMsPerChange: null,
    note:
      `${fmt(result.sent)} changes at ${fmt(result.achievedRatePerSecond, 1)}/s; max ${fmt(result.seen.maxMs)} ms; lost ${fmt(result.seen.lost)}; ` +
      `write errors ${fmt(result.writeErrors)}; write call p50/p99 ${fmt(result.writeCall.p50Ms, 1)}/${fmt(result.writeCall.p99Ms, 1)} ms` +
      (result.committed === undefined ? '' : `; committed p50/p99 ${fmt(result.committed.p50Ms)}/${fmt(result.committed.p99Ms)} ms`) +
      `; probe every ${fmt(result.probeMs)} ms`,
    detail: result,
  };
}

function throughputNote(r: ThroughputResult): string {
  const m = r.requests;
  return (
    `${fmt(r.arrived)}/${fmt(r.changes)} ${r.kind} in ${fmt(r.seconds, 2)} s${r.timedOut ? ' (TIMED OUT)' : ''}; ` +
    `Tandem took the writes at ${fmt(r.writesPerSecond)}/s; Stripe writes steady ${fmt(r.steadyPerSecond, 1)}/s; ` +
    `${fmt(r.requestsPerSecond, 1)} requests/s to Stripe (${fmt(m.creates)} creates, ${fmt(m.updates)} updates, ` +
    `${fmt(m.retrieves)} retrieves, ${fmt(m.eventPolls)} event polls, ${fmt(m.searches)} lists/searches, ${fmt(m.other)} other; ` +
    `${fmt(m.rateLimited)} × 429, ${fmt(m.errors5xx)} × 5xx)` +
    (r.writeErrors > 0 ? `; ${fmt(r.writeErrors)} Tandem writes failed: ${r.firstError ?? ''}` : '')
  );
}

// Running a scenario

const QUIET_BUSY_PERCENT = 25;
/**
 * The sync is quiet once no request reached the simulator for this long. Shorter than the poll
 * interval (1 s), so the change-feed polls that never stop do not hold it; longer than any gap
 * while the engine is working (a request every few ms, or every 40 ms at 25/s).
 */
const QUIET_MS = 600;

async function settle(): Promise<void> {
  if (options.settleSeconds <= 0) return;
  const { waitedSeconds, busyPercent } = await waitForQuiet(options.settleSeconds, QUIET_BUSY_PERCENT);
  if (busyPercent >= QUIET_BUSY_PERCENT) log(`  the machine is still busy (${fmt(busyPercent)}% of a core) after ${fmt(waitedSeconds)} s; measuring anyway`);
  else if (waitedSeconds > 1.5) log(`  waited ${fmt(waitedSeconds)} s for the machine to be idle`);
}

/** Measures `fn` while sampling Tandem's, this process's and the machine's CPU. */
async function measured<T>(ctx: SyncContext, fn: () => Promise<T>): Promise<{ result: T; cpu: CpuUse }> {
  await settle();
  const sampler = sampleCpu(ctx.tandem.pid);
  try {
    const result = await fn();
    return { result, cpu: sampler.stop() };
  } catch (error) {
    sampler.stop();
    throw error;
  }
}

/**
 * As measured(), and also Tandem's CPU time per change over the whole work: from the first write
 * until the simulator has seen no request for a second (the echoes of the writes handled too).
 */
async function measuredThroughput<T extends ThroughputResult>(ctx: SyncContext, fn: () => Promise<T>): Promise<{ result: T; cpu: CpuUse; cpuMsPerChange: number }> {
  await settle();
  const whole = sampleCpu(ctx.tandem.pid);
  const window = sampleCpu(ctx.tandem.pid);
  let result: T;
  let cpu: CpuUse;
  try {
    result = await fn();
    cpu = window.stop();
    await waitForSyncQuiet(ctx, QUIET_MS, 120_000);
  } finally {
    window.stop();
  }
  const all = whole.stop();
  return { result, cpu, cpuMsPerChange: result.changes > 0 ? (all.tandemCpuSeconds * 1000) / result.changes : Number.NaN };
}

function cpuText(cpu: CpuUse): string {
  return `Tandem ${fmt(cpu.tandemPercent)}%, bench+sim ${fmt(cpu.benchPercent)}%, others ${fmt(cpu.othersPercent)}%, load ${cpu.loadAverage.join(' ')}`;
}

function profileArgs(name: string): string[] {
  if (!options.profile) return [];
  mkdirSync(profileDir, { recursive: true });
  rmSync(join(profileDir, `${name}.cpuprofile`), { force: true });
  return ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}.cpuprofile`];
}

const profiles: Record<string, string> = {};

function reportProfile(name: string): void {
  if (!options.profile) return;
  if (!readdirSync(profileDir).includes(`${name}.cpuprofile`)) {
    log(`no profile written for ${name}`);
    return;
  }
  const text = formatProfile(summariseProfile(join(profileDir, `${name}.cpuprofile`), options.tandemRoot ?? repoRoot));
  writeFileSync(join(profileDir, `${name}.txt`), `${text}\n`);
  profiles[name] = relative(repoRoot, join(profileDir, `${name}.txt`));
  log(`profile of Tandem (${name}):\n${text}`);
}

/** Warnings and errors in Tandem's log (LOG_LEVEL=warn: every JSON line is one), by message. */
function logFindings(tandem: RunningTandem): Record<string, number> {
  const counts: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync(tandem.logFile, 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: unknown; level?: unknown };
      const key = `${String(entry.level)} ${String(entry.msg)}`;
      counts[key] = (counts[key] ?? 0) + 1;
    } catch {
      // not JSON
    }
  }
  return counts;
}

const findings: Record<string, { logLines: Record<string, number>; openSyncIssues: number }> = {};

async function withScenario(
  name: string,
  simLimit: number,
  connectionBudget: number | undefined,
  body: (ctx: SyncContext) => Promise<void>,
): Promise<void> {
  log(`${name}: simulator limit ${simLimit === 0 ? 'off' : `${String(simLimit)}/s`}, connection budget ${connectionBudget === undefined ? `default (${String(options.stripeLimit)}/s)` : `${String(connectionBudget)}/s`}`);
  const sim: StripeSimulator = await startStripeSimulator({ rateLimitPerSecond: simLimit });
  const data = await createBenchData('sqlite', '');
  let tandem: RunningTandem | undefined;
  try {
    tandem = await startTandem(data, {
      name,
      logLevel: 'warn',
      execArgv: profileArgs(name),
      ...(options.tandemRoot === undefined ? {} : { root: options.tandemRoot }),
    });
    const api = new TandemApi(tandem.url, data.adminKey);
    const key = `sk_test_bench_${name.replaceAll('-', '_')}_${Date.now().toString(36)}`;
    // The connection polls the change feed every pollMs (TANDEM_SYNC_POLL_MS is only its default).
    const input = stripeConnectionInput(key, sim.url, connectionBudget, options.pollMs);
    const connectionId = await api.createConnection(input);
    const ctx: SyncContext = { sim, key, tandem, api, connectionId, stripe: stripeClient(sim, key), log };
    await body(ctx);
    findings[name] = { logLines: logFindings(tandem), openSyncIssues: await api.openIssues() };
    if (!tandem.running()) throw new Error(`Tandem (${name}) exited during the run (code null: killed by a signal):\n${tailOf(tandem.logFile)}`);
  } finally {
    if (tandem !== undefined) {
      const running = tandem;
      const code = await running.stop().catch((error: unknown) => {
        log(String(error));
        return null;
      });
      if (code !== 0) log(`Tandem (${name}) exited with code ${String(code)}; the last lines of its log:\n${tailOf(running.logFile)}`);
      reportProfile(name);
    }
    await data.cleanup();
    await sim.stop();
  }
}

function latencyOptions(rate: number): LatencyOptions {
  return { ratePerSecond: rate, warmupSeconds: options.warmupSeconds, durationSeconds: options.durationSeconds, timeoutMs: 10_000, probeMs: 2 };
}

async function latencyPair(ctx: SyncContext, pool: LinkedCustomer[], rate: number, judged: boolean, label: string): Promise<void> {
  for (const direction of ['outbound', 'inbound'] as const) {
    const opts = { ...latencyOptions(rate), probeMs: direction === 'outbound' ? 2 : 20 };
    log(`  ${direction} latency at ${String(rate)} changes/s: ${String(opts.warmupSeconds)} s warm-up, ${String(opts.durationSeconds)} s measured`);
    const { result, cpu } = await measured(ctx, () => measureLatency(ctx, direction, pool, opts));
    const row = latencyRow(
      `latency-${direction}${judged ? '' : '-limited'}`,
      `${direction} latency, ${String(rate)} changes/s, ${label}`,
      result,
      cpu,
      judged,
    );
    rows.push(row);
    log(`    p50 ${fmt(result.seen.p50Ms)} ms, p99 ${fmt(result.seen.p99Ms)} ms, lost ${String(result.seen.lost)}; ${cpuText(cpu)}`);
    await waitForSyncQuiet(ctx, QUIET_MS, 30_000);
  }
}

// The scenarios

async function latencyScenario(): Promise<void> {
  await withScenario('latency', 0, options.unlimitedBudget, async (ctx) => {
    const size = poolSizeFor(latencyOptions(options.rate));
    log(`  seeding ${String(size)} linked customers`);
    const pool = await seedLinkedCustomers(ctx, size, 'lat', 120_000);
    await latencyPair(ctx, pool, options.rate, true, 'simulator limit off');
  });
}

/**
 * Records one throughput figure and logs it; `judged` rows are held to 1,000 changes/s, the others
 * reported. The created ids are left out of the stored detail.
 */
function throughputRow(id: string, metric: string, judged: boolean, m: { result: ThroughputResult & { created?: unknown }; cpu: CpuUse; cpuMsPerChange: number }): void {
  rows.push({
    id,
    metric,
    target: judged ? '≥ 1,000/s' : '—',
    measured: m.result.perSecond,
    unit: '/s',
    p50Ms: null,
    p99Ms: null,
    status: judged ? judge(m.result.perSecond >= 1000 && !m.result.timedOut && m.result.writeErrors === 0) : 'reported',
    cpu: m.cpu,
    cpuMsPerChange: m.cpuMsPerChange,
    note: throughputNote(m.result),
    detail: { ...m.result, created: undefined },
  });
  log(`    ${fmt(m.result.perSecond)}/s; ${throughputNote(m.result)}; ${cpuText(m.cpu)}`);
}

async function throughputScenario(): Promise<void> {
  await withScenario('throughput', 0, options.unlimitedBudget, async (ctx) => {
    const timeoutMs = Math.max(120_000, options.changes * 50);
    const live = { concurrency: options.concurrency, mode: 'live', timeoutMs } as const;

    // A fresh Node process runs its first few thousand changes at about two thirds of its later
    // speed (V8 has not compiled the hot paths yet: its JavaScript runs ~2.4x slower, its SQL not at
    // all; docs/benchmarks.md). The target is a sustained rate: those first changes are made and
    // reported first, as the latency figures have their warm-up, and the figures judged after them.
    if (options.warmup > 0) {
      log(`  warm-up: ${String(options.warmup)} customers created, then renamed, in the fresh Tandem (reported, not judged)`);
      const cold = await measuredThroughput(ctx, () => bulkCreates(ctx, { ...live, changes: options.warmup, tag: 'wc' }));
      throughputRow('throughput-cold-creates', `outbound creates/s, live, a fresh process's first ${fmt(options.warmup)}`, false, cold);
      await waitForSyncQuiet(ctx, QUIET_MS, 60_000);
      const renames = await measuredThroughput(ctx, () => bulkUpdates(ctx, cold.result.created, { ...live, changes: cold.result.created.length, tag: 'wu' }));
      throughputRow('throughput-cold-updates', `outbound updates/s, live, a fresh process's first ${fmt(options.warmup)}`, false, renames);
      await waitForSyncQuiet(ctx, QUIET_MS, 60_000);
    }

    log(`  live creates: ${String(options.changes)} customers created in Tandem (${String(options.concurrency)} at a time), until all are in Stripe`);
    const creates = await measuredThroughput(ctx, () => bulkCreates(ctx, { ...live, changes: options.changes, tag: 'tc' }));
    throughputRow('throughput-creates', 'outbound creates/s, live, simulator limit off', true, creates);
    await waitForSyncQuiet(ctx, QUIET_MS, 60_000);

    log(`  live updates: the ${String(creates.result.created.length)} customers renamed in Tandem, until Stripe holds every name`);
    const updates = await measuredThroughput(ctx, () => bulkUpdates(ctx, creates.result.created, { ...live, changes: creates.result.created.length, tag: 'tu' }));
    throughputRow('throughput-updates', 'outbound updates/s, live, simulator limit off', true, updates);
    await waitForSyncQuiet(ctx, QUIET_MS, 60_000);

    log(`  drain: ${String(options.changes)} customers created while the connection is paused, timed from resume`);
    const drain = await measuredThroughput(ctx, () => bulkCreates(ctx, { ...live, mode: 'drain', changes: options.changes, tag: 'td' }));
    throughputRow('throughput-drain', 'outbound creates/s, backlog drained after resume, limit off', false, drain);
  });
}

async function limitedScenario(): Promise<void> {
  await withScenario('limited', options.stripeLimit, undefined, async (ctx) => {
    const limit = options.stripeLimit;
    log(`  backlog: ${String(options.backlog)} customers created in Tandem at once, until all are in Stripe (≥ ${fmt(limit * 0.95, 2)}/s wanted)`);
    const timeoutMs = Math.max(120_000, (options.backlog / limit) * 4000);
    const backlog = await measuredThroughput(ctx, () => bulkCreates(ctx, { changes: options.backlog, concurrency: options.concurrency, mode: 'live', timeoutMs, tag: 'bl' }));
    const r = backlog.result;
    const refused = r.requests.total > 0 ? (r.requests.rateLimited / r.requests.total) * 100 : 0;
    rows.push({
      id: 'limited-backlog',
      metric: `backlog of ${fmt(options.backlog)} creates at ${String(limit)}/s (simulator and connection)`,
      target: `≥ ${fmt(limit * 0.95, 2)}/s`,
      measured: r.perSecond,
      unit: '/s',
      p50Ms: null,
      p99Ms: null,
      status: judge(r.perSecond >= limit * 0.95 && !r.timedOut && r.writeErrors === 0),
      cpu: backlog.cpu,
      cpuMsPerChange: backlog.cpuMsPerChange,
      note: throughputNote(r),
      detail: { ...r, created: undefined },
    });
    rows.push({
      id: 'limited-429',
      metric: `requests refused (429) during that backlog`,
      target: '< 1%',
      measured: refused,
      unit: '%',
      p50Ms: null,
      p99Ms: null,
      status: judge(refused < 1),
      cpu: backlog.cpu,
      cpuMsPerChange: null,
      note: `${fmt(r.requests.rateLimited)} of ${fmt(r.requests.total)} requests answered 429`,
      detail: r.requests as unknown as Record<string, unknown>,
    });
    log(`    ${fmt(r.perSecond, 2)}/s, ${fmt(refused, 2)}% refused; ${throughputNote(r)}; ${cpuText(backlog.cpu)}`);
    await waitForSyncQuiet(ctx, QUIET_MS, 120_000);

    // Latency under Stripe's real limit: fewer changes, each costs a write and an echo (or a fetch).
    const size = poolSizeFor(latencyOptions(options.limitedRate));
    const pool = backlog.result.created.slice(0, size);
    if (pool.length < size) {
      log(`  (latency at ${String(limit)}/s skipped: only ${String(pool.length)} linked customers, ${String(size)} needed)`);
      return;
    }
    await latencyPair(ctx, pool, options.limitedRate, false, `at Stripe's ${String(limit)}/s`);
  });
}

// Main

const machine = describeMachine();
const startedAt = new Date().toISOString();
const command = `node_modules/.bin/node bench/sync.ts${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
log(`${machine.cpu}, ${String(machine.cores)} cores, ${String(machine.memoryGiB)} GiB, Node ${machine.node}, ${machine.os}; load average ${loadAverage().join(' ')}`);

if (options.tandemRoot !== undefined) log(`running the Tandem of ${options.tandemRoot}, not this work tree`);

if (options.scenarios.includes('latency')) await latencyScenario();
if (options.scenarios.includes('throughput')) await throughputScenario();
if (options.scenarios.includes('limited')) await limitedScenario();

const HEADER = ['metric', 'target', 'measured', 'p50 ms', 'p99 ms', 'Tandem CPU ms/change', 'Tandem CPU %', 'bench+sim CPU %', 'others CPU %', 'load avg (1m)', 'result'];

function cells(row: Row): string[] {
  const digits = row.unit === '%' || row.id === 'limited-backlog' ? 2 : 0;
  return [
    row.metric,
    row.target,
    `${fmt(row.measured, digits)} ${row.unit}`,
    fmt(row.p50Ms),
    fmt(row.p99Ms),
    fmt(row.cpuMsPerChange, 2),
    fmt(row.cpu.tandemPercent),
    fmt(row.cpu.benchPercent),
    fmt(row.cpu.othersPercent),
    fmt(row.cpu.loadAverage[0], 2),
    row.status,
  ];
}

function textTable(): string {
  const all = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(cells(r)))].join('\n');
}

function markdownTable(): string {
  return [
    `| ${HEADER.join(' | ')} |`,
    `| ${HEADER.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${cells(r).join(' | ')} |`),
  ].join('\n');
}

process.stdout.write(`\n${textTable()}\n\n`);
for (const row of rows) process.stdout.write(`${row.metric}: ${row.note}\n`);
process.stdout.write(
  [
    '',
    `CPU % is of one core (the machine has ${String(machine.cores)}), over the measured period: Tandem (the child process),`,
    'bench+sim (this process: the Stripe simulator, the writers and the probes), others (every other process).',
    'Tandem CPU ms/change: its CPU time from the first write until the sync was quiet again, per change (the API',
    'write, the sync and the handling of its echo); 1,000 / that is the most one core could do.',
  ].join('\n') + '\n',
);
for (const [name, f] of Object.entries(findings)) {
  const lines = Object.entries(f.logLines).map(([msg, n]) => `${String(n)} × ${msg}`);
  process.stdout.write(`${name}: ${String(f.openSyncIssues)} open sync issues; Tandem log (warn and above): ${lines.length === 0 ? 'nothing' : lines.join('; ')}\n`);
}

mkdirSync(dirname(options.out), { recursive: true });
writeFileSync(
  options.out,
  `${JSON.stringify({ startedAt, finishedAt: new Date().toISOString(), command, machine, options, rows, findings, profiles }, null, 2)}\n`,
);
writeFileSync(`${options.out.replace(/\.json$/, '')}.md`, `${markdownTable()}\n`);
log(`results: ${relative(process.cwd(), options.out)}`);

const missed = rows.filter((r) => r.status === 'MISSED');
if (options.profile) process.stdout.write('Profiled run: figures reported, not judged.\n');
else if (missed.length === 0) process.stdout.write(`Every judged target is met (${String(rows.filter((r) => r.status === 'met').length)}).\n`);
else {
  for (const row of missed) process.stdout.write(`MISSED: ${row.metric}: ${fmt(row.measured, 2)} ${row.unit}, target ${row.target}\n`);
  if (options.noFail) process.stdout.write('(--no-fail: exiting 0)\n');
  else process.exitCode = 1;
}
