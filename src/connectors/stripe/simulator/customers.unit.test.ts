// Customers through the official SDK: accounts by key, CRUD with Stripe's update semantics,
// validation errors, cursor pagination and search.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Stripe from 'stripe';
import { startStripeSimulator, type StripeSimulator } from './index.ts';
import { stripeClient, testKey } from './testing.ts';

let sim: StripeSimulator;
before(async () => {
  sim = await startStripeSimulator({ rateLimitPerSecond: 0 });
});
after(async () => {
  await sim.stop();
});

async function rejects(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Stripe.errors.StripeError, `expected a StripeError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the call to fail');
}

describe('accounts', () => {
  test('every sk_test_ key is its own account', async () => {
    const a = stripeClient(sim, testKey());
    const b = stripeClient(sim, testKey());
    const created = await a.customers.create({ email: 'ada@example.com' });
    assert.equal((await a.customers.retrieve(created.id)).id, created.id);
    const missing = await rejects(b.customers.retrieve(created.id));
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.code, 'resource_missing');
    assert.equal((await b.customers.list()).data.length, 0);
    assert.equal((await a.customers.list()).data.length, 1);
  });

  test('a missing, malformed or live key gets 401 in Stripe’s error shape', async () => {
    for (const key of ['sk_live_abc123', 'pk_test_abc', 'nonsense']) {
      const error = await rejects(stripeClient(sim, key).customers.list());
      assert.ok(error instanceof Stripe.errors.StripeAuthenticationError);
      assert.equal(error.statusCode, 401);
      assert.equal(error.type, 'StripeAuthenticationError');
      assert.match(error.message, /Invalid API Key provided/);
    }
    const res = await fetch(`${sim.url}/v1/customers`);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /You did not provide an API key/);
    assert.match(res.headers.get('request-id') ?? '', /^req_/);
  });

  test('basic auth with the key as user works like bearer auth', async () => {
    const key = testKey();
    const created = await stripeClient(sim, key).customers.create({ name: 'Basic' });
    const res = await fetch(`${sim.url}/v1/customers/${created.id}`, {
      headers: { Authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` },
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { name: string }).name, 'Basic');
  });
});

