// Echoes: Tandem's own writes coming back. Every create or update Tandem makes in an external system
// comes back as a notification (a Stripe webhook and the same event in the poll's feed; a change
// event), carrying the object exactly as the link's base holds it. There is nothing to fetch or merge
// for one, so it is recognised where it arrives and not stored: storing it, reading it back in the
// worker's next pass and finishing it cost about a third of Tandem's CPU per outbound change.
//
// The test is the one the worker applies to what it reads back (a notification that does not pass it
// here is stored and passes it there), so being recognised early changes what is stored, never what
// is synced. A write's echo can arrive before the write's answer, so before its link is saved (a
// webhook on a kept-alive connection, under load: most of them did in a burst); the worker then
// holds the write in flight (`InFlightWrites`), with the link it will save, and the echo is tested
// against that. Where the worker runs in another process than the webhook's, such an early echo is
// stored and recognised by the worker.
import type { ConnectorClient, EntityBinding, ExternalNotification, ExternalObject } from '../connectors/connector.ts';
import { canonical, differing } from './canonical.ts';
import type { ExternalSource, Link, SyncStore } from './sync-store.ts';

/**
 * Whether a notification only carries the linked object as the link's base holds it: no delete, the
 * object carried, live, and equal to the base in every mapped field.
 */
export function isEchoOf(binding: EntityBinding, link: Link | undefined, externalId: string, op: ExternalNotification['op'], object: ExternalObject | undefined): boolean {
  if (op === 'delete' || object === undefined || link === undefined || link.deleted) return false;
  return !object.deleted && object.id === externalId && differing(canonical(binding, object.fields), link.base, binding.fields).length === 0;
}

/**
 * A connection's writes sent and not yet answered and linked, each with the base its link will hold
 * once it is: a create by the Tandem record it is made for, an update by its object.
 */
export class InFlightWrites {
  readonly #creates = new Map<string, Record<string, unknown>>();
  readonly #updates = new Map<string, Record<string, unknown>>();

  /**
   * Holds a write until `done` settles (its answer came and its link was saved, or it failed):
   * meanwhile an echo carrying `base` is recognised.
   */
  async during<T>(write: { entityType: string; recordId: string; externalId?: string | undefined; base: Record<string, unknown> }, done: () => Promise<T>): Promise<T> {
    const map = write.externalId === undefined ? this.#creates : this.#updates;
    const key = `${write.entityType}\u0000${write.externalId ?? write.recordId}`;
    map.set(key, write.base);
    try {
      return await done();
    } finally {
      if (map.get(key) === write.base) map.delete(key);
    }
  }

  /** The link an update or create in flight will save for this object, if one is in flight. */
  pendingLink(entityType: string, externalId: string, object: ExternalObject): Link | undefined {
    const base = this.#updates.get(`${entityType}\u0000${externalId}`) ?? (object.tandemId === undefined ? undefined : this.#creates.get(`${entityType}\u0000${object.tandemId}`));
    if (base === undefined) return undefined;
    return { entityType, recordId: object.tandemId ?? '', externalId, base, localVersion: 0, externalVersion: null, deleted: false };
  }

  /** Writes in flight (for tests). */
  get size(): number {
    return this.#creates.size + this.#updates.size;
  }
}

/**
 * The notifications less the echoes of Tandem's own writes: of writes linked already, or, given the
 * connection's writes in flight, of those. A type the client has no binding for is kept (the worker
 * decides).
 */
export async function withoutEchoes(
  sync: SyncStore,
  client: Pick<ConnectorClient, 'binding'>,
  notifications: readonly ExternalNotification[],
  inFlight?: InFlightWrites,
): Promise<ExternalNotification[]> {
  const kept: ExternalNotification[] = [];
  for (const n of notifications) {
    const binding = n.op === 'delete' || n.object === undefined ? undefined : client.binding(n.entityType);
    if (binding !== undefined) {
      if (isEchoOf(binding, await sync.linkByExternal(n.entityType, n.externalId), n.externalId, n.op, n.object)) continue;
      const pending = n.object === undefined ? undefined : inFlight?.pendingLink(n.entityType, n.externalId, n.object);
      if (pending !== undefined && isEchoOf(binding, pending, n.externalId, n.op, n.object)) continue;
    }
    kept.push(n);
  }
  return kept;
}

/**
 * Stores what arrived from a change feed (webhook, poll, stream) for the worker, less the echoes;
 * answers how many were new. Every feed goes through here.
 */
export async function storeArrived(
  sync: SyncStore,
  client: Pick<ConnectorClient, 'binding'>,
  notifications: readonly ExternalNotification[],
  source: ExternalSource,
  inFlight?: InFlightWrites,
): Promise<number> {
  return sync.appendExternal(await withoutEchoes(sync, client, notifications, inFlight), source);
}
