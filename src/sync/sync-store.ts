// The sync engine's rows of one connection: links with their bases, outbound marks, inbound
// external changes and feed cursors. Every query is bound to the connection given at construction.
import { sql } from 'kysely';
import type { ExternalNotification } from '../connectors/connector.ts';
import type { ExternalChangesTable, LinksTable, SyncMarksTable } from '../store/schema.ts';
import { prepared } from '../store/prepared.ts';
import type { Unanswered } from './unanswered.ts';
import type { Db, Tx } from '../store/store.ts';

export interface Link {
  entityType: string;
  recordId: string;
  externalId: string;
  base: Record<string, unknown>;
  localVersion: number;
  externalVersion: string | null;
  deleted: boolean;
  /** Values sent in updates whose answer never came (./unanswered.ts); absent: none. */
  unanswered?: Unanswered | undefined;
}

/**
 * A link whose external id starts with this is a create in flight: written just before the create
 * is sent, with the idempotency key it is sent with (`pending:<key>`) and the fields it sends as the
 * base, so a retry after a lost answer or a crash knows exactly what was asked for.
 */
export const PENDING_PREFIX = 'pending:';

/** The name the connector's change-feed (poll) cursor is kept under. */
export const FEED_CURSOR = 'events';

/** The name a pushed change feed's cursor (Salesforce: the last CDC replay id) is kept under. */
export const STREAM_CURSOR = 'stream';

/** Where external changes came from. `resync`: a full resync re-reads every linked object. */
export type ExternalSource = 'webhook' | 'poll' | 'backfill' | 'stream' | 'resync';

export function isPending(link: Link): boolean {
  return link.externalId.startsWith(PENDING_PREFIX);
}

// The statements every synced change runs, built and compiled once (../store/prepared.ts).
const linkByRecordQuery = prepared<[connectionId: string, entityType: string, recordId: string], LinksTable>((db, $) =>
  db.selectFrom('links').selectAll().where('connection_id', '=', $(0)).where('entity_type', '=', $(1)).where('record_id', '=', $(2)),
);
const linkByExternalQuery = prepared<[connectionId: string, entityType: string, externalId: string], LinksTable>((db, $) =>
  db.selectFrom('links').selectAll().where('connection_id', '=', $(0)).where('entity_type', '=', $(1)).where('external_id', '=', $(2)),
);
const saveLinkQuery = prepared<
  [
    connectionId: string,
    entityType: string,
    recordId: string,
    externalId: string,
    base: string,
    localVersion: number,
    externalVersion: string | null,
    deleted: number,
    updatedAt: string,
    unanswered: string | null,
  ],
  never
>((db, $) =>
  db
    .insertInto('links')
    .values({
      connection_id: $(0),
      entity_type: $(1),
      record_id: $(2),
      external_id: $(3),
      base: $(4),
      local_version: $(5),
      external_version: $(6),
      deleted: $(7),
      updated_at: $(8),
      unanswered: $(9),
    })
    .onConflict((oc) =>
      oc.columns(['connection_id', 'entity_type', 'record_id']).doUpdateSet({
        external_id: $(3),
        base: $(4),
        local_version: $(5),
        external_version: $(6),
        deleted: $(7),
        updated_at: $(8),
        unanswered: $(9),
      }),
    ),
);
const saveUnansweredQuery = prepared<[connectionId: string, entityType: string, recordId: string, unanswered: string], never>((db, $) =>
  db.updateTable('links').set({ unanswered: $(3) }).where('connection_id', '=', $(0)).where('entity_type', '=', $(1)).where('record_id', '=', $(2)),
);
const markQuery = prepared<[connectionId: string, entityType: string, recordId: string, version: number, now: string], never>((db, $) =>
  db
    .insertInto('sync_marks')
    .values({
      connection_id: $(0),
      entity_type: $(1),
      record_id: $(2),
      wanted_version: $(3),
      attempts: 0,
      not_before: $(4),
      last_error: null,
      updated_at: $(4),
    })
    .onConflict((oc) =>
      oc.columns(['connection_id', 'entity_type', 'record_id']).doUpdateSet({
        wanted_version: sql<number>`case when excluded.wanted_version > sync_marks.wanted_version then excluded.wanted_version else sync_marks.wanted_version end`,
        updated_at: $(4),
      }),
    ),
);
const dueMarksQuery = prepared<[connectionId: string, now: string, limit: number], SyncMarksTable>((db, $) =>
  db.selectFrom('sync_marks').selectAll().where('connection_id', '=', $(0)).where('not_before', '<=', $(1)).orderBy('not_before').limit($(2)),
);
const clearMarkQuery = prepared<[connectionId: string, entityType: string, recordId: string, doneVersion: number], never>((db, $) =>
  db
    .deleteFrom('sync_marks')
    .where('connection_id', '=', $(0))
    .where('entity_type', '=', $(1))
    .where('record_id', '=', $(2))
    .where('wanted_version', '<=', $(3)),
);
const appendExternalQuery = prepared<
  [connectionId: string, eventId: string, entityType: string, externalId: string, op: string, occurredAt: string, object: string | null, source: string, now: string],
  never
