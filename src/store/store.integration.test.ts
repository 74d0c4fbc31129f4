// The store contract: what every store (SQLite, PostgreSQL) must do alike. Each test makes a fresh,
// migrated store of its own and removes it afterwards.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { STORE_KINDS, createTestStore, skipUnless } from '../../test/support/stores.ts';
import { partitionFor, type Change } from '../log/change.ts';
import { createOutbox, entryFromRow } from '../log/outbox.ts';
import { migrate } from './migrations/index.ts';
import type { RecordsTable } from './schema.ts';
import { ScopedRecords } from './scoped-records.ts';
import { isUniqueViolation, type Store } from './store.ts';

const T0 = '2026-01-01T00:00:00.000Z';

/** An ISO timestamp `minutes` after T0. */
function at(minutes: number): string {
  return new Date(Date.parse(T0) + minutes * 60_000).toISOString();
}

async function addWorkspace(store: Store, id: string): Promise<void> {
  await store.db.insertInto('workspaces').values({ id, name: `Workspace ${id}`, created_at: T0 }).execute();
}

function row(id: string, data: Record<string, unknown>, overrides: Partial<RecordsTable> = {}): Omit<RecordsTable, 'workspace_id'> {
  return {
    entity_type: 'customer',
    id,
    version: 1,
    data: JSON.stringify(data),
    created_at: T0,
    updated_at: T0,
    deleted_at: null,
    ...overrides,
  };
}

function change(recordId: string, n: number, overrides: Partial<Change> = {}): Change {
  return {
    id: `chg_${recordId}_${n}`,
    workspaceId: 'ws_a',
    entityType: 'customer',
    recordId,
    version: n,
    op: n === 1 ? 'create' : 'update',
    origin: 'api',
    changedFields: ['name'],
    record: { id: recordId, name: `name ${n}` },
    correlationId: null,
    createdAt: at(n),
    ...overrides,
  };
}

/** The error `promise` rejects with (failing the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected the operation to fail');
}

async function count(store: Store, table: 'workspaces' | 'records' | 'changes' | 'log_partitions'): Promise<number> {
  const { n } = await store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return n;
}

/** The `name` field of a stored record's JSON data. */
function nameOf(record: RecordsTable | undefined): unknown {
  assert.ok(record !== undefined, 'record not found');
  return (JSON.parse(record.data) as { name?: unknown }).name;
}

