// Webhook endpoints, events and signed deliveries through the official SDK.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type Stripe from 'stripe';
import { startStripeSimulator, type StripeSimulator } from './index.ts';
import { startReceiver, stripeClient, testKey } from './testing.ts';

let sim: StripeSimulator;
before(async () => {
  sim = await startStripeSimulator({ rateLimitPerSecond: 0, delivery: { retryDelaysMs: [50, 100, 100, 100], timeoutMs: 2000 } });
});
after(async () => {
  await sim.stop();
});

describe('webhook endpoints', () => {
  test('create shows the secret once; list, retrieve, update, delete', async () => {
    const stripe = stripeClient(sim, testKey());
    const created = await stripe.webhookEndpoints.create({ url: 'https://example.com/hook', enabled_events: ['customer.created', 'customer.updated'] });
    assert.match(created.id, /^we_/);
    assert.match(created.secret ?? '', /^whsec_/);
    assert.equal(created.status, 'enabled');
    assert.deepEqual(created.enabled_events, ['customer.created', 'customer.updated']);
    const fetched = await stripe.webhookEndpoints.retrieve(created.id);
    assert.equal(fetched.secret, undefined);
    assert.equal(fetched.url, 'https://example.com/hook');
    const updated = await stripe.webhookEndpoints.update(created.id, { disabled: true, enabled_events: ['*'], url: 'https://example.com/h2' });
    assert.equal(updated.status, 'disabled');
    assert.deepEqual(updated.enabled_events, ['*']);
    assert.equal(updated.url, 'https://example.com/h2');
    await stripe.webhookEndpoints.create({ url: 'https://example.com/other', enabled_events: ['*'] });
    const listed = await stripe.webhookEndpoints.list();
    assert.equal(listed.data.length, 2);
    assert.equal(listed.data[1]?.id, created.id);
    const deleted = await stripe.webhookEndpoints.del(created.id);
    assert.equal(deleted.deleted, true);
    await assert.rejects(stripe.webhookEndpoints.retrieve(created.id), (e: Stripe.errors.StripeError) => e.statusCode === 404);
    await assert.rejects(
      stripe.webhookEndpoints.create({ url: 'https://example.com/x', enabled_events: ['customer.exploded' as 'customer.created'] }),
      (e: Stripe.errors.StripeError) => e.statusCode === 400 && e.param === 'enabled_events[0]',
    );
    await assert.rejects(
      stripe.webhookEndpoints.create({ url: 'not a url', enabled_events: ['*'] }),
      (e: Stripe.errors.StripeError) => e.statusCode === 400 && e.param === 'url',
    );
  });
});

