// Tandem as a real process (`node src/main.ts`), the way it is deployed: kill -9 in the middle of a
// burst of writes, restarts, graceful shutdown on SIGTERM/SIGINT, bad configuration, and what the
// logs carry (and never carry: the admin key). Every store-backed test runs on both stacks: SQLite with
// the embedded log, and PostgreSQL with the Kafka log (test/support/stacks.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ADMIN_KEY_FILE } from '../../src/app/tandem.ts';
import type { Store } from '../../src/store/store.ts';
import {
  allOutput,
  freePort,
  killAllTandems,
  runTandemToExit,
  sleep,
  spawnTandem,
  waitUntil,
  type TandemProcess,
} from '../support/process.ts';
import { createTestStack, skipUnlessStack, STACKS } from '../support/stacks.ts';

type Json = Record<string, unknown>;

/** Secrets handed to (or printed by) a child in this file; none may show up where it does not belong. */
const secrets: { value: string; what: string; bannerOnly: boolean }[] = [];

function newAdminKey(): string {
  const key = `tdm_proc_${randomBytes(24).toString('hex')}`;
  secrets.push({ value: key, what: 'an admin key given as TANDEM_ADMIN_API_KEY', bannerOnly: false });
  return key;
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-proc-'));
  tempDirs.push(dir);
  return dir;
}

