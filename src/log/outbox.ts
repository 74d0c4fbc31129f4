// The transactional outbox: a catalog write appends its change in the same transaction, so there is
// never a record without its change or a change without its record. Every log implementation reads
// from here (the embedded log directly; the Kafka log through its relay).
import { sql } from 'kysely';
import type { ChangesTable } from '../store/schema.ts';
import type { Tx } from '../store/store.ts';
import { partitionFor, type Change, type LogEntry } from './change.ts';

export interface Outbox {
  readonly partitions: number;
  append(trx: Tx, change: Change): Promise<LogEntry>;
}

export function createOutbox(partitions: number): Outbox {
  return {
    partitions,
    async append(trx, change) {
      const partition = partitionFor(change.recordId, partitions);
      // The upsert takes the partition's row lock until commit: appends to one partition are
      // serialised, so offsets become visible in order and a reader never skips a later-committing one.
      const { next_offset: offset } = await trx
        .insertInto('log_partitions')
        .values({ partition, next_offset: 1 })
        .onConflict((oc) => oc.column('partition').doUpdateSet({ next_offset: sql`log_partitions.next_offset + 1` }))
        .returning('next_offset')
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('changes')
        .values({
          id: change.id,
          partition,
          offset,
          workspace_id: change.workspaceId,
          entity_type: change.entityType,
          record_id: change.recordId,
          version: change.version,
          op: change.op,
          origin: change.origin,
          changed_fields: JSON.stringify(change.changedFields),
          record: JSON.stringify(change.record),
          correlation_id: change.correlationId,
          created_at: change.createdAt,
        })
        .execute();
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
