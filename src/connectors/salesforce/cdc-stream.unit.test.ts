// streamChanges against the in-process Salesforce simulator: Change Data Capture over jsforce's
// streaming client turned into customer notifications (Accounts, and Contacts as their Account),
// own writes dropped but the cursor advanced, resume from a cursor, an expired cursor, session
// expiry mid-stream, gap events, a slow consumer, abort, and an unreachable or closing server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Connection, OAuth2 } from 'jsforce';
import { ConnectorError, type ExternalNotification, type StreamBatch } from '../connector.ts';
import { streamChanges, type StreamChangesOptions } from './cdc-stream.ts';
import { DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, startSalesforceSimulator, type SalesforceSimulator } from './simulator/index.ts';
import { TEST_API_VERSION, manualClock } from './simulator/testing.ts';

const OWN = 'tandem-test';
const POLL_MS = 1000;
let sim: SalesforceSimulator;
/** Tandem's connection: its writes carry `Sforce-Call-Options: client=tandem-test`. */
let own: Connection;
/** Another integration writing through the API. */
let other: Connection;

async function connectAs(target: SalesforceSimulator, client: string): Promise<Connection> {
  const oauth2 = new OAuth2({ loginUrl: target.url, clientId: DEFAULT_CLIENT_ID, clientSecret: DEFAULT_CLIENT_SECRET });
  const conn = new Connection({ oauth2, loginUrl: target.url, version: TEST_API_VERSION, callOptions: { client } });
  await conn.authorize({ grant_type: 'client_credentials' });
  return conn;
}

before(async () => {
  sim = await startSalesforceSimulator({ cometdPollTimeoutMs: POLL_MS });
  own = await connectAs(sim, OWN);
  other = await connectAs(sim, 'someone-else');
});
after(async () => {
  await sim.stop();
});