describe('customers', () => {
  test('create answers the full customer object', async () => {
    const stripe = stripeClient(sim, testKey());
    const c = await stripe.customers.create({
      email: 'ada@example.com',
      name: 'Ada Lovelace',
      phone: '+44 20 7946 0000',
      description: 'first',
      address: { line1: '12 St James’s Sq', city: 'London', country: 'GB' },
      metadata: { tandem_id: 'cus_local_1' },
    });
    assert.match(c.id, /^cus_[A-Za-z0-9]{14}$/);
    assert.equal(c.object, 'customer');
    assert.equal(c.livemode, false);
    assert.ok(Math.abs(c.created - Date.now() / 1000) < 5);
    assert.deepEqual(c.address, {
      city: 'London',
      country: 'GB',
      line1: '12 St James’s Sq',
      line2: null,
      postal_code: null,
      state: null,
    });
    assert.deepEqual(c.metadata, { tandem_id: 'cus_local_1' });
    for (const field of ['balance', 'currency', 'default_source', 'delinquent', 'invoice_prefix', 'preferred_locales', 'shipping', 'tax_exempt', 'test_clock']) {
      assert.ok(field in c, `missing ${field}`);
    }
    assert.equal(c.balance, 0);
    assert.equal(c.tax_exempt, 'none');
    assert.match(c.lastResponse.requestId, /^req_/);
  });

  test('update merges metadata, and an empty string clears a field or a metadata key', async () => {
    const stripe = stripeClient(sim, testKey());
    const c = await stripe.customers.create({ email: 'ada@example.com', name: 'Ada', metadata: { a: '1', b: '2' } });
    const u = await stripe.customers.update(c.id, { name: '', phone: '+1 555', metadata: { a: '', c: '3' } });
    assert.equal(u.name, null);
    assert.equal(u.phone, '+1 555');
    assert.equal(u.email, 'ada@example.com');
    assert.deepEqual(u.metadata, { b: '2', c: '3' });
    // metadata='' clears all of it; a sub-hash such as address replaces the whole address.
    await stripe.customers.update(c.id, { address: { city: 'Paris', line1: '1 rue' } });
    const v = await stripe.customers.update(c.id, { metadata: '', address: { city: 'Lyon' } });
    assert.deepEqual(v.metadata, {});
    assert.equal(v.address?.city, 'Lyon');
    assert.equal(v.address.line1, null);
    assert.deepEqual(await stripe.customers.retrieve(c.id), v);
  });

  test('delete answers the stub, and a deleted customer is retrieved as one', async () => {
    const key = testKey();
    const stripe = stripeClient(sim, key);
    const c = await stripe.customers.create({ name: 'Gone' });
    const deleted = await stripe.customers.del(c.id);
    assert.deepEqual({ id: deleted.id, object: deleted.object, deleted: deleted.deleted }, { id: c.id, object: 'customer', deleted: true });
    const again = await stripe.customers.retrieve(c.id);
    assert.equal(again.deleted, true);
    assert.equal(Object.keys(again).filter((k) => k !== 'lastResponse').length, 3);
    assert.equal((await rejects(stripe.customers.update(c.id, { name: 'x' }))).statusCode, 404);
    assert.equal((await rejects(stripe.customers.del(c.id))).statusCode, 404);
    assert.equal((await stripe.customers.list()).data.length, 0);
    const held = sim.admin.customers(key);
    assert.equal(held.length, 1);
    assert.equal(held[0]?.deleted, true);
    assert.equal(held[0].name, 'Gone');
    assert.equal(sim.admin.customers(key, { includeDeleted: false }).length, 0);
  });

  test('unknown ids, unknown parameters and bad values are 4xx like Stripe’s', async () => {
    const stripe = stripeClient(sim, testKey());
    const missing = await rejects(stripe.customers.retrieve('cus_doesnotexist'));
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.code, 'resource_missing');
    assert.equal(missing.param, 'id');
    assert.equal(missing.message, "No such customer: 'cus_doesnotexist'");

    const unknown = await rejects(stripe.customers.create({ nickname: 'x' } as Stripe.CustomerCreateParams));
    assert.ok(unknown instanceof Stripe.errors.StripeInvalidRequestError);
    assert.equal(unknown.code, 'parameter_unknown');
    assert.equal(unknown.param, 'nickname');
    const nested = await rejects(stripe.customers.create({ address: { town: 'x' } } as unknown as Stripe.CustomerCreateParams));
    assert.equal(nested.param, 'address[town]');

    const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    const manyKeys = await rejects(stripe.customers.create({ metadata: tooMany }));
    assert.equal(manyKeys.statusCode, 400);
    assert.equal(manyKeys.param, 'metadata');
    const longKey = await rejects(stripe.customers.create({ metadata: { ['k'.repeat(41)]: 'v' } }));
    assert.equal(longKey.param, `metadata[${'k'.repeat(41)}]`);
    const longValue = await rejects(stripe.customers.create({ metadata: { k: 'v'.repeat(501) } }));
    assert.equal(longValue.param, 'metadata[k]');
    const email = await rejects(stripe.customers.create({ email: 'not-an-email' }));
    assert.equal(email.code, 'email_invalid');
    // Fifty keys, forty characters, five hundred characters are fine.
    const ok = await stripe.customers.create({
      metadata: { ...Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`k${i}`, 'v'])), ['k'.repeat(40)]: 'v'.repeat(500) },
    });
    assert.equal(Object.keys(ok.metadata).length, 50);
    assert.equal((await stripe.customers.list({ limit: 100 })).data.length, 1);
  });
});

