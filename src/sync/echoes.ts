// Echoes: Tandem's own writes coming back. Every create or update Tandem makes in an external system
// comes back as a notification (a Stripe webhook and the same event in the poll's feed; a change
// event), carrying the object exactly as the link's base holds it. There is nothing to fetch or merge
// for one, so it is recognised where it arrives and not stored: storing it, reading it back in the
// worker's next pass and finishing it cost about a third of Tandem's CPU per outbound change.
//
// The test is the one the worker applies to what it reads back (a notification that does not pass it
// here, say because it arrived before the link was saved, is stored and passes it there), so being
// recognised early changes what is stored, never what is synced.
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
 * The notifications less the echoes of Tandem's own writes. A type the client has no binding for is
 * kept (the worker decides).
 */
export async function withoutEchoes(
  sync: SyncStore,
  client: Pick<ConnectorClient, 'binding'>,
  notifications: readonly ExternalNotification[],
): Promise<ExternalNotification[]> {
  const kept: ExternalNotification[] = [];
  for (const n of notifications) {
    const binding = n.op === 'delete' || n.object === undefined ? undefined : client.binding(n.entityType);
    if (binding !== undefined && isEchoOf(binding, await sync.linkByExternal(n.entityType, n.externalId), n.externalId, n.op, n.object)) continue;
    kept.push(n);
  }
  return kept;
}

/**
 * Stores what arrived from a change feed (webhook, poll, stream) for the worker, less the echoes;
 * answers how many were new. Every feed goes through here.
 */
export async function storeArrived(sync: SyncStore, client: Pick<ConnectorClient, 'binding'>, notifications: readonly ExternalNotification[], source: ExternalSource): Promise<number> {
  return sync.appendExternal(await withoutEchoes(sync, client, notifications), source);
}
