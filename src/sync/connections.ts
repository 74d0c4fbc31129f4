// Connections: a workspace's configured instances of connectors. Credentials and webhook secrets
// are sealed (AES-256-GCM) before they reach the store and are never answered or logged.
import type { IdFactory } from '../catalog/ids.ts';
import { isId } from '../catalog/ids.ts';
import { ConnectorError, type ConnectorClient, type ConnectorDefinition } from '../connectors/connector.ts';
import type { ConnectorRegistry } from '../connectors/index.ts';
import { TandemError } from '../errors/errors.ts';
import type { SecretBox } from '../security/secrets.ts';
import type { ConnectionsTable } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { parseSettings, settingsView, type ConnectionSettings } from './settings.ts';
import { BACKFILL_CURSOR, startState as startBackfill } from './backfill.ts';
import { FEED_CURSOR, SyncStore } from './sync-store.ts';

/**
 * `active`: syncing. `waiting`: syncing, but the external account's API allocation is used up, so
 * nothing goes out until it frees (the reason says until when); it goes back to active by itself.
 * `paused`: by a person, through the API. `error`: the credentials were refused.
 */
export type ConnectionStatus = 'active' | 'waiting' | 'paused' | 'error';

/** The statuses in which a connection's worker runs. */
export function isRunning(status: ConnectionStatus): boolean {
  return status === 'active' || status === 'waiting';
}

/** A connection as the engine uses it: decrypted, parsed, with a live client. */
export interface Connection {
  id: string;
  workspaceId: string;
  connector: ConnectorDefinition;
  name: string;
  status: ConnectionStatus;
  statusReason: string | null;
  settings: ConnectionSettings;
  client: ConnectorClient;
  webhook: { endpointId: string; secret: string } | undefined;
}

export interface ConnectionView {
  id: string;
  object: 'connection';
  connector: string;
  name: string;
  status: ConnectionStatus;
  status_reason: string | null;
  account_id: string | null;
  settings: Record<string, unknown>;
  webhook_url: string | null;
  created_at: string;
  updated_at: string;
}

export interface ConnectionsDeps {
  store: Store;
  connectors: ConnectorRegistry;
  secrets: SecretBox;
  ids: IdFactory;
  publicUrl: string;
  defaults: { pollIntervalMs: number };
  /** Told whenever a connection is created, changed or deleted (the engine restarts its worker). */
  onChange?: (connectionId: string) => void;
}

const PREFIX = 'conn';

/** Turns a connector failure at create time into a clear 4xx. */
function createError(error: unknown, connector: string): TandemError {
  if (error instanceof ConnectorError) {
    if (error.kind === 'auth') {
      return new TandemError('CONNECTION_CREDENTIALS_REJECTED', `${connector} refused the credentials.`, {
        external_code: error.externalCode ?? null,
      });
    }
    if (error.kind === 'fatal') {
      return new TandemError('CONNECTION_REJECTED', `${connector} refused the connection: ${error.message}`, {
        external_code: error.externalCode ?? null,
      });
    }
    return new TandemError('CONNECTION_UNREACHABLE', `${connector} could not be reached: ${error.message}`);
  }
  return new TandemError('CONNECTION_UNREACHABLE', `${connector} could not be reached.`);
}

export class Connections {
  readonly #deps: ConnectionsDeps;

  constructor(deps: ConnectionsDeps) {
    this.#deps = deps;
  }

  webhookUrl(id: string): string {
    return `${this.#deps.publicUrl}/webhooks/${id}`;
  }