describe('lists', () => {
  test('newest first, limit, has_more, starting_after and ending_before', async () => {
    const stripe = stripeClient(sim, testKey());
    const ids: string[] = [];
    for (let i = 0; i < 7; i += 1) ids.push((await stripe.customers.create({ name: `c${i}` })).id);
    const newestFirst = [...ids].reverse();

    const first = await stripe.customers.list({ limit: 3 });
    assert.equal(first.object, 'list');
    assert.equal(first.url, '/v1/customers');
    assert.deepEqual(first.data.map((c) => c.id), newestFirst.slice(0, 3));
    assert.equal(first.has_more, true);
    const second = await stripe.customers.list({ limit: 3, starting_after: newestFirst[2] ?? '' });
    assert.deepEqual(second.data.map((c) => c.id), newestFirst.slice(3, 6));
    assert.equal(second.has_more, true);
    const last = await stripe.customers.list({ limit: 3, starting_after: newestFirst[5] ?? '' });
    assert.deepEqual(last.data.map((c) => c.id), newestFirst.slice(6));
    assert.equal(last.has_more, false);

    const back = await stripe.customers.list({ limit: 2, ending_before: newestFirst[5] ?? '' });
    assert.deepEqual(back.data.map((c) => c.id), newestFirst.slice(3, 5));
    assert.equal(back.has_more, true);
    const top = await stripe.customers.list({ limit: 5, ending_before: newestFirst[2] ?? '' });
    assert.deepEqual(top.data.map((c) => c.id), newestFirst.slice(0, 2));
    assert.equal(top.has_more, false);

    assert.equal((await stripe.customers.list()).data.length, 7);
    const all = await stripe.customers.list({ limit: 2 }).autoPagingToArray({ limit: 100 });
    assert.deepEqual(all.map((c) => c.id), newestFirst);
    const backwards = await stripe.customers.list({ limit: 2, ending_before: newestFirst[6] ?? '' }).autoPagingToArray({ limit: 100 });
    assert.deepEqual(backwards.map((c) => c.id), ids.slice(1));

    const both = await rejects(stripe.customers.list({ starting_after: ids[0] ?? '', ending_before: ids[1] ?? '' }));
    assert.equal(both.statusCode, 400);
    assert.equal((await rejects(stripe.customers.list({ limit: 101 }))).param, 'limit');
    assert.equal((await rejects(stripe.customers.list({ limit: 0 }))).param, 'limit');
    const cursor = await rejects(stripe.customers.list({ starting_after: 'cus_nope' }));
    assert.equal(cursor.statusCode, 404);
    assert.equal(cursor.param, 'starting_after');
    assert.deepEqual((await stripe.customers.list({ email: 'nobody@example.com' })).data, []);
  });
});

describe('search', () => {
  test('by metadata and by email, with pages', async () => {
    const stripe = stripeClient(sim, testKey());
    const ada = await stripe.customers.create({ email: 'ada@example.com', metadata: { tandem_id: 'rec_1' } });
    await stripe.customers.create({ email: 'bob@example.com', metadata: { tandem_id: 'rec_2' } });
    for (let i = 0; i < 3; i += 1) await stripe.customers.create({ email: `x${i}@example.com`, metadata: { batch: 'b' } });

    const byMeta = await stripe.customers.search({ query: "metadata['tandem_id']:'rec_1'" });
    assert.equal(byMeta.object, 'search_result');
    assert.equal(byMeta.url, '/v1/customers/search');
    assert.deepEqual(byMeta.data.map((c) => c.id), [ada.id]);
    assert.equal(byMeta.has_more, false);
    assert.equal(byMeta.next_page, null);
    assert.deepEqual((await stripe.customers.search({ query: 'email:"ADA@example.com"' })).data.map((c) => c.id), [ada.id]);
    assert.equal((await stripe.customers.search({ query: "email:'ada@example.com' AND metadata['tandem_id']:'rec_2'" })).data.length, 0);
    assert.equal((await stripe.customers.search({ query: "email:'ada@example.com' OR metadata['tandem_id']:'rec_2'" })).data.length, 2);

    const page = await stripe.customers.search({ query: "metadata['batch']:'b'", limit: 2 });
    assert.equal(page.has_more, true);
    assert.ok(page.next_page);
    const all = await stripe.customers.search({ query: "metadata['batch']:'b'", limit: 2 }).autoPagingToArray({ limit: 10 });
    assert.equal(all.length, 3);

    await stripe.customers.del(ada.id);
    assert.equal((await stripe.customers.search({ query: "metadata['tandem_id']:'rec_1'" })).data.length, 0);
    const bad = await rejects(stripe.customers.search({ query: 'nonsense' }));
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.param, 'query');
  });

  test('searchLagMs: the index shows customers as they were a while ago', async () => {
    const lagging = await startStripeSimulator({ rateLimitPerSecond: 0, searchLagMs: 150 });
    try {
      const stripe = stripeClient(lagging, testKey());
      await stripe.customers.create({ email: 'late@example.com' });
      assert.equal((await stripe.customers.search({ query: "email:'late@example.com'" })).data.length, 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal((await stripe.customers.search({ query: "email:'late@example.com'" })).data.length, 1);
    } finally {
      await lagging.stop();
    }
  });
});
