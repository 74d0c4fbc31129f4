// A change: the immutable log event "record X of type T reached version n".

export type ChangeOp = 'create' | 'update' | 'delete';

/** Where a change came from: the API, a connection (`connection:<id>`), or Tandem itself. */
export type Origin = 'api' | 'system' | `connection:${string}`;

export interface Change {
  /** `chg_…`, unique. */
  id: string;
  workspaceId: string;
  entityType: string;
  recordId: string;
  version: number;
  op: ChangeOp;
  origin: Origin;
  /** Top-level fields that differ from the previous version (all fields on create). */
  changedFields: string[];
  /** The record as the API answers it, after the change. */
  record: Record<string, unknown>;
  correlationId: string | null;
  createdAt: string;
}

/** A change as a log delivers it: with its position. The key is the record id. */
export interface LogEntry extends Change {
  partition: number;
  offset: number;
}

/** FNV-1a: a stable, fast hash so one record's changes always land in one partition. */
export function partitionFor(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
