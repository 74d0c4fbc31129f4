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
  connections: ConnectionsTable;
  links: LinksTable;
  sync_marks: SyncMarksTable;
  external_changes: ExternalChangesTable;
  connection_cursors: ConnectionCursorsTable;
  sync_issues: SyncIssuesTable;
}

export interface ConnectionsTable {
  id: string;
  workspace_id: string;
  connector: string;
  name: string;
  /** active | paused | error */
  status: string;
  status_reason: string | null;
  /** JSON: the connection's settings (entities, directions, connector settings). */
  settings: string;
  /** Encrypted JSON (AES-256-GCM): never answered, never logged. */
  credentials: string;
  /** Encrypted JSON: the registered webhook endpoint and its signing secret. */
  webhook: string | null;
  account_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface LinksTable {
  connection_id: string;
  entity_type: string;
  record_id: string;
  external_id: string;
  /** JSON: the canonical field values both sides agreed on at the last sync. */
  base: string;
  /** The Tandem version the base reflects. */
  local_version: number;
  external_version: string | null;
  /** 1 once the external object is deleted. */
  deleted: number;
  updated_at: string;
  /** JSON or null: field → values sent in updates whose answer never came (src/sync/unanswered.ts). */
  unanswered: string | null;
}

export interface SyncMarksTable {
  connection_id: string;
  entity_type: string;
  record_id: string;
  wanted_version: number;
  attempts: number;
  not_before: string;
  last_error: string | null;
  updated_at: string;
}

export interface ExternalChangesTable {
  connection_id: string;
  event_id: string;
  entity_type: string;
  external_id: string;
  op: string;
  occurred_at: string;
  object: string | null;
  /** webhook | poll | backfill */
  source: string;
  received_at: string;
  processed_at: string | null;
  attempts: number;
  not_before: string;
  last_error: string | null;
}

export interface ConnectionCursorsTable {
  connection_id: string;
  name: string;
  value: string;
  updated_at: string;
}

export interface SyncIssuesTable {
  id: string;
  workspace_id: string;
  connection_id: string;
  entity_type: string;
  record_id: string | null;
  external_id: string | null;
  /** outbound | inbound */
  direction: string;
  code: string;
  message: string;
  /** open | resolved */
  status: string;
  created_at: string;
  updated_at: string;
}
