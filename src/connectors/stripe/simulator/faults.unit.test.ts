// The rate limit and every injected fault has an effect a test can see.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Stripe from 'stripe';
import { startStripeSimulator, type StripeSimulator } from './index.ts';
import { startReceiver, stripeClient, testKey } from './testing.ts';

let sim: StripeSimulator;
before(async () => {
  sim = await startStripeSimulator({ rateLimitPerSecond: 0, delivery: { retryDelaysMs: [50] } });
});
after(async () => {
  await sim.stop();
});

function isStatus(status: number) {
  return (e: unknown): boolean => e instanceof Stripe.errors.StripeError && e.statusCode === status;
}

describe('rate limit', () => {
  test('25 requests a second per account by default: the SDK sees 429 rate_limit', async () => {
    const limited = await startStripeSimulator();
    try {
      const key = testKey();
      const stripe = stripeClient(limited, key);
      const results = await Promise.allSettled(Array.from({ length: 60 }, () => stripe.customers.list({ limit: 1 })));
      const refused = results.filter((r) => r.status === 'rejected').map((r) => r.reason as Stripe.errors.StripeError);
      assert.ok(refused.length >= 10, `expected at least 10 refusals, got ${refused.length}`);
      for (const error of refused) {
        assert.ok(error instanceof Stripe.errors.StripeRateLimitError);
        assert.equal(error.statusCode, 429);
        assert.equal(error.code, 'rate_limit');
        assert.equal((error.raw as { type: string }).type, 'invalid_request_error');
      }
      assert.equal(limited.admin.requests(key).rateLimited, refused.length);
      // Another account has its own bucket.
      await stripeClient(limited, testKey()).customers.list();
      // The bucket refills.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await stripe.customers.list();
    } finally {
      await limited.stop();
    }
  });

  test('rateLimitPerSecond 0 turns it off', async () => {
    const key = testKey();
    const stripe = stripeClient(sim, key);
    const results = await Promise.allSettled(Array.from({ length: 60 }, () => stripe.customers.list({ limit: 1 })));
    assert.ok(results.every((r) => r.status === 'fulfilled'));
    assert.equal(sim.admin.requests(key).rateLimited, 0);
  });
});