describe('delivery', () => {
  test('every event reaches each matching endpoint, signed so stripe.webhooks.constructEvent accepts it', async () => {
    const key = testKey();
    const stripe = stripeClient(sim, key);
    const all = await startReceiver();
    const onlyDeletes = await startReceiver();
    try {
      const endpoint = await stripe.webhookEndpoints.create({ url: all.url, enabled_events: ['*'] });
      await stripe.webhookEndpoints.create({ url: onlyDeletes.url, enabled_events: ['customer.deleted'] });
      const disabled = await startReceiver();
      const off = await stripe.webhookEndpoints.create({ url: disabled.url, enabled_events: ['*'] });
      await stripe.webhookEndpoints.update(off.id, { disabled: true });

      const c = await stripe.customers.create({ email: 'ada@example.com', name: 'Ada', metadata: { plan: 'free' } });
      await stripe.customers.update(c.id, { name: 'Ada L.', metadata: { plan: 'pro', seats: '3' } });
      await stripe.customers.del(c.id);

      const received = await all.waitFor(3);
      const events = received.map((r) => {
        const header = r.headers['stripe-signature'];
        assert.equal(typeof header, 'string');
        assert.match(String(header), /^t=\d+,v1=[0-9a-f]{64}$/);
        assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
        return stripe.webhooks.constructEvent(r.body, String(header), endpoint.secret ?? '');
      });
      assert.deepEqual(events.map((e) => e.type).sort(), ['customer.created', 'customer.deleted', 'customer.updated']);
      // A tampered body or another secret fails verification.
      const first = received[0];
      assert.ok(first);
      assert.throws(() => stripe.webhooks.constructEvent(first.body.replace('Ada', 'Eve'), String(first.headers['stripe-signature']), endpoint.secret ?? ''));
      assert.throws(() => stripe.webhooks.constructEvent(first.body, String(first.headers['stripe-signature']), 'whsec_wrong'));

      const updated = events.find((e) => e.type === 'customer.updated');
      assert.ok(updated?.type === 'customer.updated');
      assert.equal(updated.data.object.name, 'Ada L.');
      assert.deepEqual(updated.data.previous_attributes, { name: 'Ada', metadata: { plan: 'free', seats: null } });
      assert.match(updated.request?.id ?? '', /^req_/);
      assert.match(updated.request?.idempotency_key ?? '', /^stripe-node-retry-/);
      assert.equal(updated.livemode, false);
      assert.equal(typeof updated.api_version, 'string');
      const created = events.find((e) => e.type === 'customer.created');
      assert.equal(created?.data.previous_attributes, undefined);

      const deletes = await onlyDeletes.waitFor(1);
      assert.equal(deletes.length, 1);
      assert.equal((JSON.parse(deletes[0]?.body ?? '{}') as { type: string }).type, 'customer.deleted');
      assert.ok(await sim.admin.waitForDeliveries(5000));
      assert.equal(disabled.received.length, 0);
      await disabled.close();

      const deliveries = sim.admin.deliveries(key);
      assert.equal(deliveries.length, 4);
      assert.ok(deliveries.every((d) => d.status === 'delivered' && d.attempts.length === 1));
      // pending_webhooks counts endpoints still owed the event: none now.
      const stored = await stripe.events.retrieve(updated.id);
      assert.equal(stored.pending_webhooks, 0);
    } finally {
      await all.close();
      await onlyDeletes.close();
    }
  });

  test('a failing receiver is retried until it accepts, then no more', async () => {
    const key = testKey();
    const stripe = stripeClient(sim, key);
    const receiver = await startReceiver((i) => (i < 2 ? 500 : 200));
    try {
      await stripe.webhookEndpoints.create({ url: receiver.url, enabled_events: ['customer.created'] });
      const c = await stripe.customers.create({ name: 'Retry me' });
      const [accepted] = await receiver.waitFor(1);
      assert.equal((JSON.parse(accepted?.body ?? '{}') as { data: { object: { id: string } } }).data.object.id, c.id);
      assert.ok(await sim.admin.waitForDeliveries(5000));
      assert.equal(receiver.received.length, 3);
      const [delivery] = sim.admin.deliveries(key);
      assert.equal(delivery?.status, 'delivered');
      assert.deepEqual(delivery.attempts.map((a) => a.statusCode), [500, 500, 200]);
    } finally {
      await receiver.close();
    }
  });

  test('a receiver that never accepts is given up after the schedule; an unreachable one too', async () => {
    const key = testKey();
    const stripe = stripeClient(sim, key);
    const receiver = await startReceiver(() => 503);
    const gone = await startReceiver();
    await gone.close();
    try {
      await stripe.webhookEndpoints.create({ url: receiver.url, enabled_events: ['*'] });
      await stripe.webhookEndpoints.create({ url: gone.url, enabled_events: ['*'] });
      await stripe.customers.create({ name: 'Nobody listens' });
      assert.ok(await sim.admin.waitForDeliveries(5000));
      const deliveries = sim.admin.deliveries(key);
      assert.equal(deliveries.length, 2);
      for (const d of deliveries) {
        assert.equal(d.status, 'failed');
        assert.equal(d.attempts.length, 5);
      }
      assert.ok(deliveries.some((d) => d.attempts.every((a) => a.statusCode === null && a.error !== null)));
      const [event] = sim.admin.events(key);
      assert.equal(event?.pending_webhooks, 2);
    } finally {
      await receiver.close();
    }
  });

  test('stop() cancels deliveries in flight and waiting ones', async () => {
    const own = await startStripeSimulator({ rateLimitPerSecond: 0 });
    const key = testKey();
    const stripe = stripeClient(own, key);
    // A receiver that takes the request and never answers.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      await stripe.webhookEndpoints.create({ url: `http://127.0.0.1:${port}/`, enabled_events: ['*'] });
      await stripe.customers.create({ name: 'x' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = performance.now();
      await own.stop();
      assert.ok(performance.now() - started < 1000);
      assert.deepEqual(own.admin.deliveries(key).map((d) => d.status), ['cancelled']);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe('events', () => {
  test('list newest first with type, types[], created filters, and retrieve', async () => {
    let now = Date.now();
    const clocked = await startStripeSimulator({ rateLimitPerSecond: 0, clock: () => new Date(now) });
    try {
      const stripe = stripeClient(clocked, testKey());
      const t0 = Math.floor(now / 1000);
      const c = await stripe.customers.create({ name: 'A' });
      now += 100_000;
      await stripe.customers.update(c.id, { name: 'B' });
      now += 100_000;
      await stripe.customers.update(c.id, { name: 'B' }); // no change: no event
      await stripe.customers.update(c.id, { phone: '+1 555' });
      now += 100_000;
      await stripe.customers.del(c.id);

      const all = await stripe.events.list();
      assert.deepEqual(all.data.map((e) => e.type), ['customer.deleted', 'customer.updated', 'customer.updated', 'customer.created']);
      assert.equal(all.url, '/v1/events');
      assert.deepEqual((await stripe.events.list({ type: 'customer.updated' })).data.map((e) => e.created), [t0 + 200, t0 + 100]);
      assert.equal((await stripe.events.list({ type: 'customer.*' })).data.length, 4);
      assert.deepEqual(
        (await stripe.events.list({ types: ['customer.created', 'customer.deleted'] })).data.map((e) => e.type),
        ['customer.deleted', 'customer.created'],
      );
      assert.equal((await stripe.events.list({ created: { gte: t0 + 100, lt: t0 + 300 } })).data.length, 2);
      assert.equal((await stripe.events.list({ created: { gt: t0 + 200 } })).data.length, 1);
      assert.equal((await stripe.events.list({ created: t0 })).data.length, 1);
      const page = await stripe.events.list({ limit: 1 });
      assert.equal(page.has_more, true);
      const older = await stripe.events.list({ limit: 2, starting_after: page.data[0]?.id ?? '' });
      assert.deepEqual(older.data.map((e) => e.type), ['customer.updated', 'customer.updated']);
      const newer = await stripe.events.list({ ending_before: older.data[0]?.id ?? '' });
      assert.deepEqual(newer.data.map((e) => e.type), ['customer.deleted']);

      const one = await stripe.events.retrieve(page.data[0]?.id ?? '');
      assert.equal(one.type, 'customer.deleted');
      assert.equal(one.object, 'event');
      assert.match(one.id, /^evt_/);
      await assert.rejects(stripe.events.retrieve('evt_nope'), (e: Stripe.errors.StripeError) => e.statusCode === 404 && e.code === 'resource_missing');
      await assert.rejects(stripe.events.list({ type: 'customer.created', types: ['customer.updated'] }), (e: Stripe.errors.StripeError) => e.statusCode === 400);
    } finally {
      await clocked.stop();
    }
  });
});