>((db, $) =>
  db
    .insertInto('external_changes')
    .values({
      connection_id: $(0),
      event_id: $(1),
      entity_type: $(2),
      external_id: $(3),
      op: $(4),
      occurred_at: $(5),
      object: $(6),
      source: $(7),
      received_at: $(8),
      processed_at: null,
      attempts: 0,
      not_before: $(8),
      last_error: null,
    })
    .onConflict((oc) => oc.columns(['connection_id', 'event_id']).doNothing()),
);
const dueExternalQuery = prepared<[connectionId: string, now: string, limit: number], ExternalChangesTable>((db, $) =>
  db
    .selectFrom('external_changes')
    .selectAll()
    .where('connection_id', '=', $(0))
    .where('processed_at', 'is', null)
    .where('not_before', '<=', $(1))
    .orderBy('occurred_at')
    .orderBy('event_id')
    .limit($(2)),
);
const finishExternalQuery = prepared<[connectionId: string, eventId: string, now: string], never>((db, $) =>
  db.updateTable('external_changes').set({ processed_at: $(2) }).where('connection_id', '=', $(0)).where('event_id', '=', $(1)),
);

function toLink(row: LinksTable): Link {
  return {
    entityType: row.entity_type,
    recordId: row.record_id,
    externalId: row.external_id,
    base: JSON.parse(row.base) as Record<string, unknown>,
    localVersion: row.local_version,
    externalVersion: row.external_version,
    deleted: row.deleted === 1,
    ...(row.unanswered === null ? {} : { unanswered: JSON.parse(row.unanswered) as Unanswered }),
  };
}

export class SyncStore {
  readonly connectionId: string;
  readonly #db: Db | Tx;

  constructor(db: Db | Tx, connectionId: string) {
    this.#db = db;
    this.connectionId = connectionId;
  }

  // Links