  #view(row: ConnectionsTable, settings: ConnectionSettings): ConnectionView {
    return {
      id: row.id,
      object: 'connection',
      connector: row.connector,
      name: row.name,
      status: row.status as ConnectionStatus,
      status_reason: row.status_reason,
      account_id: row.account_id,
      settings: settingsView(settings),
      webhook_url: row.webhook === null ? null : this.webhookUrl(row.id),
      created_at: row.created_at,
      updated_at: row.updated_at,
    };
  }

  #settings(row: ConnectionsTable): ConnectionSettings {
    return JSON.parse(row.settings) as ConnectionSettings;
  }

  /** Loads a connection for the engine (any workspace), or undefined. */
  async load(id: string): Promise<Connection | undefined> {
    if (!isId(PREFIX, id)) return undefined;
    const row = await this.#deps.store.db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : this.#hydrate(row);
  }

  async loadAll(): Promise<Connection[]> {
    const rows = await this.#deps.store.db.selectFrom('connections').selectAll().orderBy('id').execute();
    return rows.map((row) => this.#hydrate(row));
  }

  #hydrate(row: ConnectionsTable): Connection {
    const connector = this.#deps.connectors.get(row.connector);
    const settings = this.#settings(row);
    const credentials = JSON.parse(this.#deps.secrets.open(row.credentials)) as unknown;
    return {
      id: row.id,
      workspaceId: row.workspace_id,
      connector,
      name: row.name,
      status: row.status as ConnectionStatus,
      statusReason: row.status_reason,
      settings,
      client: connector.createClient(credentials, settings.connector, { connectionId: row.id }),
      webhook: row.webhook === null ? undefined : (JSON.parse(this.#deps.secrets.open(row.webhook)) as Connection['webhook']),
    };
  }

  async #row(workspaceId: string, id: string): Promise<ConnectionsTable> {
    const row = isId(PREFIX, id)
      ? await this.#deps.store.db
          .selectFrom('connections')
          .selectAll()
          .where('workspace_id', '=', workspaceId)
          .where('id', '=', id)
          .executeTakeFirst()
      : undefined;
    if (row === undefined) throw new TandemError('NOT_FOUND', `No connection ${id.slice(0, 64)}.`, { id: id.slice(0, 64) });
    return row;
  }

  async get(workspaceId: string, id: string): Promise<ConnectionView> {
    const row = await this.#row(workspaceId, id);
    return this.#view(row, this.#settings(row));
  }

  async list(workspaceId: string): Promise<ConnectionView[]> {
    const rows = await this.#deps.store.db
      .selectFrom('connections')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .orderBy('id', 'desc')
      .execute();
    return rows.map((row) => this.#view(row, this.#settings(row)));
  }

  async create(
    workspaceId: string,
    input: { connector: string; name: string; credentials: unknown; settings?: unknown },
    signal?: AbortSignal,
  ): Promise<ConnectionView> {
    const connector = this.#deps.connectors.find(input.connector);
    if (connector === undefined) {
      throw new TandemError('VALIDATION_FAILED', `Unknown connector ${input.connector.slice(0, 64)}.`, {
        field: 'connector',
        supported: this.#deps.connectors.all().map((c) => c.id),
      });
    }
    const credentials = connector.credentialsSchema.safeParse(input.credentials);
    if (!credentials.success) {
      // The issues name the fields, never their values: credentials are secret.
      throw new TandemError('VALIDATION_FAILED', `Invalid ${connector.id} credentials.`, {
        field: 'credentials',
        issues: credentials.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message.slice(0, 200) })),
      });
    }
    const settings = parseSettings(connector, input.settings, this.#deps.defaults);
    const id = this.#deps.ids(PREFIX);
    const client = connector.createClient(credentials.data, settings.connector, { connectionId: id });
    let account: { accountId: string };
    let webhook: { endpointId: string; secret: string } | undefined;
    let feedCursor: string | undefined;
    try {
      account = await client.validate(signal);
      if (connector.changeFeeds.webhooks && client.registerWebhook !== undefined) {
        webhook = await client.registerWebhook(this.webhookUrl(id), signal);
      }
      // The change feed starts now, not at the first poll: a change made between the create and a
      // first poll that succeeds (Stripe down for a while) whose webhook is lost is still caught up.
      if (connector.changeFeeds.polling && client.poll !== undefined) {
        feedCursor = (await client.poll(undefined, signal)).cursor;
      }
    } catch (error) {
      if (webhook !== undefined && client.unregisterWebhook !== undefined) {
        await client.unregisterWebhook(webhook.endpointId).catch(() => undefined);
      }
      throw createError(error, connector.displayName);
    }
    const now = new Date().toISOString();
    const row: ConnectionsTable = {
      id,
      workspace_id: workspaceId,
      connector: connector.id,
      name: input.name,
      status: 'active',
      status_reason: null,
      settings: JSON.stringify(settings),
      credentials: this.#deps.secrets.seal(JSON.stringify(credentials.data)),
      webhook: webhook === undefined ? null : this.#deps.secrets.seal(JSON.stringify(webhook)),
      account_id: account.accountId,
      created_at: now,
      updated_at: now,
    };
    await this.#deps.store.transaction(async (trx) => {
      await trx.insertInto('connections').values(row).execute();
      const sync = new SyncStore(trx, id);
      if (feedCursor !== undefined) await sync.saveCursor(FEED_CURSOR, feedCursor);
      // The initial sync of what both sides already hold (src/sync/backfill.ts).
      await sync.saveCursor(BACKFILL_CURSOR, startBackfill(id, Object.keys(settings.entities)));
    });
    this.#deps.onChange?.(id);
    return this.#view(row, settings);
  }

  async update(workspaceId: string, id: string, input: { name?: string | undefined; settings?: unknown }): Promise<ConnectionView> {
    const row = await this.#row(workspaceId, id);
    const connector = this.#deps.connectors.get(row.connector);
    const settings =
      input.settings === undefined ? this.#settings(row) : parseSettings(connector, input.settings, this.#deps.defaults, this.#settings(row));
    const next = { name: input.name ?? row.name, settings: JSON.stringify(settings), updated_at: new Date().toISOString() };
    await this.#deps.store.db.updateTable('connections').set(next).where('id', '=', id).execute();
    this.#deps.onChange?.(id);
    return this.#view({ ...row, ...next }, settings);
  }

  async setStatus(id: string, status: ConnectionStatus, reason: string | null): Promise<void> {
    await this.#deps.store.db
      .updateTable('connections')
      .set({ status, status_reason: reason, updated_at: new Date().toISOString() })
      .where('id', '=', id)
      .execute();
    this.#deps.onChange?.(id);
  }

  /**
   * The worker's own report of its API allocation: `waiting` with a reason, or back to `active`
   * (null). Only a running connection changes (a person's pause wins), and the worker is not restarted.
   */
  async setWaiting(id: string, reason: string | null): Promise<void> {
    await this.#deps.store.db
      .updateTable('connections')
      // updated_at stays: other processes watch it for changes that restart a worker.
      .set({ status: reason === null ? 'active' : 'waiting', status_reason: reason })
      .where('id', '=', id)
      .where('status', 'in', ['active', 'waiting'])
      .execute();
  }

  async pause(workspaceId: string, id: string): Promise<ConnectionView> {
    await this.#row(workspaceId, id);
    await this.setStatus(id, 'paused', 'Paused through the API.');
    return this.get(workspaceId, id);
  }

  async resume(workspaceId: string, id: string): Promise<ConnectionView> {
    await this.#row(workspaceId, id);
    await this.setStatus(id, 'active', null);
    return this.get(workspaceId, id);
  }

  /** Deletes the connection, its links, marks and pending changes; removes its webhook endpoint (best effort). */
  async delete(workspaceId: string, id: string): Promise<{ id: string; object: 'connection'; deleted: true }> {
    const row = await this.#row(workspaceId, id);
    const connection = this.#hydrate(row);
    if (connection.webhook !== undefined && connection.client.unregisterWebhook !== undefined) {
      await connection.client.unregisterWebhook(connection.webhook.endpointId).catch(() => undefined);
    }
    await this.#deps.store.transaction(async (trx) => {
      for (const table of ['links', 'sync_marks', 'external_changes', 'connection_cursors'] as const) {
        await trx.deleteFrom(table).where('connection_id', '=', id).execute();
      }
      await trx.deleteFrom('connections').where('id', '=', id).execute();
    });
    this.#deps.onChange?.(id);
    return { id, object: 'connection', deleted: true };
  }
}