describe('API faults', () => {
  test('rateLimitBurst: the next N requests get 429, set through POST /_sim/faults', async () => {
    const key = testKey();
    const stripe = stripeClient(sim, key);
    const set = await fetch(`${sim.url}/_sim/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ account: key, rateLimitBurst: 2 }),
    });
    assert.equal(set.status, 200);
    const snapshot = (await (await fetch(`${sim.url}/_sim/faults`)).json()) as { accounts: Record<string, { rateLimitBurst: number }> };
    assert.equal(snapshot.accounts[key]?.rateLimitBurst, 2);
    await assert.rejects(stripe.customers.list(), isStatus(429));
    await assert.rejects(stripe.customers.create({ name: 'x' }), isStatus(429));
    await stripe.customers.create({ name: 'x' });
    assert.equal(sim.admin.customers(key).length, 1);
    assert.equal(sim.admin.requests(key).rateLimited, 2);
    const bad = await fetch(`${sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify({ errorRate: 2 }) });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${sim.url}/_sim/faults?account=${key}`, { method: 'DELETE' })).status, 200);
    assert.deepEqual(sim.admin.faults().accounts, {});
  });

  test('errorRate before the write: 500 api_error and nothing changes; the SDK retries it', async () => {
    const key = testKey();
    sim.admin.setFaults({ account: key, errorRate: 1 });
    const stripe = stripeClient(sim, key);
    await assert.rejects(stripe.customers.create({ name: 'x' }), (e: unknown) => e instanceof Stripe.errors.StripeAPIError && e.statusCode === 500);
    assert.equal(sim.admin.customers(key).length, 0);
    assert.equal(sim.admin.requests(key).injectedErrors, 1);
    // Half the requests, reproducibly: the same seed gives the same pattern.
    const pattern = async (): Promise<boolean[]> => {
      sim.admin.setFaults({ account: key, errorRate: 0.5, seed: 7 });
      const out: boolean[] = [];
      for (let i = 0; i < 16; i += 1) {
        out.push(await stripe.customers.list().then(() => true, () => false));
      }
      return out;
    };
    const first = await pattern();
    assert.deepEqual(await pattern(), first);
    assert.ok(first.includes(true) && first.includes(false));
    sim.admin.setFaults({ account: key, errorRate: 0.5, seed: 7 });
    const retrying = stripeClient(sim, key, { maxNetworkRetries: 5 });
    await retrying.customers.create({ name: 'made it' });
    assert.equal(sim.admin.customers(key).length, 1);
    sim.admin.clearFaults(key);
  });

  test('global faults apply to every account; an account’s own settings win', async () => {
    const a = testKey();
    const b = testKey();
    sim.admin.setFaults({ errorRate: 1 });
    sim.admin.setFaults({ account: b, errorRate: 0 });
    try {
      await assert.rejects(stripeClient(sim, a).customers.list(), isStatus(500));
      await stripeClient(sim, b).customers.list();
    } finally {
      sim.admin.clearFaults();
    }
    await stripeClient(sim, a).customers.list();
  });

  test('latencyMs slows every request', async () => {
    const key = testKey();
    sim.admin.setFaults({ account: key, latencyMs: 250 });
    const started = performance.now();
    await stripeClient(sim, key).customers.list();
    assert.ok(performance.now() - started >= 240);
    sim.admin.clearFaults(key);
  });

  test('hangRate: the request is never answered, the client times out', async () => {
    const key = testKey();
    sim.admin.setFaults({ account: key, hangRate: 1 });
    const stripe = stripeClient(sim, key, { timeout: 300 });
    await assert.rejects(stripe.customers.create({ name: 'x' }), (e: unknown) => e instanceof Stripe.errors.StripeConnectionError);
    assert.equal(sim.admin.customers(key).length, 0);
    assert.ok(sim.admin.requests(key).hung >= 1);
    // After the write: applied, and still no answer.
    sim.admin.setFaults({ account: key, hangRate: 1, hangPhase: 'after' });
    await assert.rejects(stripe.customers.create({ name: 'y' }), (e: unknown) => e instanceof Stripe.errors.StripeConnectionError);
    assert.equal(sim.admin.customers(key).length, 1);
    // The SDK's retry after its timeout carries the same key: it gets the stored answer, and the
    // customer is still made once.
    const retrying = stripeClient(sim, key, { timeout: 300, maxNetworkRetries: 1 });
    const made = await retrying.customers.create({ name: 'z' });
    assert.equal(made.lastResponse.headers['idempotent-replayed'], 'true');
    assert.deepEqual(sim.admin.customers(key).map((c) => c.name), ['y', 'z']);
    sim.admin.clearFaults(key);
  });
});

describe('webhook faults', () => {
  async function setup(faults: Parameters<StripeSimulator['admin']['setFaults']>[0]) {
    const key = testKey();
    const stripe = stripeClient(sim, key);
    const receiver = await startReceiver();
    await stripe.webhookEndpoints.create({ url: receiver.url, enabled_events: ['*'] });
    sim.admin.setFaults({ ...faults, account: key });
    return { key, stripe, receiver };
  }

  test('dropRate: deliveries are lost', async () => {
    const { key, stripe, receiver } = await setup({ dropRate: 1 });
    await stripe.customers.create({ name: 'x' });
    assert.ok(await sim.admin.waitForDeliveries(2000));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(receiver.received.length, 0);
    assert.deepEqual(sim.admin.deliveries(key).map((d) => d.status), ['dropped']);
    await receiver.close();
  });

  test('duplicateRate: the same event arrives twice', async () => {
    const { key, stripe, receiver } = await setup({ duplicateRate: 1 });
    await stripe.customers.create({ name: 'x' });
    const got = await receiver.waitFor(2);
    const ids = got.map((r) => (JSON.parse(r.body) as { id: string }).id);
    assert.equal(ids[0], ids[1]);
    assert.deepEqual(sim.admin.deliveries(key).map((d) => d.duplicate), [false, true]);
    await receiver.close();
  });

  test('delayMs: deliveries wait before their first attempt', async () => {
    const { stripe, receiver } = await setup({ delayMs: 300 });
    const started = performance.now();
    await stripe.customers.create({ name: 'x' });
    await receiver.waitFor(1);
    assert.ok(performance.now() - started >= 290);
    await receiver.close();
  });

  test('reorder: deliveries of a window arrive shuffled', async () => {
    const { key, stripe, receiver } = await setup({ reorder: true, reorderWindowMs: 150, seed: 3 });
    const c = await stripe.customers.create({ name: 'v0' });
    for (let i = 1; i < 5; i += 1) await stripe.customers.update(c.id, { name: `v${i}` });
    const got = await receiver.waitFor(5);
    const order = got.map((r) => (JSON.parse(r.body) as { id: string }).id);
    const created = sim.admin.events(key).map((e) => e.id);
    assert.deepEqual([...order].sort(), [...created].sort());
    assert.notDeepEqual(order, created);
    await receiver.close();
  });
});

describe('admin routes', () => {
  test('accounts, customers, requests and deliveries as JSON', async () => {
    const key = testKey();
    const stripe = stripeClient(sim, key);
    const c = await stripe.customers.create({ name: 'x' });
    await stripe.customers.del(c.id);
    const accounts = (await (await fetch(`${sim.url}/_sim/accounts`)).json()) as { data: { key: string; deletedCustomers: number }[] };
    assert.equal(accounts.data.find((a) => a.key === key)?.deletedCustomers, 1);
    const customers = (await (await fetch(`${sim.url}/_sim/customers?account=${key}`)).json()) as { data: { id: string; deleted: boolean }[] };
    assert.deepEqual(customers.data.map((x) => [x.id, x.deleted]), [[c.id, true]]);
    const requests = (await (await fetch(`${sim.url}/_sim/requests?account=${key}`)).json()) as { stats: { byRoute: Record<string, number> } };
    assert.deepEqual(requests.stats.byRoute, { 'POST /v1/customers': 1, 'DELETE /v1/customers/:id': 1 });
    const deliveries = (await (await fetch(`${sim.url}/_sim/deliveries?account=${key}`)).json()) as { data: unknown[] };
    assert.deepEqual(deliveries.data, []);
    assert.equal((await fetch(`${sim.url}/_sim/nope`)).status, 404);
  });
});
