// The scale-out building blocks against a real store, on SQLite and PostgreSQL: leases (taken once,
// renewed, given back, taken over after expiry), connection leases spread over "processes" (here:
// several ConnectionLeases over one store) and taken over when one stops renewing, and the shared
// rate budget (two budgets over one row spend at most the rate together).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { createTestStore, skipUnless, STORE_KINDS, type TestStore } from '../../test/support/stores.ts';
import { ConnectionLeases } from './connection-leases.ts';
import { holdEmbeddedLogLease, EmbeddedLogTaken } from './embedded-log-lease.ts';
import { Leases } from './leases.ts';
import { createSharedRateBudget } from './shared-rate-budget.ts';
import { noSignals } from './signals.ts';

const logger = pino({ level: 'silent' });

async function addConnections(store: TestStore['store'], n: number): Promise<string[]> {
  const now = new Date().toISOString();
  await store.db.insertInto('workspaces').values({ id: 'ws_scale', name: 'Scale', created_at: now }).onConflict((oc) => oc.column('id').doNothing()).execute();
  const ids = Array.from({ length: n }, (_, i) => `conn_scale_${String(i)}`);
  await store.db
    .insertInto('connections')
    .values(ids.map((id) => ({ id, workspace_id: 'ws_scale', connector: 'stripe', name: id, status: 'active', status_reason: null, settings: '{}', credentials: 'x', webhook: null, account_id: null, created_at: now, updated_at: now })))
    .execute();
  return ids;
}

for (const kind of STORE_KINDS) {
  describe(`scale-out building blocks on ${kind}`, { skip: await skipUnless(kind) }, () => {
    const stores: TestStore[] = [];
    after(async () => {
      for (const s of stores) await s.cleanup();
    });
    const fresh = async () => {
      const s = await createTestStore(kind);
      stores.push(s);
      return s.store;
    };

    test('a lease has one holder; renewals keep it; it is taken over once expired, or at once when given back', async () => {
      const store = await fresh();
      const a = new Leases(store, 'a');
      const b = new Leases(store, 'b');
      const t0 = Date.now();
      assert.equal(await a.acquire('job', 1000, t0), true);
      assert.equal(await b.acquire('job', 1000, t0 + 10), false);
      assert.equal(await a.renew('job', 1000, t0 + 500), true);
      assert.equal(await b.acquire('job', 1000, t0 + 1200), false, 'renewed until t0 + 1500');
      assert.equal(await b.acquire('job', 1000, t0 + 1600), true, 'expired: taken over');
      assert.equal(await a.renew('job', 1000, t0 + 1700), false, 'the old holder cannot renew it back');
      assert.equal((await a.holder('job', t0 + 1700))?.owner, 'b');
      await b.release(['job']);
      assert.equal(await a.acquire('job', 1000, t0 + 1800), true, 'given back: free at once');
    });

    test('connection leases spread over the live processes and move to the others when one stops', async () => {
      const store = await fresh();
      const ids = await addConnections(store, 6);
      const made = ['p1', 'p2', 'p3'].map((owner) => {
        const changed: string[] = [];
        const leases = new ConnectionLeases({ store, owner, leaseMs: 1500, signals: noSignals(), logger });
        return { owner, leases, changed };
      });
      try {
        for (const p of made) await p.leases.start({ changed: (id) => p.changed.push(id), wake: () => undefined });
        const owned = () => made.map((p) => ids.filter((id) => p.leases.owns(id)).length);
        const deadline = Date.now() + 10_000;
        while (owned().join() !== '2,2,2' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
        assert.deepEqual(owned(), [2, 2, 2], 'two connections each');
        for (const id of ids) assert.equal(made.filter((p) => p.leases.owns(id)).length, 1, `${id} has one owner`);
        // p3 stops cleanly: its leases are given back and taken by the others.
        const third = made[2];
        assert.ok(third !== undefined);
        await third.leases.stop();
        const deadline2 = Date.now() + 10_000;
        while (owned().slice(0, 2).join() !== '3,3' && Date.now() < deadline2) await new Promise((resolve) => setTimeout(resolve, 100));
        assert.deepEqual(owned().slice(0, 2), [3, 3]);
        assert.ok((made[0]?.changed.length ?? 0) > 0, 'the engine is told to reload what it took');
      } finally {
        for (const p of made) await p.leases.stop();
      }
    });

    test('two budgets over one connection spend at most its rate together', { timeout: 30_000 }, async () => {
      const store = await fresh();
      const one = createSharedRateBudget(store, 'conn_budget', 20);
      const two = createSharedRateBudget(store, 'conn_budget', 20);
      const taken: number[] = [];
      const started = Date.now();
      const spend = async (budget: ReturnType<typeof createSharedRateBudget>) => {
        while (Date.now() - started < 2_000) {
          await budget.take();
          taken.push(Date.now());
        }
      };
      await Promise.all([spend(one), spend(one), spend(two), spend(two)]);
      const elapsed = (Math.max(...taken) - started) / 1000;
      // 20/s for ~2 s plus the burst of 4: never the 2 × 20/s two per-process budgets would allow.
      assert.ok(taken.length <= 20 * elapsed + 4 + 1, `${String(taken.length)} requests in ${elapsed.toFixed(2)} s`);
      assert.ok(taken.length >= 20 * 1.5, `${String(taken.length)} requests: the budget is spent, not starved`);
      // A 429 pauses the account for everyone.
      one.pauseFor(800);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const before = Date.now();
      await two.take();
      assert.ok(Date.now() - before >= 600, 'the other budget waited out the pause');
    });

    test('the embedded log lease: a second process waits one lease time, then refuses with a clear error', async () => {
      const store = await fresh();
      const first = await holdEmbeddedLogLease({ leases: new Leases(store, 'first'), leaseMs: 1000, logger, onLost: () => undefined });
      try {
        const started = Date.now();
        await assert.rejects(
          holdEmbeddedLogLease({ leases: new Leases(store, 'second'), leaseMs: 1000, logger, onLost: () => undefined }),
          (error: unknown) => error instanceof EmbeddedLogTaken && /TANDEM_ROLES=api/.test(error.message) && /KAFKA_BROKERS/.test(error.message),
        );
        assert.ok(Date.now() - started >= 1000, 'it waited for a lapsed holder first');
      } finally {
        await first.release();
      }
      const third = await holdEmbeddedLogLease({ leases: new Leases(store, 'third'), leaseMs: 1000, logger, onLost: () => undefined });
      await third.release();
    });
  });
}