for (const kind of STORE_KINDS) {
  const skip = await skipUnless(kind);

  /** A test on a fresh store of this kind, removed afterwards whatever happens. */
  function storeTest(name: string, fn: (store: Store) => Promise<void>): void {
    test(name, { skip }, async () => {
      const testStore = await createTestStore(kind);
      try {
        assert.equal(testStore.store.kind, kind);
        await fn(testStore.store);
      } finally {
        await testStore.cleanup();
      }
    });
  }

  describe(`store contract on ${kind}`, () => {
    describe('migrations', () => {
      storeTest('running them again is a no-op that keeps the data', async (store) => {
        await addWorkspace(store, 'ws_a');
        const tablesBefore = (await store.db.introspection.getTables()).map((t) => t.name).sort();
        const applied = sql<{ name: string }>`select name from kysely_migration order by name`;
        const migrationsBefore = (await applied.execute(store.db)).rows;
        assert.ok(migrationsBefore.length > 0);

        await migrate(store);
        await migrate(store);

        assert.deepEqual((await store.db.introspection.getTables()).map((t) => t.name).sort(), tablesBefore);
        assert.deepEqual((await applied.execute(store.db)).rows, migrationsBefore);
        assert.equal(await count(store, 'workspaces'), 1);
      });

      storeTest('create every table the schema declares', async (store) => {
        const tables = new Set((await store.db.introspection.getTables()).map((t) => t.name));
        for (const table of [
          'meta',
          'workspaces',
          'api_keys',
          'records',
          'changes',
          'log_partitions',
          'log_offsets',
          'log_dead_letters',
          'idempotency_keys',
        ]) {
          assert.ok(tables.has(table), `missing table ${table}`);
        }
      });
    });

    describe('ScopedRecords', () => {
      storeTest('never sees another workspace’s records', async (store) => {
        await addWorkspace(store, 'ws_a');
        await addWorkspace(store, 'ws_b');
        const a = new ScopedRecords(store.db, store.capabilities, 'ws_a');
        const b = new ScopedRecords(store.db, store.capabilities, 'ws_b');
        await a.insert(row('cus_a1', { name: 'A one', email: 'same@example.com' }));
        await b.insert(row('cus_b1', { name: 'B one', email: 'same@example.com' }));
        // The same id in two workspaces is two different records.
        await a.insert(row('cus_shared', { name: 'A shared' }));
        await b.insert(row('cus_shared', { name: 'B shared' }));

        assert.equal(await a.get('customer', 'cus_b1'), undefined);
        assert.equal(await b.get('customer', 'cus_a1'), undefined);
        assert.equal(nameOf(await a.get('customer', 'cus_shared')), 'A shared');
        assert.equal(nameOf(await b.get('customer', 'cus_shared')), 'B shared');

        const listA = await a.list({ entityType: 'customer', limit: 100 });
        assert.deepEqual(
          listA.map((r) => r.id),
          ['cus_shared', 'cus_a1'],
        );
        assert.ok(listA.every((r) => r.workspace_id === 'ws_a'));
        const byEmail = await a.list({ entityType: 'customer', limit: 100, equals: [{ field: 'email', value: 'same@example.com' }] });
        assert.deepEqual(
          byEmail.map((r) => r.id),
          ['cus_a1'],
        );

        // Updating another workspace's record finds nothing and changes nothing.
        const next = { version: 2, data: JSON.stringify({ name: 'hijacked' }), updated_at: at(1), deleted_at: null };
        assert.equal(await a.update('customer', 'cus_b1', 1, next), false);
        assert.equal((await b.get('customer', 'cus_b1'))?.version, 1);
        assert.equal(nameOf(await b.get('customer', 'cus_b1')), 'B one');
        // Updating a shared id touches only the caller's own record.
        assert.equal(await a.update('customer', 'cus_shared', 1, next), true);
        assert.equal((await a.get('customer', 'cus_shared'))?.version, 2);
        const untouched = await b.get('customer', 'cus_shared');
        assert.equal(untouched?.version, 1);
        assert.equal(nameOf(untouched), 'B shared');
      });

      storeTest('idempotency keys are per workspace', async (store) => {
        await addWorkspace(store, 'ws_a');
        await addWorkspace(store, 'ws_b');
        const a = new ScopedRecords(store.db, store.capabilities, 'ws_a');
        const b = new ScopedRecords(store.db, store.capabilities, 'ws_b');
        const key = { key: 'idem-1', fingerprint: 'f', status_code: 201, response: '{}', created_at: T0 };
        await a.insertIdempotencyKey(key);
        assert.equal((await a.findIdempotencyKey('idem-1'))?.workspace_id, 'ws_a');
        assert.equal(await b.findIdempotencyKey('idem-1'), undefined);
        await b.insertIdempotencyKey({ ...key, fingerprint: 'g' });
        assert.equal((await b.findIdempotencyKey('idem-1'))?.fingerprint, 'g');
        assert.equal((await a.findIdempotencyKey('idem-1'))?.fingerprint, 'f');
      });

      storeTest('list filters: equals on JSON fields, updatedSince, includeDeleted, entity type', async (store) => {
        await addWorkspace(store, 'ws_a');
        const records = new ScopedRecords(store.db, store.capabilities, 'ws_a');
        await records.insert(row('cus_01', { name: 'Ada', email: 'ada@example.com', country: 'GB' }, { updated_at: at(1) }));
        await records.insert(row('cus_02', { name: 'Bob', email: 'bob@example.com', country: 'GB' }, { updated_at: at(2) }));
        await records.insert(row('cus_03', { name: 'Cy', email: 'ada@example.com', country: 'FR' }, { updated_at: at(3) }));
        await records.insert(row('cus_04', { name: 'Di', country: 'GB' }, { updated_at: at(4), deleted_at: at(4) }));
        await records.insert(row('inv_01', { email: 'ada@example.com' }, { entity_type: 'invoice', updated_at: at(5) }));
        const ids = async (query: Omit<Parameters<ScopedRecords['list']>[0], 'entityType' | 'limit'>) =>
          (await records.list({ entityType: 'customer', limit: 100, ...query })).map((r) => r.id);

        assert.deepEqual(await ids({}), ['cus_03', 'cus_02', 'cus_01']);
        assert.deepEqual(await ids({ includeDeleted: true }), ['cus_04', 'cus_03', 'cus_02', 'cus_01']);
        assert.deepEqual(await ids({ includeDeleted: false }), ['cus_03', 'cus_02', 'cus_01']);

        assert.deepEqual(await ids({ equals: [{ field: 'email', value: 'ada@example.com' }] }), ['cus_03', 'cus_01']);
        assert.deepEqual(
          await ids({
            equals: [
              { field: 'email', value: 'ada@example.com' },
              { field: 'country', value: 'GB' },
            ],
          }),
          ['cus_01'],
        );
        assert.deepEqual(await ids({ equals: [{ field: 'email', value: 'nobody@example.com' }] }), []);
        assert.deepEqual(await ids({ equals: [{ field: 'country', value: 'GB' }], includeDeleted: true }), ['cus_04', 'cus_02', 'cus_01']);
        // Matches are exact: no LIKE patterns, no case folding.
        assert.deepEqual(await ids({ equals: [{ field: 'email', value: 'ADA@example.com' }] }), []);
        assert.deepEqual(await ids({ equals: [{ field: 'email', value: '%' }] }), []);

        // updatedSince is inclusive.
        assert.deepEqual(await ids({ updatedSince: at(2) }), ['cus_03', 'cus_02']);
        assert.deepEqual(await ids({ updatedSince: at(2), includeDeleted: true }), ['cus_04', 'cus_03', 'cus_02']);
        assert.deepEqual(await ids({ updatedSince: at(10) }), []);

        assert.deepEqual(
          (await records.list({ entityType: 'invoice', limit: 100 })).map((r) => r.id),
          ['inv_01'],
        );
        assert.deepEqual(await records.list({ entityType: 'nothing', limit: 100 }), []);
      });

      storeTest('list pages newest first with beforeId and limit', async (store) => {
        await addWorkspace(store, 'ws_a');
        const records = new ScopedRecords(store.db, store.capabilities, 'ws_a');
        const all = Array.from({ length: 7 }, (_, i) => `cus_${String(i + 1).padStart(2, '0')}`);
        // Inserted out of order: the order comes from the ids, not from insertion.
        for (const id of [...all].reverse().filter((_, i) => i % 2 === 0)) await records.insert(row(id, { name: id }));
        for (const id of [...all].reverse().filter((_, i) => i % 2 === 1)) await records.insert(row(id, { name: id }));

        const pages: string[][] = [];
        let beforeId: string | undefined;
        for (;;) {
          const page = (await records.list({ entityType: 'customer', limit: 3, beforeId })).map((r) => r.id);
          if (page.length === 0) break;
          pages.push(page);
          beforeId = page.at(-1);
        }
        assert.deepEqual(pages, [
          ['cus_07', 'cus_06', 'cus_05'],
          ['cus_04', 'cus_03', 'cus_02'],
          ['cus_01'],
        ]);
        assert.deepEqual(
          (await records.list({ entityType: 'customer', limit: 2, beforeId: 'cus_05' })).map((r) => r.id),
          ['cus_04', 'cus_03'],
        );
        assert.deepEqual(await records.list({ entityType: 'customer', limit: 2, beforeId: 'cus_01' }), []);
      });

      storeTest('update with a stale expectedVersion returns false and changes nothing', async (store) => {
        await addWorkspace(store, 'ws_a');
        const records = new ScopedRecords(store.db, store.capabilities, 'ws_a');
        await records.insert(row('cus_01', { name: 'v1' }));

        const v2 = { version: 2, data: JSON.stringify({ name: 'v2' }), updated_at: at(2), deleted_at: null };
        assert.equal(await records.update('customer', 'cus_01', 1, v2), true);
        const afterFirst = await records.get('customer', 'cus_01');

        const stale = { version: 2, data: JSON.stringify({ name: 'stale' }), updated_at: at(3), deleted_at: at(3) };
        assert.equal(await records.update('customer', 'cus_01', 1, stale), false);
        assert.equal(await records.update('customer', 'cus_01', 3, stale), false);
        assert.deepEqual(await records.get('customer', 'cus_01'), afterFirst);
        assert.equal(afterFirst?.version, 2);
        assert.equal(afterFirst.data, JSON.stringify({ name: 'v2' }));
        assert.equal(afterFirst.updated_at, at(2));
        assert.equal(afterFirst.created_at, T0);

        assert.equal(await records.update('customer', 'cus_missing', 1, v2), false);
        assert.equal(await records.update('invoice', 'cus_01', 2, stale), false);
        assert.equal(await count(store, 'records'), 1);
      });
    });

    describe('errors and transactions', () => {
      storeTest('isUniqueViolation recognises a duplicate primary key, and only that', async (store) => {
        await addWorkspace(store, 'ws_a');
        assert.ok(isUniqueViolation(await rejection(addWorkspace(store, 'ws_a'))));

        const records = new ScopedRecords(store.db, store.capabilities, 'ws_a');
        await records.insert(row('cus_01', { name: 'one' }));
        assert.ok(isUniqueViolation(await rejection(records.insert(row('cus_01', { name: 'again' })))));
        await records.insertIdempotencyKey({ key: 'k', fingerprint: 'f', status_code: 200, response: '{}', created_at: T0 });
        const dupKey = records.insertIdempotencyKey({ key: 'k', fingerprint: 'g', status_code: 200, response: '{}', created_at: T0 });
        assert.ok(isUniqueViolation(await rejection(dupKey)));

        // A missing workspace (foreign key) is another kind of failure.
        const orphan = new ScopedRecords(store.db, store.capabilities, 'ws_missing');
        const fkError = await rejection(orphan.insert(row('cus_02', { name: 'orphan' })));
        assert.equal(isUniqueViolation(fkError), false, String(fkError));
        assert.equal(isUniqueViolation(new Error('duplicate key')), false);
        assert.equal(isUniqueViolation(undefined), false);
        assert.equal(await count(store, 'records'), 1);
      });

      storeTest('a transaction that throws leaves nothing behind', async (store) => {
        const outbox = createOutbox(4);
        const boom = new Error('boom');
        const failed = store.transaction(async (trx) => {
          await trx.insertInto('workspaces').values({ id: 'ws_a', name: 'A', created_at: T0 }).execute();
          await new ScopedRecords(trx, store.capabilities, 'ws_a').insert(row('cus_01', { name: 'one' }));
          await outbox.append(trx, change('cus_01', 1));
          throw boom;
        });
        assert.equal(await rejection(failed), boom);
        for (const table of ['workspaces', 'records', 'changes', 'log_partitions'] as const) {
          assert.equal(await count(store, table), 0, table);
        }

        // The same work without the throw commits all of it.
        const result = await store.transaction(async (trx) => {
          await trx.insertInto('workspaces').values({ id: 'ws_a', name: 'A', created_at: T0 }).execute();
          await new ScopedRecords(trx, store.capabilities, 'ws_a').insert(row('cus_01', { name: 'one' }));
          return outbox.append(trx, change('cus_01', 1));
        });
        assert.equal(result.offset, 1);
        for (const table of ['workspaces', 'records', 'changes', 'log_partitions'] as const) {
          assert.equal(await count(store, table), 1, table);
        }
      });

      storeTest('a failing statement inside a transaction rolls back the earlier ones', async (store) => {
        await addWorkspace(store, 'ws_a');
        const failed = store.transaction(async (trx) => {
          const records = new ScopedRecords(trx, store.capabilities, 'ws_a');
          await records.insert(row('cus_01', { name: 'one' }));
          await records.insert(row('cus_01', { name: 'duplicate' }));
        });
        assert.ok(isUniqueViolation(await rejection(failed)));
        assert.equal(await count(store, 'records'), 0);
      });
    });

    describe('outbox', () => {
      storeTest('assigns per-partition offsets 1, 2, 3… in append order', async (store) => {
        const partitions = 4;
        const outbox = createOutbox(partitions);
        assert.equal(outbox.partitions, partitions);
        const recordIds = Array.from({ length: 12 }, (_, i) => `cus_${String(i).padStart(2, '0')}`);
        const expectedNext = new Map<number, number>();
        const appended = [];
        for (const [i, recordId] of [...recordIds, ...recordIds.slice(0, 5)].entries()) {
          const entry = await store.transaction((trx) => outbox.append(trx, change(recordId, i + 1)));
          const partition = partitionFor(recordId, partitions);
          const offset = (expectedNext.get(partition) ?? 0) + 1;
          expectedNext.set(partition, offset);
          assert.equal(entry.partition, partition);
          assert.equal(entry.offset, offset, `change ${i} in partition ${partition}`);
          appended.push(entry);
        }
        assert.ok(expectedNext.size > 1, 'the test records should spread over several partitions');

        // What is stored reads back as the same entries, offsets gapless per partition.
        const rows = await store.db.selectFrom('changes').selectAll().orderBy('partition').orderBy('offset').execute();
        assert.equal(rows.length, appended.length);
        const entries = rows.map(entryFromRow);
        for (const entry of entries) assert.equal(typeof entry.offset, 'number');
        assert.deepEqual(
          entries,
          [...appended].sort((x, y) => x.partition - y.partition || x.offset - y.offset),
        );
        for (const [partition, last] of expectedNext) {
          assert.deepEqual(
            entries.filter((e) => e.partition === partition).map((e) => e.offset),
            Array.from({ length: last }, (_, i) => i + 1),
          );
        }
      });

      storeTest('several appends in one transaction take consecutive offsets', async (store) => {
        const outbox = createOutbox(1);
        const entries = await store.transaction(async (trx) => {
          const result = [];
          for (let n = 1; n <= 3; n++) result.push(await outbox.append(trx, change('cus_01', n)));
          return result;
        });
        assert.deepEqual(
          entries.map((e) => [e.partition, e.offset]),
          [
            [0, 1],
            [0, 2],
            [0, 3],
          ],
        );
      });

      storeTest('a rolled-back append leaves no change and no offset gap', async (store) => {
        const outbox = createOutbox(1);
        await store.transaction((trx) => outbox.append(trx, change('cus_01', 1)));
        const before = await store.db.selectFrom('log_partitions').selectAll().execute();

        const rolledBack = store.transaction(async (trx) => {
          const entry = await outbox.append(trx, change('cus_01', 2));
          assert.equal(entry.offset, 2);
          throw new Error('abort after append');
        });
        assert.match(String(await rejection(rolledBack)), /abort after append/);
        assert.deepEqual(await store.db.selectFrom('log_partitions').selectAll().execute(), before);
        assert.deepEqual(
          (await store.db.selectFrom('changes').select('id').execute()).map((r) => r.id),
          ['chg_cus_01_1'],
        );

        const next = await store.transaction((trx) => outbox.append(trx, change('cus_01', 3)));
        assert.equal(next.offset, 2);
        assert.deepEqual(
          (await store.db.selectFrom('changes').select(['id', 'offset']).orderBy('offset').execute()).map((r) => [r.id, r.offset]),
          [
            ['chg_cus_01_1', 1],
            ['chg_cus_01_3', 2],
          ],
        );
      });

      storeTest('concurrent appends to one partition get distinct, gapless offsets', async (store) => {
        const outbox = createOutbox(1);
        const settled = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            store.transaction(async (trx) => {
              const entry = await outbox.append(trx, change(`cus_${String(i).padStart(2, '0')}`, 1));
              if (i % 5 === 4) throw new Error(`roll back ${i}`);
              return entry;
            }),
          ),
        );
        const committed = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        assert.equal(committed.length, 16);
        assert.deepEqual(
          committed.map((e) => e.offset).sort((x, y) => x - y),
          Array.from({ length: 16 }, (_, i) => i + 1),
        );
        assert.equal(await count(store, 'changes'), 16);
      });
    });
  });
}
