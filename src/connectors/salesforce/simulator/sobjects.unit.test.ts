// sObject rows through jsforce: create / retrieve / update / delete of Accounts and Contacts,
// audit fields, Salesforce's error arrays, upsert by Tandem_Id__c, describe, conditional requests.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Connection } from 'jsforce';
import { startSalesforceSimulator, to18, type SalesforceSimulator } from './index.ts';
import { TEST_API_VERSION, connect, manualClock, rejection } from './testing.ts';

const clock = manualClock();
let sim: SalesforceSimulator;
let conn: Connection;
let token: string;
const base = (): string => `${sim.url}/services/data/v${TEST_API_VERSION}`;

before(async () => {
  sim = await startSalesforceSimulator({ clock: clock.now });
  conn = await connect(sim);
  token = conn.accessToken ?? '';
});
after(async () => {
  await sim.stop();
});

async function raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: unknown }> {
  const res = await fetch(`${base()}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

describe('rows', () => {
  test('create, retrieve, update and delete an Account; audit fields move with the clock (whole seconds)', async () => {
    clock.set('2026-11-30T12:00:00.250Z');
    const created = await conn.sobject('Account').create({ Name: 'Acme', BillingCity: 'Paris', Tandem_Id__c: 'cus_row1' });
    assert.equal(created.success, true);
    assert.match(created.id, /^0015g0[0-9A-Za-z]{9}[A-Z0-5]{3}$/);
    const id = created.id;
    const got = await conn.sobject('Account').retrieve(id);
    assert.deepEqual(got.attributes, { type: 'Account', url: `/services/data/v${TEST_API_VERSION}/sobjects/Account/${id}` });
    assert.equal(got.Id, id);
    assert.equal(got.IsDeleted, false);
    assert.equal(got.CreatedDate, '2026-11-30T12:00:00.000+0000');
    assert.equal(got.SystemModstamp, '2026-11-30T12:00:00.000+0000');
    assert.equal(got.LastModifiedDate, '2026-11-30T12:00:00.000+0000');

    clock.set('2026-11-30T12:05:00.000Z');
    const updated = await conn.sobject('Account').update({ Id: id, Phone: '+33 1 23 45', BillingCity: '' });
    assert.deepEqual(updated, { id, success: true, errors: [] });
    const after = await conn.sobject('Account').retrieve(id, { fields: ['Name', 'Phone', 'BillingCity', 'SystemModstamp', 'CreatedDate'] });
    assert.deepEqual(Object.keys(after), ['attributes', 'Name', 'Phone', 'BillingCity', 'SystemModstamp', 'CreatedDate']);
    assert.equal(after.Phone, '+33 1 23 45');
    assert.equal(after.BillingCity, null); // an empty string clears a text field
    assert.equal(after.SystemModstamp, '2026-11-30T12:05:00.000+0000');
    assert.equal(after.CreatedDate, '2026-11-30T12:00:00.000+0000');

    // The 15-character form of the id works too.
    assert.equal((await conn.sobject('Account').retrieve(id.slice(0, 15))).Id, id);

    assert.deepEqual(await conn.sobject('Account').destroy(id), { id, success: true, errors: [] });
    const gone = await raw('GET', `/sobjects/Account/${id}`);
    assert.equal(gone.status, 404);
    assert.deepEqual(gone.body, [{ message: 'entity is deleted', errorCode: 'ENTITY_IS_DELETED', fields: [] }]);
    const again = await rejection(conn.sobject('Account').destroy(id));
    assert.equal(again.errorCode, 'ENTITY_IS_DELETED');
    const deletedView = sim.admin.record('Account', id);
    assert.equal(deletedView?.IsDeleted, true);
  });

  test('unknown ids: 404 NOT_FOUND in Salesforce’s array shape', async () => {
    const unknown = to18('0015g00000AbCdE');
    const missing = await raw('GET', `/sobjects/Account/${unknown}`);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, [{ message: 'The requested resource does not exist', errorCode: 'NOT_FOUND' }]);
    const unknownType = await raw('GET', '/sobjects/Opportunity/describe');
    assert.equal(unknownType.status, 404);
    const error = await rejection(conn.sobject('Account').update({ Id: unknown, Name: 'x' }));
    assert.equal(error.errorCode, 'NOT_FOUND');
    // An id with a wrong checksum (or of another object) is no id of this object at all.
    const malformed = await raw('GET', '/sobjects/Account/0015g00000AbCdEAAA');
    assert.equal(malformed.status, 404);
    assert.match((malformed.body as { message: string }[])[0]?.message ?? '', /^Provided external ID field does not exist or is not accessible/);
  });

  test('validation errors: required, unknown, read-only, too long, bad email, bad reference, duplicate external id', async () => {
    const cases: [Record<string, unknown>, string, string, string[] | undefined, string][] = [
      [{ BillingCity: 'x' }, 'REQUIRED_FIELD_MISSING', 'Required fields are missing: [Name]', ['Name'], 'Account'],
      [{ Name: 'x', Colour__c: 'red' }, 'INVALID_FIELD', "No such column 'Colour__c' on sobject of type Account", undefined, 'Account'],
      [{ Name: 'x', CreatedDate: '2020-01-01T00:00:00Z' }, 'INVALID_FIELD_FOR_INSERT_UPDATE', 'Unable to create/update fields: CreatedDate. Please check the security settings of this field and verify that it is read/write for your profile or permission set.', ['CreatedDate'], 'Account'],
      [{ Name: 'x'.repeat(256) }, 'STRING_TOO_LONG', '', ['Name'], 'Account'],
      [{ LastName: 'Lovelace', Email: 'not-an-email' }, 'INVALID_EMAIL_ADDRESS', 'Email: invalid email address: not-an-email', ['Email'], 'Contact'],
      [{ LastName: 'Lovelace', AccountId: '003000000000000AAA' }, 'MALFORMED_ID', 'Account ID: id value of incorrect type: 003000000000000AAA', ['AccountId'], 'Contact'],
    ];
    for (const [fields, code, message, errorFields, type] of cases) {
      const res = await raw('POST', `/sobjects/${type}`, fields);
      assert.equal(res.status, 400, code);
      const [item] = res.body as { message: string; errorCode: string; fields?: string[] }[];
      assert.equal(item?.errorCode, code);
      if (message !== '') assert.equal(item.message, message);
      assert.deepEqual(item.fields, errorFields);
    }
    await conn.sobject('Account').create({ Name: 'First', Tandem_Id__c: 'cus_dup' });
    const dup = await rejection(conn.sobject('Account').create({ Name: 'Second', Tandem_Id__c: 'CUS_DUP' }));
    assert.equal(dup.errorCode, 'DUPLICATE_VALUE');
    assert.match(dup.message, /^duplicate value found: Tandem_Id__c duplicates value on record with id: 0015g/);
    const badJson = await fetch(`${base()}/sobjects/Account`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"Name":' });
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as { errorCode: string }[])[0]?.errorCode, 'JSON_PARSER_ERROR');
  });

  test('a Contact takes its Account; Name is computed; deleting the Account deletes its Contacts', async () => {
    const account = await conn.sobject('Account').create({ Name: 'Parent' });
    const contact = await conn.sobject('Contact').create({ FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com', AccountId: account.id });
    const got = await conn.sobject('Contact').retrieve(contact.id ?? '');
    assert.equal(got.Name, 'Ada Lovelace');
    assert.equal(got.AccountId, account.id);
    await conn.sobject('Account').destroy(account.id ?? '');
    assert.equal(sim.admin.record('Contact', contact.id ?? '')?.IsDeleted, true);
    const orphan = await rejection(conn.sobject('Contact').create({ LastName: 'Late', AccountId: account.id }));
    assert.equal(orphan.errorCode, 'ENTITY_IS_DELETED');
  });
});

describe('upsert by external id', () => {
  test('creates (201, created:true), then updates (200, created:false) the same record', async () => {
    const first = await conn.sobject('Account').upsert({ Tandem_Id__c: 'cus_up1', Name: 'Upserted' }, 'Tandem_Id__c');
    assert.equal(first.success, true);
    assert.equal((first as { created?: boolean }).created, true);
    const second = await conn.sobject('Account').upsert({ Tandem_Id__c: 'cus_up1', Name: 'Renamed' }, 'Tandem_Id__c');
    assert.equal((second as { created?: boolean }).created, false);
    assert.equal(second.id, first.id);
    const byExt = await raw('GET', '/sobjects/Account/Tandem_Id__c/cus_up1');
    assert.equal(byExt.status, 200);
    assert.equal((byExt.body as { Name: string }).Name, 'Renamed');
    assert.equal(sim.admin.records('Account').filter((r) => r.Tandem_Id__c === 'cus_up1').length, 1);

    const status = await raw('PATCH', '/sobjects/Contact/Tandem_Id__c/cus_c1', { LastName: 'Hopper' });
    assert.equal(status.status, 201);
    assert.deepEqual(Object.keys(status.body as object), ['id', 'success', 'errors', 'created']);
    const old = await fetch(`${sim.url}/services/data/v45.0/sobjects/Contact/Tandem_Id__c/cus_c1`, {
      method: 'PATCH', headers: { Authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"Title":"Rear Admiral"}',
    });
    assert.equal(old.status, 204); // before API 46.0, an upsert that updates answers 204
  });

  test('a field that is not an external id is refused with 404', async () => {
    const res = await raw('PATCH', '/sobjects/Account/Name/Acme', { Phone: '1' });
    assert.equal(res.status, 404);
    assert.equal((res.body as { errorCode: string }[])[0]?.errorCode, 'NOT_FOUND');
  });
});

describe('describe', () => {
  test('describe global lists Account and Contact; describe has fields with Tandem_Id__c as a unique external id', async () => {
    const global = await conn.describeGlobal();
    assert.deepEqual(global.sobjects.map((s) => s.name), ['Account', 'Contact']);
    const account = await conn.sobject('Account').describe();
    assert.equal(account.keyPrefix, '001');
    const ext = account.fields.find((f) => f.name === 'Tandem_Id__c');
    assert.equal(ext?.externalId, true);
    assert.equal(ext.unique, true);
    assert.equal(ext.idLookup, true);
    const systemModstamp = account.fields.find((f) => f.name === 'SystemModstamp');
    assert.equal(systemModstamp?.type, 'datetime');
    assert.equal(systemModstamp.updateable, false);
    const contact = await conn.sobject('Contact').describe();
    assert.deepEqual(contact.fields.find((f) => f.name === 'AccountId')?.referenceTo, ['Account']);
    // find() without fields asks describe first, then queries every field.
    const found = await conn.sobject('Account').find({ Tandem_Id__c: 'cus_up1' });
    assert.equal(found.length, 1);
    assert.equal(found[0]?.Name, 'Renamed');
  });
});

describe('conditional requests', () => {
  test('If-Unmodified-Since: 412 once the record changed after that date; If-Modified-Since: 304 when it did not', async () => {
    clock.set('2026-11-30T13:00:00.000Z');
    const { id = '' } = await conn.sobject('Contact').create({ LastName: 'Cond' });
    const read = await raw('GET', `/sobjects/Contact/${id}`);
    const lastModified = read.headers.get('last-modified') ?? '';
    assert.equal(lastModified, 'Mon, 30 Nov 2026 13:00:00 GMT');
    assert.equal((await raw('GET', `/sobjects/Contact/${id}`, undefined, { 'If-Modified-Since': lastModified })).status, 304);
    assert.equal((await raw('PATCH', `/sobjects/Contact/${id}`, { Title: 'One' }, { 'If-Unmodified-Since': lastModified })).status, 204);
    clock.advance(2000);
    assert.equal((await raw('PATCH', `/sobjects/Contact/${id}`, { Title: 'Two' }, { 'If-Unmodified-Since': lastModified })).status, 204);
    const stale = await raw('PATCH', `/sobjects/Contact/${id}`, { Title: 'Three' }, { 'If-Unmodified-Since': lastModified });
    assert.equal(stale.status, 412);
    assert.equal((stale.body as { errorCode: string }[])[0]?.errorCode, 'PRECONDITION_FAILED');
    assert.equal(sim.admin.record('Contact', id)?.Title, 'Two');
    const bad = await raw('PATCH', `/sobjects/Contact/${id}`, { Title: 'x' }, { 'If-Unmodified-Since': 'yesterday' });
    assert.equal(bad.status, 400);
  });

  test('Accounts carry an ETag: If-Match a stale tag gets 412, If-None-Match the current one gets 304', async () => {
    const { id = '' } = await conn.sobject('Account').create({ Name: 'Tagged' });
    const first = await raw('GET', `/sobjects/Account/${id}`);
    const tag = first.headers.get('etag') ?? '';
    assert.match(tag, /^"[A-Za-z0-9+/=]+--gzip"$/);
    assert.equal((await raw('GET', `/sobjects/Account/${id}`, undefined, { 'If-None-Match': tag })).status, 304);
    assert.equal((await raw('PATCH', `/sobjects/Account/${id}`, { Phone: '1' }, { 'If-Match': tag })).status, 204);
    const stale = await raw('PATCH', `/sobjects/Account/${id}`, { Phone: '2' }, { 'If-Match': tag });
    assert.equal(stale.status, 412);
    assert.equal(sim.admin.record('Account', id)?.Phone, '1');
  });
});
