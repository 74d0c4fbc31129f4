// Group commit on a real SQLite file: shared commits, per-caller all-or-nothing, acknowledged only
// once durable, and a failed COMMIT failing the whole batch.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { Database as Schema } from '../schema.ts';
import { GroupCommit } from './group-commit.ts';

const dir = mkdtempSync(join(tmpdir(), 'tandem-group-commit-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });
let files = 0;

/** A fresh database file with a table `t(id primary key, parent references p deferred)`. */
function open(): { db: Kysely<Schema>; group: GroupCommit; file: string; close: () => Promise<void> } {
  const file = join(dir, `db-${String(++files)}.sqlite`);
  const database = new Database(file);
  database.pragma('journal_mode = WAL');
  database.pragma('foreign_keys = ON');
  database.exec(`
    create table p (id text primary key);
    create table t (id text primary key, parent text references p (id) deferrable initially deferred);`);
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database }) });
  return { db, group: new GroupCommit(db), file, close: () => db.destroy() };
}

async function insert(trx: Kysely<Schema>, id: string, parent: string | null = null): Promise<void> {
  await sql`insert into t (id, parent) values (${id}, ${parent})`.execute(trx);
}

/** The ids in t, read through a connection of its own (what another process would see). */
function committedIds(file: string): string[] {
  const reader = new Database(file, { readonly: true });
  try {
    return (reader.prepare('select id from t order by id').all() as Array<{ id: string }>).map((r) => r.id);
  } finally {
    reader.close();
  }
}

test('transactions that arrive together share commits, and each answers its own value', async () => {
  const { group, file, close } = open();
  const ids = Array.from({ length: 60 }, (_, i) => `r${String(i).padStart(2, '0')}`);
  const values = await Promise.all(
    ids.map((id) =>
      group.transaction(async (trx) => {
        await insert(trx, id);
        return `${id}!`;
      }),
    ),
  );
  assert.deepEqual(values, ids.map((id) => `${id}!`));
  assert.deepEqual(committedIds(file), ids);
  const { batches, jobs } = group.stats;
  assert.equal(jobs, 60);
  assert.ok(batches < 10, `60 concurrent transactions took ${String(batches)} commits`);
  await close();
});

test('a caller that throws loses only its own writes; its neighbours commit', async () => {
  const { group, file, close } = open();
  const boom = new Error('boom');
  const results = await Promise.allSettled([
    group.transaction((trx) => insert(trx, 'a')),
    group.transaction(async (trx) => {
      await insert(trx, 'b1');
      await insert(trx, 'b2');
      throw boom;
    }),
    // A failing statement (duplicate key) after a successful one: the earlier insert is undone too.
    group.transaction(async (trx) => {
      await insert(trx, 'c');
      await insert(trx, 'a');
    }),
    group.transaction((trx) => insert(trx, 'd')),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
  );
  assert.equal((results[1] as PromiseRejectedResult).reason, boom);
  assert.match(String((results[2] as PromiseRejectedResult).reason), /UNIQUE/);
  assert.deepEqual(committedIds(file), ['a', 'd']);
  assert.equal(group.stats.batches, 1, 'the four shared one commit');
  await close();
});

test('a caller is answered only once its writes are committed', async () => {
  const { group, file, close } = open();
  const seen: string[][] = [];
  await Promise.all(
    ['x', 'y', 'z'].map((id) =>
      group.transaction((trx) => insert(trx, id)).then(() => {
        seen.push(committedIds(file));
      }),
    ),
  );
  for (const ids of seen) assert.deepEqual(ids, ['x', 'y', 'z']);
  await close();
});

test('a COMMIT that fails fails every caller of the batch and keeps nothing', async () => {
  const { group, file, close } = open();
  // The deferred foreign key is checked at COMMIT: one caller's orphan row fails the whole batch.
  const results = await Promise.allSettled([
    group.transaction((trx) => insert(trx, 'ok1')),
    group.transaction((trx) => insert(trx, 'orphan', 'no-such-parent')),
    group.transaction((trx) => insert(trx, 'ok2')),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected', 'rejected'],
  );
  for (const r of results) assert.match(String((r as PromiseRejectedResult).reason), /FOREIGN KEY/);
  assert.deepEqual(committedIds(file), []);
  // The group goes on: the next transaction commits.
  await group.transaction((trx) => insert(trx, 'later'));
  assert.deepEqual(committedIds(file), ['later']);
  await close();
});

test('callers that arrive while a batch runs form the next batch', async () => {
  const { group, file, close } = open();
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const first = group.transaction(async (trx) => {
    await insert(trx, 'first');
    await gate;
  });
  await new Promise((resolve) => setImmediate(resolve));
  const second = group.transaction((trx) => insert(trx, 'second'));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(committedIds(file), [], 'nothing commits while the first batch is open');
  release();
  await Promise.all([first, second]);
  assert.deepEqual(committedIds(file), ['first', 'second']);
  assert.equal(group.stats.batches, 2);
  await close();
});
