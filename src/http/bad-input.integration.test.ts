// Bad input, table-driven: every row gets a 4xx with its stable code, never a 5xx, and changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestApi, TEST_ADMIN_KEY, type TestApi } from '../../test/support/api.ts';
import { STORE_KINDS, skipUnless } from '../../test/support/stores.ts';

interface Row {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** `{cus}`, `{inv}`, `{foreign}` are replaced by real ids of the fixture. */
  url: string;
  body?: unknown;
  /** A raw body, sent as is with content-type application/json unless headers say otherwise. */
  raw?: string;
  headers?: Record<string, string>;
  /** Send no Authorization header. */
  anonymous?: boolean;
  status: number;
  code: string;
}

const BODY_LIMIT = 64 * 1024;
const long = (n: number) => 'x'.repeat(n);

const rows: Row[] = [
  // Malformed and mistyped bodies
  { name: 'malformed JSON', method: 'POST', url: '/api/v1/customers', raw: '{"name": "Ada",', status: 400, code: 'MALFORMED_JSON' },
  { name: 'empty JSON body', method: 'POST', url: '/api/v1/customers', raw: '', status: 400, code: 'MALFORMED_JSON' },
  { name: 'JSON array instead of object', method: 'POST', url: '/api/v1/customers', body: [1, 2], status: 400, code: 'VALIDATION_FAILED' },
  { name: 'JSON string instead of object', method: 'POST', url: '/api/v1/customers', raw: '"ada"', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'prototype poisoning', method: 'POST', url: '/api/v1/customers', raw: '{"__proto__":{"admin":true}}', status: 400, code: 'MALFORMED_JSON' },
  { name: 'wrong type: name number', method: 'POST', url: '/api/v1/customers', body: { name: 42 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'wrong type: metadata value number', method: 'POST', url: '/api/v1/customers', body: { metadata: { a: 1 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invalid email', method: 'POST', url: '/api/v1/customers', body: { email: 'not-an-email' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invalid currency', method: 'POST', url: '/api/v1/customers', body: { currency: 'euro' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown field', method: 'POST', url: '/api/v1/customers', body: { name: 'A', nickname: 'a' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown nested field', method: 'POST', url: '/api/v1/customers', body: { billing_address: { planet: 'Mars' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'client-set id', method: 'POST', url: '/api/v1/customers', body: { id: 'cus_mine' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'client-set version', method: 'PATCH', url: '/api/v1/customers/{cus}', body: { version: 99 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'oversized string', method: 'POST', url: '/api/v1/customers', body: { name: long(257) }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'oversized metadata value', method: 'POST', url: '/api/v1/customers', body: { metadata: { k: long(501) } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'too many metadata keys', method: 'POST', url: '/api/v1/customers', body: { metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${String(i)}`, 'v'])) }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata key with brackets', method: 'POST', url: '/api/v1/customers', body: { metadata: { 'a[b]': 'v' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'oversized body', method: 'POST', url: '/api/v1/customers', body: { name: 'A', metadata: { k: long(BODY_LIMIT) } }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'body not JSON', method: 'POST', url: '/api/v1/customers', raw: 'name=Ada', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'invoice: negative quantity', method: 'POST', url: '/api/v1/invoices', body: { customer_id: '{cus}', currency: 'usd', line_items: [{ description: 'x', quantity: -1, unit_amount: 1 }] }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invoice: fractional amount', method: 'POST', url: '/api/v1/invoices', body: { customer_id: '{cus}', currency: 'usd', line_items: [{ description: 'x', quantity: 1, unit_amount: 1.5 }] }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invoice: huge amount', method: 'POST', url: '/api/v1/invoices', body: { customer_id: '{cus}', currency: 'usd', line_items: [{ description: 'x', quantity: 1, unit_amount: 1e300 }] }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invoice: unknown status', method: 'POST', url: '/api/v1/invoices', body: { customer_id: '{cus}', currency: 'usd', status: 'sent' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invoice: created paid', method: 'POST', url: '/api/v1/invoices', body: { customer_id: '{cus}', currency: 'usd', status: 'paid' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invoice: bad due date', method: 'POST', url: '/api/v1/invoices', body: { customer_id: '{cus}', currency: 'usd', due_date: '2027-13-45' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invoice: missing customer', method: 'POST', url: '/api/v1/invoices', body: { currency: 'usd' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'invoice: unknown customer', method: 'POST', url: '/api/v1/invoices', body: { customer_id: 'cus_01ARZ3NDEKTSV4RRFFQ69G5FAV', currency: 'usd' }, status: 422, code: 'INVALID_REFERENCE' },
  { name: 'invoice: customer id of another type', method: 'POST', url: '/api/v1/invoices', body: { customer_id: '{inv}', currency: 'usd' }, status: 422, code: 'INVALID_REFERENCE' },
  { name: "invoice: another workspace's customer", method: 'POST', url: '/api/v1/invoices', body: { customer_id: '{foreign}', currency: 'usd' }, status: 422, code: 'INVALID_REFERENCE' },
  { name: 'invoice: draft to paid', method: 'PATCH', url: '/api/v1/invoices/{inv}', body: { status: 'paid' }, status: 422, code: 'INVALID_STATE_TRANSITION' },
  // Ids
  { name: 'invalid id', method: 'GET', url: '/api/v1/customers/banana', status: 404, code: 'NOT_FOUND' },
  { name: 'id of another type', method: 'GET', url: '/api/v1/customers/{inv}', status: 404, code: 'NOT_FOUND' },
  { name: "another workspace's record", method: 'GET', url: '/api/v1/customers/{foreign}', status: 404, code: 'NOT_FOUND' },
  { name: "update another workspace's record", method: 'PATCH', url: '/api/v1/customers/{foreign}', body: { name: 'x' }, status: 404, code: 'NOT_FOUND' },
  { name: "delete another workspace's record", method: 'DELETE', url: '/api/v1/customers/{foreign}', status: 404, code: 'NOT_FOUND' },
  { name: 'overlong id', method: 'GET', url: `/api/v1/customers/cus_${long(150)}`, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'SQL in id', method: 'GET', url: "/api/v1/customers/cus_'%20or%201=1--", status: 404, code: 'NOT_FOUND' },
  // Query strings
  { name: 'limit above 100', method: 'GET', url: '/api/v1/customers?limit=101', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'limit zero', method: 'GET', url: '/api/v1/customers?limit=0', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'limit not a number', method: 'GET', url: '/api/v1/customers?limit=ten', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown query parameter', method: 'GET', url: '/api/v1/customers?colour=red', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'forged cursor', method: 'GET', url: '/api/v1/customers?cursor=bm90LWEtY3Vyc29y', status: 400, code: 'INVALID_CURSOR' },
  { name: 'bad updated_since', method: 'GET', url: '/api/v1/customers?updated_since=yesterday', status: 400, code: 'VALIDATION_FAILED' },
  // Headers
  { name: 'missing key', method: 'GET', url: '/api/v1/customers', anonymous: true, status: 401, code: 'UNAUTHENTICATED' },
  { name: 'wrong key', method: 'GET', url: '/api/v1/customers', headers: { authorization: 'Bearer tdm_wrong' }, status: 401, code: 'UNAUTHENTICATED' },
  { name: 'basic auth instead of bearer', method: 'GET', url: '/api/v1/customers', headers: { authorization: 'Basic YTpi' }, status: 401, code: 'UNAUTHENTICATED' },
  { name: 'write without a key', method: 'POST', url: '/api/v1/customers', body: { name: 'x' }, anonymous: true, status: 401, code: 'UNAUTHENTICATED' },
  { name: 'bad If-Match', method: 'PATCH', url: '/api/v1/customers/{cus}', body: { name: 'x' }, headers: { 'if-match': 'yesterday' }, status: 400, code: 'INVALID_IF_MATCH' },
  { name: 'stale If-Match', method: 'PATCH', url: '/api/v1/customers/{cus}', body: { name: 'x' }, headers: { 'if-match': '"7"' }, status: 412, code: 'VERSION_MISMATCH' },
  { name: 'overlong Idempotency-Key', method: 'POST', url: '/api/v1/customers', body: { name: 'x' }, headers: { 'idempotency-key': long(256) }, status: 400, code: 'IDEMPOTENCY_KEY_INVALID' },
  { name: 'reused Idempotency-Key', method: 'POST', url: '/api/v1/customers', body: { name: 'different' }, headers: { 'idempotency-key': 'fixture-key' }, status: 422, code: 'IDEMPOTENCY_KEY_REUSED' },
  // Routes and roles
  { name: 'unknown route', method: 'GET', url: '/api/v1/unicorns', status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'unknown method', method: 'PUT', url: '/api/v1/customers/{cus}', body: { name: 'x' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  { name: 'workspace from a non-default workspace', method: 'POST', url: '/api/v1/workspaces', body: { name: 'x' }, headers: { authorization: 'Bearer {foreignKey}' }, status: 403, code: 'FORBIDDEN' },
  { name: 'api key with an unknown role', method: 'POST', url: '/api/v1/api-keys', body: { name: 'x', role: 'owner' }, status: 400, code: 'VALIDATION_FAILED' },
];

for (const kind of STORE_KINDS) {
  describe(`bad input on ${kind}`, { skip: await skipUnless(kind) }, () => {
    let t: TestApi;
    const ids: Record<string, string> = {};
    before(async () => {
      t = await createTestApi(kind, { bodyLimit: BODY_LIMIT });
      const customer = await t.call('POST', '/api/v1/customers', { name: 'Fixture' }, { 'idempotency-key': 'fixture-key' });
      ids.cus = customer.json<{ id: string }>().id;
      const invoice = await t.call('POST', '/api/v1/invoices', { customer_id: ids.cus, currency: 'usd' });
      ids.inv = invoice.json<{ id: string }>().id;
      const other = await t.call('POST', '/api/v1/workspaces', { name: 'Other' });
      ids.foreignKey = other.json<{ api_key: { key: string } }>().api_key.key;
      const foreign = await t.call('POST', '/api/v1/customers', { name: 'Theirs' }, { authorization: `Bearer ${ids.foreignKey}` });
      ids.foreign = foreign.json<{ id: string }>().id;
    });
    after(async () => {
      await t.cleanup();
    });

    async function snapshot() {
      const records = await t.store.db.selectFrom('records').select(['id', 'version', 'data', 'deleted_at']).orderBy('id').execute();
      const changes = await t.store.db.selectFrom('changes').select('id').orderBy('id').execute();
      const keys = await t.store.db.selectFrom('api_keys').select(['id', 'revoked_at']).orderBy('id').execute();
      const workspaces = await t.store.db.selectFrom('workspaces').select('id').orderBy('id').execute();
      return JSON.stringify({ records, changes, keys, workspaces });
    }

    const fill = (s: string) => s.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? `{${name}}`);

    for (const row of rows) {
      test(`${row.name} -> ${String(row.status)} ${row.code}`, async () => {
        const before = await snapshot();
        const headers: Record<string, string> = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
        for (const [name, value] of Object.entries(row.headers ?? {})) headers[name] = fill(value);
        if (row.anonymous === true) Reflect.deleteProperty(headers, 'authorization');
        let payload: string | undefined;
        if (row.raw !== undefined) {
          payload = row.raw;
          headers['content-type'] ??= 'application/json';
        } else if (row.body !== undefined) {
          payload = fill(JSON.stringify(row.body));
          headers['content-type'] = 'application/json';
        }
        const res = await t.app.inject({ method: row.method, url: fill(row.url), headers, ...(payload === undefined ? {} : { payload }) });
        assert.ok(res.statusCode < 500, `never a 5xx (got ${String(res.statusCode)}: ${res.body.slice(0, 300)})`);
        assert.equal(res.statusCode, row.status, res.body.slice(0, 300));
        const body = res.json<{ error: { code: string; message: string; details: unknown } }>();
        assert.equal(body.error.code, row.code);
        assert.equal(typeof body.error.message, 'string');
        assert.ok('details' in body.error);
        assert.ok(!res.body.includes(TEST_ADMIN_KEY) && !res.body.includes(ids.foreignKey ?? '?'), 'no key in errors');
        assert.equal(await snapshot(), before, 'bad input changes nothing');
      });
    }
  });
}
