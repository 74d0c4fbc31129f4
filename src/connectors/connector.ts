// The connector contract: what Tandem needs from the code for one external system. A connector is
// declared once (like an entity type) and registered in src/connectors/index.ts; the sync engine,
// the connections API and the shared connector contract suite work with any connector through it.
//
// Words (see DESIGN.md): an *external object* is the other system's copy of a Tandem record; its
// *canonical fields* are the same fields mapped into Tandem's entity shape (e.g. a customer's name,
// email, billing_address, metadata). The engine diffs canonical fields against the link's base, so
// connectors only translate shapes; they never decide what to sync.
import type { z } from 'zod';

/** How a failure should be handled. The connector classifies; the engine obeys. */
export type FailureKind =
  /** Transient (connection reset, 5xx, timeout): retry with backoff. */
  | 'retry'
  /** Rate limited or told to wait: retry after `retryAfterMs`. */
  | 'retry_after'
  /** The request itself is wrong for this object (validation, missing object): a sync issue. */
  | 'fatal'
  /** The credentials no longer work: pause the connection until someone fixes them. */
  | 'auth'
  /**
   * The account's API allocation is used up (Salesforce's daily `REQUEST_LIMIT_EXCEEDED`): the whole
   * connection waits `retryAfterMs` (its status says why, for everyone to see) and then resumes by
   * itself. Not a failure of the record: it does not use up its attempts. Other connections go on.
   */
  | 'quota';

export class ConnectorError extends Error {
  readonly kind: FailureKind;
  /** The external system's own error code, e.g. Stripe's `resource_missing`. */
  readonly externalCode: string | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  /**
   * The write's idempotency key now holds this failure for good: asking again with the same key only
   * replays it (Stripe stores a 500 under its key). The engine looks the object up and, when nothing
   * was made, writes again under a new key.
   */
  readonly keySpent: boolean;

