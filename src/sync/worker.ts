// The per-connection worker: reconciles marked records outward, applies external changes inward,
// and polls the change feed. One worker per connection, so a slow or rate-limited account never
// holds back another; within a connection, outbound and inbound work take turns, so one record is
// never written both ways at once.
import type { Logger } from 'pino';
import type { Catalog, RecordView } from '../catalog/catalog.ts';
import type { EntityRegistry } from '../catalog/registry.ts';
import { ConnectorError, type EntityBinding, type ExternalNotification, type ExternalObject } from '../connectors/connector.ts';
import { TandemError, isTandemError } from '../errors/errors.ts';
import type { ExternalChangesTable, SyncMarksTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { Backfill, BACKFILL_CURSOR, BACKFILL_SOURCE, startState as backfillState } from './backfill.ts';
import { canBatch, WriteBatcher } from './batcher.ts';
import { canonical, differing, firstLinkBase, mergeFields } from './canonical.ts';
import { answered, ownValues, withUnanswered } from './unanswered.ts';
import { isEchoOf, storeArrived } from './echoes.ts';
import type { Connection } from './connections.ts';
import type { SyncIssues } from './issues.ts';
import { lanesFor, type RateBudget } from './rate-budget.ts';
import { wantsInbound, wantsOutbound } from './settings.ts';
import { FEED_CURSOR, PENDING_PREFIX, STREAM_CURSOR, SyncStore, isPending, type Link } from './sync-store.ts';

export interface WorkerDeps {
  store: Store;
  catalog: Catalog;
  registry: EntityRegistry;
  issues: SyncIssues;
  budget: RateBudget;
  logger: Logger;
  /** The credentials stopped working: the engine marks the connection and stops this worker. */
  onAuthFailure: (connectionId: string, reason: string) => void;
  /**
   * The account's API allocation is used up (a 'quota' failure): the connection waits, for everyone
   * to see (`reason`), and resumes by itself; called with null once it goes on.
   */
  onQuota?: (connectionId: string, reason: string | null) => void;
  retry: { maxAttempts: number; initialMs: number; maxMs: number };
  batchSize?: number;
  concurrency?: number;
}

const POLL_CURSOR = FEED_CURSOR;
/**
 * Batching bindings: a pass with less than a full batch of due marks waits while marks still arrive
 * (one came within QUIET_MS), so a burst leaves in full batches, but never holds a mark longer than
 * LINGER_MS (a steady trickle still goes out).
 */
const BATCH_QUIET_MS = 200;
const BATCH_LINGER_MS = 1000;
/** Marks (or external changes) a pass takes at most. */
const DEFAULT_BATCH = 200;
/** How many times a create whose answer was lost is asked again with its own key before the object is looked up. */
const RESEND_TRIES = 4;

function backoff(attempt: number, retry: WorkerDeps['retry']): number {
  const cap = Math.min(retry.maxMs, retry.initialMs * 2 ** Math.min(attempt - 1, 20));
  return Math.floor(cap / 2 + Math.random() * (cap / 2));
}

/**
 * Whether a failed write may have been applied all the same: a transient failure (no answer, a
 * timeout, a 5xx) or one that is not the connector's. A refusal (4xx, rate limited, unauthorised)
 * changed nothing.
 */
function mayHaveApplied(error: unknown): boolean {
  return !(error instanceof ConnectorError) || error.kind === 'retry';
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class ConnectionWorker {
  readonly connection: Connection;
  readonly #deps: WorkerDeps;
  readonly #sync: SyncStore;
  readonly #abort = new AbortController();
  readonly #origin: `connection:${string}`;
  #wake: (() => void) | undefined;
  #woken = false;
  #loop: Promise<void> | undefined;
  #nextPollAt = 0;
  /** Batching bindings: no outbound pass before this time (ms): marks are still arriving. */
  #lingerUntil = 0;
  #streaming: Promise<void> | undefined;
  /** Waiting for the API allocation until this time (ms), or 0. */
  #quotaUntil = 0;
  #quotaHit = false;
  readonly #log: Logger;
  readonly #backfill: Backfill;
  /** Per entity type whose binding writes in batches (Salesforce's sObject Collections). */
  readonly #batchers = new Map<string, { batcher: WriteBatcher; binding: EntityBinding }>();

  constructor(connection: Connection, deps: WorkerDeps) {
    this.connection = connection;
    this.#deps = deps;
    this.#sync = new SyncStore(deps.store.db, connection.id);
    this.#origin = `connection:${connection.id}`;
    this.#log = deps.logger.child({ connectionId: connection.id, connector: connection.connector.id });
    this.#backfill = new Backfill(connection, { store: deps.store, catalog: deps.catalog, budget: deps.budget, logger: this.#log });
    // Restarted while waiting for the API allocation: the first pass that meets no refusal says it is over.
    if (connection.status === 'waiting') this.#quotaUntil = Date.now();
    for (const type of Object.keys(connection.connector.entities)) {
      const binding = connection.client.binding(type);
      if (binding === undefined || !canBatch(binding)) continue;
      const batcher = new WriteBatcher(binding, { beforeRequest: (signal) => deps.budget.take(signal) });
      this.#batchers.set(type, { batcher, binding: batcher.binding() });
    }
  }

  /** How many writes went out in how many batches (batching bindings only). */
  batchStats(): { batches: number; writes: number } {
    let batches = 0;
    let writes = 0;
    for (const { batcher } of this.#batchers.values()) {
      batches += batcher.stats.batches;
      writes += batcher.stats.writes;
    }
    return { batches, writes };
  }

  start(): void {
    this.#loop ??= this.#run().catch((error: unknown) => {
      if (!this.#abort.signal.aborted) this.#log.error({ err: error }, 'sync worker stopped on an error');
    });
    this.#streaming ??= this.#stream().catch((error: unknown) => {
      if (!this.#abort.signal.aborted) this.#log.error({ err: error }, 'change stream stopped on an error');
    });
  }

  /** New work may be waiting (a mark, a webhook): look now. */
  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#abort.abort(new Error('worker stopped'));
    this.#wake?.();
    await this.#loop;
    await this.#streaming;
  }

  #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  #wokenSinceStart(): boolean {
    return this.#woken;
  }

  get #signal(): AbortSignal {
    return this.#abort.signal;
  }

  async #run(): Promise<void> {
    while (!this.#stopped()) {
      this.#woken = false;
      this.#quotaHit = false;
      let did = 0;
      try {
        did += await this.#outbound();
        did += await this.#inbound();
        if (Date.now() >= this.#nextPollAt) did += await this.#poll();
        did += await this.#backfill.step(this.#signal);
      } catch (error) {
        if (this.#stopped()) return;
        this.#log.error({ err: error }, 'sync pass failed; retrying shortly');
        await this.#sleep(1000);
        continue;
      }
      this.#quotaOver();
      if (did === 0 && !this.#wokenSinceStart()) {
        const ms = await this.#idleMs();
        // A wake() while #idleMs() read the store found no sleep to end: look again, not sleep
        // through it (until the next poll, up to pollIntervalMs, with the work waiting).
        if (!this.#wokenSinceStart()) await this.#sleep(ms);
      }
    }
  }

  async #idleMs(): Promise<number> {
    const now = Date.now();
    let wait = Math.max(0, this.#nextPollAt - now);
    if (this.#lingerUntil > now) wait = Math.min(wait, this.#lingerUntil - now);
    const marksDue = this.#lingerUntil > now ? undefined : await this.#sync.nextMarkDue();
    for (const due of [marksDue, await this.#sync.nextExternalDue()]) {
      if (due !== undefined) wait = Math.min(wait, Math.max(0, Date.parse(due) - now));
    }
    return Math.min(Math.max(wait, 5), this.connection.settings.pollIntervalMs);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
      if (this.#signal.aborted) done();
    });
  }

  /** Requests at once: as the deps say, or as many as the connection's rate budget can use. */
  #lanes(): number {
    return this.#deps.concurrency ?? lanesFor(this.connection.settings.rateLimitPerSecond);
  }

  /** Runs fn over items, at most `concurrency` at a time. */
  async #each<T>(items: readonly T[], fn: (item: T) => Promise<void>, concurrency = this.#lanes()): Promise<void> {
    let next = 0;
    const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length && !this.#signal.aborted) {
        const item = items[next++];
        if (item !== undefined) await fn(item);
      }
    });
    await Promise.all(lanes);
  }

  #binding(entityType: string): EntityBinding | undefined {
    return this.#batchers.get(entityType)?.binding ?? this.connection.client.binding(entityType);
  }

  /**
   * Waits for the rate budget before a write of this type — unless its binding batches: a batch takes
   * the budget once per request it makes, not once per write.
   */
  async #beforeWrite(entityType: string): Promise<void> {
    if (!this.#batchers.has(entityType)) await this.#deps.budget.take(this.#signal);
  }

  // Outbound: local -> external

  async #outbound(): Promise<number> {
    // A batching binding gets a lane per write of a full batch, so its writes leave together.
    const widest = Math.max(0, ...[...this.#batchers.values()].map(({ batcher }) => batcher.maxBatch));
    if (widest > 0 && Date.now() < this.#lingerUntil) return 0;
    const marks = await this.#sync.dueMarks(Math.max(this.#deps.batchSize ?? DEFAULT_BATCH, widest), new Date().toISOString());
    if (widest > 0 && marks.length > 0 && marks.length < widest) {
      const times = marks.map((m) => Date.parse(m.updated_at));
      const until = Math.min(Math.max(...times) + BATCH_QUIET_MS, Math.min(...times) + BATCH_LINGER_MS);
      if (Date.now() < until) {
        this.#lingerUntil = until;
        return 0;
      }
    }
    await this.#each(
      marks,
      (mark) => {
        const batcher = this.#batchers.get(mark.entity_type)?.batcher;
        return batcher === undefined ? this.#reconcile(mark) : batcher.lane(() => this.#reconcile(mark));
      },
      Math.max(this.#lanes(), widest),
    );
    return marks.length;
  }

  async #reconcile(mark: SyncMarksTable): Promise<void> {
    const { entity_type: type, record_id: recordId } = mark;
    const binding = this.#binding(type);
    if (binding === undefined || !wantsOutbound(this.connection.settings, type)) {
      await this.#sync.dropMark(type, recordId);
      return;
    }
    let view: RecordView;
    try {
      view = await this.#deps.catalog.get(this.connection.workspaceId, type, recordId);
    } catch (error) {
      if (isTandemError(error) && error.code === 'NOT_FOUND') {
        await this.#sync.dropMark(type, recordId);
        return;
      }
      throw error;
    }
    const version = view.version;
    // Idempotency keys derive from (connection, record, version). A retry after a failure gets a
    // fresh key: Stripe, for one, stores a 500 under its key and answers it again forever.
    const retry = mark.attempts === 0 ? '' : `-a${String(mark.attempts)}`;
    const keyBase = `tandem-${this.connection.id}-${recordId}`;
    try {
      const link = await this.#sync.linkByRecord(type, recordId);
      const pending = link !== undefined && isPending(link) ? link : undefined;
      if (view.deleted_at !== null) {
        if (pending !== undefined) {
          // A create was sent and its answer never came: if it made an object, that goes too.
          const found = await this.#find(binding, recordId);
          if (found !== undefined && !found.deleted) {
            await this.#beforeWrite(type);
            await binding.delete(found.id, { idempotencyKey: `${keyBase}-delete${retry}`, signal: this.#signal });
            await this.#sync.saveLink({ ...pending, externalId: found.id, deleted: true, localVersion: version, externalVersion: null });
          } else {
            // Nothing to delete. Should the object show up after all, the inbound side relinks it
            // to this deleted record and marks it, and it is deleted then.
            await this.#sync.dropLink(type, recordId);
          }
        } else if (link !== undefined && !link.deleted) {
          await this.#beforeWrite(type);
          await binding.delete(link.externalId, { idempotencyKey: `${keyBase}-delete${retry}`, signal: this.#signal });
          await this.#sync.saveLink({ ...link, deleted: true, localVersion: version });
        }
        await this.#sync.clearMark(type, recordId, version);
        return;
      }
      if (link?.deleted === true && wantsInbound(this.connection.settings, type)) {
        // Its object was deleted externally and the record not yet: the deletion wins (re-creating
        // the object is only for connections where Tandem alone decides, outbound only).
        await this.#goneExternally(type, link);
        await this.#sync.clearMark(type, recordId, version);
        return;
      }
      const local = canonical(binding, view);
      const updateKey = `${keyBase}-v${String(version)}${retry}`;
      if (pending !== undefined) {
        const made = await this.#resolvePending(binding, pending, recordId, mark.attempts);
        if (made !== undefined) {
          // Linked with the base it was created from, so changes made since on either side merge.
          const linked: Link = { ...pending, externalId: made.id, externalVersion: made.version ?? null };
          await this.#sync.saveLink(linked);
          await this.#pushOrGone(type, binding, linked, local, version, updateKey);
          return;
        }
      }
      if (link === undefined || pending !== undefined || link.deleted) {
        // One key per record (per re-creation): a retried or crashed create never makes a second
        // object. The intent is stored first, so a retry knows the key and the fields it sent.
        // A pending create got here because its key made nothing (spent on a stored failure, or not
        // found): the new key must differ from it, as the fields may have changed since.
        let idempotencyKey = `${keyBase}-${link === undefined || pending !== undefined ? 'create' : `recreate-v${String(version)}`}${retry}`;
        if (pending !== undefined && pending.externalId === `${PENDING_PREFIX}${idempotencyKey}`) idempotencyKey = `${idempotencyKey}-v${String(version)}-n${String(Date.now())}`;
        await this.#sync.saveLink({
          entityType: type,
          recordId,
          externalId: `${PENDING_PREFIX}${idempotencyKey}`,
          base: local,
          localVersion: version,
          externalVersion: String(mark.attempts),
          deleted: false,
        });
        await this.#beforeWrite(type);
        const created = await binding.create(recordId, local, { idempotencyKey, signal: this.#signal });
        await this.#linkAndClear(
          { entityType: type, recordId, externalId: created.id, base: local, localVersion: version, externalVersion: created.version ?? null, deleted: false },
          version,
        );
        return;
      }
      await this.#pushOrGone(type, binding, link, local, version, updateKey);
    } catch (error) {
      await this.#failed(error, mark.attempts, {
        direction: 'outbound',
        entityType: type,
        recordId,
        externalId: null,
        defer: (attempts, notBefore, text) => this.#sync.deferMark(type, recordId, attempts, notBefore, text),
        drop: () => this.#sync.dropMark(type, recordId),
      });
    }
  }

  /** Looks the object made for a record up by the Tandem id it carries (live objects only). */
  async #find(binding: EntityBinding, recordId: string): Promise<ExternalObject | undefined> {
    const find = binding.findByTandemId?.bind(binding);
    return find === undefined ? undefined : this.#budgeted(() => find(recordId, this.#signal));
  }

  /**
   * A create was sent (`pending`) and its answer never came (an error, a crash). Asks again with the
   * same key and fields: the external system answers what the first request did, even if the object
   * was deleted since, or does it now. A key that holds a stored error (Stripe replays a 500 forever;
   * the connector says so with `keySpent`) is not asked again: the object is looked up at once.
   * A key that keeps failing otherwise is looked up after RESEND_TRIES tries — the lookup finds
   * live objects only, so an object made and deleted meanwhile would be made again: hence several
   * tries, not one. Undefined: nothing was made, create it anew.
   */
  async #resolvePending(binding: EntityBinding, pending: Link, recordId: string, attempts: number): Promise<ExternalObject | undefined> {
    const sentAt = Number(pending.externalVersion ?? '0');
    if (attempts - sentAt <= RESEND_TRIES) {
      try {
        await this.#beforeWrite(pending.entityType);
        return await binding.create(recordId, pending.base, { idempotencyKey: pending.externalId.slice(PENDING_PREFIX.length), signal: this.#signal });
      } catch (error) {
        // A key that holds a stored failure, or that the system no longer accepts: look the object up.
        const spent = error instanceof ConnectorError && (error.keySpent || (error.kind === 'fatal' && error.externalCode === 'idempotency_error'));
        if (!spent) throw error;
      }
    }
    const found = await this.#find(binding, recordId);
    return found !== undefined && !found.deleted ? found : undefined;
  }

  /**
   * Pushes the record and clears its mark; when the external system refuses because the object is
   * gone (deleted there while Tandem changed the record), the deletion wins, as it does when it
   * arrives first: the record is tombstoned. Only when the connection syncs this type inbound; an
   * outbound-only connection keeps the failure (a sync issue) for a person to decide.
   */
  async #pushOrGone(type: string, binding: EntityBinding, link: Link, local: Record<string, unknown>, version: number, idempotencyKey: string): Promise<void> {
    try {
      await this.#push(binding, link, local, version, idempotencyKey);
    } catch (error) {
      if (!(error instanceof ConnectorError && error.kind === 'fatal') || !wantsInbound(this.connection.settings, type)) throw error;
      const current = await this.#budgeted(() => binding.get(link.externalId, this.#signal));
      if (current !== undefined && !current.deleted) throw error;
      await this.#goneExternally(type, link);
      await this.#sync.clearMark(type, link.recordId, version);
    }
  }

  /**
   * The linked object was deleted in the external system: the record is tombstoned, then the link
   * marked deleted — in that order, so a crash between the two leaves a live link to a deleted
   * record (its delete goes out again, harmlessly), never a deleted link to a live record.
   */
  async #goneExternally(type: string, link: Link): Promise<void> {
    const view = await this.#localRecord(type, link.recordId);
    const after = view?.deleted_at === null ? await this.#deps.catalog.delete(this.connection.workspaceId, type, link.recordId, { origin: this.#origin }) : view;
    await this.#sync.saveLink({ ...link, deleted: true, localVersion: after?.version ?? link.localVersion });
  }

  /** Writes the fields where the record differs from the base, moves the base on, clears the mark. */
  async #push(binding: EntityBinding, link: Link, local: Record<string, unknown>, version: number, idempotencyKey: string): Promise<void> {
    const diff = differing(local, link.base, binding.fields);
    if (diff.length === 0) {
      if (link.localVersion !== version) await this.#linkAndClear({ ...link, localVersion: version }, version);
      else await this.#sync.clearMark(link.entityType, link.recordId, version);
      return;
    }
    const changes = Object.fromEntries(diff.map((f) => [f, local[f]]));
    await this.#beforeWrite(link.entityType);
    let updated: ExternalObject;
    try {
      updated = await binding.update(link.externalId, changes, { idempotencyKey, signal: this.#signal, previous: link.base, tandemId: link.recordId });
    } catch (error) {
      // The link's base stays behind, yet the object may hold these values now: kept, so a merge
      // before the retry counts them as Tandem's own rather than as external changes.
      if (mayHaveApplied(error)) await this.#keepUnanswered(link, changes);
      throw error;
    }
    await this.#linkAndClear(
      {
        ...link,
        base: { ...link.base, ...changes },
        localVersion: version,
        externalVersion: updated.version ?? link.externalVersion,
        unanswered: answered(link.unanswered, diff),
      },
      version,
    );
  }

  /**
   * Adds an update's values to its link's unanswered ones (the link as this pass read it: a
   * connection's outbound and inbound work never run at once); a failure to is logged, not thrown
   * over the write's own.
   */
  async #keepUnanswered(link: Link, changes: Record<string, unknown>): Promise<void> {
    try {
      await this.#sync.saveUnanswered(link.entityType, link.recordId, withUnanswered(link.unanswered, changes));
    } catch (error) {
      this.#log.warn({ err: error, entityType: link.entityType, recordId: link.recordId }, 'could not keep the values of an unanswered update');
    }
  }

  /**
   * Stores the link a write made and clears the record's mark (unless a newer version was marked
   * meanwhile) in one transaction: one commit rather than two, and no state in between.
   */
  async #linkAndClear(link: Link, version: number): Promise<void> {
    await this.#deps.store.transaction(async (trx) => {
      const sync = new SyncStore(trx, this.connection.id);
      await sync.saveLink(link);
      await sync.clearMark(link.entityType, link.recordId, version);
    });
  }

  async #budgeted<T>(call: () => Promise<T>): Promise<T> {
    await this.#deps.budget.take(this.#signal);
    return call();
  }

  // Inbound: external -> local

  async #inbound(): Promise<number> {
    const due = await this.#sync.dueExternal(this.#deps.batchSize ?? DEFAULT_BATCH, new Date().toISOString());
    // Every notification makes the worker fetch the object's current state, so several for one
    // object in a batch are handled by one fetch.
    const byObject = new Map<string, ExternalChangesTable[]>();
    for (const change of due) {
      const key = `${change.entity_type}\u0000${change.external_id}`;
      byObject.set(key, [...(byObject.get(key) ?? []), change]);
    }
    await this.#each([...byObject.values()], (changes) => this.#apply(changes));
    return due.length;
  }

  async #apply(changes: ExternalChangesTable[]): Promise<void> {
    const first = changes[0];
    const latest = changes.at(-1);
    if (first === undefined || latest === undefined) return;
    const { entity_type: type, external_id: externalId } = first;
    const finish = async () => {
      for (const change of changes) await this.#sync.finishExternal(change.event_id);
    };
    const binding = this.#binding(type);
    if (binding === undefined || !wantsInbound(this.connection.settings, type)) {
      await finish();
      return;
    }
    try {
      if (await this.#isEcho(type, binding, externalId, changes)) {
        await finish();
        return;
      }
      const carried = changes.flatMap((c) => (c.object === null ? [] : [JSON.parse(c.object) as ExternalObject]));
      // The initial sync's own changes may match the object to an existing record. Even those are
      // fetched: a listed object applied late (after retries) would merge an old state over newer ones.
      const backfill = changes.every((c) => c.source === BACKFILL_SOURCE);
      await this.#deps.budget.take(this.#signal);
      let object = await binding.get(externalId, this.#signal);
      object ??= carried.at(-1);
      if (object === undefined) {
        // Linked, so it existed: the system no longer has it at all (purged): it is deleted.
        const link = await this.#sync.linkByExternal(type, externalId);
        if (link === undefined || link.deleted) {
          await finish();
          return;
        }
        object = { id: externalId, fields: {}, deleted: true, tandemId: link.recordId, version: undefined };
      }
      // A deleted object is fetched bare; the events still say which Tandem record it was made for.
      if (object.tandemId === undefined) {
        const tandemId = carried.find((o) => o.tandemId !== undefined)?.tandemId;
        if (tandemId !== undefined) object = { ...object, tandemId };
      }
      const createdAs = changes.find((c) => c.op === 'create' && c.object !== null);
      await this.#applyObject(
        type,
        binding,
        object,
        latest.occurred_at,
        createdAs === undefined ? undefined : (JSON.parse(createdAs.object ?? '{}') as ExternalObject),
        backfill,
      );
      await finish();
    } catch (error) {
      const attempts = Math.max(...changes.map((c) => c.attempts));
      await this.#failed(error, attempts, {
        direction: 'inbound',
        entityType: type,
        recordId: null,
        externalId,
        defer: async (next, notBefore, text) => {
          for (const change of changes) await this.#sync.deferExternal(change.event_id, next, notBefore, text);
        },
        drop: finish,
      });
    }
  }

  /**
   * Whether the notifications are only Tandem's own writes coming back: each carries the object, as
   * the link's base holds it. Then there is nothing to fetch or merge — no request spent on it. (A
   * change made after it has a notification of its own, which is fetched when its turn comes; one
   * applied before it moved the base on, so this one no longer matches and is fetched.)
   */
  async #isEcho(type: string, binding: EntityBinding, externalId: string, changes: readonly ExternalChangesTable[]): Promise<boolean> {
    if (changes.some((c) => c.object === null || c.op === 'delete')) return false;
    const link = await this.#sync.linkByExternal(type, externalId);
    return changes.every((c) => isEchoOf(binding, link, externalId, c.op as ExternalNotification['op'], JSON.parse(c.object ?? '{}') as ExternalObject));
  }

  /**
   * `createdAs`: the object as its create event carried it (its first state), when at hand.
   * `match`: the initial sync: an object no record is linked to is matched to an existing record
   * first (the entity's `matchBy`), and imported only when none matches.
   */
  async #applyObject(
    type: string,
    binding: EntityBinding,
    object: ExternalObject,
    occurredAt: string,
    createdAs?: ExternalObject,
    match = false,
  ): Promise<void> {
    let link = await this.#sync.linkByExternal(type, object.id);
    if (link === undefined) {
      const own = object.tandemId === undefined ? undefined : await this.#localRecord(type, object.tandemId);
      if (own !== undefined) link = await this.#relink(type, binding, object, own, createdAs);
      else if (!object.deleted) link = (match ? await this.#match(type, binding, object) : undefined) ?? (await this.#import(type, binding, object));
      else link = await this.#importedUnlinked(type, binding, object);
      if (link === undefined) return;
    }
    if (link.deleted) return;

    if (object.deleted) {
      await this.#goneExternally(type, link);
      return;
    }
    // The record may move on under the merge (an API write): then merge again with what it holds.
    for (let attempt = 1; ; attempt += 1) {
      const current = await this.#sync.linkByExternal(type, object.id);
      if (current === undefined || current.deleted) return;
      try {
        await this.#merge(type, binding, object, occurredAt, current);
        return;
      } catch (error) {
        if (!(isTandemError(error) && (error.code === 'VERSION_MISMATCH' || error.code === 'CONFLICT'))) throw error;
        // Still moving after a few tries: try again later (a retry, not a sync issue).
        if (attempt >= 5) throw new TandemError('CONFLICT', `The ${type} kept changing while a change from ${object.id} was merged into it.`);
      }
    }
  }

  /**
   * An object Tandem made for `own` (it carries the record's id) that no link names yet: the answer
   * to its create was lost, or a crash came before the link was stored. Links it with the base it
   * was created from: the fields the pending create sent, else its create event's, else what it
   * holds now. A deleted object tombstones the record (the deletion wins); a deleted record gets a
   * mark, so the object is deleted too. Undefined when there is nothing more to do.
   */
  async #relink(type: string, binding: EntityBinding, object: ExternalObject, own: RecordView, createdAs: ExternalObject | undefined): Promise<Link | undefined> {
    const current = await this.#sync.linkByRecord(type, own.id);
    if (current !== undefined && !isPending(current)) {
      // The record already has its object: this one is a second copy. Deleted, it is harmless
      // (e.g. the object a re-creation replaced); live, a person decides.
      if (object.deleted) return undefined;
      await this.#deps.issues.open({
        workspaceId: this.connection.workspaceId,
        connectionId: this.connection.id,
        entityType: type,
        recordId: null,
        externalId: object.id,
        direction: 'inbound',
        code: 'DUPLICATE_EXTERNAL_OBJECT',
        message: `${object.id} carries the id of ${own.id}, which is linked to ${current.externalId}.`,
      });
      return undefined;
    }
    const base = current?.base ?? canonical(binding, (createdAs ?? object).fields);
    const link: Link = {
      entityType: type,
      recordId: own.id,
      externalId: object.id,
      base,
      localVersion: current?.localVersion ?? own.version,
      externalVersion: null,
      deleted: false,
    };
    if (object.deleted) {
      await this.#goneExternally(type, link);
      return undefined;
    }
    // What the record holds and the object lacks goes out through the mark (a deleted record: a
    // delete). Link and mark together, so a crash leaves neither an unlinked object to re-create
    // nor a link whose record nobody looks at again.
    await this.#deps.store.transaction(async (trx) => {
      const sync = new SyncStore(trx, this.connection.id);
      await sync.saveLink(link);
      await sync.mark(type, own.id, own.version);
    });
    return link;
  }

  /**
   * The initial sync met an object no record is linked to: is it a record Tandem already holds (the
   * same value of the entity's `matchBy` field, e.g. the email, on exactly one unlinked record)?
   * Then they are linked with a first-link base (what each side alone holds is kept, Tandem wins
   * where both hold a value) and the record is marked, so what it holds goes out. Several
   * candidates, or none: undefined (the object is imported as a new record).
   */
  async #match(type: string, binding: EntityBinding, object: ExternalObject): Promise<Link | undefined> {
    const definition = this.#deps.registry.get(type);
    const filter = definition.filters.find((f) => f.param === definition.matchBy);
    const value = filter === undefined ? undefined : object.fields[filter.field];
    if (filter === undefined || typeof value !== 'string' || value === '') return undefined;
    const { data } = await this.#deps.catalog.list(this.connection.workspaceId, type, { limit: 10, filters: { [filter.param]: value } });
    const unlinked = [];
    for (const record of data) if ((await this.#sync.linkByRecord(type, record.id)) === undefined) unlinked.push(record);
    const [record, ...others] = unlinked;
    if (record === undefined || others.length > 0) return undefined;
    const remote = canonical(binding, object.fields);
    const link: Link = {
      entityType: type,
      recordId: record.id,
      externalId: object.id,
      base: firstLinkBase(canonical(binding, record), remote, binding.fields),
      localVersion: record.version,
      externalVersion: object.version ?? null,
      deleted: false,
    };
    await this.#deps.store.transaction(async (trx) => {
      const sync = new SyncStore(trx, this.connection.id);
      await sync.saveLink(link);
      await sync.mark(type, record.id, record.version);
    });
    return link;
  }

  /**
   * A deleted object no link names may still have been imported: a crash came between the import's
   * create and its link. Its record is found by the import's idempotency key and linked, so the
   * deletion reaches it (otherwise it would stay live for good).
   */
  async #importedUnlinked(type: string, binding: EntityBinding, object: ExternalObject): Promise<Link | undefined> {
    const record = await this.#deps.catalog.createdWith(this.connection.workspaceId, this.#importKey(object.id));
    if (record === undefined || (await this.#sync.linkByRecord(type, record.id)) !== undefined) return undefined;
    const link: Link = {
      entityType: type,
      recordId: record.id,
      externalId: object.id,
      base: canonical(binding, record),
      localVersion: record.version,
      externalVersion: null,
      deleted: false,
    };
    await this.#sync.saveLink(link);
    return link;
  }

  #importKey(externalId: string): string {
    return `tandem-import-${this.connection.id}-${externalId}`;
  }

  /**
   * An object Tandem does not know: a new record. The create is idempotent by the object's id, so a
   * crash between it and the link never makes a second record.
   */
  async #import(type: string, binding: EntityBinding, object: ExternalObject): Promise<Link> {
    const definition = this.#deps.registry.get(type);
    const input = definition.createSchema.safeParse(Object.fromEntries(binding.fields.map((f) => [f, object.fields[f] ?? undefined])));
    if (!input.success) {
      throw new TandemError('VALIDATION_FAILED', `The ${type} cannot be imported: ${input.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
    }
    const { record } = await this.#deps.catalog.create(this.connection.workspaceId, type, input.data, {
      origin: this.#origin,
      idempotency: { key: this.#importKey(object.id), fingerprint: 'tandem-import' },
    });
    // The base is the record as it was created; a replayed create then merges what changed since.
    const link: Link = {
      entityType: type,
      recordId: record.id,
      externalId: object.id,
      base: canonical(binding, record),
      localVersion: record.version,
      externalVersion: object.version ?? null,
      deleted: false,
    };
    await this.#sync.saveLink(link);
    return link;
  }

  /** Three-way merge of the object into its linked record. */
  async #merge(type: string, binding: EntityBinding, object: ExternalObject, occurredAt: string, link: Link): Promise<void> {
    const remote = canonical(binding, object.fields);
    // Values Tandem sent in writes it got no answer to, found in the object, are its own (./unanswered.ts).
    const own = ownValues(link.base, remote, link.unanswered, binding.fields);
    const changedRemotely = differing(remote, own.base, binding.fields);
    // Our own write coming back, or nothing we map changed: no new version.
    if (changedRemotely.length === 0 && own.base === link.base) return;

    const view = await this.#localRecord(type, link.recordId);
    if (view === undefined) return;
    if (view.deleted_at !== null) {
      // Deleted in Tandem, its object still live: the delete has to go out (it may already be marked).
      await this.#sync.mark(type, link.recordId, view.version);
      return;
    }
    const local = canonical(binding, view);
    const remoteIsNewer = Date.parse(occurredAt) >= Date.parse(String(view.updated_at));
    const { patch, base } = mergeFields(own.base, local, remote, changedRemotely, remoteIsNewer);
    let after = view;
    if (Object.keys(patch).length > 0) {
      const definition = this.#deps.registry.get(type);
      const parsed = definition.updateSchema.safeParse(patch);
      if (!parsed.success) {
        throw new TandemError('VALIDATION_FAILED', `The ${type} change cannot be applied: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`);
      }
      // Only over the version the merge read: a write that came in between makes it merge again.
      after = await this.#deps.catalog.update(this.connection.workspaceId, type, link.recordId, parsed.data, {
        origin: this.#origin,
        expectedVersion: view.version,
      });
    }
    // A field that changed externally (or on which both sides agree) no longer waits on an answer.
    const unanswered = answered(own.unanswered, changedRemotely);
    await this.#sync.saveLink({ ...link, base, localVersion: after.version, externalVersion: object.version ?? link.externalVersion, unanswered });
    // Whatever Tandem holds that the object does not (a local value that won) goes out.
    if (differing(canonical(binding, after), base, binding.fields).length > 0) await this.#sync.mark(type, link.recordId, after.version);
  }

  async #localRecord(type: string, id: string): Promise<RecordView | undefined> {
    try {
      return await this.#deps.catalog.get(this.connection.workspaceId, type, id);
    } catch (error) {
      if (isTandemError(error) && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  // The change feed: the safety net for lost webhooks.

  async #poll(): Promise<number> {
    const { client, settings } = this.connection;
    this.#nextPollAt = Date.now() + settings.pollIntervalMs;
    if (client.poll === undefined || !this.connection.connector.changeFeeds.polling) return 0;
    try {
      await this.#deps.budget.take(this.#signal);
      const result = await client.poll(await this.#sync.cursor(POLL_CURSOR), this.#signal);
      // One transaction for the page and the cursor: one commit, not one per event (most of them
      // already came as webhooks, and each insert that finds its event would be a commit of its own).
      const added = await this.#deps.store.transaction(async (trx) => {
        const sync = new SyncStore(trx, this.connection.id);
        const n = await storeArrived(sync, client, result.notifications, 'poll');
        if (result.resync === true) await this.#startResync(sync);
        await sync.saveCursor(POLL_CURSOR, result.cursor);
        return n;
      });
      if (result.resync === true) this.#backfill.restart();
      if (result.more) this.#nextPollAt = 0;
      return added;
    } catch (error) {
      if (this.#signal.aborted) throw error;
      if (error instanceof ConnectorError && error.kind === 'auth') {
        this.#deps.onAuthFailure(this.connection.id, error.message);
      } else if (error instanceof ConnectorError && error.kind === 'retry_after') {
        this.#deps.budget.pauseFor(error.retryAfterMs ?? 1000);
      } else if (error instanceof ConnectorError && error.kind === 'quota') {
        this.#quota(error);
      }
      this.#log.warn({ err: error }, 'polling the change feed failed');
      return 0;
    }
  }

  /**
   * The change feed no longer reaches back to the cursor: changes may have been missed. Every linked
   * object is re-read (one that no longer exists at all is taken as deleted) and the system is listed
   * again, as at the initial sync (new objects are matched or imported, unlinked records created).
   */
  async #startResync(sync: SyncStore): Promise<void> {
    const run = `resync-${String(Date.now())}`;
    const now = new Date().toISOString();
    const linked = await sync.liveExternalIds();
    await sync.appendExternal(
      linked.map(({ entityType, externalId }) => ({ eventId: `${run}-${entityType}-${externalId}`, entityType, externalId, op: 'update', occurredAt: now })),
      'resync',
    );
    await sync.saveCursor(BACKFILL_CURSOR, backfillState(run, Object.keys(this.connection.settings.entities)));
    this.#log.warn({ linked: linked.length }, 'the change feed no longer reaches back to its cursor: full resync');
  }

  // The pushed change feed (Salesforce Change Data Capture), held open beside the worker's passes.

  async #stream(): Promise<void> {
    const { client, connector } = this.connection;
    if (client.stream === undefined || connector.changeFeeds.streaming !== true) return;
    let failures = 0;
    while (!this.#stopped()) {
      const began = Date.now();
      let wait: number | undefined;
      try {
        const stored = await this.#sync.cursor(STREAM_CURSOR);
        await client.stream(
          stored === undefined || stored === '' ? undefined : stored,
          async (batch) => {
            failures = 0;
            const added = await this.#deps.store.transaction(async (trx) => {
              const sync = new SyncStore(trx, this.connection.id);
              const n = await storeArrived(sync, client, batch.notifications, 'stream');
              await sync.saveCursor(STREAM_CURSOR, batch.cursor);
              return n;
            });
            if (added > 0) this.wake();
          },
          this.#signal,
        );
        if (this.#stopped()) return;
        failures += 1;
      } catch (error) {
        if (this.#stopped()) return;
        // A stream that ran a while before it dropped starts its backoff over.
        failures = Date.now() - began > 30_000 ? 1 : failures + 1;
        if (error instanceof ConnectorError && error.kind === 'auth') {
          this.#deps.onAuthFailure(this.connection.id, error.message);
          return;
        }
        if (error instanceof ConnectorError && error.kind === 'quota') wait = this.#quota(error);
        if (error instanceof ConnectorError && error.externalCode === 'CURSOR_EXPIRED') {
          // Its events are no longer kept: start from now; the poll covers what came between.
          await this.#sync.saveCursor(STREAM_CURSOR, '');
        }
        this.#log.warn({ err: error, failures }, 'the change stream stopped; subscribing again');
      }
      // The poll covers what the stream may have missed while it was down.
      this.#nextPollAt = 0;
      this.wake();
      wait ??= Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  }

  /** A pass past the wait met no 'quota' failure: the connection goes on (its status says so again). */
  #quotaOver(): void {
    if (this.#quotaUntil === 0 || this.#quotaHit || Date.now() < this.#quotaUntil) return;
    this.#quotaUntil = 0;
    this.#log.info('the API allocation allows calls again; the connection goes on');
    this.#deps.onQuota?.(this.connection.id, null);
  }

  /** The API allocation is used up: the whole connection waits, visibly, and goes on by itself. */
  #quota(error: ConnectorError): number {
    // The connector's wait (Salesforce: 60 s), at most the longest wait between retries.
    const wait = Math.min(error.retryAfterMs ?? 60_000, this.#deps.retry.maxMs);
    this.#quotaHit = true;
    this.#deps.budget.pauseFor(wait);
    const wasWaiting = this.#quotaUntil !== 0;
    this.#quotaUntil = Date.now() + wait;
    if (!wasWaiting) {
      this.#log.warn({ err: error, waitMs: wait }, 'the API allocation is used up; the connection waits');
      this.#deps.onQuota?.(this.connection.id, `The ${this.connection.connector.displayName} API allocation is used up (${error.externalCode ?? 'quota'}); retrying from ${new Date(this.#quotaUntil).toISOString()}.`);
    }
    return wait;
  }

  // Failures

  async #failed(
    error: unknown,
    attempts: number,
    target: {
      direction: 'outbound' | 'inbound';
      entityType: string;
      recordId: string | null;
      externalId: string | null;
      defer: (attempts: number, notBefore: string, error: string) => Promise<void>;
      drop: () => Promise<void>;
    },
  ): Promise<void> {
    if (this.#signal.aborted) return;
    const text = message(error);
    const next = attempts + 1;
    const openIssue = async (code: string) => {
      await this.#deps.issues.open({
        workspaceId: this.connection.workspaceId,
        connectionId: this.connection.id,
        entityType: target.entityType,
        recordId: target.recordId,
        externalId: target.externalId,
        direction: target.direction,
        code,
        message: text,
      });
      await target.drop();
    };
    const at = (ms: number) => new Date(Date.now() + ms).toISOString();
    const log = { err: error, direction: target.direction, recordId: target.recordId, externalId: target.externalId, attempt: next };

    if (error instanceof ConnectorError) {
      switch (error.kind) {
        case 'auth':
          await target.defer(attempts, at(1000), text);
          this.#deps.onAuthFailure(this.connection.id, text);
          return;
        case 'fatal':
          this.#log.warn(log, 'the external system refused a sync write; opened a sync issue');
          await openIssue(error.externalCode ?? 'EXTERNAL_REJECTED');
          return;
        case 'quota':
          await target.defer(attempts, at(this.#quota(error)), text);
          return;
        case 'retry_after': {
          const wait = error.retryAfterMs ?? 1000;
          this.#deps.budget.pauseFor(wait);
          // Being told to wait is not a failure of this record: it does not use up its attempts.
          await target.defer(attempts, at(wait), text);
          return;
        }
        case 'retry':
          break;
      }
    } else if (isTandemError(error) && error.status < 500 && !error.retryable) {
      this.#log.warn(log, 'a sync change was refused by the catalog; opened a sync issue');
      await openIssue(error.code);
      return;
    }
    if (next >= this.#deps.retry.maxAttempts) {
      this.#log.warn(log, 'sync retries exhausted; opened a sync issue');
      await openIssue('RETRIES_EXHAUSTED');
      return;
    }
    this.#log.debug(log, 'sync step failed; retrying');
    await target.defer(next, at(backoff(next, this.#deps.retry)), text);
  }
}