  async linkByRecord(entityType: string, recordId: string): Promise<Link | undefined> {
    const row = (await linkByRecordQuery(this.#db, this.connectionId, entityType, recordId)).rows[0];
    return row === undefined ? undefined : toLink(row);
  }

  async linkByExternal(entityType: string, externalId: string): Promise<Link | undefined> {
    const row = (await linkByExternalQuery(this.#db, this.connectionId, entityType, externalId)).rows[0];
    return row === undefined ? undefined : toLink(row);
  }

  /** Creates or replaces the link of a record. */
  async saveLink(link: Link): Promise<void> {
    await saveLinkQuery(
      this.#db,
      this.connectionId,
      link.entityType,
      link.recordId,
      link.externalId,
      JSON.stringify(link.base),
      link.localVersion,
      link.externalVersion,
      link.deleted ? 1 : 0,
      new Date().toISOString(),
      link.unanswered === undefined ? null : JSON.stringify(link.unanswered),
    );
  }

  /** Sets what a link keeps of unanswered writes, and nothing else of it (a merge may be moving its base). */
  async saveUnanswered(entityType: string, recordId: string, unanswered: Unanswered): Promise<void> {
    await saveUnansweredQuery(this.#db, this.connectionId, entityType, recordId, JSON.stringify(unanswered));
  }

  async dropLink(entityType: string, recordId: string): Promise<void> {
    await this.#db
      .deleteFrom('links')
      .where('connection_id', '=', this.connectionId)
      .where('entity_type', '=', entityType)
      .where('record_id', '=', recordId)
      .execute();
  }

  /** The external ids of every live link (a full resync re-reads each). */
  async liveExternalIds(): Promise<{ entityType: string; externalId: string }[]> {
    const rows = await this.#db
      .selectFrom('links')
      .select(['entity_type', 'external_id'])
      .where('connection_id', '=', this.connectionId)
      .where('deleted', '=', 0)
      .where('external_id', 'not like', `${PENDING_PREFIX}%`)
      .execute();
    return rows.map((r) => ({ entityType: r.entity_type, externalId: r.external_id }));
  }

  async countLinks(): Promise<number> {
    const row = await this.#db
      .selectFrom('links')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('connection_id', '=', this.connectionId)
      .executeTakeFirstOrThrow();
    return row.n;
  }

  // Marks: "record X wanted at version n" (level-triggered; many changes collapse into one).

  async mark(entityType: string, recordId: string, version: number): Promise<void> {
    await markQuery(this.#db, this.connectionId, entityType, recordId, version, new Date().toISOString());
  }

  async dueMarks(limit: number, now: string): Promise<SyncMarksTable[]> {
    return (await dueMarksQuery(this.#db, this.connectionId, now, limit)).rows;
  }

  /** The earliest time a mark becomes due, if any. */
  async nextMarkDue(): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('sync_marks')
      .select((eb) => eb.fn.min('not_before').as('due'))
      .where('connection_id', '=', this.connectionId)
      .executeTakeFirst();
    return row?.due ?? undefined;
  }

  /** Clears a mark, unless a newer version was marked meanwhile. */
  async clearMark(entityType: string, recordId: string, doneVersion: number): Promise<void> {
    await clearMarkQuery(this.#db, this.connectionId, entityType, recordId, doneVersion);
  }

  async deferMark(entityType: string, recordId: string, attempts: number, notBefore: string, error: string): Promise<void> {
    await this.#db
      .updateTable('sync_marks')
      .set({ attempts, not_before: notBefore, last_error: error.slice(0, 2000), updated_at: new Date().toISOString() })
      .where('connection_id', '=', this.connectionId)
      .where('entity_type', '=', entityType)
      .where('record_id', '=', recordId)
      .execute();
  }

  async dropMark(entityType: string, recordId: string): Promise<void> {
    await this.#db
      .deleteFrom('sync_marks')
      .where('connection_id', '=', this.connectionId)
      .where('entity_type', '=', entityType)
      .where('record_id', '=', recordId)
      .execute();
  }

  // External changes: notifications from webhooks and polls, deduplicated by event id.

  /** Appends notifications; those already seen (same event id) are ignored. Answers how many were new. */
  async appendExternal(notifications: readonly ExternalNotification[], source: ExternalSource): Promise<number> {
    let added = 0;
    const now = new Date().toISOString();
    for (const n of notifications) {
      const object = n.object === undefined ? null : JSON.stringify(n.object);
      const result = await appendExternalQuery(this.#db, this.connectionId, n.eventId, n.entityType, n.externalId, n.op, n.occurredAt, object, source, now);
      added += Number(result.numAffectedRows ?? 0n);
    }
    return added;
  }

  /** External changes from `source` not processed yet (waiting, or failing and retried). */
  async unprocessedExternal(source: string): Promise<number> {
    const row = await this.#db
      .selectFrom('external_changes')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('connection_id', '=', this.connectionId)
      .where('source', '=', source)
      .where('processed_at', 'is', null)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async dueExternal(limit: number, now: string): Promise<ExternalChangesTable[]> {
    return (await dueExternalQuery(this.#db, this.connectionId, now, limit)).rows;
  }

  async nextExternalDue(): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('external_changes')
      .select((eb) => eb.fn.min('not_before').as('due'))
      .where('connection_id', '=', this.connectionId)
      .where('processed_at', 'is', null)
      .executeTakeFirst();
    return row?.due ?? undefined;
  }

  async finishExternal(eventId: string): Promise<void> {
    await finishExternalQuery(this.#db, this.connectionId, eventId, new Date().toISOString());
  }

  async deferExternal(eventId: string, attempts: number, notBefore: string, error: string): Promise<void> {
    await this.#db
      .updateTable('external_changes')
      .set({ attempts, not_before: notBefore, last_error: error.slice(0, 2000) })
      .where('connection_id', '=', this.connectionId)
      .where('event_id', '=', eventId)
      .execute();
  }

  // Cursors of change feeds (the connector's poll cursor is kept under FEED_CURSOR)

  async cursor(name: string): Promise<string | undefined> {
    const row = await this.#db
      .selectFrom('connection_cursors')
      .select('value')
      .where('connection_id', '=', this.connectionId)
      .where('name', '=', name)
      .executeTakeFirst();
    return row?.value;
  }

  async saveCursor(name: string, value: string): Promise<void> {
    const updated_at = new Date().toISOString();
    await this.#db
      .insertInto('connection_cursors')
      .values({ connection_id: this.connectionId, name, value, updated_at })
      .onConflict((oc) => oc.columns(['connection_id', 'name']).doUpdateSet({ value, updated_at }))
      .execute();
  }
}
