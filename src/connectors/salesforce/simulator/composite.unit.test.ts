// The Composite resource (`POST /composite`) through jsforce: sObject Collections, rows and queries
// as subrequests, `@{ref.path}` references (url and body, into collection results by index), the
// 25 / 5 limits, allOrNone (rollback, PROCESSING_HALTED), one API call counted, faults, and the
// change events of the records written.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { Connection } from 'jsforce';
import { startSalesforceSimulator, type SalesforceSimulator } from './index.ts';
import { TEST_API_VERSION, connect, manualClock, rejection } from './testing.ts';

const clock = manualClock('2026-11-30T08:00:00.000Z');
let sim: SalesforceSimulator;
let conn: Connection;
const V = `/services/data/v${TEST_API_VERSION}`;

before(async () => {
  sim = await startSalesforceSimulator({ clock: clock.now, sessionTimeoutMs: 40 * 24 * 60 * 60 * 1000 });
  conn = await connect(sim);
});
after(async () => {
  await sim.stop();
});
beforeEach(() => {
  sim.admin.clearFaults();
});

interface SubResult { body: unknown; httpHeaders: Record<string, string>; httpStatusCode: number; referenceId: string }
interface SaveResult { id?: string; success: boolean; errors: { statusCode?: string; message: string }[]; created?: boolean }
interface Sub { method: string; url: string; referenceId: string; body?: unknown }

async function composite(compositeRequest: Sub[], allOrNone = false, headers: Record<string, string> = {}): Promise<SubResult[]> {
  const answer = await conn.request<{ compositeResponse: SubResult[] }>({
    method: 'POST',
    url: '/composite',
    body: JSON.stringify({ allOrNone, collateSubrequests: false, compositeRequest }),
    headers: { 'content-type': 'application/json', ...headers },
  });
  return answer.compositeResponse;
}

function records(n: number, prefix: string): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({ attributes: { type: 'Account' }, Tandem_Id__c: `${prefix}${String(i)}`, Name: `${prefix} ${String(i)}` }));
}

