// Table types for the one query layer (Kysely). Timestamps are ISO-8601 UTC strings and JSON columns
// are text in both dialects, so SQLite and PostgreSQL share every query.
import type { Generated } from 'kysely';

export interface WorkspacesTable {
  id: string;
  name: string;
  created_at: string;
}

export interface ApiKeysTable {
  id: string;
  workspace_id: string;
  name: string;
  role: string;
  key_hash: string;
  key_hint: string;
  created_at: string;
  revoked_at: string | null;
}

export interface RecordsTable {
  workspace_id: string;
  entity_type: string;
  id: string;
  version: number;
  data: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface ChangesTable {
  id: string;
  partition: number;
  offset: number;
  workspace_id: string;
  entity_type: string;
  record_id: string;
  version: number;
  op: string;
  origin: string;
  changed_fields: string;
  record: string;
  correlation_id: string | null;
  created_at: string;
}

export interface LogPartitionsTable {
  partition: number;
  next_offset: number;
}

export interface LogOffsetsTable {
  group_name: string;
  partition: number;
  committed_offset: number;
}

export interface LogDeadLettersTable {
  id: Generated<number>;
  group_name: string;
  partition: number;
  offset: number;
  change_id: string;
  attempts: number;
  error: string;
  created_at: string;
}

export interface IdempotencyKeysTable {
  workspace_id: string;
  key: string;
  fingerprint: string;
  status_code: number;
  response: string;
  created_at: string;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface Database {
  workspaces: WorkspacesTable;
  api_keys: ApiKeysTable;
  records: RecordsTable;
  changes: ChangesTable;
  log_partitions: LogPartitionsTable;
  log_offsets: LogOffsetsTable;
  log_dead_letters: LogDeadLettersTable;
  idempotency_keys: IdempotencyKeysTable;
  meta: MetaTable;
}
