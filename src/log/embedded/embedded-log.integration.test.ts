// The embedded log against the shared log contract, on every store kind, plus what is particular to it.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { STORE_KINDS, createTestStore, skipUnless, type StoreKind, type TestStore } from '../../../test/support/stores.ts';
import { completeChange, logContract, type ChangeInput, type LogHarness } from '../log.contract.ts';
import type { EventLog, LogLogger } from '../log.ts';
import { partitionFor } from '../change.ts';
import { createOutbox } from '../outbox.ts';
import { createEmbeddedLog } from './embedded-log.ts';
import type { Store } from '../../store/store.ts';

const PARTITIONS = 8;

function quietLogger(): LogLogger & { errors: string[] } {
  const errors: string[] = [];
  return {
    errors,
    warn: () => undefined,
    error: (_obj, msg) => {
      errors.push(msg);
    },
  };
}

async function appendAll(store: Store, log: EventLog, changes: ChangeInput[]): Promise<void> {
  const outbox = createOutbox(PARTITIONS);
  // In ascending partition order (a stable sort keeps each key's order): the outbox locks a partition's
  // row per append, so two concurrent transactions that touch partitions in opposite orders deadlock on
  // PostgreSQL. The outbox should take its partition locks in a fixed order itself.
  const ordered = changes
    .map((change) => completeChange(change))
    .sort((a, b) => partitionFor(a.recordId, PARTITIONS) - partitionFor(b.recordId, PARTITIONS));
  await store.transaction(async (trx) => {
    for (const change of ordered) await outbox.append(trx, change);
  });
  log.notify();
}

/** One store per kind for the whole file (creating a PostgreSQL database per test is slow); emptied between tests. */
function sharedStores(): { get(kind: StoreKind): Promise<TestStore>; closeAll(): Promise<void> } {
  const stores = new Map<StoreKind, Promise<TestStore>>();
  return {
    get(kind) {
      let store = stores.get(kind);
      if (store === undefined) {
        store = createTestStore(kind);
        stores.set(kind, store);
      }
      return store;
    },
    async closeAll() {
      for (const store of stores.values()) await (await store).cleanup();
    },
  };
}

async function emptyLogTables(store: Store): Promise<void> {
  await store.transaction(async (trx) => {
    await trx.deleteFrom('log_dead_letters').execute();
    await trx.deleteFrom('log_offsets').execute();
    await trx.deleteFrom('changes').execute();
    await trx.deleteFrom('log_partitions').execute();
  });
}

const stores = sharedStores();
after(() => stores.closeAll());

async function harness(kind: StoreKind): Promise<LogHarness> {
  const { store } = await stores.get(kind);
  await emptyLogTables(store);
  const log = createEmbeddedLog({
    store,
    partitions: PARTITIONS,
    maxAttempts: 5,
    backoff: { initialMs: 1, maxMs: 8 },
    // Small batches, so the suite crosses batch boundaries.
    batchSize: 7,
    idlePollMs: 25,
    logger: quietLogger(),
  });
  return {
    log,
    append: (changes) => appendAll(store, log, changes),
    cleanup: async () => {
      await log.close();
      await emptyLogTables(store);
    },
  };
}

