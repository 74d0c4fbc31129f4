// A write whose answer was lost must not come back as an external change and undo a newer Tandem
// write (./unanswered.ts). The sequence, made deterministic: Tandem pushes a phone; Stripe applies it
// and answers 500 (its echo webhook lost); the retry waits; Tandem's API writes the phone again;
// then someone changes the name in Stripe. The object fetched for that change holds Tandem's first
// phone, which is neither the link's base nor the record's: without the unanswered write kept, the
// merge took it for a Stripe change newer than Tandem's and overwrote the newer phone with it.
// On both stacks (SQLite + the embedded log, PostgreSQL + the Kafka log).
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type Stripe from 'stripe';
import type { StripeSimulator } from '../connectors/stripe/simulator/index.ts';
import type { TestApi } from '../../test/support/api.ts';
import { waitUntil } from '../../test/support/process.ts';
import { startStripeWorld, type StripeWorld } from '../../test/support/stripe-world.ts';
import { kafkaBrokers, uniqueTopicPrefix } from '../../test/support/kafka.ts';
import { STACKS, skipUnlessStack } from '../../test/support/stacks.ts';

type Json = Record<string, unknown> & { id: string };

for (const stack of STACKS) {
  const kind = stack.name.replace('+', '_');
  describe(`an unanswered Stripe write on ${stack.name}`, { skip: await skipUnlessStack(stack) }, () => {
    let world: StripeWorld;
    let sim: StripeSimulator;
    let t: TestApi;
    let stripe: Stripe;
    const secretKey = `sk_test_unanswered_${kind}_${String(Date.now())}`;

    before(async () => {
      world = await startStripeWorld(stack.store, {
        // A failed push waits two minutes for its retry (the test makes it due itself), and the
        // events feed is read once at the start: the lost echo stays lost while the test runs.
        retry: { maxAttempts: 10, initialMs: 120_000, maxMs: 120_000 },
        pollIntervalMs: 600_000,
        kafka: stack.log === 'kafka' ? { brokers: kafkaBrokers, topicPrefix: uniqueTopicPrefix() } : undefined,
      });
      ({ sim, t } = world);
      stripe = world.stripe(secretKey);
      await world.connect(secretKey);
      await t.parts.engine.settled();
    });

    after(async () => {
      await world.stop();
    });

    const remoteOf = (id: string) => sim.admin.customers(secretKey).find((c) => c.metadata.tandem_id === id);
    const local = async (id: string) => (await t.call('GET', `/api/v1/customers/${id}`)).json<Json>();
    const deferredMark = async (id: string) => t.store.db.selectFrom('sync_marks').select(['attempts', 'last_error']).where('record_id', '=', id).executeTakeFirst();

    /**
     * The sequence for one field: created with `initial`, the push of `first` applied by Stripe and
     * answered 500, then Tandem writes `second`, then a Stripe change of the name. `value` reads the
     * field from Tandem's record and from Stripe's customer.
     */
    async function unansweredThenNewer(
      email: string,
      initial: Record<string, unknown>,
      first: Record<string, unknown>,
      second: Record<string, unknown>,
      value: (fields: Record<string, unknown>) => unknown,
      wanted: { initial: unknown; first: unknown; second: unknown },
    ): Promise<void> {
      const created = await t.call('POST', '/api/v1/customers', { name: 'Grace', email, ...initial });
      assert.equal(created.statusCode, 201, created.body);
      const id = created.json<Json>().id;
      const remoteValue = () => {
        const remote = remoteOf(id);
        return remote === undefined ? undefined : value(remote as unknown as Record<string, unknown>);
      };
      await waitUntil(() => isDeepStrictEqual(remoteValue(), wanted.initial), 10_000, () => 'the customer reached Stripe');
      await sim.admin.waitForDeliveries(5_000);
      await waitUntil(async () => (await deferredMark(id)) === undefined, 10_000, () => 'the create settled');
      const stripeId = remoteOf(id)?.id ?? '';

      // 1. The push of `first` is applied by Stripe, answered 500, and its webhook lost.
      sim.admin.setFaults({ account: secretKey, errorRate: 1, errorPhase: 'after', dropRate: 1 });
      const firstWrite = await t.call('PATCH', `/api/v1/customers/${id}`, first);
      assert.equal(firstWrite.statusCode, 200, firstWrite.body);
      await waitUntil(async () => ((await deferredMark(id))?.attempts ?? 0) >= 1, 10_000, () => 'the push failed and was deferred');
      sim.admin.clearFaults(secretKey);
      assert.deepEqual(remoteValue(), wanted.first, 'Stripe applied the write it answered 500 to');

      // 2. Tandem's API writes the field again while the retry waits.
      const secondWrite = await t.call('PATCH', `/api/v1/customers/${id}`, second);
      assert.equal(secondWrite.statusCode, 200, secondWrite.body);

      // 3. Someone changes the name in Stripe, in a later second than Tandem's write (Stripe's event
      // times are whole seconds), so the merge sees it as the newer change. The object fetched for it
      // holds Tandem's first value.
      await sleep(1100 - (Date.now() % 1000));
      await stripe.customers.update(stripeId, { name: 'Grace Hopper' });
      await waitUntil(async () => (await local(id)).name === 'Grace Hopper', 10_000, () => "Stripe's name change reached Tandem");
      assert.deepEqual(value(await local(id)), wanted.second, "Tandem's newer write survives the merge of Stripe's name change");

      // 4. The retry goes out (made due now; a Stripe change wakes the worker): both sides converge.
      await t.store.db.updateTable('sync_marks').set({ not_before: new Date(0).toISOString() }).where('record_id', '=', id).execute();
      await stripe.customers.update(stripeId, { email: `hopper.${email}` });
      await waitUntil(() => isDeepStrictEqual(remoteValue(), wanted.second), 10_000, () => "Tandem's newer write reached Stripe");
      await waitUntil(async () => (await deferredMark(id)) === undefined, 10_000, () => 'the mark cleared');
      await waitUntil(async () => (await local(id)).email === `hopper.${email}`, 10_000, () => "Stripe's email change reached Tandem");
      const end = await local(id);
      assert.deepEqual(value(end), wanted.second);
      assert.equal(end.name, 'Grace Hopper');
      assert.equal(end.email, `hopper.${email}`);
      assert.equal(remoteOf(id)?.name, 'Grace Hopper');
      const link = await t.store.db.selectFrom('links').select(['unanswered']).where('record_id', '=', id).executeTakeFirstOrThrow();
      assert.equal(link.unanswered, null, 'nothing is left waiting on an answer once the field was answered');
    }

    test("a phone Stripe applied but answered 500 to does not undo Tandem's newer phone when another Stripe change is merged", async () => {
      await unansweredThenNewer(
        'grace.phone@example.com',
        { phone: '+1 555 1002' },
        { phone: '+1 555 1004' },
        { phone: '+1 555 1006' },
        (fields) => fields.phone,
        { initial: '+1 555 1002', first: '+1 555 1004', second: '+1 555 1006' },
      );
    });

    test('an update Stripe refused (429) keeps nothing waiting on an answer, and goes out when it may', async () => {
      const created = await t.call('POST', '/api/v1/customers', { name: 'Ada', email: 'ada.refused@example.com', phone: '+1 555 2002' });
      assert.equal(created.statusCode, 201, created.body);
      const id = created.json<Json>().id;
      await waitUntil(() => remoteOf(id)?.phone === '+1 555 2002', 10_000, () => 'the customer reached Stripe');
      await waitUntil(async () => (await deferredMark(id)) === undefined, 10_000, () => 'the create settled');
      const unanswered = async () => (await t.store.db.selectFrom('links').select(['unanswered']).where('record_id', '=', id).executeTakeFirstOrThrow()).unanswered;

      // Three refusals in a row: each is told to wait a second, so the state between them lasts a while.
      sim.admin.setFaults({ account: secretKey, rateLimitBurst: 3 });
      const write = await t.call('PATCH', `/api/v1/customers/${id}`, { phone: '+1 555 2004' });
      assert.equal(write.statusCode, 200, write.body);
      await waitUntil(async () => ((await deferredMark(id))?.last_error ?? null) !== null, 10_000, () => 'the push was refused and deferred');
      assert.equal(await unanswered(), null, 'a refused write changed nothing in Stripe: no value is kept as possibly applied');

      await waitUntil(() => remoteOf(id)?.phone === '+1 555 2004', 15_000, () => 'the write went out once Stripe took requests again');
      await waitUntil(async () => (await deferredMark(id)) === undefined, 10_000, () => 'the mark cleared');
      assert.equal(await unanswered(), null);
      sim.admin.clearFaults(secretKey);
    });

    test("a metadata key Stripe applied but answered 500 to does not undo Tandem's newer value of it", async () => {
      const keyT = (fields: Record<string, unknown>) => (fields.metadata as Record<string, string> | undefined)?.t;
      await unansweredThenNewer('grace.metadata@example.com', { metadata: { t: 'v1', plan: 'pro' } }, { metadata: { t: 'v2' } }, { metadata: { t: 'v3' } }, keyT, {
        initial: 'v1',
        first: 'v2',
        second: 'v3',
      });
    });
  });
}
