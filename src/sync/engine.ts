// The sync engine: the dispatcher (a consumer of the change log that marks records for the
// connections that want them) and one worker per active connection. It also takes webhook
// deliveries: verified, deduplicated, stored, answered fast, and handed to the worker.
import type { Logger } from 'pino';
import type { Catalog } from '../catalog/catalog.ts';
import type { EntityRegistry } from '../catalog/registry.ts';
import { ConnectorError, type WebhookRequest } from '../connectors/connector.ts';
import { TandemError } from '../errors/errors.ts';
import type { LogEntry } from '../log/change.ts';
import type { EventLog, Subscription } from '../log/log.ts';
import type { ConnectionOwnership } from '../scale/connection-leases.ts';
import type { Db, Store, Tx } from '../store/store.ts';
import { isRunning, type Connection, type Connections } from './connections.ts';
import type { SyncIssues } from './issues.ts';
import { createRateBudget, type RateBudget } from './rate-budget.ts';
import { wantsOutbound } from './settings.ts';
import { storeArrived } from './echoes.ts';
import { SyncStore } from './sync-store.ts';
import { ConnectionWorker, type WorkerDeps } from './worker.ts';

export interface SyncEngineDeps {
  store: Store;
  log: EventLog;
  catalog: Catalog;
  registry: EntityRegistry;
  connections: Connections;
  issues: SyncIssues;
  logger: Logger;
  retry?: WorkerDeps['retry'];
  /**
   * Several processes on one store: a connection's worker runs only in the process that holds its
   * lease, and work found here for a connection run elsewhere is signalled there. Unset: every
   * active connection's worker runs in this process.
   */
  ownership?: ConnectionOwnership;
  /** Makes a connection's rate budget (shared between processes when they share a store). Default: one of this process's own. */
  rateBudget?: (connectionId: string, ratePerSecond: number) => RateBudget;
}

export const DISPATCHER_GROUP = 'sync-dispatcher';