for (const kind of STORE_KINDS) {
  const skip = await skipUnless(kind);
  logContract(`embedded log on ${kind}`, () => harness(kind), { skip });

  describe(`embedded log on ${kind}: particulars`, { skip }, () => {
    test('one active subscription per group on a log; the group can subscribe again once stopped', async () => {
      const h = await harness(kind);
      try {
        const first = h.log.subscribe({ group: 'g', handler: () => Promise.resolve() });
        assert.throws(() => h.log.subscribe({ group: 'g', handler: () => Promise.resolve() }), /already has an active subscription/);
        await first.stop();
        await first.stop(); // idempotent
        const second = h.log.subscribe({ group: 'g', handler: () => Promise.resolve() });
        await second.stop();
      } finally {
        await h.cleanup();
      }
    });

    test('close() stops every subscription and refuses new ones', async () => {
      const h = await harness(kind);
      try {
        const seen: string[] = [];
        h.log.subscribe({
          group: 'g',
          handler: (entry) => {
            seen.push(entry.recordId);
            return Promise.resolve();
          },
        });
        await h.append([{ recordId: 'a' }]);
        for (let i = 0; i < 400 && seen.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
        assert.deepEqual(seen, ['a']);
        await h.log.close();
        await h.append([{ recordId: 'b' }]);
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.deepEqual(seen, ['a'], 'nothing is delivered after close()');
        assert.throws(() => h.log.subscribe({ group: 'g2', handler: () => Promise.resolve() }), /closed/);
      } finally {
        await h.cleanup();
      }
    });

    test('a batch handler gets consecutive entries of a partition in order; a failed batch goes one by one to the handler, with its retries and dead letter', async () => {
      const h = await harness(kind);
      try {
        const input: ChangeInput[] = [];
        for (let i = 0; i < 40; i++) input.push({ recordId: `r${String(i % 20)}`, version: Math.floor(i / 20) + 1 });
        input.splice(25, 0, { recordId: 'poison' });
        await h.append(input);
        const handled: Array<{ recordId: string; version: number; partition: number; offset: number; how: 'batch' | 'one' }> = [];
        const batchSizes: number[] = [];
        let failedBatches = 0;
        h.log.subscribe({
          group: 'g',
          batchHandler: (entries) => {
            batchSizes.push(entries.length);
            if (entries.some((e) => e.recordId === 'poison')) {
              failedBatches += 1;
              return Promise.reject(new Error('a poisoned batch'));
            }
            for (const e of entries) handled.push({ recordId: e.recordId, version: e.version, partition: e.partition, offset: e.offset, how: 'batch' });
            return Promise.resolve();
          },
          handler: (e) => {
            if (e.recordId === 'poison') return Promise.reject(new Error('poison'));
            handled.push({ recordId: e.recordId, version: e.version, partition: e.partition, offset: e.offset, how: 'one' });
            return Promise.resolve();
          },
        });
        for (let i = 0; i < 600 && (await h.log.lag('g')) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
        assert.equal(await h.log.lag('g'), 0, 'everything committed');
        assert.deepEqual(
          (await h.log.deadLetters('g')).map((d) => d.entry?.recordId),
          ['poison'],
          'the poisoned entry was dead-lettered after its retries, one by one',
        );
        assert.equal(failedBatches, 1, 'the batch that failed is not tried again as a batch');
        assert.ok(batchSizes.every((n) => n >= 2), 'a single entry goes to the handler');
        assert.ok(handled.some((x) => x.how === 'batch'), 'batches were used');
        assert.ok(handled.some((x) => x.how === 'one'), 'the failed batch\'s other entries went one by one');
        // Every entry handled exactly once (no batch was retried), each partition in offset order.
        assert.equal(handled.length, 40);
        assert.deepEqual(new Set(handled.map((x) => `${x.recordId}@${String(x.version)}`)).size, 40);
        for (let p = 0; p < PARTITIONS; p++) {
          const offsets = handled.filter((x) => x.partition === p).map((x) => x.offset);
          assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), `partition ${String(p)} in offset order`);
        }
      } finally {
        await h.cleanup();
      }
    });

    test('rejects nonsensical options', async () => {
      const { store } = await stores.get(kind);
      const base = { store, partitions: 4, maxAttempts: 3 };
      assert.throws(() => createEmbeddedLog({ ...base, partitions: 0 }), RangeError);
      assert.throws(() => createEmbeddedLog({ ...base, maxAttempts: 0 }), RangeError);
      assert.throws(() => createEmbeddedLog({ ...base, batchSize: 1.5 }), RangeError);
      assert.throws(() => createEmbeddedLog({ ...base, backoff: { initialMs: 10, maxMs: 5 } }), RangeError);
      const log = createEmbeddedLog(base);
      assert.throws(() => log.subscribe({ group: 'g', maxAttempts: 0, handler: () => Promise.resolve() }), RangeError);
      await log.close();
    });
  });
}
