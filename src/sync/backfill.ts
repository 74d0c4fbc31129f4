// The initial sync of a new connection: what both sides already held before it existed.
//
// 1. list — every object of each inbound entity type is listed from the external system, page by
//    page, and queued as an external change of source `backfill`. The inbound worker applies them as
//    it does webhooks (fetching the object's current state first), with one addition:
//    an object no record is linked to is first matched to an unlinked record by the entity's
//    `matchBy` filter (customers: the same email), and linked rather than imported as a second copy.
// 2. apply — waits until every queued backfill change has been applied.
// 3. mark — every live record of each outbound entity type that is still unlinked is marked, so the
//    outbound worker creates its object (idempotently, as for any new record).
// 4. done.
//
// Matching runs before marking, so a record and an object that stand for the same customer become
// one link, not a copy on each side. Progress is stored after each page (connection cursor
// `backfill`), so a restart resumes where it stopped; every step is idempotent.
import type { Logger } from 'pino';
import type { Catalog } from '../catalog/catalog.ts';
import type { ExternalNotification } from '../connectors/connector.ts';
import type { Store } from '../store/store.ts';
import type { Connection } from './connections.ts';
import type { RateBudget } from './rate-budget.ts';
import { wantsInbound, wantsOutbound } from './settings.ts';
import { SyncStore } from './sync-store.ts';

export const BACKFILL_CURSOR = 'backfill';
export const BACKFILL_SOURCE = 'backfill';

type Phase = 'list' | 'apply' | 'mark' | 'done';

export interface BackfillState {
  /** Names this run's queued changes (a later run queues its own). */
  run: string;
  phase: Phase;
  /** The entity types, in order; `index` is the one in progress. */
  types: string[];
  index: number;
  /** Where the current type's listing (external cursor) or marking (Tandem list cursor) goes on. */
  cursor: string | null;
}

/** The state that starts a backfill over the connection's entity types. */
export function startState(run: string, types: readonly string[]): string {
  const state: BackfillState = { run, phase: 'list', types: [...types], index: 0, cursor: null };
  return JSON.stringify(state);
}

export interface BackfillDeps {
  store: Store;
  catalog: Catalog;
  budget: RateBudget;
  logger: Logger;
}

/** How many Tandem records one marking step looks at. */
const MARK_PAGE = 100;

export class Backfill {
  readonly #connection: Connection;
  readonly #deps: BackfillDeps;
  readonly #sync: SyncStore;
  #retryAt = 0;
  #failures = 0;
  /** Once done (or never started), the worker's passes no longer read the state. */
  #finished = false;

  constructor(connection: Connection, deps: BackfillDeps) {
    this.#connection = connection;
    this.#deps = deps;
    this.#sync = new SyncStore(deps.store.db, connection.id);
  }

  /** A new run was stored (a full resync): look at the state again. */
  restart(): void {
    this.#finished = false;
    this.#retryAt = 0;
  }

  /** Does one bounded piece of the backfill; answers how much it did (0: nothing to do now). */
  async step(signal: AbortSignal): Promise<number> {
    if (this.#finished || Date.now() < this.#retryAt) return 0;
    const raw = await this.#sync.cursor(BACKFILL_CURSOR);
    const state = raw === undefined ? undefined : (JSON.parse(raw) as BackfillState);
    if (state === undefined || state.phase === 'done') {
      this.#finished = true;
      return 0;
    }
    try {
      const did = await this.#advance(state, signal);
      this.#failures = 0;
      return did;
    } catch (error) {
      if (signal.aborted) throw error;
      // The external system failed (a 5xx, a refusal): try this step again later, with backoff.
      this.#failures += 1;
      this.#retryAt = Date.now() + Math.min(60_000, 500 * 2 ** Math.min(this.#failures, 7));
      this.#deps.logger.warn({ err: error, phase: state.phase }, 'initial sync step failed; retrying');
      return 0;
    }
  }

  async #save(state: BackfillState): Promise<void> {
    await this.#sync.saveCursor(BACKFILL_CURSOR, JSON.stringify(state));
  }

  async #advance(state: BackfillState, signal: AbortSignal): Promise<number> {
    const next = (changes: Partial<BackfillState>): BackfillState => ({ ...state, ...changes });
    const settings = this.#connection.settings;
    switch (state.phase) {
      case 'list': {
        const type = state.types[state.index];
        if (type === undefined) {
          await this.#save(next({ phase: 'apply', index: 0, cursor: null }));
          return 1;
        }
        const binding = this.#connection.client.binding(type);
        if (binding?.list === undefined || !wantsInbound(settings, type)) {
          await this.#save(next({ index: state.index + 1, cursor: null }));
          return 1;
        }
        await this.#deps.budget.take(signal);
        const page = await binding.list(state.cursor ?? undefined, signal);
        const now = new Date().toISOString();
        const notifications: ExternalNotification[] = page.objects.map((object) => ({
          eventId: `backfill-${state.run}-${type}-${object.id}`,
          entityType: type,
          externalId: object.id,
          op: 'update',
          occurredAt: now,
          object,
        }));
        const after = page.next === undefined ? next({ index: state.index + 1, cursor: null }) : next({ cursor: page.next });
        await this.#deps.store.transaction(async (trx) => {
          const sync = new SyncStore(trx, this.#connection.id);
          await sync.appendExternal(notifications, BACKFILL_SOURCE);
          await sync.saveCursor(BACKFILL_CURSOR, JSON.stringify(after));
        });
        return Math.max(1, notifications.length);
      }
      case 'apply': {
        if ((await this.#sync.unprocessedExternal(BACKFILL_SOURCE)) > 0) return 0;
        await this.#save(next({ phase: 'mark', index: 0, cursor: null }));
        return 1;
      }
      case 'mark': {
        const type = state.types[state.index];
        if (type === undefined) {
          await this.#save(next({ phase: 'done', index: 0, cursor: null }));
          this.#deps.logger.info({ run: state.run }, 'initial sync done');
          return 1;
        }
        if (this.#connection.client.binding(type) === undefined || !wantsOutbound(settings, type)) {
          await this.#save(next({ index: state.index + 1, cursor: null }));
          return 1;
        }
        const page = await this.#deps.catalog.list(this.#connection.workspaceId, type, {
          limit: MARK_PAGE,
          ...(state.cursor === null ? {} : { cursor: state.cursor }),
        });
        const after = page.next_cursor === null ? next({ index: state.index + 1, cursor: null }) : next({ cursor: page.next_cursor });
        await this.#deps.store.transaction(async (trx) => {
          const sync = new SyncStore(trx, this.#connection.id);
          for (const record of page.data) {
            if ((await sync.linkByRecord(type, record.id)) === undefined) await sync.mark(type, record.id, record.version);
          }
          await sync.saveCursor(BACKFILL_CURSOR, JSON.stringify(after));
        });
        return Math.max(1, page.data.length);
      }
      case 'done':
        return 0;
    }
  }
}
