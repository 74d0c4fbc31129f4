// Sync issues: per-record failures that need a person. Visible, retryable, resolvable.
import type { IdFactory } from '../catalog/ids.ts';
import { isId } from '../catalog/ids.ts';
import { TandemError } from '../errors/errors.ts';
import type { SyncIssuesTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';

export interface IssueInput {
  workspaceId: string;
  connectionId: string;
  entityType: string;
  recordId: string | null;
  externalId: string | null;
  direction: 'outbound' | 'inbound';
  code: string;
  message: string;
}

export interface SyncIssueView {
  id: string;
  object: 'sync_issue';
  connection_id: string;
  entity_type: string;
  record_id: string | null;
  external_id: string | null;
  direction: string;
  code: string;
  message: string;
  status: string;
  created_at: string;
  updated_at: string;
}

function view(row: SyncIssuesTable): SyncIssueView {
  return {
    id: row.id,
    object: 'sync_issue',
    connection_id: row.connection_id,
    entity_type: row.entity_type,
    record_id: row.record_id,
    external_id: row.external_id,
    direction: row.direction,
    code: row.code,
    message: row.message,
    status: row.status,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export class SyncIssues {
  readonly #store: Store;
  readonly #ids: IdFactory;

  constructor(store: Store, ids: IdFactory) {
    this.#store = store;
    this.#ids = ids;
  }

  /** Opens an issue, or refreshes the open one for the same record and direction. */
  async open(input: IssueInput): Promise<void> {
    const now = new Date().toISOString();
    const existing = await this.#store.db
      .selectFrom('sync_issues')
      .select('id')
      .where('connection_id', '=', input.connectionId)
      .where('entity_type', '=', input.entityType)
      .where('direction', '=', input.direction)
      .where('status', '=', 'open')
      .where((eb) =>
        input.recordId !== null ? eb('record_id', '=', input.recordId) : eb('external_id', '=', input.externalId ?? ''),
      )
      .executeTakeFirst();
    if (existing !== undefined) {
      await this.#store.db
        .updateTable('sync_issues')
        .set({ code: input.code, message: input.message.slice(0, 2000), updated_at: now })
        .where('id', '=', existing.id)
        .execute();
      return;
    }
    await this.#store.db
      .insertInto('sync_issues')
      .values({
        id: this.#ids('iss'),
        workspace_id: input.workspaceId,
        connection_id: input.connectionId,
        entity_type: input.entityType,
        record_id: input.recordId,
        external_id: input.externalId,
        direction: input.direction,
        code: input.code,
        message: input.message.slice(0, 2000),
        status: 'open',
        created_at: now,
        updated_at: now,
      })
      .execute();
  }

  async list(workspaceId: string, filter: { status?: string | undefined; connectionId?: string | undefined; limit: number }): Promise<SyncIssueView[]> {
    let q = this.#store.db.selectFrom('sync_issues').selectAll().where('workspace_id', '=', workspaceId);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    if (filter.connectionId !== undefined) q = q.where('connection_id', '=', filter.connectionId);
    const rows = await q.orderBy('id', 'desc').limit(filter.limit).execute();
    return rows.map(view);
  }

  async get(workspaceId: string, id: string): Promise<SyncIssueView> {
    const row = isId('iss', id)
      ? await this.#store.db.selectFrom('sync_issues').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst()
      : undefined;
    if (row === undefined) throw new TandemError('NOT_FOUND', `No sync issue ${id.slice(0, 64)}.`);
    return view(row);
  }

  async resolve(id: string): Promise<void> {
    await this.#store.db
      .updateTable('sync_issues')
      .set({ status: 'resolved', updated_at: new Date().toISOString() })
      .where('id', '=', id)
      .execute();
  }
}
