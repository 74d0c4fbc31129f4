// Scale-out benchmark: the log's delivery, embedded vs. Kafka, side by side.
//
//   KAFKA_BROKERS=127.0.0.1:19092 node bench/scale-out.ts [--changes 50000] [--store postgres|sqlite]
//
// 1. Delivery. For each log: appends N customer changes through the outbox (as catalog writes do, 500 per
// transaction) to a fresh store, then starts the log with a no-op consumer group and times until the
// handler saw every change and the group's lag is 0. For Kafka that is the outbox relay (store ->
// topic, acks=all) plus consumption and offset commits; for the embedded log, consumption and
// commits. PostgreSQL by default (TANDEM_BENCH_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test: a database of its own is created and dropped).
// 2. End-to-end latency (`--latency`, default on): Tandem as a child process (`node src/main.ts`) on
// SQLite + the embedded log, then on PostgreSQL + Kafka, connected to a Stripe simulator in this
// process; customer updates at 50/s (open loop), each timed from just before its PATCH to the
// simulator holding it (bench/sync-lib/latency.ts, the Stripe sync benchmark's own measure).
// 3. Worker scaling (`--workers`, off by default): PostgreSQL + Kafka, one Tandem process with the
// api and relay roles, `--connections` Stripe connections (one simulator account each, no rate
// limit), paused, and `--customers` customers made through the API; then one, then (on fresh data)
// two `TANDEM_ROLES=worker` processes start together. Once their dispatchers have marked every
// customer for every connection and the connection leases have settled between them, every
// connection is resumed, and the figure is the changes per second between the simulator holding
// 10% and 90% of every customer in every account: the sync workers' own steady throughput.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createIdFactory } from '../src/catalog/ids.ts';
import type { Change } from '../src/log/change.ts';
import { createEmbeddedLog } from '../src/log/embedded/embedded-log.ts';
import { createKafkaLog } from '../src/log/kafka/kafka-log.ts';
import type { EventLog } from '../src/log/log.ts';
import { createOutbox } from '../src/log/outbox.ts';
import { openStore } from '../src/store/open-store.ts';
import type { Store } from '../src/store/store.ts';
import { startStripeSimulator } from '../src/connectors/stripe/simulator/index.ts';
import type { RunningTandem } from './lib/tandem.ts';
import { seedLinkedCustomers, stripeClient, type SyncContext } from './sync-lib/context.ts';
import { measureLatency, poolSizeFor, type LatencyResult } from './sync-lib/latency.ts';
import { stripeConnectionInput, TandemApi } from './sync-lib/tandem.ts';

const { values } = parseArgs({
  options: {
    changes: { type: 'string', default: '50000' },
    store: { type: 'string', default: 'postgres' },
    partitions: { type: 'string', default: '16' },
    latency: { type: 'boolean', default: true },
    'no-latency': { type: 'boolean', default: false },
    'no-delivery': { type: 'boolean', default: false },
    stacks: { type: 'string', default: 'sqlite+embedded,postgres+kafka' },
    rate: { type: 'string', default: '50' },
    duration: { type: 'string', default: '20' },
    workers: { type: 'boolean', default: false },
    'no-fail': { type: 'boolean', default: false },
    connections: { type: 'string', default: '8' },
    customers: { type: 'string', default: '500' },
  },
});
const changes = Number(values.changes);
const partitions = Number(values.partitions);
const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter((b) => b !== '');
const adminUrl = process.env.TANDEM_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const ids = createIdFactory();
function customerChange(n: number): Change {
  const now = new Date().toISOString();
  const recordId = ids('cus');
  return {
    id: ids('chg'),
    workspaceId: 'ws_bench',
    entityType: 'customer',
    recordId,
    version: 1,
    op: 'create',
    origin: 'api',
    changedFields: ['email', 'metadata', 'name'],
    record: {
      id: recordId,
      object: 'customer',
      version: 1,
      name: `Customer ${String(n)}`,
      email: `customer-${String(n)}@example.com`,
      phone: null,
      company: null,
      billing_address: { line1: null, line2: null, city: 'London', state: null, postal_code: null, country: 'GB' },
      currency: 'gbp',
      tax_id: null,
      metadata: { plan: 'pro' },
      created_at: now,
      updated_at: now,
      deleted_at: null,
    },
    correlationId: `req_${String(n)}`,
    createdAt: now,
  };
}