after(async () => {
  await killAllTandems();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: Json;
  headers: Headers;
}

async function call(
  proc: TandemProcess,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(`${proc.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Json), headers: response.headers };
}

function field(object: Json, name: string): string {
  const value = object[name];
  assert.equal(typeof value, 'string', `${name} in ${JSON.stringify(object).slice(0, 300)}`);
  return value as string;
}

function numberField(object: Json, name: string): number {
  const value = object[name];
  assert.equal(typeof value, 'number', `${name} in ${JSON.stringify(object).slice(0, 300)}`);
  return value as number;
}

// ---------------------------------------------------------------------------------------------
// What the store holds: every record version with exactly its change, and nothing else.

interface Snapshot {
  records: { workspace_id: string; entity_type: string; id: string; version: number; data: string; deleted_at: string | null }[];
  changes: { workspace_id: string; entity_type: string; record_id: string; version: number; partition: number; offset: number; op: string; record: string }[];
  partitions: { partition: number; next_offset: number }[];
}

async function snapshot(store: Store): Promise<Snapshot> {
  const records = await store.db
    .selectFrom('records')
    .select(['workspace_id', 'entity_type', 'id', 'version', 'data', 'deleted_at'])
    .execute();
  const changes = await store.db
    .selectFrom('changes')
    .select(['workspace_id', 'entity_type', 'record_id', 'version', 'partition', 'offset', 'op', 'record'])
    .execute();
  const partitions = await store.db.selectFrom('log_partitions').select(['partition', 'next_offset']).execute();
  // (PostgreSQL's int8 comes back as a number too: the store parses it so.)
  return { records, changes, partitions };
}

const SYSTEM_FIELDS = new Set(['id', 'object', 'version', 'created_at', 'updated_at', 'deleted_at']);

/**
 * For every record row at version v: its changes are exactly versions 1..v (the first a create), and
 * the change at v carries the record as stored. Every change belongs to an existing record at a
 * version it reached. Per partition, offsets are 1..n without gaps and the partition counter says n.
 */
function consistencyProblems(snap: Snapshot): string[] {
  const problems: string[] = [];
  const keyOf = (workspace: string, type: string, id: string) => `${workspace}/${type}/${id}`;
  const changesOf = new Map<string, Snapshot['changes']>();
  for (const change of snap.changes) {
    const key = keyOf(change.workspace_id, change.entity_type, change.record_id);
    const list = changesOf.get(key) ?? [];
    list.push(change);
    changesOf.set(key, list);
  }
  const recordKeys = new Set<string>();
  for (const record of snap.records) {
    const key = keyOf(record.workspace_id, record.entity_type, record.id);
    recordKeys.add(key);
    const list = (changesOf.get(key) ?? []).slice().sort((a, b) => a.version - b.version);
    const versions = list.map((c) => c.version);
    const expected = Array.from({ length: record.version }, (_, i) => i + 1);
    if (JSON.stringify(versions) !== JSON.stringify(expected)) {
      problems.push(`${key} is at version ${record.version} but its changes have versions [${versions.join(',')}]`);
      continue;
    }
    if (list[0]?.op !== 'create') problems.push(`${key}: the change at version 1 is ${list[0]?.op ?? 'missing'}, not create`);
    const latest = list.at(-1);
    if (latest === undefined) continue;
    const carried = JSON.parse(latest.record) as Json;
    const carriedFields = Object.fromEntries(Object.entries(carried).filter(([k]) => !SYSTEM_FIELDS.has(k)));
    if (carried.version !== record.version || carried.id !== record.id || carried.deleted_at !== record.deleted_at) {
      problems.push(`${key}: the change at version ${record.version} carries ${JSON.stringify(carried).slice(0, 200)}`);
    } else if (!isDeepEqual(carriedFields, JSON.parse(record.data))) {
      problems.push(`${key}: the change at version ${record.version} carries other fields than the record row`);
    }
  }
  for (const key of changesOf.keys()) {
    if (!recordKeys.has(key)) problems.push(`changes for ${key}, which has no record row`);
  }
  const offsetsOf = new Map<number, number[]>();
  for (const change of snap.changes) {
    const list = offsetsOf.get(change.partition) ?? [];
    list.push(change.offset);
    offsetsOf.set(change.partition, list);
  }
  const counters = new Map(snap.partitions.map((p) => [p.partition, p.next_offset]));
  for (const partition of new Set([...offsetsOf.keys(), ...counters.keys()])) {
    const offsets = (offsetsOf.get(partition) ?? []).sort((a, b) => a - b);
    const gapless = offsets.every((offset, i) => offset === i + 1);
    if (!gapless) problems.push(`partition ${partition}: offsets are not 1..${offsets.length}: ${offsets.slice(0, 20).join(',')}…`);
    const counter = counters.get(partition) ?? 0;
    if (counter !== offsets.length) problems.push(`partition ${partition}: the counter says ${counter}, ${offsets.length} changes`);
  }
  return problems.slice(0, 30);
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The burst: concurrent clients writing until the child is SIGKILLed after N acknowledged writes.

interface Burst {
  /** Every write answered 2xx: the record and the version the answer showed. */
  acknowledged: { id: string; type: string; version: number; op: 'create' | 'update' }[];
  /** Requests sent but not answered when the kill was sent. */
  inFlightAtKill: number;
  sent: number;
  /** Answers that were neither 2xx nor an expected 409 before the kill. */
  unexpected: string[];
}

/** A small deterministic PRNG, so a failing run can be replayed with the same mix of writes. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function burstUntilKilled(
  proc: TandemProcess,
  key: string,
  options: { clients: number; maxRequests: number; killAfterAcks: number; seed: number },
): Promise<Burst> {
  const random = prng(options.seed);
  const customers: string[] = [];
  const invoices: string[] = [];
  const burst: Burst = { acknowledged: [], inFlightAtKill: 0, sent: 0, unexpected: [] };
  let inFlight = 0;
  let killed = false;
  // Read through a function: the flag changes while a client awaits, which narrowing cannot see.
  const isKilled = () => killed;
  let sequence = 0;

  const pick = (list: string[]): string | undefined => list[Math.floor(random() * list.length)];

  const nextWrite = (): { method: string; path: string; body: Json; type: string; op: 'create' | 'update' } => {
    sequence += 1;
    const roll = random();
    const customer = pick(customers);
    const invoice = pick(invoices);
    if (roll < 0.35 || customer === undefined) {
      return {
        method: 'POST',
        path: '/api/v1/customers',
        type: 'customer',
        op: 'create',
        body: { name: `Customer ${sequence}`, email: `c${sequence}@example.com`, currency: 'eur', metadata: { seq: String(sequence) } },
      };
    }
    if (roll < 0.7) {
      return {
        method: 'PATCH',
        path: `/api/v1/customers/${customer}`,
        type: 'customer',
        op: 'update',
        body: { phone: `+1 555 ${sequence}`, metadata: { seq: String(sequence) } },
      };
    }
    if (roll < 0.9 || invoice === undefined) {
      return {
        method: 'POST',
        path: '/api/v1/invoices',
        type: 'invoice',
        op: 'create',
        body: {
          customer_id: customer,
          currency: 'eur',
          number: `INV-${sequence}`,
          line_items: [{ description: 'Seats', quantity: 1 + (sequence % 5), unit_amount: 1200 }],
        },
      };
    }
    return { method: 'PATCH', path: `/api/v1/invoices/${invoice}`, type: 'invoice', op: 'update', body: { metadata: { seq: String(sequence) } } };
  };

  const client = async (): Promise<void> => {
    while (!isKilled() && burst.sent < options.maxRequests) {
      const write = nextWrite();
      burst.sent += 1;
      inFlight += 1;
      let answer: Answer | undefined;
      try {
        answer = await call(proc, key, write.method, write.path, write.body);
      } catch (error) {
        if (!isKilled()) burst.unexpected.push(`${write.method} ${write.path}: ${String(error)}`);
      } finally {
        inFlight -= 1;
      }
      if (answer === undefined) continue;
      if (answer.status >= 200 && answer.status < 300) {
        // Answers already on their way when the kill was sent are acknowledged too: they are kept.
        const id = field(answer.body, 'id');
        const version = numberField(answer.body, 'version');
        burst.acknowledged.push({ id, type: write.type, version, op: write.op });
        if (write.op === 'create') (write.type === 'customer' ? customers : invoices).push(id);
        if (!isKilled() && burst.acknowledged.length >= options.killAfterAcks) {
          killed = true;
          burst.inFlightAtKill = inFlight;
          proc.kill('SIGKILL');
        }
      } else if (answer.status !== 409 && !isKilled()) {
        burst.unexpected.push(`${write.method} ${write.path}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
      }
    }
  };

  await Promise.all(Array.from({ length: options.clients }, client));
  return burst;
}

