// Records of one workspace. The workspace id is bound at construction and every query carries it:
// catalog code gets records only through this class, so no query can forget the workspace.
import type { Db, StoreCapabilities, Tx } from './store.ts';
import type { RecordsTable } from './schema.ts';
import { prepared } from './prepared.ts';

// The per-request queries, compiled once (see prepared.ts).
const selectRecord = prepared<[workspaceId: string, entityType: string, id: string], RecordsTable>((db, $) =>
  db
    .selectFrom('records')
    .selectAll()
    .where('workspace_id', '=', $(0))
    .where('entity_type', '=', $(1))
    .where('id', '=', $(2)),
);

const insertRecord = prepared<
  [workspaceId: string, entityType: string, id: string, version: number, data: string, createdAt: string, updatedAt: string, deletedAt: string | null],
  never
>((db, $) =>
  db.insertInto('records').values({
    workspace_id: $(0),
    entity_type: $(1),
    id: $(2),
    version: $(3),
    data: $(4),
    created_at: $(5),
    updated_at: $(6),
    deleted_at: $(7),
  }),
);

const updateRecord = prepared<
  [version: number, data: string, updatedAt: string, deletedAt: string | null, workspaceId: string, entityType: string, id: string, expected: number],
  never
>((db, $) =>
  db
    .updateTable('records')
    .set({ version: $(0), data: $(1), updated_at: $(2), deleted_at: $(3) })
    .where('workspace_id', '=', $(4))
    .where('entity_type', '=', $(5))
    .where('id', '=', $(6))
    .where('version', '=', $(7)),
);

export interface ListQuery {
  entityType: string;
  limit: number;
  /** Only ids before this one (lists run newest first). */
  beforeId?: string | undefined;
  /** Exact matches on top-level JSON fields. */
  equals?: ReadonlyArray<{ field: string; value: string }>;
  updatedSince?: string | undefined;
  includeDeleted?: boolean;
}

export class ScopedRecords {
  readonly workspaceId: string;
  readonly #db: Db | Tx;
  readonly #capabilities: StoreCapabilities;

  constructor(db: Db | Tx, capabilities: StoreCapabilities, workspaceId: string) {
    this.#db = db;
    this.#capabilities = capabilities;
    this.workspaceId = workspaceId;
  }

  async get(entityType: string, id: string): Promise<RecordsTable | undefined> {
    const { rows } = await selectRecord(this.#db, this.workspaceId, entityType, id);
    return rows[0];
  }

  async list(query: ListQuery): Promise<RecordsTable[]> {
    let q = this.#db
      .selectFrom('records')
      .selectAll()
      .where('workspace_id', '=', this.workspaceId)
      .where('entity_type', '=', query.entityType);
    if (query.beforeId !== undefined) q = q.where('id', '<', query.beforeId);
    if (query.updatedSince !== undefined) q = q.where('updated_at', '>=', query.updatedSince);
    if (query.includeDeleted !== true) q = q.where('deleted_at', 'is', null);
    for (const { field, value } of query.equals ?? []) {
      q = q.where(this.#capabilities.jsonText('data', field), '=', value);
    }
    return q.orderBy('id', 'desc').limit(query.limit).execute();
  }

  async insert(row: Omit<RecordsTable, 'workspace_id'>): Promise<void> {
    await insertRecord(this.#db, this.workspaceId, row.entity_type, row.id, row.version, row.data, row.created_at, row.updated_at, row.deleted_at);
  }

  /** Writes a new version only if the stored one is still `expectedVersion`; false when it moved on. */
  async update(
    entityType: string,
    id: string,
    expectedVersion: number,
    next: Pick<RecordsTable, 'version' | 'data' | 'updated_at' | 'deleted_at'>,
  ): Promise<boolean> {
    const result = await updateRecord(
      this.#db,
      next.version,
      next.data,
      next.updated_at,
      next.deleted_at,
      this.workspaceId,
      entityType,
      id,
      expectedVersion,
    );
    return result.numAffectedRows === 1n;
  }

  async findIdempotencyKey(key: string) {
    return this.#db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('workspace_id', '=', this.workspaceId)
      .where('key', '=', key)
      .executeTakeFirst();
  }

  async insertIdempotencyKey(row: { key: string; fingerprint: string; status_code: number; response: string; created_at: string }) {
    await this.#db
      .insertInto('idempotency_keys')
      .values({ ...row, workspace_id: this.workspaceId })
      .execute();
  }
}
