// A crash between an import's create and its link, then the object's deletion: the record the
// import made is found by the import's idempotency key and deleted too, not left live for good.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitUntil } from '../../test/support/process.ts';
import { startStripeWorld, type StripeWorld } from '../../test/support/stripe-world.ts';
import { STORE_KINDS, skipUnless } from '../../test/support/stores.ts';

type Json = Record<string, unknown> & { id: string };

for (const kind of STORE_KINDS) {
  describe(`an import cut short by a crash on ${kind}`, { skip: await skipUnless(kind) }, () => {
    let world: StripeWorld;
    const secretKey = `sk_test_import_crash_${kind}_${String(Date.now())}`;

    before(async () => {
      world = await startStripeWorld(kind);
    });

    after(() => world.stop());

    test('the deletion of its object reaches the record the import made before the crash', { timeout: 60_000 }, async () => {
      const { t } = world;
      const connectionId = await world.connect(secretKey);
      await t.parts.engine.settled();
      assert.equal((await t.call('POST', `/api/v1/connections/${connectionId}/pause`)).statusCode, 200);
      await t.parts.engine.settled();

      // While the worker is paused: Stripe makes a customer, and Tandem's import of it committed its
      // record (as it does, with the import's idempotency key) but crashed before the link.
      const stripe = world.stripe(secretKey);
      const remote = await stripe.customers.create({ name: 'Short-lived', email: 'short@example.com' });
      const { record } = await t.catalog.create(t.workspaceId, 'customer', { name: 'Short-lived', email: 'short@example.com' }, {
        origin: `connection:${connectionId}`,
        idempotency: { key: `tandem-import-${connectionId}-${remote.id}`, fingerprint: 'tandem-import' },
      });
      await stripe.customers.del(remote.id);

      assert.equal((await t.call('POST', `/api/v1/connections/${connectionId}/resume`)).statusCode, 200);
      const get = async () => (await t.call('GET', `/api/v1/customers/${record.id}`)).json<Json>();
      await waitUntil(async () => (await get()).deleted_at !== null, 20_000, () => 'the imported record was deleted');
      const all = (await t.call('GET', '/api/v1/customers?limit=100&include_deleted=true')).json<{ data: Json[] }>().data;
      assert.equal(all.length, 1, 'no second record was made for the object');
    });
  });
}