// ---------------------------------------------------------------------------------------------

for (const stack of STACKS) {
  const kind = stack.name;
  test(`kill -9 in the middle of a burst of writes loses no acknowledged write and splits no record from its change (${kind})`, { skip: await skipUnlessStack(stack), timeout: stack.log === 'kafka' ? 150_000 : 90_000 }, async (t) => {
    const testStore = await createTestStack(stack);
    t.after(async () => {
      await killAllTandems();
      await testStore.cleanup();
    });
    const key = newAdminKey();
    const env = { ...testStore.env, TANDEM_ADMIN_API_KEY: key, LOG_LEVEL: 'warn' };

    const first = await spawnTandem({ env });
    const started = Date.now();
    const burst = await burstUntilKilled(first, key, { clients: 8, maxRequests: 900, killAfterAcks: 300, seed: 20_24 });
    const exit = await first.waitForExit(10_000);
    assert.equal(exit.signal, 'SIGKILL', first.diagnostics());
    assert.deepEqual(burst.unexpected, [], first.diagnostics());
    assert.ok(burst.acknowledged.length >= 300, 'the burst reached the kill point');
    assert.ok(burst.inFlightAtKill > 0, 'requests were in flight when the process was killed');

    const snap = await snapshot(testStore.store);
    assert.deepEqual(consistencyProblems(snap), []);

    // Every acknowledged write is there, with its change.
    const records = new Map(snap.records.map((r) => [r.id, r]));
    const changes = new Set(snap.changes.map((c) => `${c.record_id}@${c.version}`));
    for (const ack of burst.acknowledged) {
      const record = records.get(ack.id);
      assert.ok(record !== undefined, `acknowledged ${ack.op} of ${ack.id} is missing`);
      assert.equal(record.entity_type, ack.type);
      assert.ok(record.version >= ack.version, `${ack.id} is at ${record.version}, but version ${ack.version} was acknowledged`);
      assert.ok(changes.has(`${ack.id}@${ack.version}`), `the change of acknowledged ${ack.id}@${ack.version} is missing`);
    }
    const committedVersions = snap.records.reduce((sum, r) => sum + r.version, 0);
    assert.equal(snap.changes.length, committedVersions);
    assert.ok(committedVersions >= burst.acknowledged.length);
    t.diagnostic(
      `${kind}: ${burst.sent} writes sent, ${burst.acknowledged.length} acknowledged, ${burst.inFlightAtKill} in flight at the kill ` +
        `(${Date.now() - started}ms); after: ${snap.records.length} records, ${snap.changes.length} changes ` +
        `(${snap.changes.length - burst.acknowledged.length} committed but unacknowledged)`,
    );

    // Restart on the same data: it serves what was committed and carries on from there.
    const second = await spawnTandem({ env });
    const patched = burst.acknowledged.find((a) => a.type === 'customer' && a.op === 'update') ?? burst.acknowledged[0];
    assert.ok(patched !== undefined);
    const row = records.get(patched.id);
    assert.ok(row !== undefined);
    const plural = `${patched.type}s`;
    const got = await call(second, key, 'GET', `/api/v1/${plural}/${patched.id}`);
    assert.equal(got.status, 200, second.diagnostics());
    assert.equal(got.body.version, row.version);
    assert.deepEqual(got.body.metadata, (JSON.parse(row.data) as Json).metadata);
    const updated = await call(second, key, 'PATCH', `/api/v1/${plural}/${patched.id}`, { metadata: { after_restart: 'yes' } }, {
      'if-match': `"${row.version}"`,
    });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.version, row.version + 1, 'the version continues where the crash left it');
    const created = await call(second, key, 'POST', '/api/v1/customers', { name: 'After the crash' });
    assert.equal(created.status, 201);
    assert.equal(created.body.version, 1);

    // What the restarted process lists is what the store holds.
    let listed = 0;
    let cursor: string | null = null;
    do {
      const page: Answer = await call(second, key, 'GET', `/api/v1/customers?limit=100&include_deleted=true${cursor === null ? '' : `&cursor=${cursor}`}`);
      assert.equal(page.status, 200);
      listed += (page.body.data as unknown[]).length;
      cursor = page.body.next_cursor as string | null;
    } while (cursor !== null);
    assert.equal(listed, snap.records.filter((r) => r.entity_type === 'customer').length + 1);

    second.kill('SIGTERM');
    assert.deepEqual(await second.waitForExit(10_000), { code: 0, signal: null }, second.diagnostics());
    const afterRestart = await snapshot(testStore.store);
    assert.deepEqual(consistencyProblems(afterRestart), []);
    assert.equal(afterRestart.changes.length, snap.changes.length + 2);
    assert.equal(
      afterRestart.changes.filter((c) => c.record_id === patched.id && c.version === row.version + 1).length,
      1,
      'the new version has exactly one change',
    );
    for (const proc of [first, second]) assert.ok(!proc.stdout().includes(key) && !proc.stderr().includes(key), 'the admin key was printed');
  });
}