describe('Composite', () => {
  test('an Accounts upsert collection and a Contacts upsert whose AccountIds reference its results: one API call', async () => {
    const usage = sim.admin.apiUsage().used;
    const routes = { ...sim.admin.requests().byRoute };
    const accounts = records(200, 'cus_cmp');
    const contacts = accounts.map((_, i) => ({ attributes: { type: 'Contact' }, Tandem_Id__c: `cus_cmp${String(i)}`, LastName: `Person ${String(i)}`, AccountId: `@{accounts[${String(i)}].id}` }));
    const out = await composite([
      { method: 'PATCH', url: `${V}/composite/sobjects/Account/Tandem_Id__c`, referenceId: 'accounts', body: { allOrNone: false, records: accounts } },
      { method: 'PATCH', url: `${V}/composite/sobjects/Contact/Tandem_Id__c`, referenceId: 'contacts', body: { allOrNone: false, records: contacts } },
    ]);
    assert.deepEqual(out.map((r) => [r.referenceId, r.httpStatusCode]), [['accounts', 200], ['contacts', 200]]);
    const accountResults = out[0]?.body as SaveResult[];
    const contactResults = out[1]?.body as SaveResult[];
    assert.equal(accountResults.length, 200);
    assert.ok(accountResults.every((r) => r.success && r.created === true));
    assert.ok(contactResults.every((r) => r.success && r.created === true));
    const contact = sim.admin.record('Contact', contactResults[150]?.id ?? '');
    assert.equal(contact?.AccountId, accountResults[150]?.id);
    // One call against the allocation, one route entry, no subrequest counted as a call.
    assert.equal(sim.admin.apiUsage().used, usage + 1);
    const now = sim.admin.requests().byRoute;
    assert.equal((now['POST composite'] ?? 0) - (routes['POST composite'] ?? 0), 1);
    assert.equal(now['PATCH composite/sobjects/Account/Tandem_Id__c'], routes['PATCH composite/sobjects/Account/Tandem_Id__c']);

    // Again: the same upserts update (no duplicates).
    const again = await composite([
      { method: 'PATCH', url: `${V}/composite/sobjects/Account/Tandem_Id__c`, referenceId: 'accounts', body: { records: accounts.slice(0, 2) } },
      { method: 'PATCH', url: `${V}/composite/sobjects/Contact/Tandem_Id__c`, referenceId: 'contacts', body: { records: contacts.slice(0, 2) } },
    ]);
    assert.deepEqual((again[1]?.body as SaveResult[]).map((r) => [r.id, r.created]), contactResults.slice(0, 2).map((r) => [r.id, false]));
  });

  test('rows and queries as subrequests; references in the url and into query results', async () => {
    const out = await composite([
      { method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'acc', body: { Name: 'Row Co', Tandem_Id__c: 'cus_row1' } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'con', body: { LastName: 'Row', AccountId: '@{acc.id}', Title: 'Of @{acc.id}' } },
      { method: 'GET', url: `${V}/sobjects/Account/@{acc.id}?fields=Name`, referenceId: 'read' },
      { method: 'GET', url: `${V}/query?q=${encodeURIComponent("SELECT Id, LastName FROM Contact WHERE AccountId = '")}@{acc.id}${encodeURIComponent("'")}`, referenceId: 'q' },
      { method: 'PATCH', url: `${V}/sobjects/Contact/@{q.records[0].Id}`, referenceId: 'edit', body: { Email: 'row@example.com' } },
    ]);
    assert.deepEqual(out.map((r) => r.httpStatusCode), [201, 201, 200, 200, 204]);
    const accountId = (out[0]?.body as SaveResult).id ?? '';
    const contact = sim.admin.record('Contact', (out[1]?.body as SaveResult).id ?? '');
    assert.equal(contact?.AccountId, accountId);
    assert.equal(contact.Title, `Of ${accountId}`);
    assert.equal(contact.Email, 'row@example.com');
    assert.equal((out[2]?.body as { Name: string }).Name, 'Row Co');
    assert.equal((out[3]?.body as { totalSize: number }).totalSize, 1);
  });

  test('at most 25 subrequests and at most 5 collections or queries: else 400, nothing written', async () => {
    const count = sim.admin.records('Account').length;
    const rows = Array.from({ length: 26 }, (_, i) => ({ method: 'POST', url: `${V}/sobjects/Account`, referenceId: `a${String(i)}`, body: { Name: `Many ${String(i)}` } }));
    const tooMany = await rejection(composite(rows));
    assert.equal(tooMany.errorCode, 'LIMIT_EXCEEDED');
    const heavy = Array.from({ length: 6 }, (_, i) => (i % 2 === 0
      ? { method: 'GET', url: `${V}/query?q=SELECT+Id+FROM+Account`, referenceId: `q${String(i)}` }
      : { method: 'POST', url: `${V}/composite/sobjects`, referenceId: `c${String(i)}`, body: { records: records(1, `cus_heavy${String(i)}_`) } }));
    const tooHeavy = await rejection(composite(heavy));
    assert.equal(tooHeavy.errorCode, 'LIMIT_EXCEEDED');
    assert.equal(sim.admin.records('Account').length, count);
    // 25 rows and 5 collections are fine.
    const fine = await composite(rows.slice(0, 25));
    assert.equal(fine.length, 25);
    const missingRef = await rejection(composite([{ method: 'GET', url: `${V}/limits`, referenceId: '' }]));
    assert.equal(missingRef.errorCode, 'JSON_PARSER_ERROR');
  });

  test('allOrNone: a failed subrequest rolls back every subrequest; the others answer PROCESSING_HALTED; no change events', async () => {
    const count = sim.admin.records('Account').length;
    const events = sim.admin.changeEvents().length;
    const out = await composite([
      { method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'good', body: { Name: 'Rolled back', Tandem_Id__c: 'cus_rb1' } },
      { method: 'PATCH', url: `${V}/composite/sobjects/Account/Tandem_Id__c`, referenceId: 'coll', body: { allOrNone: false, records: records(2, 'cus_rbc') } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'bad', body: { FirstName: 'No last name' } },
      { method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'later', body: { Name: 'Never run' } },
    ], true);
    assert.deepEqual(out.map((r) => [r.referenceId, r.httpStatusCode]), [['good', 400], ['coll', 400], ['bad', 400], ['later', 400]]);
    assert.deepEqual(out[0]?.body, [{ errorCode: 'PROCESSING_HALTED', message: 'The transaction was rolled back since another operation in the same transaction failed.' }]);
    assert.equal((out[2]?.body as { errorCode: string }[])[0]?.errorCode, 'REQUIRED_FIELD_MISSING');
    assert.equal((out[3]?.body as { errorCode: string }[])[0]?.errorCode, 'PROCESSING_HALTED');
    assert.equal(sim.admin.records('Account').length, count);
    assert.equal(sim.admin.changeEvents().length, events);
    // The rolled-back external ids are free again.
    const retry = await composite([{ method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'good', body: { Name: 'Now', Tandem_Id__c: 'cus_rb1' } }], true);
    assert.equal(retry[0]?.httpStatusCode, 201);

    // A collection with a failed record fails the whole call too (its collection is all-or-none).
    const before = sim.admin.records('Account').length;
    const mixed = await composite([
      { method: 'POST', url: `${V}/composite/sobjects`, referenceId: 'coll', body: { allOrNone: false, records: [...records(1, 'cus_rbm'), { attributes: { type: 'Account' }, Phone: 'no name' }] } },
    ], true);
    const results = mixed[0]?.body as SaveResult[];
    assert.equal(results[0]?.errors[0]?.statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
    assert.equal(sim.admin.records('Account').length, before);
  });

  test('without allOrNone: a subrequest referring to a failed one (or to no value) answers PROCESSING_HALTED, the others run', async () => {
    const out = await composite([
      { method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'bad', body: { Phone: 'no name' } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'dependent', body: { LastName: 'Orphan', AccountId: '@{bad.id}' } },
      { method: 'POST', url: `${V}/composite/sobjects`, referenceId: 'coll', body: { allOrNone: false, records: [...records(1, 'cus_pf'), { attributes: { type: 'Account' }, Phone: 'no name' }] } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'ok', body: { LastName: 'Fine', AccountId: '@{coll[0].id}' } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'noValue', body: { LastName: 'Lost', AccountId: '@{coll[1].id}' } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'independent', body: { LastName: 'Alone' } },
    ]);
    assert.deepEqual(out.map((r) => [r.referenceId, r.httpStatusCode]), [['bad', 400], ['dependent', 400], ['coll', 200], ['ok', 201], ['noValue', 400], ['independent', 201]]);
    assert.deepEqual(out[1]?.body, [{ errorCode: 'PROCESSING_HALTED', message: 'Invalid reference specified. No value for bad.id found in bad.' }]);
    assert.deepEqual(out[4]?.body, [{ errorCode: 'PROCESSING_HALTED', message: 'Invalid reference specified. No value for coll[1].id found in coll.' }]);
    assert.equal(sim.admin.records('Contact').filter((c) => c.LastName === 'Orphan' || c.LastName === 'Lost').length, 0);
    assert.equal(sim.admin.record('Contact', (out[3]?.body as SaveResult).id ?? '')?.AccountId, (out[2]?.body as SaveResult[])[0]?.id);
  });

  test('faults apply to the composite call as to any call: after applies it all and loses the answer; before applies nothing', async () => {
    const usage = sim.admin.apiUsage().used;
    sim.admin.setFaults({ errorRate: 1, errorPhase: 'after' });
    const lost = await rejection(composite([
      { method: 'PATCH', url: `${V}/composite/sobjects/Account/Tandem_Id__c`, referenceId: 'accounts', body: { records: records(2, 'cus_fault') } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'c', body: { LastName: 'Faulted', AccountId: '@{accounts[1].id}' } },
    ]));
    assert.equal(lost.errorCode, 'UNKNOWN_EXCEPTION');
    const account = sim.admin.records('Account').find((a) => a.Tandem_Id__c === 'cus_fault1');
    assert.ok(account);
    assert.equal(sim.admin.records('Contact').find((c) => c.LastName === 'Faulted')?.AccountId, account.Id);
    sim.admin.setFaults({ errorRate: 1, errorPhase: 'before' });
    const refused = await rejection(composite([{ method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'a', body: { Name: 'Never', Tandem_Id__c: 'cus_fault_before' } }]));
    assert.equal(refused.errorCode, 'UNKNOWN_EXCEPTION');
    assert.equal(sim.admin.records('Account').some((a) => a.Tandem_Id__c === 'cus_fault_before'), false);
    assert.equal(sim.admin.apiUsage().used, usage + 2);
  });

  test('change events for each record written, changeOrigin from the caller\'s Sforce-Call-Options', async () => {
    const seq = Math.max(0, ...sim.admin.changes().map((c) => c.seq));
    const events = sim.admin.changeEvents().length;
    const out = await composite([
      { method: 'PATCH', url: `${V}/composite/sobjects/Account/Tandem_Id__c`, referenceId: 'accounts', body: { records: records(2, 'cus_cdc') } },
      { method: 'PATCH', url: `${V}/composite/sobjects/Contact/Tandem_Id__c`, referenceId: 'contacts', body: { records: [{ attributes: { type: 'Contact' }, Tandem_Id__c: 'cus_cdc0', LastName: 'Cdc', AccountId: '@{accounts[0].id}' }] } },
    ], true, { 'Sforce-Call-Options': 'client=tandem-conn-9' });
    assert.ok(out.every((r) => r.httpStatusCode === 200));
    const changes = sim.admin.changes(seq);
    assert.deepEqual(changes.map((c) => [c.sobject, c.change, c.callOptionsClient]), [['Account', 'CREATE', 'tandem-conn-9'], ['Account', 'CREATE', 'tandem-conn-9'], ['Contact', 'CREATE', 'tandem-conn-9']]);
    const published = sim.admin.changeEvents().slice(events).map((e) => e.payload.ChangeEventHeader as { entityName: string; changeOrigin: string; changeType: string });
    assert.deepEqual(published.map((h) => [h.entityName, h.changeType, h.changeOrigin]), [
      ['Account', 'CREATE', `com/salesforce/api/rest/${TEST_API_VERSION};client=tandem-conn-9`],
      ['Account', 'CREATE', `com/salesforce/api/rest/${TEST_API_VERSION};client=tandem-conn-9`],
      ['Contact', 'CREATE', `com/salesforce/api/rest/${TEST_API_VERSION};client=tandem-conn-9`],
    ]);
  });
});
