// The catalog REST API, end to end through HTTP, on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestApi, type TestApi } from '../../../test/support/api.ts';
import { STORE_KINDS, skipUnless } from '../../../test/support/stores.ts';

type Json = Record<string, unknown>;

for (const kind of STORE_KINDS) {
  describe(`records API on ${kind}`, { skip: await skipUnless(kind) }, () => {
    let t: TestApi;
    before(async () => {
      t = await createTestApi(kind);
    });
    after(async () => {
      await t.cleanup();
    });

    async function changesOf(recordId: string) {
      return t.store.db.selectFrom('changes').selectAll().where('record_id', '=', recordId).orderBy('version').execute();
    }

    async function createCustomer(body: Json = {}): Promise<Json & { id: string }> {
      const res = await t.call('POST', '/api/v1/customers', { name: 'Ada Lovelace', email: 'ada@example.com', ...body });
      assert.equal(res.statusCode, 201, res.body);
      return res.json();
    }

    test('create answers the record, with a prefixed id, version 1, and writes one change', async () => {
      const res = await t.call('POST', '/api/v1/customers', {
        name: 'Ada',
        email: 'ada@example.com',
        currency: 'EUR',
        billing_address: { line1: '1 Analytical St', country: 'gb' },
        metadata: { crm: '42' },
      });
      assert.equal(res.statusCode, 201);
      const body = res.json<Json & { id: string }>();
      assert.match(body.id, /^cus_[0-9A-Z]{26}$/);
      assert.equal(body.object, 'customer');
      assert.equal(body.version, 1);
      assert.equal(body.currency, 'eur');
      assert.deepEqual(body.billing_address, {
        line1: '1 Analytical St',
        line2: null,
        city: null,
        state: null,
        postal_code: null,
        country: 'GB',
      });
      assert.equal(res.headers.etag, '"1"');
      const [change, ...more] = await changesOf(body.id);
      assert.ok(change !== undefined);
      assert.equal(more.length, 0);
      assert.equal(change.op, 'create');
      assert.equal(change.origin, 'api');
      assert.equal(change.version, 1);
      assert.deepEqual(JSON.parse(change.record), body);
      assert.equal(change.correlation_id, res.headers['x-correlation-id']);
    });

    test('get answers the stored record; an unknown id is 404', async () => {
      const created = await createCustomer();
      const res = await t.call('GET', `/api/v1/customers/${created.id}`);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), created);
      const missing = await t.call('GET', '/api/v1/customers/cus_01ARZ3NDEKTSV4RRFFQ69G5FAV');
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.json<{ error: { code: string } }>().error.code, 'NOT_FOUND');
    });

    test('partial update changes only what was sent, bumps the version, records changed fields', async () => {
      const created = await createCustomer({ phone: '+44 1', metadata: { a: '1', b: '2' } });
      const res = await t.call('PATCH', `/api/v1/customers/${created.id}`, { phone: null, metadata: { a: null, c: '3' } });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<Json>();
      assert.equal(body.version, 2);
      assert.equal(body.phone, null);
      assert.equal(body.name, 'Ada Lovelace');
      assert.deepEqual(body.metadata, { b: '2', c: '3' });
      const changes = await changesOf(created.id);
      assert.deepEqual(JSON.parse(changes[1]?.changed_fields ?? '[]'), ['metadata', 'phone']);
      assert.equal(changes[1]?.op, 'update');
    });

    test('an update that changes nothing writes no version and no change', async () => {
      const created = await createCustomer();
      const res = await t.call('PATCH', `/api/v1/customers/${created.id}`, { name: 'Ada Lovelace' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.json<Json>().version, 1);
      assert.equal((await changesOf(created.id)).length, 1);
    });

    test('If-Match: the expected version writes, a stale one gets 412 and changes nothing', async () => {
      const created = await createCustomer();
      const ok = await t.call('PATCH', `/api/v1/customers/${created.id}`, { name: 'A' }, { 'if-match': '"1"' });
      assert.equal(ok.statusCode, 200);
      const stale = await t.call('PATCH', `/api/v1/customers/${created.id}`, { name: 'B' }, { 'if-match': '"1"' });
      assert.equal(stale.statusCode, 412);
      assert.equal(stale.json<{ error: { code: string } }>().error.code, 'VERSION_MISMATCH');
      const now = await t.call('GET', `/api/v1/customers/${created.id}`);
      assert.equal(now.json<Json>().name, 'A');
      assert.equal(now.json<Json>().version, 2);
      const staleDelete = await t.call('DELETE', `/api/v1/customers/${created.id}`, undefined, { 'if-match': '1' });
      assert.equal(staleDelete.statusCode, 412);
    });

    test('delete leaves a tombstone, hidden from lists unless asked; deleting again changes nothing', async () => {
      const created = await createCustomer({ email: 'gone@example.com' });
      const res = await t.call('DELETE', `/api/v1/customers/${created.id}`);
      assert.equal(res.statusCode, 200);
      const tomb = res.json<Json>();
      assert.equal(tomb.version, 2);
      assert.equal(typeof tomb.deleted_at, 'string');
      const again = await t.call('DELETE', `/api/v1/customers/${created.id}`);
      assert.equal(again.json<Json>().version, 2);
      const patched = await t.call('PATCH', `/api/v1/customers/${created.id}`, { name: 'x' });
      assert.equal(patched.statusCode, 409);
      assert.equal(patched.json<{ error: { code: string } }>().error.code, 'RECORD_DELETED');
      const listed = await t.call('GET', '/api/v1/customers?email=gone@example.com');
      assert.deepEqual(listed.json<{ data: Json[] }>().data, []);
      const withDeleted = await t.call('GET', '/api/v1/customers?email=gone@example.com&include_deleted=true');
      assert.deepEqual(
        withDeleted.json<{ data: Json[] }>().data.map((r) => r.id),
        [created.id],
      );
      const changes = await changesOf(created.id);
      assert.deepEqual(
        changes.map((c) => c.op),
        ['create', 'delete'],
      );
    });

    test('lists page newest first with a cursor, and filter by email and updated_since', async () => {
      const tag = `${kind}-${String(Date.now())}`;
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await createCustomer({ email: `p${String(i)}@${tag}.example.com`, metadata: { tag } })).id);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = cursor === null ? '' : `&cursor=${cursor}`;
        const res = await t.call('GET', `/api/v1/customers?limit=2${query}`);
        assert.equal(res.statusCode, 200);
        const page = res.json<{ data: Array<{ id: string }>; next_cursor: string | null }>();
        assert.ok(page.data.length <= 2);
        seen.push(...page.data.map((r) => r.id));
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor !== null && pages < 100);
      const mine = seen.filter((id) => ids.includes(id));
      assert.deepEqual(mine, [...ids].reverse());
      assert.equal(new Set(seen).size, seen.length, 'no record twice across pages');

      const byEmail = await t.call('GET', `/api/v1/customers?email=p3@${tag}.example.com`);
      assert.deepEqual(
        byEmail.json<{ data: Array<{ id: string }> }>().data.map((r) => r.id),
        [ids[3]],
      );

      const since = new Date().toISOString();
      await new Promise((r) => setTimeout(r, 5));
      await t.call('PATCH', `/api/v1/customers/${ids[1] ?? ''}`, { name: 'Updated later' });
      const updated = await t.call('GET', `/api/v1/customers?updated_since=${encodeURIComponent(since)}`);
      assert.deepEqual(
        updated.json<{ data: Array<{ id: string }> }>().data.map((r) => r.id),
        [ids[1]],
      );
    });

    test('Idempotency-Key: a retried create returns the first result and writes nothing more', async () => {
      const key = `idem-${kind}-${String(Date.now())}`;
      const body = { name: 'Once', email: 'once@example.com' };
      const first = await t.call('POST', '/api/v1/customers', body, { 'idempotency-key': key });
      const second = await t.call('POST', '/api/v1/customers', body, { 'idempotency-key': key });
      assert.equal(first.statusCode, 201);
      assert.equal(second.statusCode, 200);
      assert.equal(second.headers['idempotent-replayed'], 'true');
      assert.deepEqual(second.json(), first.json());
      const concurrent = await Promise.all(
        Array.from({ length: 5 }, () => t.call('POST', '/api/v1/customers', { name: 'Race' }, { 'idempotency-key': `${key}-race` })),
      );
      const raceIds = new Set(concurrent.map((r) => r.json<{ id: string }>().id));
      assert.equal(raceIds.size, 1, 'concurrent retries create one record');
      const count = await t.store.db
        .selectFrom('records')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('data', 'like', '%"Race"%')
        .executeTakeFirstOrThrow();
      assert.equal(count.n, 1);
      const reused = await t.call('POST', '/api/v1/customers', { name: 'Other' }, { 'idempotency-key': key });
      assert.equal(reused.statusCode, 422);
      assert.equal(reused.json<{ error: { code: string } }>().error.code, 'IDEMPOTENCY_KEY_REUSED');
    });

    test('invoices: totals computed by Tandem, references checked, transitions enforced', async () => {
      const customer = await createCustomer();
      const res = await t.call('POST', '/api/v1/invoices', {
        customer_id: customer.id,
        currency: 'usd',
        number: 'INV-1',
        due_date: '2027-01-31',
        line_items: [
          { description: 'Seats', quantity: 3, unit_amount: 1200 },
          { description: 'Setup', quantity: 1, unit_amount: 5000 },
        ],
      });
      assert.equal(res.statusCode, 201, res.body);
      const invoice = res.json<Json & { id: string }>();
      assert.match(invoice.id, /^inv_/);
      assert.equal(invoice.status, 'draft');
      assert.equal(invoice.subtotal, 8600);
      assert.equal(invoice.total, 8600);
      assert.deepEqual(
        (invoice.line_items as Array<{ amount: number }>).map((l) => l.amount),
        [3600, 5000],
      );

      const bad = await t.call('POST', '/api/v1/invoices', { customer_id: 'cus_01ARZ3NDEKTSV4RRFFQ69G5FAV', currency: 'usd' });
      assert.equal(bad.statusCode, 422);
      assert.equal(bad.json<{ error: { code: string } }>().error.code, 'INVALID_REFERENCE');

      const paidFromDraft = await t.call('PATCH', `/api/v1/invoices/${invoice.id}`, { status: 'paid' });
      assert.equal(paidFromDraft.statusCode, 422);
      assert.equal(paidFromDraft.json<{ error: { code: string } }>().error.code, 'INVALID_STATE_TRANSITION');

      const opened = await t.call('PATCH', `/api/v1/invoices/${invoice.id}`, { status: 'open' });
      assert.equal(opened.json<Json>().status, 'open');
      const relined = await t.call('PATCH', `/api/v1/invoices/${invoice.id}`, { line_items: [] });
      assert.equal(relined.statusCode, 422);
      assert.equal(relined.json<{ error: { code: string } }>().error.code, 'IMMUTABLE_FIELD');
      const undeletable = await t.call('DELETE', `/api/v1/invoices/${invoice.id}`);
      assert.equal(undeletable.statusCode, 422);
      const paid = await t.call('PATCH', `/api/v1/invoices/${invoice.id}`, { status: 'paid' });
      assert.equal(paid.json<Json>().status, 'paid');
      const voided = await t.call('PATCH', `/api/v1/invoices/${invoice.id}`, { status: 'void' });
      assert.equal(voided.statusCode, 422);

      const byCustomer = await t.call('GET', `/api/v1/invoices?customer_id=${customer.id}&status=paid`);
      assert.deepEqual(
        byCustomer.json<{ data: Array<{ id: string }> }>().data.map((r) => r.id),
        [invoice.id],
      );
      // A deleted customer can no longer be billed.
      await t.call('DELETE', `/api/v1/customers/${customer.id}`);
      const toDeleted = await t.call('POST', '/api/v1/invoices', { customer_id: customer.id, currency: 'usd' });
      assert.equal(toDeleted.statusCode, 422);
    });

    test('workspaces are isolated: another workspace sees none of these records', async () => {
      const mine = await createCustomer({ email: 'mine@example.com' });
      const created = await t.call('POST', '/api/v1/workspaces', { name: 'Other' });
      assert.equal(created.statusCode, 201, created.body);
      const otherKey = created.json<{ api_key: { key: string } }>().api_key.key;
      const as = { authorization: `Bearer ${otherKey}` };
      const get = await t.call('GET', `/api/v1/customers/${mine.id}`, undefined, as);
      assert.equal(get.statusCode, 404);
      const list = await t.call('GET', '/api/v1/customers?email=mine@example.com', undefined, as);
      assert.deepEqual(list.json<{ data: Json[] }>().data, []);
      const patch = await t.call('PATCH', `/api/v1/customers/${mine.id}`, { name: 'hijack' }, as);
      assert.equal(patch.statusCode, 404);
      const del = await t.call('DELETE', `/api/v1/customers/${mine.id}`, undefined, as);
      assert.equal(del.statusCode, 404);
      const invoice = await t.call('POST', '/api/v1/invoices', { customer_id: mine.id, currency: 'usd' }, as);
      assert.equal(invoice.statusCode, 422);
      // Only admins of the default workspace create workspaces.
      const nested = await t.call('POST', '/api/v1/workspaces', { name: 'Nested' }, as);
      assert.equal(nested.statusCode, 403);
      const still = await t.call('GET', `/api/v1/customers/${mine.id}`);
      assert.equal(still.json<Json>().name, 'Ada Lovelace');
    });

    test('roles: a viewer reads but cannot write; a revoked key stops working', async () => {
      const created = await t.call('POST', '/api/v1/api-keys', { name: 'ro', role: 'viewer' });
      assert.equal(created.statusCode, 201);
      const { key, id } = created.json<{ key: string; id: string }>();
      const as = { authorization: `Bearer ${key}` };
      assert.equal((await t.call('GET', '/api/v1/customers', undefined, as)).statusCode, 200);
      const write = await t.call('POST', '/api/v1/customers', { name: 'x' }, as);
      assert.equal(write.statusCode, 403);
      assert.equal(write.json<{ error: { code: string } }>().error.code, 'FORBIDDEN');
      assert.equal((await t.call('GET', '/api/v1/api-keys', undefined, as)).statusCode, 403);
      const listed = await t.call('GET', '/api/v1/api-keys');
      assert.ok(!listed.body.includes(key), 'keys are never answered after creation');
      assert.equal((await t.call('DELETE', `/api/v1/api-keys/${id}`)).statusCode, 200);
      assert.equal((await t.call('GET', '/api/v1/customers', undefined, as)).statusCode, 401);
    });

    test('the OpenAPI document describes every entity route', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
      assert.equal(res.statusCode, 200);
      const doc = res.json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
      assert.equal(doc.openapi, '3.1.0');
      for (const plural of ['customers', 'invoices']) {
        assert.deepEqual(Object.keys(doc.paths[`/api/v1/${plural}`] ?? {}).sort(), ['get', 'post']);
        assert.deepEqual(Object.keys(doc.paths[`/api/v1/${plural}/{id}`] ?? {}).sort(), ['delete', 'get', 'patch']);
      }
      const page = await t.app.inject({ method: 'GET', url: '/docs/' });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /swagger/i);
    });
  });
}