for (const stack of STACKS) {
  const kind = stack.name;
  test(`a restart keeps the data and the admin key created on first start; SIGINT exits 0 (${kind})`, { skip: await skipUnlessStack(stack), timeout: stack.log === 'kafka' ? 90_000 : 60_000 }, async (t) => {
    const testStore = await createTestStack(stack);
    t.after(async () => {
      await killAllTandems();
      await testStore.cleanup();
    });
    const env = { ...testStore.env };

    const first = await spawnTandem({ env });
    const keyFile = join(testStore.env.DATA_DIR, ADMIN_KEY_FILE);
    const key = readFileSync(keyFile, 'utf8').trim();
    secrets.push({ value: key, what: 'the generated admin key', bannerOnly: true });
    assert.match(key, /^\S{32,}$/);
    // The output arrives through a pipe, independently of the /readyz answer: wait for it.
    await waitUntil(() => first.stdout().includes('Tandem is listening'), 5_000, () => first.diagnostics());
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'the key file is readable by its owner only');
    assert.equal(first.stdout().split(key).length - 1, 1, `the key is printed exactly once\n${first.diagnostics()}`);
    const bannerLine = first.stdout().split('\n').find((line) => line.includes(key));
    assert.ok(bannerLine !== undefined && !bannerLine.trimStart().startsWith('{'), 'the key is printed in the banner, not in a log line');
    assert.ok(!first.stderr().includes(key));

    const workspace = await call(first, key, 'GET', '/api/v1/workspace');
    assert.equal(workspace.status, 200, first.diagnostics());
    const created = await call(first, key, 'POST', '/api/v1/customers', { name: 'Ada', email: 'ada@example.com' });
    assert.equal(created.status, 201);
    const id = field(created.body, 'id');
    const patched = await call(first, key, 'PATCH', `/api/v1/customers/${id}`, { phone: '+44 20 7946 0000' });
    assert.equal(patched.body.version, 2);

    first.kill('SIGTERM');
    assert.deepEqual(await first.waitForExit(10_000), { code: 0, signal: null }, first.diagnostics());

    const second = await spawnTandem({ env });
    await waitUntil(() => second.stdout().includes('Tandem is listening'), 5_000, () => second.diagnostics());
    assert.ok(!second.stdout().includes(key), 'a restart does not print the key again');
    assert.ok(!/admin API key/i.test(second.stdout()), `a restart prints no new key\n${second.diagnostics()}`);
    assert.equal(readFileSync(keyFile, 'utf8').trim(), key, 'the key file is unchanged');
    const again = await call(second, key, 'GET', `/api/v1/customers/${id}`);
    assert.equal(again.status, 200, 'the old key still works');
    assert.deepEqual(again.body, patched.body, 'the data survived the restart');
    assert.equal((await call(second, key, 'GET', '/api/v1/workspace')).body.id, workspace.body.id);
    const next = await call(second, key, 'PATCH', `/api/v1/customers/${id}`, { company: 'Analytical Engines' });
    assert.equal(next.body.version, 3);
    assert.equal((await call(second, `${key}x`, 'GET', '/api/v1/workspace')).status, 401);

    // SIGINT (Ctrl-C) stops it as gracefully as SIGTERM.
    second.kill('SIGINT');
    assert.deepEqual(await second.waitForExit(10_000), { code: 0, signal: null }, second.diagnostics());
    assert.ok(second.stdout().includes('"signal":"SIGINT"') && second.stdout().includes('Tandem stopped'), second.diagnostics());
    assert.deepEqual(consistencyProblems(await snapshot(testStore.store)), []);
  });
}

