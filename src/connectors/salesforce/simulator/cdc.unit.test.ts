// Change Data Capture over CometD through jsforce's streaming client (faye, long polling): create /
// update / delete events with changeOrigin from Sforce-Call-Options, per-object channels, replay
// from a stored replay id, and the 72-hour retention.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Connection } from 'jsforce';
import { StreamingExtension } from 'jsforce/lib/api/streaming.js';
import { startSalesforceSimulator, type SalesforceSimulator } from './index.ts';
import { TEST_API_VERSION, connect, manualClock } from './testing.ts';

const clock = manualClock('2026-11-30T12:00:00.000Z');
let sim: SalesforceSimulator;
let conn: Connection;
/** Disconnects of every client made, awaited before the simulator stops (else faye retries for a minute). */
const closers: (() => Promise<void>)[] = [];

/** The parts of faye's client (behind jsforce's streaming API) the tests use; jsforce's typings omit them. */
interface FayeSubscription {
  callback(fn: () => void): void;
  errback(fn: (error: unknown) => void): void;
}
interface FayeClient {
  subscribe(channel: string, onMessage: (message: EventMessage) => void): FayeSubscription;
  disconnect(): PromiseLike<unknown> | undefined;
}

interface Header { entityName: string; recordIds: string[]; changeType: string; changeOrigin: string; changedFields: string[]; transactionKey: string; commitTimestamp: number }
interface EventMessage { payload: { ChangeEventHeader: Header; [field: string]: unknown }; event: { replayId: number } }

before(async () => {
  sim = await startSalesforceSimulator({ clock: clock.now, cometdPollTimeoutMs: 300, sessionTimeoutMs: 10 * 24 * 60 * 60 * 1000 });
  conn = await connect(sim);
});
after(async () => {
  await Promise.all(closers.map((close) => close()));
  await sim.stop();
});

