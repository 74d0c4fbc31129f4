// sObject Collections and the replication resources through jsforce: create / update / upsert /
// delete up to 200 records a call, allOrNone rollback, per-record errors; `updated` and `deleted`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Connection } from 'jsforce';
import { startSalesforceSimulator, type SalesforceSimulator } from './index.ts';
import { TEST_API_VERSION, connect, manualClock, rejection } from './testing.ts';

const clock = manualClock('2026-11-30T08:00:00.000Z');
let sim: SalesforceSimulator;
let conn: Connection;

before(async () => {
  sim = await startSalesforceSimulator({ clock: clock.now, sessionTimeoutMs: 40 * 24 * 60 * 60 * 1000 });
  conn = await connect(sim);
});
after(async () => {
  await sim.stop();
});

interface SaveResult { id?: string; success: boolean; errors: { statusCode?: string; message: string; fields?: string[] }[]; created?: boolean }

describe('sObject Collections', () => {
  test('create 200 records in one call, results in order; each failure is reported in its place', async () => {
    const before = sim.admin.requests().byRoute['POST composite/sobjects'] ?? 0;
    const records = Array.from({ length: 200 }, (_, i) => ({ Name: `Coll ${i}`, Tandem_Id__c: `cus_coll${i}` }));
    const results = (await conn.sobject('Account').create(records)) as SaveResult[];
    assert.equal(results.length, 200);
    assert.ok(results.every((r) => r.success && r.errors.length === 0));
    assert.equal(sim.admin.requests().byRoute['POST composite/sobjects'], before + 1);
    assert.equal(sim.admin.records('Account').find((r) => r.Id === results[7]?.id)?.Name, 'Coll 7');

    const mixed = (await conn.sobject('Contact').create([{ LastName: 'Ok' }, { FirstName: 'NoLastName' }, { LastName: 'Ok too', Email: 'bad' }])) as SaveResult[];
    assert.equal(mixed[0]?.success, true);
    assert.deepEqual(mixed[1], { success: false, errors: [{ statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [LastName]', fields: ['LastName'] }] });
    assert.equal(mixed[2]?.errors[0]?.statusCode, 'INVALID_EMAIL_ADDRESS');
  });

  test('more than 200 records: 400 EXCEEDED_ID_LIMIT, nothing written', async () => {
    const count = sim.admin.records('Account').length;
    const error = await rejection(conn.sobject('Account').create(Array.from({ length: 201 }, (_, i) => ({ Name: `Too many ${i}` }))));
    assert.equal(error.errorCode, 'EXCEEDED_ID_LIMIT');
    assert.equal(sim.admin.records('Account').length, count);
  });

  test('allOrNone: one bad record rolls back the whole call, the others say ALL_OR_NONE_OPERATION_ROLLED_BACK', async () => {
    const count = sim.admin.records('Account').length;
    const results = (await conn.sobject('Account').create([{ Name: 'Good', Tandem_Id__c: 'cus_aon' }, { Phone: 'no name' }], { allOrNone: true })) as SaveResult[];
    assert.equal(results[0]?.success, false);
    assert.equal(results[0].errors[0]?.statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
    assert.equal(results[1]?.errors[0]?.statusCode, 'REQUIRED_FIELD_MISSING');
    assert.equal(sim.admin.records('Account').length, count);
    // The rolled-back external id is free again.
    const retry = (await conn.sobject('Account').create([{ Name: 'Good', Tandem_Id__c: 'cus_aon' }], { allOrNone: true })) as SaveResult[];
    assert.equal(retry[0]?.success, true);

    // Rollback undoes updates too.
    const [first = '', second = ''] = sim.admin.records('Account').slice(0, 2).map((r) => String(r.Id));
    const update = (await conn.sobject('Account').update([{ Id: first, Name: 'Changed' }, { Id: second, Name: null }], { allOrNone: true })) as SaveResult[];
    assert.equal(update[1]?.errors[0]?.statusCode, 'REQUIRED_FIELD_MISSING');
    assert.notEqual(sim.admin.record('Account', first)?.Name, 'Changed');
  });

  test('update, upsert by Tandem_Id__c and delete through collections', async () => {
    const created = (await conn.sobject('Contact').create([{ LastName: 'A' }, { LastName: 'B' }])) as SaveResult[];
    const ids = created.map((r) => r.id ?? '');
    const updated = (await conn.sobject('Contact').update(ids.map((Id, i) => ({ Id, Title: `T${i}` })))) as SaveResult[];
    assert.deepEqual(updated.map((r) => r.success), [true, true]);
    assert.equal(sim.admin.record('Contact', ids[1] ?? '')?.Title, 'T1');

    const upserted = (await conn.sobject('Account').upsert(
      [{ Tandem_Id__c: 'cus_coll3', Name: 'Renamed 3' }, { Tandem_Id__c: 'cus_new_up', Name: 'New one' }],
      'Tandem_Id__c',
    )) as SaveResult[];
    assert.deepEqual(upserted.map((r) => [r.success, r.created]), [[true, false], [true, true]]);
    assert.equal(sim.admin.records('Account').find((r) => r.Tandem_Id__c === 'cus_coll3')?.Name, 'Renamed 3');

    const missing = ids[0]?.replace(/^(.{9})./, '$1Z') ?? '';
    const deleted = (await conn.sobject('Contact').destroy([ids[0] ?? '', ids[1] ?? '', missing])) as SaveResult[];
    assert.deepEqual(deleted.slice(0, 2).map((r) => r.success), [true, true]);
    assert.equal(deleted[2]?.success, false);
    assert.equal(sim.admin.record('Contact', ids[0] ?? '')?.IsDeleted, true);
  });

  test('retrieve many by id (POST /composite/sobjects/{type}), null for unknown ids', async () => {
    const ids = sim.admin.records('Account', { includeDeleted: false }).slice(0, 3).map((r) => String(r.Id));
    const rows = (await conn.sobject('Account').retrieve([...ids, '0015g00000AAAAAAAA'], { fields: ['Name'] })) as ({ Name: string } | null)[];
    assert.equal(rows.length, 4);
    assert.deepEqual(Object.keys(rows[0] ?? {}), ['attributes', 'Name']);
    assert.equal(rows[3], null);
  });
});

describe('replication', () => {
  test('updated: ids changed in the window (seconds ignored), latestDateCovered never after now', async () => {
    clock.set('2026-12-01T10:00:00.000Z');
    const a = await conn.sobject('Account').create({ Name: 'Repl A' });
    clock.set('2026-12-01T10:05:30.000Z');
    const b = await conn.sobject('Account').create({ Name: 'Repl B' });
    clock.set('2026-12-01T10:10:00.000Z');
    await conn.sobject('Account').update({ Id: a.id ?? '', Phone: '1' });
    clock.set('2026-12-01T10:20:00.000Z');

    const window1 = await conn.sobject('Account').updated('2026-12-01T10:00:00Z', '2026-12-01T10:06:59Z');
    assert.deepEqual(window1.ids, [b.id]); // a moved on to 10:10
    assert.equal(window1.latestDateCovered, '2026-12-01T10:06:00.000+0000');
    const window2 = await conn.sobject('Account').updated('2026-12-01T10:00:00Z', '2026-12-02T00:00:00Z');
    assert.deepEqual(window2.ids, [b.id, a.id]);
    assert.equal(window2.latestDateCovered, '2026-12-01T10:20:00.000+0000');

    const old = await rejection(conn.sobject('Account').updated('2026-10-01T00:00:00Z', '2026-12-01T00:00:00Z'));
    assert.equal(old.errorCode, 'INVALID_REPLICATION_DATE');
  });

  test('deleted: deletedRecords with deletedDate; earliestDateAvailable moves once the Recycle Bin is emptied', async () => {
    clock.set('2026-12-02T09:00:00.000Z');
    const c = await conn.sobject('Account').create({ Name: 'To delete' });
    clock.set('2026-12-02T09:30:00.000Z');
    await conn.sobject('Account').destroy(c.id ?? '');
    clock.set('2026-12-02T10:00:00.000Z');
    const result = await conn.sobject('Account').deleted('2026-12-02T00:00:00Z', '2026-12-02T23:00:00Z');
    assert.deepEqual(result.deletedRecords, [{ id: c.id, deletedDate: '2026-12-02T09:30:00.000+0000' }]);
    assert.equal(result.latestDateCovered, '2026-12-02T10:00:00.000+0000');
    assert.equal(result.earliestDateAvailable, '2026-11-17T10:00:00.000+0000');

    clock.set('2026-12-18T10:00:00.000Z'); // 16 days later: purged from the Recycle Bin
    const later = await conn.sobject('Account').deleted('2026-12-04T00:00:00Z', '2026-12-18T10:00:00Z');
    assert.deepEqual(later.deletedRecords, []);
    assert.equal(later.earliestDateAvailable, '2026-12-03T10:00:00.000+0000');
    assert.equal(sim.admin.record('Account', c.id ?? ''), undefined);
    const tooOld = await rejection(conn.sobject('Account').deleted('2026-12-01T00:00:00Z', '2026-12-18T10:00:00Z'));
    assert.equal(tooOld.errorCode, 'INVALID_REPLICATION_DATE');
  });
});

test('the version list needs no session; unsupported versions are 404', async () => {
  const versions = (await (await fetch(`${sim.url}/services/data`)).json()) as { version: string }[];
  assert.ok(versions.some((v) => v.version === TEST_API_VERSION));
  const res = await fetch(`${sim.url}/services/data/v99.0/sobjects`, { headers: { Authorization: `Bearer ${conn.accessToken ?? ''}` } });
  assert.equal(res.status, 404);
});