/** A POST whose body is sent in two parts: the request is in flight until `finish()`. */
function slowCreate(url: string, key: string, agent: http.Agent, name: string) {
  const body = JSON.stringify({ name });
  const request = http.request(`${url}/api/v1/customers`, {
    method: 'POST',
    agent,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    request.once('response', (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.once('end', () => {
        resolve({ status: response.statusCode ?? 0, body: text });
      });
      response.once('error', reject);
    });
    request.once('error', reject);
  });
  request.write(body.slice(0, 7));
  return {
    answer,
    finish: () => {
      request.end(body.slice(7));
    },
  };
}

for (const stack of STACKS) {
  const kind = stack.name;
  test(`SIGTERM lets the requests in flight finish, then exits 0 (${kind})`, { skip: await skipUnlessStack(stack), timeout: 60_000 }, async (t) => {
    const testStore = await createTestStack(stack);
    // Like a proxy in front of Tandem: connections are kept alive long after their last answer.
    const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 60_000, timeout: 60_000 });
    const idleAgent = new http.Agent({ keepAlive: true, keepAliveMsecs: 60_000, timeout: 60_000 });
    t.after(async () => {
      agent.destroy();
      idleAgent.destroy();
      await killAllTandems();
      await testStore.cleanup();
    });
    const key = newAdminKey();
    // trace: the most verbose logs, so the file-wide check below sees whatever could leak the key.
    const env = { ...testStore.env, TANDEM_ADMIN_API_KEY: key, LOG_LEVEL: 'trace', TANDEM_SHUTDOWN_TIMEOUT_MS: '8000' };
    const proc = await spawnTandem({ env });
    // A kept-alive connection that is idle when the signal comes must not hold the shutdown either.
    const warm = await new Promise<number>((resolve, reject) => {
      http.get(`${proc.url}/healthz`, { agent: idleAgent }, (response) => {
        response.resume();
        response.once('end', () => {
          resolve(response.statusCode ?? 0);
        });
      }).once('error', reject);
    });
    assert.equal(warm, 200);

    const slow = Array.from({ length: 4 }, (_, i) => slowCreate(proc.url, key, agent, `Slow ${i}`));
    const incoming = () =>
      proc.logLines().filter((l) => l.msg === 'incoming request' && JSON.stringify(l.req).includes('"POST"')).length;
    await waitUntil(() => incoming() >= 4, 10_000, () => `the server never saw the 4 slow requests\n${proc.diagnostics()}`);

    const signalled = Date.now();
    proc.kill('SIGTERM');
    // The log line itself: a 503 answered to a readiness probe during start-up says "starting or shutting down" too.
    await waitUntil(() => proc.logLines().some((l) => l.msg === 'shutting down'), 5_000, () => proc.diagnostics());
    const readyz = await fetch(`${proc.url}/readyz`, { signal: AbortSignal.timeout(3_000) }).then(
      (r) => r.status,
      () => 'refused',
    );
    assert.notEqual(readyz, 200, '/readyz must stop answering ready once shutdown began');
    await sleep(300);
    assert.equal(proc.exit(), undefined, 'Tandem must wait for the requests in flight');

    for (const request of slow) request.finish();
    const answers = await Promise.all(slow.map((s) => s.answer));
    for (const answer of answers) assert.equal(answer.status, 201, answer.body);
    const exit = await proc.waitForExit(5_000);
    assert.deepEqual(exit, { code: 0, signal: null }, proc.diagnostics());
    const took = Date.now() - signalled;
    assert.ok(took < 5_000, `the shutdown took ${took}ms (the timeout is 8000ms)`);
    assert.ok(proc.stdout().includes('Tandem stopped'));
    t.diagnostic(`${kind}: SIGTERM to exit with 4 requests in flight: ${took}ms; readyz during shutdown: ${readyz}`);

    // The answered creates are committed, each with its change.
    const snap = await snapshot(testStore.store);
    assert.deepEqual(consistencyProblems(snap), []);
    const ids = answers.map((a) => field(JSON.parse(a.body) as Json, 'id'));
    for (const id of ids) assert.ok(snap.records.some((r) => r.id === id), `${id} answered 201 but is not stored`);
  });
}

