// SOQL through jsforce: filters, ordering, limits, parent fields, COUNT(), query / queryMore with
// locators and batch sizes, queryAll (deleted rows), and Salesforce's query errors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Connection } from 'jsforce';
import { startSalesforceSimulator, type SalesforceSimulator } from './index.ts';
import { TEST_API_VERSION, connect, manualClock, rejection } from './testing.ts';

const clock = manualClock('2026-11-30T09:00:00.000Z');
let sim: SalesforceSimulator;
let conn: Connection;

interface Row { Name?: string; Id?: string; [k: string]: unknown }

before(async () => {
  sim = await startSalesforceSimulator({ clock: clock.now, queryBatchSize: 500, maxOpenCursors: 3, sessionTimeoutMs: 30 * 24 * 60 * 60 * 1000 });
  conn = await connect(sim);
  // Five named accounts, an hour apart, then 1,200 numbered ones in one collection call each 200.
  const names = ['Acme', 'acme labs', 'Globex', 'Initech', 'Umbrella'];
  for (const [i, name] of names.entries()) {
    await conn.sobject('Account').create({ Name: name, BillingCity: i % 2 === 0 ? 'Paris' : null, Tandem_Id__c: `cus_q${i}` });
    clock.advance(60 * 60 * 1000);
  }
  const bulk = Array.from({ length: 1200 }, (_, i) => ({ Name: `Bulk ${String(i).padStart(4, '0')}`, AccountNumber: String(i % 7) }));
  for (let i = 0; i < bulk.length; i += 200) await conn.sobject('Account').create(bulk.slice(i, i + 200));
  const acme = await conn.query<Row>("SELECT Id FROM Account WHERE Name = 'Acme'");
  await conn.sobject('Contact').create({ LastName: 'Coyote', FirstName: 'Wile', AccountId: acme.records[0]?.Id, Email: 'wile@acme.example' });
});
after(async () => {
  await sim.stop();
});

const names = async (soql: string): Promise<string[]> => (await conn.query<Row>(soql)).records.map((r) => r.Name ?? '');

test('WHERE: =, != / <>, LIKE (case-insensitive), IN / NOT IN, null, AND / OR / NOT with parentheses', async () => {
  assert.deepEqual(await names("SELECT Name FROM Account WHERE Name = 'ACME'"), ['Acme']);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE Name LIKE 'acme%' ORDER BY Name"), ['Acme', 'acme labs']);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE Name IN ('Globex', 'initech') ORDER BY Name DESC"), ['Initech', 'Globex']);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE BillingCity = null AND (NOT Name LIKE 'Bulk%')"), ['acme labs', 'Initech']);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE BillingCity != null AND Name <> 'Globex'"), ['Acme', 'Umbrella']);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE (Name = 'Acme' OR Name = 'Globex') AND BillingCity = 'paris'"), ['Acme', 'Globex']);
  assert.equal((await names("SELECT Name FROM Account WHERE Name NOT IN ('Acme') AND Name LIKE 'Bulk 00_0'")).length, 10);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE Tandem_Id__c > 'cus_q2' ORDER BY Tandem_Id__c"), ['Initech', 'Umbrella']);
});

test('datetimes: literals with Z or offsets, date literals (TODAY, LAST_N_DAYS:n), ORDER BY with LIMIT and OFFSET', async () => {
  assert.deepEqual(await names('SELECT Name FROM Account WHERE CreatedDate < 2026-11-30T11:00:00Z ORDER BY CreatedDate'), ['Acme', 'acme labs']);
  assert.deepEqual(await names('SELECT Name FROM Account WHERE CreatedDate >= 2026-11-30T11:00:00+01:00 AND CreatedDate < 2026-11-30T10:30:00.000Z'), ['acme labs']);
  assert.deepEqual(await names('SELECT Name FROM Account WHERE SystemModstamp > 2026-11-30T12:30:00Z AND CreatedDate = TODAY ORDER BY Name DESC LIMIT 2 OFFSET 1'), ['Bulk 1199', 'Bulk 1198']); // after Umbrella
  assert.equal((await conn.query('SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:2')).totalSize, 1205);
  assert.equal((await conn.query('SELECT Id FROM Account WHERE CreatedDate = YESTERDAY')).totalSize, 0);
  const bad = await rejection(conn.query("SELECT Id FROM Account WHERE CreatedDate > '2026-11-30'"));
  assert.equal(bad.errorCode, 'INVALID_FIELD');
  assert.match(bad.message, /must be of type dateTime and should not be enclosed in quotes/);
});

test('rows carry attributes and the selected fields in order; parent fields nest; COUNT() answers totalSize only', async () => {
  const result = await conn.query<Row>("SELECT Id, Name, Tandem_Id__c, CreatedDate FROM Account WHERE Name = 'Acme'");
  const [row] = result.records;
  assert.deepEqual(Object.keys(row ?? {}), ['attributes', 'Id', 'Name', 'Tandem_Id__c', 'CreatedDate']);
  assert.equal(row?.CreatedDate, '2026-11-30T09:00:00.000+0000');
  const contacts = await conn.query<Row>("SELECT Name, Account.Name, Account.Tandem_Id__c FROM Contact WHERE Account.Name = 'Acme'");
  assert.deepEqual(contacts.records[0]?.Account, {
    attributes: { type: 'Account', url: `/services/data/v${TEST_API_VERSION}/sobjects/Account/${row.Id ?? ''}` },
    Name: 'Acme',
    Tandem_Id__c: 'cus_q0',
  });
  assert.equal(await conn.sobject('Account').count({ AccountNumber: '3' }), 171);
  const counted = await conn.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Bulk%'");
  assert.equal(counted.totalSize, 1200);
  assert.deepEqual(counted.records, []);
});