export class SyncEngine {
  readonly #deps: SyncEngineDeps;
  readonly #workers = new Map<string, ConnectionWorker>();
  readonly #budgets = new Map<string, RateBudget>();
  /** Every connection by workspace: the dispatcher's routing table. */
  #byWorkspace = new Map<string, Connection[]>();
  /**
   * Every loaded connection by id: webhooks are verified with it, rather than loading (decrypting,
   * making a new client) once per delivery, which cost more than storing the delivery.
   */
  readonly #byId = new Map<string, Connection>();
  #subscription: Subscription | undefined;
  #reloads: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(deps: SyncEngineDeps) {
    this.#deps = deps;
  }

  async start(): Promise<void> {
    await this.#deps.ownership?.start({
      changed: (id) => void this.connectionChanged(id),
      wake: (id) => this.#workers.get(id)?.wake(),
    });
    await this.#reloadAll();
    this.#subscription = this.#deps.log.subscribe({
      group: DISPATCHER_GROUP,
      handler: (entry) => this.#dispatch([entry]),
      batchHandler: (entries) => this.#dispatch(entries),
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#subscription?.stop();
    await this.#reloads;
    await Promise.all([...this.#workers.values()].map((w) => w.stop()));
    this.#workers.clear();
    // Leases go back once their workers stopped, so the next owner never overlaps this one.
    await this.#deps.ownership?.stop();
  }

  /** Wakes the connection's worker here, or, if it runs in another process, signals that process. */
  #wake(connectionId: string): void {
    const worker = this.#workers.get(connectionId);
    if (worker !== undefined) worker.wake();
    else this.#deps.ownership?.wake(connectionId);
  }

  /** A connection was created, changed or deleted: reload it and restart its worker. */
  connectionChanged(id: string): Promise<void> {
    // At once, not when the reload runs: a webhook meanwhile is checked against the store.
    this.#byId.delete(id);
    this.#reloads = this.#reloads.then(() => this.#reload(id)).catch((error: unknown) => {
      this.#deps.logger.error({ err: error, connectionId: id }, 'reloading a connection failed');
    });
    return this.#reloads;
  }

  /** Waits until pending connection reloads are done (for tests and the API). */
  settled(): Promise<void> {
    return this.#reloads;
  }

  async #reloadAll(): Promise<void> {
    for (const connection of await this.#deps.connections.loadAll()) this.#install(connection);
  }

  async #reload(id: string): Promise<void> {
    const old = this.#workers.get(id);
    this.#workers.delete(id);
    await old?.stop();
    // The connection stays in #byWorkspace (and #byId) until it is installed anew or found gone: a
    // change dispatched meanwhile is marked for it, not dropped (a reload happens on every lease
    // move, pause, resume and settings change; a change dropped then never reached the system).
    const connection = this.#stopped ? undefined : await this.#deps.connections.load(id);
    if (connection === undefined) {
      this.#byId.delete(id);
      for (const [workspace, list] of this.#byWorkspace) {
        this.#byWorkspace.set(workspace, list.filter((c) => c.id !== id));
      }
      if (!this.#stopped) this.#budgets.delete(id);
      return;
    }
    this.#install(connection);
  }

  #install(connection: Connection): void {
    // A lease taken while start() loads every connection can install one twice: one worker only.
    void this.#workers.get(connection.id)?.stop();
    this.#workers.delete(connection.id);
    this.#byId.set(connection.id, connection);
    this.#byWorkspace.set(connection.workspaceId, [...(this.#byWorkspace.get(connection.workspaceId) ?? []).filter((c) => c.id !== connection.id), connection]);
    let budget = this.#budgets.get(connection.id);
    if (budget === undefined) {
      budget = this.#deps.rateBudget?.(connection.id, connection.settings.rateLimitPerSecond) ?? createRateBudget(connection.settings.rateLimitPerSecond);
      this.#budgets.set(connection.id, budget);
    } else {
      budget.setRate(connection.settings.rateLimitPerSecond);
    }
    if (!isRunning(connection.status)) return;
    if (this.#deps.ownership !== undefined && !this.#deps.ownership.owns(connection.id)) return;
    const worker = new ConnectionWorker(connection, {
      store: this.#deps.store,
      catalog: this.#deps.catalog,
      registry: this.#deps.registry,
      issues: this.#deps.issues,
      budget,
      logger: this.#deps.logger,
      retry: this.#deps.retry ?? { maxAttempts: 10, initialMs: 250, maxMs: 60_000 },
      onQuota: (id, reason) => {
        void this.#deps.connections.setWaiting(id, reason).catch((error: unknown) => {
          this.#deps.logger.error({ err: error, connectionId: id }, 'could not record the connection waiting for its API allocation');
        });
      },
      onAuthFailure: (id, reason) => {
        void this.#deps.connections
          .setStatus(id, 'error', `The credentials were refused: ${reason.slice(0, 500)}`)
          .catch((error: unknown) => {
            this.#deps.logger.error({ err: error, connectionId: id }, 'could not mark the connection failed');
          });
      },
    });
    this.#workers.set(connection.id, worker);
    worker.start();
  }

  /**
   * Marks each change's record for every connection that wants it outbound and did not cause it.
   * The marks of a batch of changes are written in one transaction (one commit, not one each).
   */
  async #dispatch(entries: readonly LogEntry[]): Promise<void> {
    const marks: Array<{ connectionId: string; entry: LogEntry }> = [];
    for (const entry of entries) {
      for (const connection of this.#byWorkspace.get(entry.workspaceId) ?? []) {
        if (entry.origin === `connection:${connection.id}`) continue;
        if (!wantsOutbound(connection.settings, entry.entityType)) continue;
        if (connection.client.binding(entry.entityType) === undefined) continue;
        marks.push({ connectionId: connection.id, entry });
      }
    }
    if (marks.length === 0) return;
    const write = async (db: Db | Tx) => {
      for (const { connectionId, entry } of marks) await new SyncStore(db, connectionId).mark(entry.entityType, entry.recordId, entry.version);
    };
    if (marks.length === 1) await write(this.#deps.store.db);
    else await this.#deps.store.transaction(write);
    for (const connectionId of new Set(marks.map((m) => m.connectionId))) this.#wake(connectionId);
  }

  /**
   * A webhook delivery for a connection: verified with its signing secret, turned into external
   * changes, stored (duplicates dropped by event id). Throws TandemError for anything not authentic.
   */
  async acceptWebhook(connectionId: string, request: WebhookRequest): Promise<{ received: number; new: number }> {
    // Not loaded yet (just created, its reload still queued): from the store.
    const connection = this.#byId.get(connectionId) ?? (await this.#deps.connections.load(connectionId));
    if (connection === undefined || connection.webhook === undefined || connection.client.parseWebhook === undefined) {
      throw new TandemError('NOT_FOUND', 'No connection takes webhooks here.');
    }
    let notifications;
    try {
      notifications = connection.client.parseWebhook(request, connection.webhook.secret);
    } catch (error) {
      if (error instanceof ConnectorError) throw new TandemError('WEBHOOK_INVALID', error.message.slice(0, 300));
      throw new TandemError('WEBHOOK_INVALID');
    }
    // Tandem's own writes coming back are answered and not stored (./echoes.ts).
    const added = await storeArrived(new SyncStore(this.#deps.store.db, connectionId), connection.client, notifications, 'webhook');
    if (added > 0) this.#wake(connectionId);
    return { received: notifications.length, new: added };
  }

  /** Re-queues the record or object of a sync issue and resolves the issue. */
  async retryIssue(workspaceId: string, issueId: string): Promise<void> {
    const issue = await this.#deps.issues.get(workspaceId, issueId);
    const sync = new SyncStore(this.#deps.store.db, issue.connection_id);
    if (issue.direction === 'outbound' && issue.record_id !== null) {
      const record = await this.#deps.catalog.get(workspaceId, issue.entity_type, issue.record_id);
      await sync.mark(issue.entity_type, issue.record_id, record.version);
    } else if (issue.external_id !== null) {
      await sync.appendExternal(
        [{ eventId: `retry-${issueId}-${String(Date.now())}`, entityType: issue.entity_type, externalId: issue.external_id, op: 'update', occurredAt: new Date().toISOString() }],
        'poll',
      );
    }
    await this.#deps.issues.resolve(issueId);
    this.#wake(issue.connection_id);
  }
}
