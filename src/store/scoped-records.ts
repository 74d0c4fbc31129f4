// Records of one workspace. The workspace id is bound at construction and every query carries it:
// catalog code gets records only through this class, so no query can forget the workspace.
import type { Db, StoreCapabilities, Tx } from './store.ts';
import type { RecordsTable } from './schema.ts';

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
    return this.#db
      .selectFrom('records')
      .selectAll()
      .where('workspace_id', '=', this.workspaceId)
      .where('entity_type', '=', entityType)
      .where('id', '=', id)
      .executeTakeFirst();
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
    await this.#db
      .insertInto('records')
      .values({ ...row, workspace_id: this.workspaceId })
      .execute();
  }

  /** Writes a new version only if the stored one is still `expectedVersion`; false when it moved on. */
  async update(
    entityType: string,
    id: string,
    expectedVersion: number,
    next: Pick<RecordsTable, 'version' | 'data' | 'updated_at' | 'deleted_at'>,
  ): Promise<boolean> {
    const result = await this.#db
      .updateTable('records')
      .set(next)
      .where('workspace_id', '=', this.workspaceId)
      .where('entity_type', '=', entityType)
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
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