/** Subscribes through jsforce's streaming client; resolves once the subscription is confirmed. */
async function subscribe(channel: string, replayFrom: number): Promise<{ events: EventMessage[]; next: (n: number) => Promise<EventMessage[]>; close: () => Promise<void> }> {
  const client = conn.streaming.createClient([new StreamingExtension.Replay(channel, replayFrom)]) as unknown as FayeClient;
  const close = async (): Promise<void> => {
    const done = client.disconnect();
    if (done !== undefined) await new Promise<void>((resolve) => { done.then(() => { resolve(); }, () => { resolve(); }); });
  };
  closers.push(close);
  const events: EventMessage[] = [];
  const waiters: (() => void)[] = [];
  const subscription = client.subscribe(channel, (message) => {
    events.push(message);
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((resolve, reject) => {
    subscription.callback(() => { resolve(); });
    subscription.errback((error: unknown) => { reject(error instanceof Error ? error : new Error(JSON.stringify(error))); });
  });
  const next = async (n: number): Promise<EventMessage[]> => {
    const deadline = Date.now() + 5000;
    while (events.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} events on ${channel}, got ${events.length}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return events.slice(0, n);
  };
  return { events, next, close };
}

test('create, update, delete reach a /data/ChangeEvents subscriber with header, changed fields and changeOrigin', async () => {
  const all = await subscribe('/data/ChangeEvents', -1);
  const tagged = { 'Sforce-Call-Options': 'client=tandem-conn-7', 'content-type': 'application/json' };
  const created = await conn.request<{ id: string }>({ method: 'POST', url: '/sobjects/Account', body: JSON.stringify({ Name: 'Streamed', Tandem_Id__c: 'cus_cdc1' }), headers: tagged });
  clock.advance(1000);
  await conn.sobject('Account').update({ Id: created.id, Phone: '+1 555' });
  sim.admin.update('Account', created.id, { Website: 'https://ui.example' });
  await conn.sobject('Account').destroy(created.id);
  const [create, update, uiUpdate, del] = await all.next(4);

  assert.equal(create?.payload.ChangeEventHeader.changeType, 'CREATE');
  assert.deepEqual(create.payload.ChangeEventHeader.recordIds, [created.id]);
  assert.equal(create.payload.ChangeEventHeader.entityName, 'Account');
  assert.equal(create.payload.ChangeEventHeader.changeOrigin, `com/salesforce/api/rest/${TEST_API_VERSION};client=tandem-conn-7`);
  assert.equal(create.payload.Name, 'Streamed');
  assert.equal(create.payload.Tandem_Id__c, 'cus_cdc1');
  assert.equal(create.payload.ChangeEventHeader.commitTimestamp, Date.parse('2026-11-30T12:00:00.000Z'));

  assert.equal(update?.payload.ChangeEventHeader.changeType, 'UPDATE');
  assert.equal(update.payload.ChangeEventHeader.changeOrigin, `com/salesforce/api/rest/${TEST_API_VERSION}`);
  assert.deepEqual(update.payload.ChangeEventHeader.changedFields, ['Phone', 'LastModifiedDate']);
  assert.equal(update.payload.Phone, '+1 555');
  assert.equal(update.payload.Name, undefined);

  assert.equal(uiUpdate?.payload.ChangeEventHeader.changeOrigin, ''); // a change made in the UI
  assert.deepEqual(uiUpdate.payload.ChangeEventHeader.changedFields, ['Website']);

  assert.equal(del?.payload.ChangeEventHeader.changeType, 'DELETE');
  assert.ok(create.event.replayId < update.event.replayId && update.event.replayId < del.event.replayId);
  await all.close();
});

test('per-object channels, replay from a stored replay id, -2 for everything retained', async () => {
  const accountOnly = await subscribe('/data/AccountChangeEvent', -1);
  const account = await conn.sobject('Account').create({ Name: 'Parent' });
  const contact = await conn.sobject('Contact').create({ LastName: 'Child', AccountId: account.id });
  const [first] = await accountOnly.next(1);
  assert.equal(first?.payload.ChangeEventHeader.entityName, 'Account');
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(accountOnly.events.length, 1); // the Contact's event is not on this channel
  await accountOnly.close();

  const events = sim.admin.changeEvents();
  const contactEvent = events.find((e) => (e.payload.ChangeEventHeader as Header).recordIds[0] === contact.id);
  assert.ok(contactEvent);
  const stored = contactEvent.replayId - 1;
  const replayed = await subscribe('/data/ChangeEvents', stored);
  const [again] = await replayed.next(1);
  assert.equal(again?.event.replayId, contactEvent.replayId);
  await replayed.close();

  const everything = await subscribe('/data/ChangeEvents', -2);
  const retained = await everything.next(events.length);
  assert.equal(retained[0]?.event.replayId, events[0]?.replayId);
  await everything.close();
});

test('with cdcGapRate, changes come as gap events: GAP_ change types, the header only', async () => {
  const all = await subscribe('/data/ChangeEvents', -1);
  sim.admin.setFaults({ cdcGapRate: 1 });
  const { id = '' } = await conn.sobject('Contact').create({ LastName: 'Gappy', Email: 'gap@example.com' });
  await conn.sobject('Contact').update({ Id: id, Title: 'Lost detail' });
  sim.admin.clearFaults();
  const [created, updated] = await all.next(2);
  assert.equal(created?.payload.ChangeEventHeader.changeType, 'GAP_CREATE');
  assert.deepEqual(created.payload.ChangeEventHeader.recordIds, [id]);
  assert.equal(created.payload.LastName, undefined);
  assert.equal(updated?.payload.ChangeEventHeader.changeType, 'GAP_UPDATE');
  assert.deepEqual(updated.payload.ChangeEventHeader.changedFields, []);
  await all.close();
});

test('events older than 72 hours are gone: replaying from one of them is refused', async () => {
  const old = sim.admin.changeEvents()[0]?.replayId ?? 1;
  clock.advance(73 * 60 * 60 * 1000);
  await conn.sobject('Account').create({ Name: 'Much later' });
  assert.equal(sim.admin.changeEvents().length, 1);
  await assert.rejects(subscribe('/data/ChangeEvents', old), /replayId \{\d+\} you provided was invalid/);
});