test('bad configuration stops Tandem with a non-zero exit naming the variable, without echoing secrets', { timeout: 60_000 }, async () => {
  const dataDir = tempDir();
  const port = String(await freePort());
  const shortKey = `sh0rt-${randomBytes(6).toString('hex')}`;
  secrets.push({ value: shortKey, what: 'a too-short TANDEM_ADMIN_API_KEY', bannerOnly: false });
  const cases: { env: Record<string, string>; names: string }[] = [
    { env: { PORT: 'abc' }, names: 'PORT' },
    { env: { DATABASE_URL: 'mysql://x' }, names: 'DATABASE_URL' },
    { env: { LOG_LEVEL: 'loud' }, names: 'LOG_LEVEL' },
    { env: { TANDEM_ADMIN_API_KEY: shortKey }, names: 'TANDEM_ADMIN_API_KEY' },
  ];
  const results = await Promise.all(
    cases.map((c) => runTandemToExit({ env: { DATA_DIR: dataDir, PORT: port, ...c.env }, timeoutMs: 20_000 })),
  );
  for (const [i, result] of results.entries()) {
    const { env, names } = cases[i] ?? { env: {}, names: '' };
    const shown = `${JSON.stringify(env)} → ${JSON.stringify(result)}`;
    assert.equal(result.signal, null, shown);
    assert.ok(result.code !== null && result.code !== 0, shown);
    assert.ok(result.stderr.includes(names), shown);
    assert.ok(!result.stdout.includes(shortKey) && !result.stderr.includes(shortKey), `the key was echoed: ${shown}`);
  }
  assert.deepEqual(readdirSync(dataDir), [], 'nothing was written before the configuration was checked');
});