async function freshStore(kind = values.store): Promise<{ store: Store; dataDir: string; databaseUrl?: string; drop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-bench-scale-'));
  if (kind === 'sqlite') {
    const store = await openStore({ dataDir });
    return { store, dataDir, drop: async () => { await store.close(); rmSync(dataDir, { recursive: true, force: true }); } };
  }
  const database = `tandem_bench_${String(process.pid)}_${String(Date.now())}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${database}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const store = await openStore({ dataDir, databaseUrl: url.toString() });
  return {
    store,
    dataDir,
    databaseUrl: url.toString(),
    drop: async () => {
      await store.close();
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`drop database if exists ${database} with (force)`);
      await client.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

interface Row {
  log: string;
  appendPerSecond: number;
  deliveryPerSecond: number;
  seconds: number;
  handled: number;
}

async function measure(kind: 'embedded' | 'kafka'): Promise<Row> {
  const { store, drop } = await freshStore();
  try {
    const outbox = createOutbox(partitions);
    const appendStart = performance.now();
    for (let done = 0; done < changes; done += 500) {
      const count = Math.min(500, changes - done);
      await store.transaction(async (trx) => {
        for (let i = 0; i < count; i++) await outbox.append(trx, customerChange(done + i));
      });
    }
    const appendSeconds = (performance.now() - appendStart) / 1000;
    const start = performance.now();
    const log: EventLog =
      kind === 'embedded'
        ? createEmbeddedLog({ store, partitions, maxAttempts: 8 })
        : createKafkaLog({ store, brokers, topicPrefix: `bench.${String(Date.now())}.`, partitions, maxAttempts: 8 });
    let handled = 0;
    let allSeen = 0;
    log.subscribe({
      group: 'bench',
      handler: () => {
        handled += 1;
        if (handled === changes) allSeen = performance.now();
        return Promise.resolve();
      },
    });
    for (;;) {
      if (allSeen !== 0 && (await log.lag('bench')) === 0) break;
      if (performance.now() - start > 300_000) throw new Error('no full delivery within 300 s');
      await new Promise((resolve) => setTimeout(resolve, kind === 'kafka' ? 100 : 10));
    }
    const seconds = (performance.now() - start) / 1000;
    await log.close();
    if ('deleteTopics' in log && typeof log.deleteTopics === 'function') await (log.deleteTopics as () => Promise<void>)();
    return { log: kind, appendPerSecond: changes / appendSeconds, deliveryPerSecond: changes / seconds, seconds, handled };
  } finally {
    await drop();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Tandem as a child process on the given stack, until stopped. */
async function startChild(env: Record<string, string>, logFile: string): Promise<RunningTandem> {
  const port = await freePort();
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: join(import.meta.dirname, '..'),
    stdio: ['ignore', out, out],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', TANDEM_DEMO: 'off', TANDEM_SYNC_POLL_MS: '1000', ...env },
  });
  closeSync(out);
  const state = { alive: true };
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      state.alive = false;
      resolve(code);
    });
  });
  const url = `http://127.0.0.1:${String(port)}`;
  for (let i = 0; ; i++) {
    if (!state.alive) throw new Error(`Tandem exited while starting (log: ${logFile})`);
    if (i > 600) throw new Error('Tandem did not get ready within 60 s');
    const ok = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    pid: child.pid ?? 0,
    url,
    logFile,
    running: () => state.alive,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

type StackName = 'sqlite+embedded' | 'postgres+embedded' | 'postgres+kafka';

async function latencyOn(stack: StackName): Promise<LatencyResult> {
  const { dataDir, databaseUrl, drop } = await freshStore(stack === 'sqlite+embedded' ? 'sqlite' : 'postgres');
  const sim = await startStripeSimulator({ rateLimitPerSecond: 0 });
  const adminKey = `bench_${randomBytes(24).toString('base64url')}`;
  const env: Record<string, string> = { DATA_DIR: dataDir, TANDEM_ADMIN_API_KEY: adminKey };
  if (stack !== 'sqlite+embedded') env.DATABASE_URL = databaseUrl ?? '';
  if (stack === 'postgres+kafka') Object.assign(env, { DATABASE_URL: databaseUrl ?? '', KAFKA_BROKERS: brokers.join(','), TANDEM_KAFKA_TOPIC_PREFIX: `bench.${String(Date.now())}.` });
  let tandem: RunningTandem | undefined;
  try {
    tandem = await startChild(env, join(dataDir, 'tandem.log'));
    const api = new TandemApi(tandem.url, adminKey);
    const key = `sk_test_bench_scale_${Date.now().toString(36)}`;
    const connectionId = await api.createConnection(stripeConnectionInput(key, sim.url, 5000, 1000));
    const ctx: SyncContext = { sim, key, tandem, api, connectionId, stripe: stripeClient(sim, key), log: (m) => process.stderr.write(`${m}\n`) };
    const options = { ratePerSecond: Number(values.rate), warmupSeconds: 3, durationSeconds: Number(values.duration), timeoutMs: 5_000, probeMs: 5 };
    const customers = await seedLinkedCustomers(ctx, poolSizeFor(options), 'scale', 120_000);
    return await measureLatency(ctx, 'outbound', customers, options);
  } finally {
    await tandem?.stop();
    await sim.stop();
    await drop();
  }
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '∞');
/** The issue's targets, judged on PostgreSQL + Kafka: each answers a line, ✓ or ✗. */
const verdicts: { line: string; met: boolean }[] = [];
function judge(what: string, value: number, target: number, higherIsBetter: boolean, unit: string): void {
  const met = higherIsBetter ? value >= target : value < target;
  verdicts.push({ line: `${met ? '✓' : '✗'} ${what}: ${fmt(value)}${unit} (target ${higherIsBetter ? '≥' : '<'} ${fmt(target)}${unit})`, met });
}
if (!values['no-delivery']) {
  const rows: Row[] = [await measure('embedded')];
  if (brokers.length > 0) rows.push(await measure('kafka'));
  else process.stderr.write('KAFKA_BROKERS is not set: the Kafka row is left out\n');
  process.stdout.write(`\n${String(changes)} changes, ${values.store}, ${String(partitions)} partitions\n\n`);
  process.stdout.write('| log | delivered/s (relay + consume + commit) | seconds | handler calls | outbox appends/s |\n| --- | ---: | ---: | ---: | ---: |\n');
  for (const r of rows) process.stdout.write(`| ${r.log} | ${fmt(r.deliveryPerSecond)} | ${r.seconds.toFixed(2)} | ${fmt(r.handled)} | ${fmt(r.appendPerSecond)} |\n`);
  const kafka = rows.find((r) => r.log === 'kafka');
  if (kafka !== undefined) judge('relay and delivery through Kafka', kafka.deliveryPerSecond, 10_000, true, ' changes/s');
}

if (values.latency && !values['no-latency']) {
  const results: [string, LatencyResult][] = [];
  for (const stack of values.stacks.split(',') as StackName[]) {
    if (stack === 'postgres+kafka' && brokers.length === 0) {
      process.stderr.write('KAFKA_BROKERS is not set: the postgres+kafka row is left out\n');
      continue;
    }
    results.push([stack, await latencyOn(stack)]);
  }
  process.stdout.write(`\nOutbound latency, write to the simulator, ${values.rate} changes/s for ${values.duration} s (one Tandem process)\n\n`);
  process.stdout.write('| stack | sent | achieved/s | p50 ms | p90 ms | p99 ms | max ms | lost | PATCH p99 ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  for (const [stack, r] of results) {
    process.stdout.write(`| ${stack} | ${String(r.sent)} | ${r.achievedRatePerSecond.toFixed(1)} | ${fmt(r.seen.p50Ms)} | ${fmt(r.seen.p90Ms)} | ${fmt(r.seen.p99Ms)} | ${fmt(r.seen.maxMs)} | ${String(r.seen.lost)} | ${fmt(r.writeCall.p99Ms)} |\n`);
    if (stack === 'postgres+kafka') judge(`outbound p99 at ${values.rate} changes/s on PostgreSQL + Kafka`, r.seen.lost > 0 ? Infinity : r.seen.p99Ms, 500, false, ' ms');
  }
}

/** Worker scaling: the time `count` worker processes take to push a backlog to every connection. */
async function workersOn(count: number): Promise<{ workers: number; changes: number; seconds: number; perSecond: number }> {
  const { dataDir, databaseUrl, drop } = await freshStore('postgres');
  const sim = await startStripeSimulator({ rateLimitPerSecond: 0 });
  const adminKey = `bench_${randomBytes(24).toString('base64url')}`;
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    TANDEM_ADMIN_API_KEY: adminKey,
    DATABASE_URL: databaseUrl ?? '',
    KAFKA_BROKERS: brokers.join(','),
    TANDEM_KAFKA_TOPIC_PREFIX: `bench.${String(Date.now())}.`,
    TANDEM_SYNC_POLL_MS: '60000',
  };
  const children: RunningTandem[] = [];
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const connections = Number(values.connections);
  const customers = Number(values.customers);
  try {
    const api = await startChild({ ...env, TANDEM_ROLES: 'api,relay' }, join(dataDir, 'api.log'));
    children.push(api);
    const client = new TandemApi(api.url, adminKey);
    const keys: string[] = [];
    const ids: string[] = [];
    for (let c = 0; c < connections; c += 1) {
      const key = `sk_test_bench_workers_${String(c)}_${Date.now().toString(36)}`;
      keys.push(key);
      // No worker runs yet: the connection shows active only once one does, so no waitActive here.
      const made = await client.call<{ id: string }>('POST', '/api/v1/connections', { ...stripeConnectionInput(key, sim.url, 10_000, 60_000), name: `bench ${String(c)}` });
      await client.pause(made.id);
      ids.push(made.id);
    }
    for (let i = 0; i < customers; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, customers - i) }, (_, j) => client.createCustomer({ name: `Worker Bench ${String(i + j)}`, email: `wb${String(i + j)}@example.com` })),
      );
    }
    const total = customers * connections;
    const workers = await Promise.all(Array.from({ length: count }, (_, w) => startChild({ ...env, TANDEM_ROLES: 'worker' }, join(dataDir, `worker-${String(w)}.log`))));
    children.push(...workers);
    // The dispatchers mark every customer for every (paused) connection; the leases settle.
    const settleStart = performance.now();
    for (;;) {
      const marks = Number((await db.query<{ n: string }>('select count(*) as n from sync_marks')).rows[0]?.n ?? 0);
      if (marks >= total) break;
      if (performance.now() - settleStart > 300_000) throw new Error(`only ${String(marks)} of ${String(total)} marks after 300 s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    const start = performance.now();
    await Promise.all(ids.map((id) => client.resume(id)));
    const held = () => keys.reduce((n, key) => n + sim.admin.customers(key, { includeDeleted: false }).length, 0);
    // The rate between 10% and 90% done: the workers' steady pace, without the lease round that
    // hands the resumed connections out (up to a third of TANDEM_LEASE_MS) or the last stragglers.
    let t10 = 0;
    let t90 = 0;
    for (;;) {
      const n = held();
      if (t10 === 0 && n >= total * 0.1) t10 = performance.now();
      if (t90 === 0 && n >= total * 0.9) t90 = performance.now();
      if (n >= total) break;
      if (performance.now() - start > 600_000) throw new Error(`only ${String(n)} of ${String(total)} customers in the simulator after 600 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - start) / 1000;
    const spread = (await db.query<{ owner: string | null; n: string }>("select owner, count(*) as n from leases where name like 'connection:%' group by owner")).rows;
    process.stderr.write(`  ${String(count)} worker(s): connection leases ${spread.map((r) => `…${String(r.owner).slice(-6)}=${r.n}`).join(' ')}\n`);
    return { workers: count, changes: total, seconds, perSecond: (total * 0.8) / ((t90 - t10) / 1000) };
  } finally {
    for (const child of children.reverse()) await child.stop();
    await db.end();
    await sim.stop();
    await drop();
  }
}

