import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { Database as Schema, WorkspacesTable } from './schema.ts';
import { prepared } from './prepared.ts';

function memoryDb(): Kysely<Schema> {
  const database = new Database(':memory:');
  database.exec('create table workspaces (id text primary key, name text not null, created_at text not null)');
  return new Kysely<Schema>({ dialect: new SqliteDialect({ database }) });
}

test('a prepared query binds each call’s arguments by position and keeps its constants', async () => {
  const db = memoryDb();
  const insert = prepared<[id: string, name: string], never>((d, $) =>
    d.insertInto('workspaces').values({ id: $(0), name: $(1), created_at: '2026-01-01T00:00:00.000Z' }),
  );
  // Arguments used out of order, and one twice.
  const byNames = prepared<[second: string, first: string], WorkspacesTable>((d, $) =>
    d.selectFrom('workspaces').selectAll().where((eb) => eb.or([eb('name', '=', $(1)), eb('name', '=', $(0)), eb('id', '=', $(1))])).orderBy('id'),
  );
  await insert(db, 'ws_a', 'Alpha');
  await insert(db, 'ws_b', 'Beta');
  await insert(db, 'ws_c', "O'Brien; drop table workspaces");
  assert.deepEqual(
    (await byNames(db, 'Beta', 'Alpha')).rows.map((r) => r.id),
    ['ws_a', 'ws_b'],
  );
  assert.deepEqual(
    (await byNames(db, "O'Brien; drop table workspaces", 'nobody')).rows.map((r) => [r.id, r.created_at]),
    [['ws_c', '2026-01-01T00:00:00.000Z']],
  );
  // Inside a transaction too.
  await db.transaction().execute(async (trx) => {
    await insert(trx, 'ws_d', 'Delta');
    assert.equal((await byNames(trx, 'Delta', 'x')).rows[0]?.id, 'ws_d');
  });
  await db.destroy();
});

test('a query that inlines a placeholder instead of binding it is refused', async () => {
  const db = memoryDb();
  const inlined = prepared<[name: string], WorkspacesTable>((d, $) =>
    d.selectFrom('workspaces').selectAll().where('name', '=', sql.lit($(0))),
  );
  await assert.rejects(() => inlined(db, 'Alpha'), /inlined a placeholder/);
  await db.destroy();
});
