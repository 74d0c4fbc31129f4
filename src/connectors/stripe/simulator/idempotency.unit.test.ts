// Idempotency keys as Stripe keeps them, exercised through stripe-node (which sends an automatic
// key on every POST and reuses it on its retries).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
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

test('a repeated key replays the first answer: same customer, one customer', async () => {
  const key = testKey();
  const stripe = stripeClient(sim, key);
  const first = await stripe.customers.create({ email: 'ada@example.com' }, { idempotencyKey: 'create-ada' });
  const again = await stripe.customers.create({ email: 'ada@example.com' }, { idempotencyKey: 'create-ada' });
  assert.equal(again.id, first.id);
  assert.deepEqual({ ...again }, { ...first });
  assert.equal(again.lastResponse.headers['idempotent-replayed'], 'true');
  assert.equal(again.lastResponse.headers['original-request'], first.lastResponse.requestId);
  assert.equal(first.lastResponse.headers['idempotent-replayed'], undefined);
  assert.equal(sim.admin.customers(key).length, 1);
  assert.equal(sim.admin.events(key).length, 1);
  assert.equal(sim.admin.requests(key).idempotentReplays, 1);
  // Keys belong to an account: another account's same key is a new request.
  const other = testKey();
  const elsewhere = await stripeClient(sim, other).customers.create({ email: 'ada@example.com' }, { idempotencyKey: 'create-ada' });
  assert.notEqual(elsewhere.id, first.id);
});

test('the same key with other parameters or on another endpoint is an idempotency_error', async () => {
  const key = testKey();
  const stripe = stripeClient(sim, key);
  const c = await stripe.customers.create({ email: 'ada@example.com' }, { idempotencyKey: 'k1' });
  await assert.rejects(stripe.customers.create({ email: 'bob@example.com' }, { idempotencyKey: 'k1' }), (e: Stripe.errors.StripeError) => {
    assert.ok(e instanceof Stripe.errors.StripeIdempotencyError);
    assert.equal(e.statusCode, 400);
    assert.match(e.message, /same parameters/);
    return true;
  });
  await assert.rejects(stripe.customers.update(c.id, { email: 'ada@example.com' }, { idempotencyKey: 'k1' }), (e: Stripe.errors.StripeError) => {
    assert.ok(e instanceof Stripe.errors.StripeIdempotencyError);
    assert.match(e.message, /same endpoint/);
    return true;
  });
  assert.equal(sim.admin.customers(key).length, 1);
});

test('validation errors are not stored: the key can be used again with good parameters', async () => {
  const stripe = stripeClient(sim, testKey());
  await assert.rejects(stripe.customers.create({ email: 'bad' }, { idempotencyKey: 'k2' }), (e: Stripe.errors.StripeError) => e.statusCode === 400);
  await assert.rejects(stripe.customers.create({ email: 'bad' }, { idempotencyKey: 'k2' }), (e: Stripe.errors.StripeError) => e.code === 'email_invalid');
});

test('a write applied but answered 500 is retried by the SDK with the same key: exactly one customer', async () => {
  const key = testKey();
  sim.admin.setFaults({ account: key, errorRate: 1, errorPhase: 'after' });
  const stripe = stripeClient(sim, key, { maxNetworkRetries: 2 });
  const c = await stripe.customers.create({ email: 'once@example.com' });
  assert.equal(c.lastResponse.headers['idempotent-replayed'], 'true');
  assert.equal(sim.admin.customers(key).length, 1);
  assert.equal(sim.admin.customers(key)[0]?.id, c.id);
  const log = sim.admin.requestLog(key);
  assert.deepEqual(log.map((r) => [r.status, r.fault, r.replayed]), [[500, 'error_after', false], [200, null, true]]);
  assert.equal(log[0]?.idempotencyKey, log[1]?.idempotencyKey);
  // Without retries the caller sees the 500, though the customer exists.
  const noRetry = stripeClient(sim, key, { maxNetworkRetries: 0 });
  await assert.rejects(noRetry.customers.create({ email: 'twice@example.com' }), (e: Stripe.errors.StripeError) => e.statusCode === 500 && e.type === 'StripeAPIError');
  assert.equal(sim.admin.customers(key).length, 2);
  sim.admin.clearFaults(key);
});

test('a 500 from the endpoint is stored and replayed for its key (Stripe keeps 500s too)', async () => {
  const key = testKey();
  sim.admin.setFaults({ account: key, errorRate: 1, errorPhase: 'stored' });
  const stripe = stripeClient(sim, key, { maxNetworkRetries: 1 });
  await assert.rejects(stripe.customers.create({ name: 'x' }, { idempotencyKey: 'k500' }), (e: Stripe.errors.StripeError) => {
    assert.equal(e.statusCode, 500);
    // Marked "do not retry", so the SDK did not retry it despite maxNetworkRetries.
    assert.equal(e.headers?.['stripe-should-retry'], 'false');
    return true;
  });
  assert.equal(sim.admin.requests(key).total, 1);
  sim.admin.clearFaults(key);
  await assert.rejects(stripe.customers.create({ name: 'x' }, { idempotencyKey: 'k500' }), (e: Stripe.errors.StripeError) => {
    assert.equal(e.statusCode, 500);
    assert.equal(e.headers?.['idempotent-replayed'], 'true');
    return true;
  });
  assert.equal(sim.admin.customers(key).length, 0);
  assert.equal(sim.admin.requests(key).idempotentReplays, 1);
  // A new key runs for real.
  await stripe.customers.create({ name: 'x' }, { idempotencyKey: 'k500-2' });
  assert.equal(sim.admin.customers(key).length, 1);
});

test('a duplicate while the first is in flight gets 409, which the SDK retries into the replay', async () => {
  const key = testKey();
  sim.admin.setFaults({ account: key, latencyMs: 300 });
  const noRetry = stripeClient(sim, key, { maxNetworkRetries: 0 });
  const results = await Promise.allSettled([
    noRetry.customers.create({ name: 'race' }, { idempotencyKey: 'race-1' }),
    new Promise((resolve) => setTimeout(resolve, 50)).then(() => noRetry.customers.create({ name: 'race' }, { idempotencyKey: 'race-1' })),
  ]);
  assert.equal(results[0].status, 'fulfilled');
  assert.equal(results[1].status, 'rejected');
  const conflict: unknown = results[1].reason;
  assert.ok(conflict instanceof Stripe.errors.StripeError);
  assert.equal(conflict.statusCode, 409);
  assert.equal(conflict.code, 'idempotency_key_in_use');

  const withRetry = stripeClient(sim, key, { maxNetworkRetries: 2 });
  const [a, b] = await Promise.all([
    withRetry.customers.create({ name: 'race' }, { idempotencyKey: 'race-2' }),
    new Promise((resolve) => setTimeout(resolve, 50)).then(() => withRetry.customers.create({ name: 'race' }, { idempotencyKey: 'race-2' })),
  ]);
  assert.equal(a.id, b.id);
  assert.equal(sim.admin.customers(key).length, 2);
  sim.admin.clearFaults(key);
});
