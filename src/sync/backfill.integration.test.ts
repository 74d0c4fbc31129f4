// The initial sync of a new connection: customers both sides held before the connection existed
// end up on both sides once — the ones they share (same email) linked, not copied.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitUntil } from '../../test/support/process.ts';
import { startStripeWorld, type StripeWorld } from '../../test/support/stripe-world.ts';
import { STORE_KINDS, skipUnless } from '../../test/support/stores.ts';

type Json = Record<string, unknown> & { id: string };

for (const kind of STORE_KINDS) {
  describe(`initial sync of a new Stripe connection on ${kind}`, { skip: await skipUnless(kind) }, () => {
    let world: StripeWorld;
    const secretKey = `sk_test_backfill_${kind}_${String(Date.now())}`;

    before(async () => {
      world = await startStripeWorld(kind);
    });

    after(() => world.stop());

    test('existing customers of both sides meet once: shared ones linked and merged, the rest copied across', { timeout: 60_000 }, async () => {
      const { sim, t } = world;
      const stripe = world.stripe(secretKey);
      // Before the connection: Tandem holds Ada (shared) and Bob; Stripe holds Ada and Cy.
      const ada = (
        await t.call('POST', '/api/v1/customers', { name: 'Ada Lovelace', email: 'ada@example.com', metadata: { plan: 'pro' } })
      ).json<Json>();
      const bob = (await t.call('POST', '/api/v1/customers', { name: 'Bob', email: 'bob@example.com' })).json<Json>();
      const stripeAda = await stripe.customers.create({ name: 'Ada L.', email: 'ada@example.com', phone: '+44 20 7946 0000', metadata: { crm: '42' } });
      const stripeCy = await stripe.customers.create({ name: 'Cy', email: 'cy@example.com' });

      const connectionId = await world.connect(secretKey);

      const done = async () =>
        (await t.store.db.selectFrom('connection_cursors').select('value').where('connection_id', '=', connectionId).where('name', '=', 'backfill').executeTakeFirst())
          ?.value.includes('"phase":"done"') === true;
      await waitUntil(done, 30_000, () => 'the initial sync finished');
      const live = () => sim.admin.customers(secretKey, { includeDeleted: false });
      await waitUntil(
        () => live().length === 3 && live().some((c) => c.email === 'ada@example.com' && c.name === 'Ada Lovelace'),
        30_000,
        () => `Stripe holds ${JSON.stringify(live())}`,
      );
      await t.parts.engine.settled();

      // Stripe: Ada is the one customer she was (now carrying Tandem's name and both sides' metadata),
      // Bob was created, Cy kept.
      const byEmail = new Map(live().map((c) => [c.email, c]));
      const remoteAda = byEmail.get('ada@example.com');
      assert.equal(remoteAda?.id, stripeAda.id, 'the shared customer was linked, not copied');
      assert.equal(remoteAda.name, 'Ada Lovelace', 'Tandem wins where both held a value');
      assert.equal(remoteAda.phone, '+44 20 7946 0000', 'what only Stripe held is kept');
      assert.deepEqual(remoteAda.metadata, { crm: '42', plan: 'pro' });
      assert.equal(byEmail.get('bob@example.com')?.metadata.tandem_id, bob.id);
      assert.equal(byEmail.get('cy@example.com')?.id, stripeCy.id);

      // Tandem: Ada got the phone and the metadata only Stripe had, Cy was imported, Bob unchanged.
      const local = (await t.call('GET', '/api/v1/customers?limit=100')).json<{ data: Json[] }>().data;
      assert.equal(local.length, 3, JSON.stringify(local.map((c) => c.email)));
      const localAda = local.find((c) => c.id === ada.id);
      assert.equal(localAda?.phone, '+44 20 7946 0000');
      assert.deepEqual(localAda.metadata, { plan: 'pro', crm: '42' });
      assert.equal(localAda.name, 'Ada Lovelace');
      assert.equal(local.find((c) => c.email === 'cy@example.com')?.name, 'Cy');

      // Links: one per customer, to the right objects.
      const links = await t.store.db.selectFrom('links').select(['record_id', 'external_id']).where('connection_id', '=', connectionId).execute();
      assert.equal(links.length, 3);
      assert.ok(links.some((l) => l.record_id === ada.id && l.external_id === stripeAda.id));
      const open = (await t.call('GET', '/api/v1/sync-issues?status=open')).json<{ data: unknown[] }>().data;
      assert.deepEqual(open, []);
    });
  });
}