test('batches: nextRecordsUrl locators, queryMore, batchSize from Sforce-Query-Options, autoFetch', async () => {
  const first = await conn.query<Row>("SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk%' ORDER BY Name", { autoFetch: false });
  assert.equal(first.totalSize, 1200);
  assert.equal(first.done, false);
  assert.equal(first.records.length, 500);
  assert.match(first.nextRecordsUrl ?? '', new RegExp(`/services/data/v${TEST_API_VERSION}/query/01g[0-9A-Za-z]{15}-500$`));
  const second = await conn.queryMore<Row>(first.nextRecordsUrl ?? '');
  assert.equal(second.records[0]?.Name, 'Bulk 0500');
  const third = await conn.queryMore<Row>(second.nextRecordsUrl ?? '');
  assert.equal(third.done, true);
  assert.equal(third.records.length, 200);
  assert.equal(third.records.at(-1)?.Name, 'Bulk 1199');
  // The cursor is gone once read to the end.
  const reread = await rejection(conn.queryMore(second.nextRecordsUrl ?? ''));
  assert.equal(reread.errorCode, 'INVALID_QUERY_LOCATOR');

  const small = await conn.request<{ records: unknown[]; nextRecordsUrl: string }>({
    method: 'GET',
    url: `/query?q=${encodeURIComponent("SELECT Id FROM Account WHERE Name LIKE 'Bulk%'")}`,
    headers: { 'Sforce-Query-Options': 'batchSize=200' },
  });
  assert.equal(small.records.length, 200);
  assert.match(small.nextRecordsUrl, /-200$/);

  const all = await conn.query<Row>("SELECT Id FROM Account WHERE Name LIKE 'Bulk%'", { autoFetch: true, maxFetch: 5000 });
  assert.equal(all.records.length, 1200);
});

test('a cursor expires after 15 idle minutes, and only maxOpenCursors stay open per user (oldest closed first)', async () => {
  const open = async (): Promise<string> => (await conn.query("SELECT Id FROM Account WHERE Name LIKE 'Bulk%'", { autoFetch: false })).nextRecordsUrl ?? '';
  const a = await open();
  await open();
  await open();
  await open();
  assert.equal((await rejection(conn.queryMore(a))).errorCode, 'INVALID_QUERY_LOCATOR');
  const fresh = await open();
  clock.advance(16 * 60 * 1000);
  assert.equal((await rejection(conn.queryMore(fresh))).errorCode, 'INVALID_QUERY_LOCATOR');
  assert.equal((await rejection(conn.queryMore('nonsense'))).errorCode, 'INVALID_QUERY_LOCATOR');
});

test('query hides deleted rows; queryAll (jsforce scanAll) shows them with IsDeleted = true', async () => {
  const { id = '' } = await conn.sobject('Account').create({ Name: 'Doomed' });
  await conn.sobject('Account').destroy(id);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE Name = 'Doomed'"), []);
  const all = await conn.query<Row>("SELECT Id, IsDeleted FROM Account WHERE Name = 'Doomed'", { scanAll: true });
  assert.deepEqual(all.records.map((r) => [r.Id, r.IsDeleted]), [[id, true]]);
  const onlyDeleted = await conn.query<Row>('SELECT Id FROM Account WHERE IsDeleted = true', { scanAll: true });
  assert.deepEqual(onlyDeleted.records.map((r) => r.Id), [id]);
});

test('malformed SOQL, unknown fields and objects get MALFORMED_QUERY, INVALID_FIELD and INVALID_TYPE (400)', async () => {
  const cases: [string, string][] = [
    ['SELECT FROM Account', 'MALFORMED_QUERY'],
    ["SELECT Id FROM Account WHERE Name = 'x' LIMIT", 'MALFORMED_QUERY'],
    ["SELECT Id FROM Account WHERE Name = 'x' GARBAGE", 'MALFORMED_QUERY'],
    ['SELECT Id, Id FROM Account', 'MALFORMED_QUERY'],
    ['SELECT Colour__c FROM Account', 'INVALID_FIELD'],
    ['SELECT Id FROM Opportunity', 'INVALID_TYPE'],
    ['SELECT Owner.Name FROM Account', 'INVALID_FIELD'],
    ['SELECT Id FROM Account WHERE IsDeleted = 1', 'INVALID_FIELD'],
  ];
  for (const [soql, code] of cases) {
    const res = await fetch(`${sim.url}/services/data/v${TEST_API_VERSION}/query?q=${encodeURIComponent(soql)}`, { headers: { Authorization: `Bearer ${conn.accessToken ?? ''}` } });
    assert.equal(res.status, 400, soql);
    const [item] = (await res.json()) as { errorCode: string; message: string }[];
    assert.equal(item?.errorCode, code, soql);
  }
});