  constructor(
    kind: FailureKind,
    message: string,
    options: {
      externalCode?: string | undefined;
      status?: number | undefined;
      retryAfterMs?: number | undefined;
      keySpent?: boolean | undefined;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ConnectorError';
    this.kind = kind;
    this.externalCode = options.externalCode;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
    this.keySpent = options.keySpent ?? false;
  }
}

/** The other system's copy of a record, already mapped to canonical fields. */
export interface ExternalObject {
  /** The external id, e.g. `cus_N…` in Stripe. */
  id: string;
  /** Canonical fields the connector maps (only those it maps; others are absent). */
  fields: Record<string, unknown>;
  /** True when the external object is deleted (or otherwise gone for good). */
  deleted: boolean;
  /** The Tandem record id the object carries (e.g. Stripe metadata `tandem_id`), if any. */
  tandemId: string | undefined;
  /**
   * Something that orders the object's versions, when the system has it (a timestamp in ms, a
   * SyncToken, a modstamp); the engine never applies an older version over a newer one.
   */
  version: string | undefined;
}

/** "Object E of type T may have changed": from a webhook or a poll. The engine re-fetches E. */
export interface ExternalNotification {
  /** Unique per event in the external system (Stripe `evt_…`): duplicates are dropped by it. */
  eventId: string;
  entityType: string;
  externalId: string;
  /** What the event said happened; the fetched object is what counts. */
  op: 'create' | 'update' | 'delete';
  /** When the change happened in the external system (ISO-8601). */
  occurredAt: string;
  /** The object as the event carried it, when it did; used when the object can no longer be fetched. */
  object?: ExternalObject | undefined;
}

export interface WriteOptions {
  /** Derived from (connection, record, version): a retry of the same write never does it twice. */
  idempotencyKey: string;
  signal?: AbortSignal | undefined;
}

/** One write of a batch (`EntityBinding.writeMany`): the same write create/update/delete would make. */
export type BatchWrite =
  | { op: 'create'; tandemId: string; fields: Record<string, unknown>; idempotencyKey: string }
  | { op: 'update'; externalId: string; tandemId: string; fields: Record<string, unknown>; previous?: Record<string, unknown> | undefined; idempotencyKey: string }
  | { op: 'delete'; externalId: string; idempotencyKey: string };

/** What became of one write of a batch: what create/update answer (undefined for a delete), or its own failure. */
export type BatchOutcome = { ok: true; object: ExternalObject | undefined } | { ok: false; error: ConnectorError };

export interface BatchOptions {
  signal?: AbortSignal | undefined;
  /**
   * Called before every API request the batch makes (it waits for the connection's rate budget):
   * a batch may take more than one request (Salesforce: the Accounts, then their Contacts).
   */
  beforeRequest: () => Promise<void>;
}

export interface UpdateOptions extends WriteOptions {
  /**
   * What the engine believes the external object holds (the link's base, canonical fields): lets
   * the connector write a minimal change inside a field, e.g. remove only the metadata keys that
   * went away and leave keys someone added externally meanwhile. Absent: the connector reads the
   * current object first when it needs to.
   */
  previous?: Record<string, unknown> | undefined;
  /** The Tandem record the object is linked to (the engine always gives it). */
  tandemId?: string | undefined;
}

/** CRUD of one entity type in the external system, in canonical fields. */
export interface EntityBinding {
  /** The canonical fields this binding maps; the others are never sent or compared. */
  readonly fields: readonly string[];
  /**
   * Canonical values as this system can hold them (e.g. Stripe stores '' as null and an all-empty
   * address as none), for the given keys only (a whole record or a diff; unmapped keys dropped).
   * The engine compares normalize(local) with the base and the remote, so a value the system cannot
   * represent does not look like a change forever. Idempotent; a mapped round trip answers exactly
   * normalize(x). Absent: values are held as they are.
   */
  normalize?(fields: Record<string, unknown>): Record<string, unknown>;
  /** Creates the external object for Tandem record `tandemId` with these canonical fields. */
  create(tandemId: string, fields: Record<string, unknown>, options: WriteOptions): Promise<ExternalObject>;
  /** Writes only the given canonical fields (a diff); answers the object after the write. */
  update(externalId: string, fields: Record<string, unknown>, options: UpdateOptions): Promise<ExternalObject>;
  /** Deletes (or archives) the object; deleting an already deleted object is not an error. */
  delete(externalId: string, options: WriteOptions): Promise<void>;
  /** The current object, `deleted: true` if deleted, or undefined if it never existed. */
  get(externalId: string, signal?: AbortSignal): Promise<ExternalObject | undefined>;
  /** The most writes one writeMany call takes (Salesforce's sObject Collections: 200). */
  readonly maxBatch?: number;
  /**
   * Several writes in as few requests as the system allows (Salesforce: sObject Collections), for
   * bursts. One outcome per write, in order; a write's own refusal is its outcome, with the
   * ConnectorError create/update/delete would have thrown. A failure of the whole request (network,
   * 5xx, 429, auth, quota) throws, as a single write does: the engine retries every write of it.
   * Each write keeps the guarantees of its single form (a create is idempotent by its Tandem id or
   * key, an update writes only its fields, a delete of a deleted object succeeds).
   * At most maxBatch writes, each for a different object. Absent: the engine writes one by one.
   */
  writeMany?(writes: readonly BatchWrite[], options: BatchOptions): Promise<BatchOutcome[]>;
  /** Finds the object created for a Tandem record (after a crash between create and link). */
  findByTandemId?(tandemId: string, signal?: AbortSignal): Promise<ExternalObject | undefined>;
  /** Every object, page by page, for backfill and reconciliation. */
  list?(cursor: string | undefined, signal?: AbortSignal): Promise<{ objects: ExternalObject[]; next: string | undefined }>;
}

export interface WebhookRegistration {
  /** The external id of the endpoint, to remove it when the connection is deleted. */
  endpointId: string;
  /** The signing secret the external system gave (kept encrypted). */
  secret: string;
}

export interface WebhookRequest {
  /** The body exactly as received: signatures are computed over these bytes. */
  rawBody: Buffer;
  headers: Record<string, string | string[] | undefined>;
}

export interface PollResult {
  notifications: ExternalNotification[];
  /** Where the next poll starts; stored durably by the engine after the notifications are. */
  cursor: string;
  /** True when more is waiting right away (poll again without waiting). */
  more: boolean;
  /**
   * The feed no longer reaches back to the cursor (Salesforce's delete log was purged past it):
   * changes may have been missed. The engine re-reads every object it has linked and lists the
   * system again (a full resync); an object the system no longer has at all is taken as deleted.
   */
  resync?: boolean | undefined;
}

/** One batch of a pushed change feed (`ConnectorClient.stream`). */
export interface StreamBatch {
  notifications: ExternalNotification[];
  /** Where the stream resumes after this batch (Salesforce: the last replay id); stored by the engine once the notifications are. */
  cursor: string;
}

/** A live client for one connection: made from its credentials and settings. */
export interface ConnectorClient {
  /** Checks the credentials with a cheap call; throws ConnectorError('auth') when refused. */
  validate(signal?: AbortSignal): Promise<{ accountId: string; accountName?: string | undefined }>;
  /** Tandem's entity types this client syncs, with their bindings. */
  binding(entityType: string): EntityBinding | undefined;
  /** Registers Tandem's webhook endpoint with the external system (on connection create). */
  registerWebhook?(url: string, signal?: AbortSignal): Promise<WebhookRegistration>;
  unregisterWebhook?(endpointId: string, signal?: AbortSignal): Promise<void>;
  /**
   * Verifies a delivery (signature, timestamp tolerance) and turns it into notifications. Throws
   * ConnectorError('fatal') for a forged, stale or malformed delivery. Pure: no I/O.
   */
  parseWebhook?(request: WebhookRequest, secret: string, now?: Date): ExternalNotification[];
  /** Reads the change feed from `cursor` (undefined: start from now). The safety net for lost webhooks. */
  poll?(cursor: string | undefined, signal?: AbortSignal): Promise<PollResult>;
  /**
   * Holds a pushed change feed open (Salesforce Change Data Capture over CometD) from `cursor`
   * (undefined: changes from now on) and calls onBatch for each batch, in order, awaiting it before
   * the next. Changes this connection made itself (recognised by the system, e.g. `changeOrigin`)
   * are not passed on. Resolves once `signal` aborts; rejects with a ConnectorError when the feed
   * cannot go on (the engine subscribes again after a backoff, from the last cursor it stored, and
   * the poll covers the gap). A cursor the system no longer keeps: reject with kind 'fatal' and
   * externalCode 'CURSOR_EXPIRED' (the engine then starts from now; the poll covers the rest).
   */
  stream?(cursor: string | undefined, onBatch: (batch: StreamBatch) => Promise<void>, signal: AbortSignal): Promise<void>;
}

export interface RateLimitProfile {
  /** Sustained requests per second the external system allows per account. */
  requestsPerSecond: number;
  /** Requests that may go at once after a quiet period. */
  burst: number;
}

/** What a client knows of the connection it serves. */
export interface ClientContext {
  /**
   * The connection's id: stable for its life, unique. A connector that tags its own writes so the
   * system's change feed can tell them apart (Salesforce's `Sforce-Call-Options: client=…`) derives
   * the tag from it.
   */
  connectionId: string;
}

export interface ConnectorDefinition<Credentials = unknown, Settings = unknown> {
  /** `stripe`: used in `POST /api/v1/connections {"connector":"stripe"}`. */
  readonly id: string;
  readonly displayName: string;
  /** Secret: validated on create, encrypted at rest, never answered or logged. */
  readonly credentialsSchema: z.ZodType<Credentials>;
  /** Connector-specific settings (e.g. `apiBaseUrl`), answered by the API. */
  readonly settingsSchema: z.ZodType<Settings>;
  /** Entity types it can sync, each with the directions it supports. */
  readonly entities: Readonly<Record<string, { directions: readonly Direction[] }>>;
  /** The default rate budget per connection (per external account); settings may lower it. */
  readonly rateLimit: RateLimitProfile;
  /** How the external system reports changes. */
  readonly changeFeeds: { webhooks: boolean; polling: boolean; streaming?: boolean };
  createClient(credentials: Credentials, settings: Settings, context: ClientContext): ConnectorClient;
}

export type Direction = 'both' | 'outbound' | 'inbound';
