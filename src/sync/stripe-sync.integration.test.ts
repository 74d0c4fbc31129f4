// Two-way customer sync with Stripe, end to end: Tandem's API and engine on a real store, the
// Stripe connector through the official SDK, against the in-process Stripe simulator; on both stacks
// (SQLite + the embedded log, PostgreSQL + the Kafka log).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import Stripe from 'stripe';
import { startStripeSimulator, type StripeSimulator } from '../connectors/stripe/simulator/index.ts';
import { createTestApi, type TestApi } from '../../test/support/api.ts';
import { freePort, waitUntil } from '../../test/support/process.ts';
import { kafkaBrokers, uniqueTopicPrefix } from '../../test/support/kafka.ts';
import { STACKS, skipUnlessStack } from '../../test/support/stacks.ts';

type Json = Record<string, unknown> & { id: string };

for (const stack of STACKS) {
  const kind = stack.name.replace('+', '_');
  describe(`Stripe two-way sync on ${stack.name}`, { skip: await skipUnlessStack(stack) }, () => {
    let sim: StripeSimulator;
    let t: TestApi;
    let connectionId: string;
    const secretKey = `sk_test_sync_${kind}_${String(Date.now())}`;
    let stripe: Stripe;

    const stripeCustomers = () => sim.admin.customers(secretKey);
    const writes = (method: string) =>
      sim.admin.requestLog(secretKey).filter((r) => r.method === method && r.path.startsWith('/v1/customers')).length;

    before(async () => {
      sim = await startStripeSimulator({ rateLimitPerSecond: 0, delivery: { retryDelaysMs: [50, 100, 200, 400, 800] } });
      const port = await freePort();
      t = await createTestApi(stack.store, {
        sync: true,
        publicUrl: `http://127.0.0.1:${String(port)}`,
        pollIntervalMs: 500,
        kafka: stack.log === 'kafka' ? { brokers: kafkaBrokers, topicPrefix: uniqueTopicPrefix() } : undefined,
      });
      await t.app.listen({ port, host: '127.0.0.1' });
      const url = new URL(sim.url);
      stripe = new Stripe(secretKey, { host: url.hostname, port: Number(url.port), protocol: 'http', telemetry: false, maxNetworkRetries: 2 });
      const res = await t.call('POST', '/api/v1/connections', {
        connector: 'stripe',
        name: 'Stripe (simulator)',
        credentials: { secretKey },
        settings: { apiBaseUrl: sim.url },
      });
      assert.equal(res.statusCode, 201, res.body);
      connectionId = res.json<Json>().id;
      await t.parts.engine.settled();
    });

    after(async () => {
      await t.cleanup();
      await sim.stop();
    });

    test('the connection answers without credentials and registered its webhook with Stripe', async () => {
      const res = await t.call('GET', `/api/v1/connections/${connectionId}`);
      assert.equal(res.statusCode, 200);
      assert.ok(!res.body.includes(secretKey), 'no credentials in answers');
      const view = res.json<Json & { settings: Record<string, unknown>; webhook_url: string }>();
      assert.equal(view.status, 'active');
      assert.deepEqual(view.settings.entities, { customer: { direction: 'both' } });
      const endpoints = sim.admin.webhookEndpoints(secretKey);
      assert.equal(endpoints.length, 1);
      assert.equal(endpoints[0]?.url, view.webhook_url);
      const stored = await t.store.db.selectFrom('connections').select(['credentials', 'webhook']).executeTakeFirstOrThrow();
      assert.ok(!stored.credentials.includes('sk_test'), 'credentials are encrypted at rest');
      assert.ok(!(stored.webhook ?? '').includes('whsec_'), 'the webhook secret is encrypted at rest');
      if (kind === 'sqlite') {
        const file = readFileSync(`${t.dataDir}/tandem.db`);
        assert.ok(!file.includes(secretKey), 'the database file never holds the key in clear');
      }
    });

    test('create, update and delete in Tandem reach Stripe; an update is one Stripe write and no new Tandem version', async () => {
      const created = await t.call('POST', '/api/v1/customers', {
        name: 'Grace Hopper',
        email: 'grace@example.com',
        billing_address: { city: 'Arlington', country: 'US' },
        metadata: { plan: 'pro' },
      });
      const customer = created.json<Json>();
      await waitUntil(() => stripeCustomers().some((c) => c.metadata.tandem_id === customer.id), 10_000, () => 'customer reached Stripe');
      const remote = stripeCustomers().find((c) => c.metadata.tandem_id === customer.id);
      assert.ok(remote !== undefined);
      assert.equal(remote.name, 'Grace Hopper');
      assert.equal(remote.email, 'grace@example.com');
      assert.equal(remote.address?.city, 'Arlington');
      assert.equal(remote.metadata.plan, 'pro');
      await sim.admin.waitForDeliveries(5_000);
      await waitUntil(async () => (await pendingExternal()) === 0, 10_000, () => 'echo processed');

      const postsBefore = writes('POST');
      const updated = await t.call('PATCH', `/api/v1/customers/${customer.id}`, { name: 'Rear Admiral Hopper' });
      assert.equal(updated.json<Json>().version, 2);
      await waitUntil(() => stripeCustomers().find((c) => c.id === remote.id)?.name === 'Rear Admiral Hopper', 10_000, () => 'update reached Stripe');
      await sim.admin.waitForDeliveries(5_000);
      await waitUntil(async () => (await pendingExternal()) === 0, 10_000, () => 'echo processed');
      assert.equal(writes('POST') - postsBefore, 1, 'one Stripe write for one Tandem update');
      const after = await t.call('GET', `/api/v1/customers/${customer.id}`);
      assert.equal(after.json<Json>().version, 2, 'the echo of our write made no new Tandem version');

      await t.call('DELETE', `/api/v1/customers/${customer.id}`);
      await waitUntil(() => stripeCustomers().find((c) => c.id === remote.id)?.deleted === true, 10_000, () => 'delete reached Stripe');
    });

    test('create, update and delete in Stripe reach Tandem; an update makes one version and no write back', async () => {
      const remote = await stripe.customers.create({ name: 'Ada', email: 'ada.stripe@example.com', metadata: { source: 'stripe' } });
      const find = async () => (await t.call('GET', '/api/v1/customers?email=ada.stripe@example.com')).json<{ data: Json[] }>().data[0];
      await waitUntil(async () => (await find()) !== undefined, 10_000, () => 'Stripe customer reached Tandem');
      const local = await find();
      assert.ok(local !== undefined);
      assert.equal(local.name, 'Ada');
      assert.deepEqual(local.metadata, { source: 'stripe' });
      await waitUntil(() => stripeCustomers().find((c) => c.id === remote.id)?.metadata.tandem_id === undefined, 1000, () => 'no write back on import').catch(() => undefined);

      const postsBefore = writes('POST');
      await stripe.customers.update(remote.id, { phone: '+1 555 0100' });
      await waitUntil(async () => (await find())?.phone === '+1 555 0100', 10_000, () => 'Stripe update reached Tandem');
      const versionAfter = (await find())?.version;
      await sim.admin.waitForDeliveries(5_000);
      await waitUntil(async () => (await pendingExternal()) === 0 && (await pendingMarks()) === 0, 10_000, () => 'settled');
      assert.equal((await find())?.version, versionAfter, 'one Tandem version for one Stripe update');
      assert.equal(writes('POST') - postsBefore, 1, 'no write back to Stripe (only the test’s own update)');

      await stripe.customers.del(remote.id);
      const findAll = async () =>
        (await t.call('GET', '/api/v1/customers?email=ada.stripe@example.com&include_deleted=true')).json<{ data: Json[] }>().data[0];
      await waitUntil(async () => typeof (await findAll())?.deleted_at === 'string', 10_000, () => 'Stripe delete reached Tandem');
    });

    test('a dropped webhook is healed by polling the events API', async () => {
      sim.admin.setFaults({ account: secretKey, dropRate: 1 });
      try {
        await stripe.customers.create({ name: 'Lost Webhook', email: 'lost@example.com' });
        await waitUntil(
          async () => (await t.call('GET', '/api/v1/customers?email=lost@example.com')).json<{ data: Json[] }>().data.length === 1,
          10_000,
          () => 'polling imported the customer',
        );
        assert.ok(sim.admin.deliveries(secretKey).some((d) => d.status === 'dropped' && d.eventId.length > 0));
      } finally {
        sim.admin.clearFaults(secretKey);
      }
    });

    test('forged, stale and replayed webhooks: 4xx or an idempotent 2xx, nothing written twice', async () => {
      const endpoint = sim.admin.webhookEndpoints(secretKey)[0];
      assert.ok(endpoint !== undefined);
      const newestByCustomer = new Map(sim.admin.events(secretKey).map((e) => [String(e.data.object.id), e]));
      const last = [...newestByCustomer.values()].filter((e) => e.type !== 'customer.deleted').at(-1);
      assert.ok(last !== undefined);
      // The newest event of a live customer carries it as Tandem last synced it (the tests before
      // this one wait until everything settled); a copy under a new id whose
      // object changed meanwhile is a change Tandem has not seen (the event ids below are unique).
      const event = { ...last, id: `${last.id}_changed`, data: { ...last.data, object: { ...last.data.object, name: 'Changed Meanwhile' } } };
      const payload = JSON.stringify(event);
      const post = (body: string, signature: string, id = connectionId) =>
        t.app.inject({ method: 'POST', url: `/webhooks/${id}`, payload: body, headers: { 'content-type': 'application/json', 'stripe-signature': signature } });
      const good = stripe.webhooks.generateTestHeaderString({ payload, secret: endpoint.secret });
      const forged = stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_forged' });
      const stale = stripe.webhooks.generateTestHeaderString({ payload, secret: endpoint.secret, timestamp: Math.floor(Date.now() / 1000) - 3600 });
      assert.equal((await post(payload, forged)).statusCode, 400);
      assert.equal((await post(payload, forged)).json<{ error: { code: string } }>().error.code, 'WEBHOOK_INVALID');
      assert.equal((await post(payload, stale)).statusCode, 400);
      assert.equal((await post('{not json', good)).statusCode, 400);
      assert.equal((await post(payload, '')).statusCode, 400);
      assert.equal((await post(payload, good, 'conn_01ARZ3NDEKTSV4RRFFQ69G5FAV')).statusCode, 404);
      assert.equal((await post(payload, good, 'nonsense')).statusCode, 404);
      const first = await post(payload, good);
      assert.equal(first.statusCode, 200, first.body);
      assert.equal(first.json<{ new: number }>().new, 1, 'a change Tandem has not seen is stored');
      const again = await post(payload, good);
      assert.equal(again.statusCode, 200);
      assert.equal(again.json<{ new: number }>().new, 0, 'a replayed event is stored once');

      // Tandem's own state coming back (the object as the link's base holds it), under an event id
      // never seen: answered 2xx and not stored at all (src/sync/echoes.ts).
      const echo = JSON.stringify({ ...last, id: `${last.id}_echo` });
      const echoed = await post(echo, stripe.webhooks.generateTestHeaderString({ payload: echo, secret: endpoint.secret }));
      assert.equal(echoed.statusCode, 200, echoed.body);
      assert.deepEqual(echoed.json(), { received: 1, new: 0 });
      // The stored change is fetched and found as Tandem holds it: nothing more to do.
      await waitUntil(async () => (await pendingExternal()) === 0, 10_000, () => 'the stored change processed');
    });

    test('credentials Stripe refuses and invalid settings are clear errors at create time', async () => {
      const bad = await t.call('POST', '/api/v1/connections', {
        connector: 'stripe',
        name: 'x',
        credentials: { secretKey: 'sk_live_refused' },
        settings: { apiBaseUrl: sim.url },
      });
      assert.equal(bad.statusCode, 422, bad.body);
      assert.equal(bad.json<{ error: { code: string } }>().error.code, 'CONNECTION_CREDENTIALS_REJECTED');
      // The same over a real socket: the create must not be cut short once the body was read.
      const address = t.app.server.address();
      assert.ok(address !== null && typeof address === 'object');
      const overSocket = await fetch(`http://127.0.0.1:${String(address.port)}/api/v1/connections`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ connector: 'stripe', name: 'x', credentials: { secretKey: 'sk_live_refused' }, settings: { apiBaseUrl: sim.url } }),
      });
      assert.equal(overSocket.status, 422);
      assert.equal(((await overSocket.json()) as { error: { code: string } }).error.code, 'CONNECTION_CREDENTIALS_REJECTED');
      assert.ok(!bad.body.includes('sk_live_refused'));
      const notAKey = await t.call('POST', '/api/v1/connections', { connector: 'stripe', name: 'x', credentials: { secretKey: 'hunter2' } });
      assert.equal(notAKey.statusCode, 400);
      assert.ok(!notAKey.body.includes('hunter2'));
      const unknown = await t.call('POST', '/api/v1/connections', { connector: 'oracle', name: 'x', credentials: {} });
      assert.equal(unknown.statusCode, 400);
      const direction = await t.call('POST', '/api/v1/connections', {
        connector: 'stripe',
        name: 'x',
        credentials: { secretKey },
        settings: { apiBaseUrl: sim.url, entities: { invoice: { direction: 'both' } } },
      });
      assert.equal(direction.statusCode, 400);
      const unreachable = await t.call('POST', '/api/v1/connections', {
        connector: 'stripe',
        name: 'x',
        credentials: { secretKey },
        settings: { apiBaseUrl: 'http://127.0.0.1:9' },
      });
      assert.equal(unreachable.statusCode, 422);
      assert.equal(unreachable.json<{ error: { code: string } }>().error.code, 'CONNECTION_UNREACHABLE');
      const list = await t.call('GET', '/api/v1/connections');
      assert.equal(list.json<{ data: Json[] }>().data.length, 1, 'nothing was stored by failed creates');
    });

    async function pendingExternal(): Promise<number> {
      const row = await t.store.db
        .selectFrom('external_changes')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('processed_at', 'is', null)
        .executeTakeFirstOrThrow();
      return row.n;
    }

    async function pendingMarks(): Promise<number> {
      const row = await t.store.db.selectFrom('sync_marks').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      return row.n;
    }
  });
}