if (values.workers) {
  if (brokers.length === 0) {
    process.stderr.write('KAFKA_BROKERS is not set: worker scaling needs PostgreSQL + Kafka\n');
  } else {
    const rows = [await workersOn(1), await workersOn(2)];
    process.stdout.write(`\nWorker scaling, PostgreSQL + Kafka: ${values.customers} customers × ${values.connections} Stripe connections (simulator without limit)\n\n`);
    process.stdout.write('| worker processes | changes | seconds in all | changes/s (10% → 90%) | vs one |\n| ---: | ---: | ---: | ---: | ---: |\n');
    const one = rows[0]?.perSecond ?? 1;
    for (const r of rows) process.stdout.write(`| ${String(r.workers)} | ${fmt(r.changes)} | ${r.seconds.toFixed(1)} | ${fmt(r.perSecond)} | ${(r.perSecond / one).toFixed(2)}× |\n`);
    const two = rows[1];
    if (two !== undefined) {
      const ratio = two.perSecond / one;
      verdicts.push({ line: `${ratio >= 1.5 ? '✓' : '✗'} two worker processes vs one: ${ratio.toFixed(2)}× (target ≥ 1.5×)`, met: ratio >= 1.5 });
    }
  }
}

if (verdicts.length > 0) {
  process.stdout.write(`\n${verdicts.map((v) => v.line).join('\n')}\n`);
  if (verdicts.some((v) => !v.met) && !values['no-fail']) process.exitCode = 1;
}