test('a port in use or an unreachable database makes Tandem exit non-zero instead of hanging', { timeout: 60_000 }, async (t) => {
  const blocker = createServer();
  const port = await new Promise<number>((resolve) => {
    blocker.listen(0, '127.0.0.1', () => {
      const address = blocker.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
  t.after(() => {
    blocker.close();
  });
  const deadPort = await freePort();
  const password = `pw-${randomBytes(8).toString('hex')}`;
  secrets.push({ value: password, what: 'a database password', bannerOnly: false });
  const [inUse, noDatabase] = await Promise.all([
    runTandemToExit({ env: { DATA_DIR: tempDir(), PORT: String(port), TANDEM_ADMIN_API_KEY: newAdminKey() }, timeoutMs: 20_000 }),
    runTandemToExit({
      env: { DATA_DIR: tempDir(), PORT: String(await freePort()), DATABASE_URL: `postgres://tandem:${password}@127.0.0.1:${deadPort}/tandem` },
      timeoutMs: 30_000,
    }),
  ]);
  assert.ok(inUse.code !== null && inUse.code !== 0, JSON.stringify(inUse));
  assert.match(inUse.stdout + inUse.stderr, /EADDRINUSE/);
  assert.ok(noDatabase.code !== null && noDatabase.code !== 0, JSON.stringify(noDatabase));
  assert.ok(!(noDatabase.stdout + noDatabase.stderr).includes(password), 'the database password was logged');
});

for (const stack of STACKS) {
  const kind = stack.name;
  test(`logs carry the request id, the workspace and the correlation id, and never an API key (${kind})`, { skip: await skipUnlessStack(stack), timeout: 60_000 }, async (t) => {
    const testStore = await createTestStack(stack);
    t.after(async () => {
      await killAllTandems();
      await testStore.cleanup();
    });
    // A fresh store with TANDEM_ADMIN_API_KEY: that key is the admin key, and it is never printed.
    const key = newAdminKey();
    const proc = await spawnTandem({ env: { ...testStore.env, TANDEM_ADMIN_API_KEY: key, LOG_LEVEL: 'info' } });
    const workspace = await call(proc, key, 'GET', '/api/v1/workspace');
    assert.equal(workspace.status, 200, proc.diagnostics());
    const workspaceId = field(workspace.body, 'id');
    assert.equal(readFileSync(join(testStore.env.DATA_DIR, ADMIN_KEY_FILE), 'utf8').trim(), key);

    const created = await call(proc, key, 'POST', '/api/v1/customers', { name: 'Correlated' }, { 'x-correlation-id': 'corr-123' });
    assert.equal(created.status, 201);
    const requestId = created.headers.get('x-request-id') ?? '';
    assert.match(requestId, /^req_/);
    assert.equal(created.headers.get('x-correlation-id'), 'corr-123');

    const wrongKey = `tdm_wrong_${randomBytes(16).toString('hex')}`;
    secrets.push({ value: wrongKey, what: 'a wrong key sent as a bearer token', bannerOnly: false });
    const refused = await call(proc, wrongKey, 'GET', '/api/v1/customers', undefined, { 'x-correlation-id': 'corr-401' });
    assert.equal(refused.status, 401);
    const refusedId = refused.headers.get('x-request-id') ?? '';
    // The admin key in a header Tandem does not read must not be logged either.
    assert.equal((await call(proc, key, 'GET', '/api/v1/workspace', undefined, { 'x-api-key': key })).status, 200);

    const linesOf = (id: string) => proc.logLines().filter((l) => l.reqId === id);
    await waitUntil(
      () => [requestId, refusedId].every((id) => linesOf(id).some((l) => l.msg === 'request completed')),
      5_000,
      () => proc.diagnostics(),
    );
    const lines = linesOf(requestId);
    assert.ok(lines.length >= 2, JSON.stringify(lines));
    for (const line of lines) assert.equal(line.level !== undefined && typeof line.time === 'number', true);

    // The change the request made carries the correlation id.
    const change = await testStore.store.db
      .selectFrom('changes')
      .select(['correlation_id'])
      .where('record_id', '=', field(created.body, 'id'))
      .executeTakeFirstOrThrow();
    assert.equal(change.correlation_id, 'corr-123');

    // The refused request is logged with its correlation id, but neither key appears anywhere.
    assert.ok(linesOf(refusedId).some((l) => l.correlationId === 'corr-401'), JSON.stringify(linesOf(refusedId)));
    for (const secret of [key, wrongKey]) {
      assert.ok(!proc.stdout().includes(secret) && !proc.stderr().includes(secret), `a key was logged\n${proc.diagnostics()}`);
    }
    t.diagnostic(`${kind}: log lines of the correlated request: ${JSON.stringify(lines)}`);

    // Fastify writes "request completed" with reply.log: the hooks rebind it with request.log.
    await t.test('the completion line carries the workspace and the correlation id', () => {
      const completed = lines.find((l) => l.msg === 'request completed');
      assert.ok(completed !== undefined);
      assert.equal(completed.correlationId, 'corr-123', `the completion line lacks the correlation id: ${JSON.stringify(completed)}`);
      assert.equal(completed.workspaceId, workspaceId, `the completion line lacks the workspace: ${JSON.stringify(completed)}`);
    });
  });
}

test('no API key, wrong key or password given to a child shows up in its output', () => {
  const output = allOutput();
  assert.ok(secrets.length > 0);
  for (const secret of secrets) {
    if (!secret.bannerOnly) {
      assert.ok(!output.includes(secret.value), `${secret.what} appears in a child's output`);
      continue;
    }
    // The generated key is printed once, in the first-start banner: never in a log line.
    const inLogLines = output.split('\n').filter((line) => line.includes(secret.value) && line.trimStart().startsWith('{'));
    assert.deepEqual(inLogLines, [], `${secret.what} appears in a log line`);
  }
});
