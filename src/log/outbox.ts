// The transactional outbox: a catalog write appends its change in the same transaction, so there is
// never a record without its change or a change without its record. Every log implementation reads
// from here (the embedded log directly; the Kafka log through its relay).
import { sql } from 'kysely';
import type { ChangesTable } from '../store/schema.ts';
import { prepared } from '../store/prepared.ts';
import type { Db, Tx } from '../store/store.ts';
import { partitionFor, type Change, type LogEntry } from './change.ts';
import type { DeadLetter } from './log.ts';

export interface Outbox {
  readonly partitions: number;
  append(trx: Tx, change: Change): Promise<LogEntry>;
}

// Run on every write: compiled once (see store/prepared.ts).
// The upsert takes the partition's row lock until commit: appends to one partition are serialised, so
// offsets become visible in order and a reader never skips a later-committing one.
const nextOffset = prepared<[partition: number], { next_offset: number }>((db, $) =>
  db
    .insertInto('log_partitions')
    .values({ partition: $(0), next_offset: 1 })
    .onConflict((oc) => oc.column('partition').doUpdateSet({ next_offset: sql`log_partitions.next_offset + 1` }))
    .returning('next_offset'),
);

const insertChange = prepared<
  [
    id: string,
    partition: number,
    offset: number,
    workspaceId: string,
    entityType: string,
    recordId: string,
    version: number,
    op: string,
    origin: string,
    changedFields: string,
    record: string,
    correlationId: string | null,
    createdAt: string,
  ],
  never
>((db, $) =>
  db.insertInto('changes').values({
    id: $(0),
    partition: $(1),
    offset: $(2),
    workspace_id: $(3),
    entity_type: $(4),
    record_id: $(5),
    version: $(6),
    op: $(7),
    origin: $(8),
    changed_fields: $(9),
    record: $(10),
    correlation_id: $(11),
    created_at: $(12),
  }),
);

export function createOutbox(partitions: number): Outbox {
  return {
    partitions,
    async append(trx, change) {
      const partition = partitionFor(change.recordId, partitions);
      const { rows } = await nextOffset(trx, partition);
      const offset = Number(rows[0]?.next_offset);
      if (!Number.isSafeInteger(offset)) throw new Error(`the outbox found no offset for partition ${String(partition)}`);
      await insertChange(
        trx,
        change.id,
        partition,
        offset,
        change.workspaceId,
        change.entityType,
        change.recordId,
        change.version,
        change.op,
        change.origin,
        JSON.stringify(change.changedFields),
        JSON.stringify(change.record),
        change.correlationId,
        change.createdAt,
      );
      return { ...change, partition, offset };
    },
  };
}

export function entryFromRow(row: ChangesTable): LogEntry {
  return {
    id: row.id,
    partition: row.partition,
    offset: row.offset,
    workspaceId: row.workspace_id,
    entityType: row.entity_type,
    recordId: row.record_id,
    version: row.version,
    op: row.op as LogEntry['op'],
    origin: row.origin as LogEntry['origin'],
    changedFields: JSON.parse(row.changed_fields) as string[],
    record: JSON.parse(row.record) as Record<string, unknown>,
    correlationId: row.correlation_id,
    createdAt: row.created_at,
  };
}

/** A group's dead letters (`log_dead_letters`, oldest first) with the entries the outbox still holds. */
export async function readDeadLetters(db: Db, group: string): Promise<DeadLetter[]> {
  const rows = await db.selectFrom('log_dead_letters').selectAll().where('group_name', '=', group).orderBy('id').execute();
  const entries = new Map<string, LogEntry>();
  const ids = [...new Set(rows.map((row) => row.change_id))];
  for (let i = 0; i < ids.length; i += 500) {
    const changes = await db.selectFrom('changes').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute();
    for (const change of changes) entries.set(change.id, entryFromRow(change));
  }
  return rows.map((row) => ({
    group: row.group_name,
    partition: row.partition,
    offset: row.offset,
    changeId: row.change_id,
    attempts: row.attempts,
    error: row.error,
    createdAt: row.created_at,
    entry: entries.get(row.change_id),
  }));
}