/** Creates a record through the API and answers its id. */
async function apiCreate(conn: Connection, sobject: 'Account' | 'Contact', fields: Record<string, unknown>): Promise<string> {
  const result = await conn.sobject(sobject).create(fields);
  assert.ok(result.success, JSON.stringify(result));
  return result.id;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What `promise` settles to, or 'still running' after `ms` (the timer is cleared either way). */
async function within(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise((resolve) => { timer = setTimeout(() => { resolve('still running'); }, ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits (bounded) until `check` holds. */
async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The replay id of the newest retained event, as a cursor (a seed event is made when there is none). */
function latestCursor(target: SalesforceSimulator = sim): string {
  if (target.admin.changeEvents().length === 0) target.admin.create('Account', { Name: 'Seed' });
  return String(target.admin.changeEvents().at(-1)?.replayId);
}

interface Running {
  batches: StreamBatch[];
  notifications: () => ExternalNotification[];
  /** Settles like streamChanges (never rejects: holds the error). */
  done: Promise<unknown>;
  stop: () => Promise<void>;
  reauthorizations: () => number;
}

function start(options: Partial<StreamChangesOptions> & { connection?: Connection; slowMs?: number } = {}): Running {
  const controller = new AbortController();
  const batches: StreamBatch[] = [];
  let reauthorizations = 0;
  const connection = options.connection ?? own;
  const done = streamChanges({
    connection,
    reauthorize: options.reauthorize ?? (async () => {
      reauthorizations += 1;
      await connection.authorize({ grant_type: 'client_credentials' });
    }),
    ownClient: OWN,
    entityType: 'customer',
    cursor: options.cursor,
    batchWindowMs: options.batchWindowMs ?? 10,
    ...(options.unreachableMs === undefined ? {} : { unreachableMs: options.unreachableMs }),
    signal: options.signal ?? controller.signal,
    onBatch: options.onBatch ?? (async (batch) => {
      batches.push(batch);
      if (options.slowMs !== undefined) await sleep(options.slowMs);
    }),
  }).then(() => undefined, (error: unknown) => error);
  return {
    batches,
    notifications: () => batches.flatMap((b) => b.notifications),
    done,
    reauthorizations: () => reauthorizations,
    stop: async () => {
      controller.abort();
      const outcome = await done;
      assert.equal(outcome, undefined, `the stream ended with ${String(outcome)}`);
    },
  };
}

/** `op externalId` of each notification, for compact assertions. */
const ops = (notifications: ExternalNotification[]): string[] => notifications.map((n) => `${n.op} ${n.externalId}`);

function lastCursor(running: Running): string | undefined {
  return running.batches.at(-1)?.cursor;
}

test('UI and other-client writes arrive as customer notifications: op, Account id, Contacts as their Account', async () => {
  const stream = start({ cursor: latestCursor() });
  const doomed = sim.admin.create('Account', { Name: 'Doomed' }).Id as string;
  const acme = sim.admin.create('Account', { Name: 'Acme' }).Id as string; // UI create
  await other.sobject('Account').update({ Id: acme, Phone: '+1 555 0100' }); // API update
  const contact = await apiCreate(other, 'Contact', { LastName: 'Lovelace', AccountId: acme }); // carries AccountId
  sim.admin.update('Contact', contact, { Title: 'CTO' }); // no AccountId in the event: the cache knows it
  await other.sobject('Contact').create({ LastName: 'Loner' }); // no Account: ignored
  sim.admin.delete('Account', doomed);
  const expected = [`create ${doomed}`, `create ${acme}`, `update ${acme}`, `update ${acme}`, `update ${acme}`, `delete ${doomed}`];
  await until('six notifications', () => stream.notifications().length >= expected.length);
  await until('the cursor at the last event', () => lastCursor(stream) === String(sim.admin.changeEvents().at(-1)?.replayId));
  await stream.stop();

  const notifications = stream.notifications();
  assert.deepEqual(ops(notifications), expected);
  for (const n of notifications) {
    assert.equal(n.entityType, 'customer');
    assert.match(n.eventId, /^cdc:\d+:\w{18}$/);
    assert.ok(!Number.isNaN(Date.parse(n.occurredAt)) && n.occurredAt.endsWith('Z'), n.occurredAt);
    assert.equal(n.object, undefined);
  }
  assert.equal(new Set(notifications.map((n) => n.eventId)).size, notifications.length);
  // Each batch's cursor is its last replay id, increasing; the lonely Contact's event advanced it too.
  const cursors = stream.batches.map((b) => Number(b.cursor));
  assert.deepEqual(cursors, [...cursors].sort((a, b) => a - b));
  assert.equal(new Set(cursors).size, cursors.length);
});

test('with no cursor only changes made from now on arrive', async () => {
  sim.admin.create('Account', { Name: 'Before the stream' });
  const stream = start({ cursor: undefined });
  // Subscribed once a probe comes through (the subscription's moment is not observable otherwise).
  const probes: string[] = [];
  await until('a probe through the new subscription', () => {
    if (stream.notifications().length > 0) return true;
    probes.push(sim.admin.create('Account', { Name: 'Probe' }).Id as string);
    return false;
  });
  await stream.stop();
  assert.ok(stream.notifications().every((n) => probes.includes(n.externalId)), 'only probes, nothing from before');
});

test("our own writes are dropped but advance the cursor; another client's are not", async () => {
  const stream = start({ cursor: latestCursor() });
  const mine = await apiCreate(own, 'Account', { Name: 'Made by Tandem' });
  const mineReplay = sim.admin.changeEvents().at(-1)?.replayId;
  await until('an empty batch for our own write', () => lastCursor(stream) === String(mineReplay));
  assert.deepEqual(stream.notifications(), []);
  await own.sobject('Contact').create({ LastName: 'Ours', AccountId: mine }); // own Contact: dropped as well
  await other.sobject('Account').update({ Id: mine, Website: 'https://other.example' });
  await until('the other client’s update', () => stream.notifications().length === 1);
  await sleep(100);
  await stream.stop();
  assert.deepEqual(ops(stream.notifications()), [`update ${mine}`]);
  assert.equal(lastCursor(stream), String(sim.admin.changeEvents().at(-1)?.replayId));
});

test('resuming from a stored cursor delivers only later events, none twice', async () => {
  const first = start({ cursor: latestCursor() });
  const a = sim.admin.create('Account', { Name: 'A' }).Id as string;
  const b = sim.admin.create('Account', { Name: 'B' }).Id as string;
  await until('two notifications', () => first.notifications().length === 2);
  await first.stop();
  const stored = lastCursor(first);
  assert.ok(stored !== undefined);

  sim.admin.update('Account', a, { Phone: '1' }); // while nobody listens
  const c = sim.admin.create('Account', { Name: 'C' }).Id as string;
  const second = start({ cursor: stored });
  await until('the two missed events', () => second.notifications().length >= 2);
  sim.admin.update('Account', b, { Phone: '2' });
  await until('a live one after them', () => second.notifications().length >= 3);
  await sleep(100);
  await second.stop();
  assert.deepEqual(ops(second.notifications()), [`update ${a}`, `create ${c}`, `update ${b}`]);
  const firstIds = new Set(first.notifications().map((n) => n.eventId));
  assert.ok(second.notifications().every((n) => !firstIds.has(n.eventId)));
});

test('a replay id Salesforce no longer keeps rejects with fatal CURSOR_EXPIRED', async () => {
  const clock = manualClock();
  const old = await startSalesforceSimulator({ clock: clock.now, cometdPollTimeoutMs: POLL_MS, sessionTimeoutMs: 10 * 24 * 60 * 60 * 1000 });
  try {
    const conn = await connectAs(old, OWN);
    const stale = latestCursor(old);
    old.admin.create('Account', { Name: 'Next' }); // so that events after the stale one are gone too
    clock.advance(73 * 60 * 60 * 1000); // past the 72-hour retention
    old.admin.create('Account', { Name: 'Much later' });
    const started = Date.now();
    const stream = start({ connection: conn, cursor: stale });
    const outcome = await within(stream.done, 5000);
    assert.ok(outcome instanceof ConnectorError, String(outcome));
    assert.ok(Date.now() - started < POLL_MS, 'refused at subscribe, not after a held poll');
    assert.equal(outcome.kind, 'fatal');
    assert.equal(outcome.externalCode, 'CURSOR_EXPIRED');
    await until('the client gone', () => old.admin.cometdClients() === 0, 3000);
    // A cursor the org never issued is refused the same way.
    const future = start({ connection: conn, cursor: '999999' });
    const refused = await within(future.done, 5000);
    assert.ok(refused instanceof ConnectorError && refused.externalCode === 'CURSOR_EXPIRED', String(refused));
  } finally {
    await old.stop();
  }
});

test('session expiry mid-stream: re-authorized once, re-subscribed, no event lost or repeated', async () => {
  const stream = start({ cursor: latestCursor() });
  const acme = sim.admin.create('Account', { Name: 'Before expiry' }).Id as string;
  await until('the first event', () => stream.notifications().length === 1);
  sim.admin.expireSessions();
  const during: string[] = [];
  for (let i = 0; i < 5; i += 1) {
    during.push(sim.admin.create('Account', { Name: `During ${i}` }).Id as string);
    await sleep(POLL_MS / 4); // spread over the held poll, its failure and the re-subscription
  }
  await until('every event', () => stream.notifications().length >= 6, 10_000);
  sim.admin.update('Account', acme, { Phone: 'after' });
  try {
    await until('one after re-subscribing', () => stream.notifications().length >= 7, 5000);
    await sleep(100);
    await stream.stop();
    assert.deepEqual(ops(stream.notifications()), [`create ${acme}`, ...during.map((id) => `create ${id}`), `update ${acme}`]);
    assert.equal(stream.reauthorizations(), 1);
  } finally {
    await other.authorize({ grant_type: 'client_credentials' }); // its session ended too
  }
});

test('a handshake refused even after re-authorizing rejects with kind auth (no token in the error)', async () => {
  const conn = await connectAs(sim, OWN);
  let calls = 0;
  const before = sim.admin.cometdClients();
  const stream = start({ connection: conn, cursor: latestCursor(), reauthorize: () => { calls += 1; return Promise.resolve(); } });
  sim.admin.create('Account', { Name: 'Seen' });
  await until('the first event', () => stream.notifications().length === 1);
  sim.admin.expireSessions();
  try {
    const outcome = await within(stream.done, 8000);
    assert.ok(outcome instanceof ConnectorError, String(outcome));
    assert.equal(outcome.kind, 'auth');
    assert.equal(calls, 1);
    assert.ok(!outcome.message.includes(conn.accessToken ?? '(none)'));
    await until('the client gone', () => sim.admin.cometdClients() === before, 3000);
  } finally {
    await own.authorize({ grant_type: 'client_credentials' });
    await other.authorize({ grant_type: 'client_credentials' });
  }
});

test('a Contact moved to another Account changes both; an own move keeps the Contact→Account cache right', async () => {
  const from = await apiCreate(other, 'Account', { Name: 'From' });
  const to = await apiCreate(other, 'Account', { Name: 'To' });
  const third = await apiCreate(other, 'Account', { Name: 'Third' });
  const contact = await apiCreate(other, 'Contact', { LastName: 'Mover', AccountId: from });
  const stream = start({ cursor: latestCursor() });
  sim.admin.update('Contact', contact, { Title: 'Known' }); // no AccountId: looked up (the stream is new), then cached
  await until('the first notification', () => stream.notifications().length === 1);
  await other.sobject('Contact').update({ Id: contact, AccountId: to }); // both Accounts
  await own.sobject('Contact').update({ Id: contact, AccountId: third }); // ours: dropped, but remembered
  sim.admin.update('Contact', contact, { Title: 'Moved twice' }); // no AccountId: the cache says third
  await until('four notifications', () => stream.notifications().length >= 4);
  await sleep(100);
  await stream.stop();
  assert.deepEqual(ops(stream.notifications()), [`update ${from}`, `update ${to}`, `update ${from}`, `update ${third}`]);
});

test('gap events (header only) become notifications; a gap on a Contact is looked up', async () => {
  const account = await apiCreate(other, 'Account', { Name: 'Gappy' });
  const contact = await apiCreate(other, 'Contact', { LastName: 'Gap', AccountId: account });
  const stream = start({ cursor: latestCursor() });
  sim.admin.setFaults({ cdcGapRate: 1 });
  try {
    const created = await apiCreate(other, 'Account', { Name: 'Gap created' });
    await other.sobject('Account').update({ Id: account, Phone: '9' });
    await other.sobject('Contact').update({ Id: contact, Title: 'Gap title' });
    await other.sobject('Account').destroy(created);
    const types = sim.admin.changeEvents().slice(-4).map((e) => (e.payload.ChangeEventHeader as { changeType: string }).changeType);
    assert.deepEqual(types, ['GAP_CREATE', 'GAP_UPDATE', 'GAP_UPDATE', 'GAP_DELETE']);
    await until('four notifications', () => stream.notifications().length >= 4);
    await stream.stop();
    assert.deepEqual(ops(stream.notifications()), [`create ${created}`, `update ${account}`, `update ${account}`, `delete ${created}`]);
  } finally {
    sim.admin.clearFaults();
  }
});

test('a slow onBatch: batches one at a time, in order, nothing lost', async () => {
  let inFlight = 0;
  let overlapped = false;
  const batches: StreamBatch[] = [];
  const stream = start({
    cursor: latestCursor(),
    onBatch: async (batch) => {
      inFlight += 1;
      if (inFlight > 1) overlapped = true;
      batches.push(batch);
      await sleep(150);
      inFlight -= 1;
    },
  });
  const id = sim.admin.create('Account', { Name: 'Busy' }).Id as string;
  for (let i = 0; i < 30; i += 1) {
    sim.admin.update('Account', id, { Phone: String(i) });
    if (i % 5 === 0) await sleep(40);
  }
  const last = String(sim.admin.changeEvents().at(-1)?.replayId);
  await until('the last event delivered', () => batches.at(-1)?.cursor === last, 10_000);
  await stream.stop();
  const notifications = batches.flatMap((b) => b.notifications);
  assert.equal(notifications.length, 31);
  const replays = notifications.map((n) => Number(n.eventId.split(':')[1]));
  assert.deepEqual(replays, [...replays].sort((a, b) => a - b));
  assert.equal(new Set(replays).size, 31);
  assert.ok(batches.length < 31, `events queued during a slow batch go together (${batches.length} batches)`);
  assert.equal(overlapped, false);
});

test('abort resolves promptly, disconnects the CometD client, and delivers nothing more', async () => {
  const before = sim.admin.cometdClients();
  const stream = start({ cursor: latestCursor() });
  sim.admin.create('Account', { Name: 'Probe' });
  await until('subscribed', () => stream.notifications().length === 1);
  assert.equal(sim.admin.cometdClients(), before + 1);
  const started = Date.now();
  await stream.stop();
  assert.ok(Date.now() - started < 1000, `abort took ${Date.now() - started} ms`);
  assert.equal(sim.admin.cometdClients(), before);
  sim.admin.create('Account', { Name: 'After' });
  await sleep(200);
  assert.equal(stream.notifications().length, 1);

  const controller = new AbortController();
  controller.abort();
  await streamChanges({ connection: own, reauthorize: () => Promise.resolve(), ownClient: OWN, entityType: 'customer', cursor: undefined, onBatch: () => Promise.resolve(), signal: controller.signal });
  assert.equal(sim.admin.cometdClients(), before);
});

test('deleted Contacts map to their Accounts through one queryAll for the batch', async () => {
  const first = await apiCreate(other, 'Account', { Name: 'First' });
  const second = await apiCreate(other, 'Account', { Name: 'Second' });
  const one = await apiCreate(other, 'Contact', { LastName: 'One', AccountId: first });
  const two = await apiCreate(other, 'Contact', { LastName: 'Two', AccountId: second });
  const queries = (): number => Object.entries(sim.admin.requests().byRoute).filter(([route]) => route.includes('query')).reduce((sum, [, n]) => sum + n, 0);
  const stream = start({ cursor: latestCursor(), batchWindowMs: 50 }); // a fresh stream: it knows neither Contact
  await sleep(POLL_MS / 2);
  const queriesBefore = queries();
  const deleted = await other.sobject('Contact').destroy([one, two]); // one collections call, two events
  assert.ok(deleted.every((r) => r.success));
  await until('two notifications', () => stream.notifications().length >= 2);
  await sleep(100);
  await stream.stop();
  assert.deepEqual(ops(stream.notifications()).sort(), [`update ${first}`, `update ${second}`].sort());
  assert.equal(stream.batches.length, 1);
  assert.equal(queries() - queriesBefore, 1);
});

test('an unreachable server rejects with kind retry; so does a server that closes the stream', async () => {
  const gone = await startSalesforceSimulator({ cometdPollTimeoutMs: POLL_MS });
  const conn = await connectAs(gone, OWN);
  const closing = start({ connection: conn, cursor: latestCursor(gone) });
  gone.admin.create('Account', { Name: 'Probe' });
  await until('subscribed', () => closing.notifications().length === 1);
  await gone.stop(); // held polls are answered "reconnect: none"
  const closed = await within(closing.done, 5000);
  assert.ok(closed instanceof ConnectorError && closed.kind === 'retry', String(closed));

  // The simulator is gone: nothing listens there now.
  const started = Date.now();
  const unreachable = start({ connection: conn, cursor: undefined, unreachableMs: 300 });
  const outcome = await within(unreachable.done, 5000);
  assert.ok(outcome instanceof ConnectorError && outcome.kind === 'retry', String(outcome));
  assert.ok(Date.now() - started < 3000);
});
