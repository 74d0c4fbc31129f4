// Salesforce Change Data Capture as Tandem's pushed change feed (`ConnectorClient.stream`): one
// subscription to `/data/ChangeEvents` over jsforce's streaming client (faye, CometD long polling)
// with the replay extension, turned into batches of ExternalNotifications for customers (an Account,
// or the Account of a changed Contact). Events are queued as they arrive and handed to onBatch one
// batch at a time, in replay order; the batch's cursor is its last replay id.
//
// Lifecycle: a faye client per session. When Salesforce refuses the handshake (the access token
// expired), the client is dropped, `reauthorize()` is called once, and a new client subscribes
// from the newest replay id received (events received but not yet delivered stay queued, so nothing
// is lost or delivered twice). faye's own reconnects (`advice.reconnect: handshake` with a still
// valid token) re-subscribe through the same replay extension. The stream rejects with a
// ConnectorError when it cannot go on: 'auth' (refused again after re-authorizing), 'fatal' +
// CURSOR_EXPIRED (the replay id is no longer retained), 'retry' (unreachable, or the server tells the
// client not to reconnect). Nothing here logs, and no error carries the access token.
import type { Connection } from 'jsforce';
import { StreamingExtension } from 'jsforce/lib/api/streaming.js';
import { ConnectorError, type ExternalNotification, type StreamBatch } from '../connector.ts';
import { QUOTA_RETRY_AFTER_MS } from './errors.ts';

export interface StreamChangesOptions {
  /** Authenticated jsforce Connection (callOptions already set by the connector). */
  connection: Connection;
  /** Gets a fresh access token into `connection` (called when the handshake is denied / the session expired). */
  reauthorize: () => Promise<void>;
  /** Events whose ChangeEventHeader.changeOrigin contains `client=<ownClient>` are Tandem's own writes: dropped. */
  ownClient: string;
  /** E.g. 'customer': the entityType of every notification. */
  entityType: string;
  /** A replay id (as a string) to resume after; undefined: new events only (-1). */
  cursor: string | undefined;
  onBatch: (batch: StreamBatch) => Promise<void>;
  signal: AbortSignal;
  /** optional tuning, for tests */
  /** Events arriving within this window go in one batch (default 20 ms). */
  batchWindowMs?: number;
  /** How long the CometD endpoint may stay unreachable before the stream rejects with 'retry' (default 60 s). */
  unreachableMs?: number;
}

export const CDC_CHANNEL = '/data/ChangeEvents';
const DEFAULT_BATCH_WINDOW_MS = 20;
const DEFAULT_UNREACHABLE_MS = 60_000;
/** At most this many events a batch: their Contact lookup is then always one query. */
const MAX_BATCH_EVENTS = 200;
const DISCONNECT_TIMEOUT_MS = 1_000;
const CONTACT_CACHE_LIMIT = 10_000;

/**
 * Holds Salesforce's Change Data Capture feed open from `cursor` and hands its changes to `onBatch`
 * (see the file comment). Resolves once `signal` aborts; rejects with a ConnectorError otherwise.
 */
export function streamChanges(options: StreamChangesOptions): Promise<void> {
  return new ChangeStream(options).run();
}

// ---- the parts of faye (behind jsforce's streaming API) used here; jsforce's typings omit them ----

interface BayeuxMessage {
  channel?: string;
  successful?: boolean;
  error?: string;
  advice?: { reconnect?: string };
  ext?: { sfdc?: { failureReason?: string } };
  data?: unknown;
}
interface FayeExtension {
  incoming(message: BayeuxMessage, callback: (message: BayeuxMessage | null) => void): void;
}
interface FayeSubscription {
  errback(fn: (error: unknown) => void): unknown;
}
interface FayeEnvelope {
  timer?: ReturnType<typeof setTimeout> | null;
  request?: PromiseLike<{ destroy?: () => void } | undefined> | null;
}
interface FayeClient {
  subscribe(channel: string, onMessage: (data: unknown) => void): FayeSubscription;
  disconnect(): PromiseLike<unknown> | undefined;
  disable(feature: string): void;
  bind(event: 'transport:up' | 'transport:down', listener: () => void): void;
  _state?: number;
  _advice?: { reconnect?: string };
  _dispatcher?: { close(): void; _envelopes?: Map<string, FayeEnvelope> };
}
const FAYE_DISCONNECTED = 4;

// ---- events ----

interface ChangeEventHeader {
  entityName?: string;
  recordIds?: string[];
  changeType?: string;
  changeOrigin?: string;
  commitTimestamp?: number;
  changedFields?: string[];
  nulledFields?: string[];
}
interface RawEvent {
  replayId: number;
  header: ChangeEventHeader | undefined;
  fields: Record<string, unknown>;
}

type Op = ExternalNotification['op'];

class ChangeStream {
  readonly #options: StreamChangesOptions;
  readonly #batchWindowMs: number;
  readonly #unreachableMs: number;
  readonly #queue: RawEvent[] = [];
  /** Contact id (15 characters) → its Account id, null for none. */
  readonly #contacts = new Map<string, string | null>();
  #resolve: () => void = () => undefined;
  #reject: (error: unknown) => void = () => undefined;
  /** The replay id to subscribe from: the newest received, else the cursor, else -1. */
  #replayFrom: number;
  #client: FayeClient | undefined;
  #generation = 0;
  /** reauthorize() was called and no subscription has been confirmed since. */
  #reauthorized = false;
  #windowTimer: ReturnType<typeof setTimeout> | undefined;
  #downTimer: ReturnType<typeof setTimeout> | undefined;
  #busy = false;
  #delivery: Promise<void> = Promise.resolve();
  #finished = false;
  readonly #closing: Promise<void>[] = [];
  readonly #onAbort = (): void => { void this.#finish(undefined); };

  constructor(options: StreamChangesOptions) {
    this.#options = options;
    this.#batchWindowMs = Math.max(0, options.batchWindowMs ?? DEFAULT_BATCH_WINDOW_MS);
    this.#unreachableMs = Math.max(1, options.unreachableMs ?? DEFAULT_UNREACHABLE_MS);
    this.#replayFrom = -1;
  }

  run(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const { cursor, signal } = this.#options;
    if (cursor !== undefined) {
      const replayId = /^\d+$/.test(cursor) ? Number(cursor) : Number.NaN;
      if (!Number.isSafeInteger(replayId)) {
        void this.#finish(new ConnectorError('fatal', 'The stored Change Data Capture cursor is not a replay id', { externalCode: 'CURSOR_EXPIRED' }));
        return done;
      }
      this.#replayFrom = replayId;
    }
    if (signal.aborted) {
      void this.#finish(undefined);
      return done;
    }
    signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#open();
    return done;
  }

  // ---- the faye client ----

  #open(): void {
    const generation = ++this.#generation;
    const guard: FayeExtension = {
      incoming: (message, callback) => {
        if (generation !== this.#generation || this.#finished) {
          callback(message);
          return;
        }
        this.#incoming(message, callback);
      },
    };
    const replay = new StreamingExtension.Replay(CDC_CHANNEL, this.#replayFrom);
    // The guard goes first: it sees (and may swallow) a refused handshake before faye acts on it.
    const client = this.#options.connection.streaming.createClient([guard, replay]) as unknown as FayeClient;
    client.disable('websocket'); // Salesforce serves long polling only; spare the probe
    this.#client = client;
    client.bind('transport:down', () => {
      if (generation !== this.#generation || this.#finished || this.#downTimer !== undefined) return;
      this.#downTimer = setTimeout(() => {
        this.#downTimer = undefined;
        void this.#finish(new ConnectorError('retry', `The Salesforce streaming endpoint was unreachable for more than ${Math.round(this.#unreachableMs / 1000)} s`));
      }, this.#unreachableMs);
    });
    client.bind('transport:up', () => {
      if (generation === this.#generation) this.#clearDownTimer();
    });
    const subscription = client.subscribe(CDC_CHANNEL, (data) => {
      if (generation === this.#generation && !this.#finished) this.#receive(data);
    });
    subscription.errback(() => undefined); // failures are handled as they come in (#incoming)
  }

  #incoming(message: BayeuxMessage, callback: (message: BayeuxMessage | null) => void): void {
    const error = message.error ?? '';
    if (message.channel === '/meta/handshake') {
      if (message.successful === true) {
        this.#clearDownTimer();
        callback(message);
        return;
      }
      // Swallowed: faye would only retry with the same (refused) token.
      callback(null);
      void this.#refused(`handshake: ${error}`);
      return;
    }
    if (message.channel === '/meta/subscribe') {
      callback(message);
      if (message.successful === true) {
        this.#reauthorized = false;
        return;
      }
      if (/replayId.*invalid/i.test(error)) {
        void this.#finish(new ConnectorError('fatal', `Salesforce no longer keeps the stored replay id: ${error}`, { externalCode: 'CURSOR_EXPIRED', status: 400 }));
      } else if (/^40[13]::/.test(error)) {
        void this.#refused(`subscribe: ${error}`);
      } else {
        void this.#finish(new ConnectorError('retry', `Salesforce refused the Change Data Capture subscription: ${error}`, { externalCode: 'SUBSCRIBE_FAILED' }));
      }
      return;
    }
    if (message.channel === '/meta/connect' && message.successful === false && message.advice?.reconnect === 'none') {
      callback(message);
      const reason = message.ext?.sfdc?.failureReason ?? '';
      if (/^401::/.test(error) || /^40[13]::/.test(reason)) void this.#refused(`connect: ${reason || error}`);
      else void this.#finish(new ConnectorError('retry', `Salesforce ended the streaming connection: ${error}`, { externalCode: 'STREAM_CLOSED' }));
      return;
    }
    callback(message);
  }

  /** The session was refused: re-authorize once and subscribe again; refused again: 'auth'. */
  async #refused(what: string): Promise<void> {
    if (this.#finished) return;
    const old = this.#client;
    this.#client = undefined;
    this.#generation += 1; // whatever the old client still says is ignored
    this.#clearDownTimer();
    if (old !== undefined) this.#closing.push(close(old));
    if (this.#reauthorized) {
      await this.#finish(new ConnectorError('auth', `Salesforce refused the streaming session after re-authorizing (${what})`, { externalCode: 'HANDSHAKE_DENIED', status: 403 }));
      return;
    }
    this.#reauthorized = true;
    try {
      await this.#options.reauthorize();
    } catch (error) {
      await this.#finish(reauthorizeError(error));
      return;
    }
    if (this.#ended()) return; // aborted while re-authorizing
    this.#open();
  }

  #clearDownTimer(): void {
    if (this.#downTimer === undefined) return;
    clearTimeout(this.#downTimer);
    this.#downTimer = undefined;
  }

  // ---- queue and delivery ----

  #receive(data: unknown): void {
    const event = rawEvent(data);
    if (event === undefined) return; // no replay id: cannot be placed in the feed
    if (this.#replayFrom >= 0 && event.replayId <= this.#replayFrom) return; // already received
    this.#replayFrom = event.replayId;
    this.#queue.push(event);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#busy || this.#windowTimer !== undefined || this.#finished) return;
    this.#windowTimer = setTimeout(() => {
      this.#windowTimer = undefined;
      this.#delivery = this.#deliver();
    }, this.#batchWindowMs);
  }

  async #deliver(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (!this.#finished && this.#queue.length > 0) {
        const events = this.#queue.slice(0, MAX_BATCH_EVENTS);
        const batch = await this.#toBatch(events);
        if (this.#ended()) return; // aborted meanwhile: not delivered, so replayed next time
        this.#queue.splice(0, events.length);
        await this.#options.onBatch(batch);
      }
    } catch (error) {
      void this.#finish(error);
    } finally {
      this.#busy = false;
    }
  }

  async #toBatch(events: RawEvent[]): Promise<StreamBatch> {
    const own = `client=${this.#options.ownClient}`;
    const isOwn = (e: RawEvent): boolean => (e.header?.changeOrigin ?? '').split(';').some((part) => part.trim() === own);
    // Contacts whose Account the event does not tell and the cache does not know; gap events always
    // (their Contact may have moved).
    const lookup = new Set<string>();
    for (const e of events) {
      if (e.header?.entityName !== 'Contact' || isOwn(e)) continue;
      const { kind, gap } = changeType(e.header.changeType);
      if (!gap && (kind === 'CREATE' || accountIdIn(e) !== undefined)) continue;
      for (const id of e.header.recordIds ?? []) {
        if (gap || !this.#contacts.has(key(id))) lookup.add(id);
      }
    }
    const fetched = lookup.size > 0 ? await this.#lookupContacts([...lookup]) : new Map<string, string | null>();

    const notifications: ExternalNotification[] = [];
    for (const e of events) {
      const header = e.header;
      if (header === undefined) continue;
      const { kind, gap } = changeType(header.changeType);
      const recordIds = header.recordIds ?? [];
      const occurredAt = isoTime(header.commitTimestamp);
      const seen = new Set<string>();
      const notify = (externalId: string | null | undefined, op: Op): void => {
        if (externalId === null || externalId === undefined || seen.has(externalId)) return;
        seen.add(externalId);
        notifications.push({ eventId: `cdc:${e.replayId}:${externalId}`, entityType: this.#options.entityType, externalId, op, occurredAt });
      };
      if (header.entityName === 'Account') {
        if (isOwn(e)) continue;
        const op = accountOp(kind);
        if (op === undefined) continue;
        for (const id of recordIds) notify(id, op);
        continue;
      }
      if (header.entityName !== 'Contact') continue;
      const own = isOwn(e);
      const carried = gap ? undefined : kind === 'CREATE' ? (accountIdIn(e) ?? null) : accountIdIn(e);
      for (const id of recordIds) {
        const k = key(id);
        const before = this.#contacts.get(k);
        if (own) {
          // Not passed on, but it keeps the cache right for the events after it.
          if (carried !== undefined) this.#remember(k, carried);
          else if (gap) this.#contacts.delete(k);
          continue;
        }
        // A Contact's change is its Account's: an update of the customer (the Account itself did not
        // come or go). A Contact that moved changes both Accounts.
        let now: string | null | undefined;
        if (carried !== undefined) now = carried;
        else if (gap) now = fetched.get(k);
        else now = this.#contacts.has(k) ? before : fetched.get(k);
        notify(now, 'update');
        if (before !== undefined && before !== now) notify(before, 'update');
        if (now !== undefined) this.#remember(k, now);
      }
    }
    const last = events.at(-1);
    return { notifications, cursor: String(last?.replayId ?? this.#replayFrom) };
  }

  /** One `queryAll` (deleted Contacts included) for the Accounts of these Contacts. */
  async #lookupContacts(ids: string[]): Promise<Map<string, string | null>> {
    const valid = ids.filter((id) => /^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/.test(id));
    const found = new Map<string, string | null>();
    if (valid.length === 0) return found;
    const soql = `SELECT Id, AccountId FROM Contact WHERE Id IN (${valid.map((id) => `'${id}'`).join(', ')})`;
    const run = async (): Promise<{ Id?: string; AccountId?: string | null }[]> => {
      const result = await this.#options.connection.query<{ Id?: string; AccountId?: string | null }>(soql, { scanAll: true });
      return result.records;
    };
    let records: { Id?: string; AccountId?: string | null }[];
    try {
      records = await run();
    } catch (error) {
      if (errorCode(error) !== 'INVALID_SESSION_ID') throw queryError(error);
      try {
        await this.#options.reauthorize();
      } catch (reauthError) {
        throw reauthorizeError(reauthError);
      }
      try {
        records = await run();
      } catch (again) {
        throw queryError(again);
      }
    }
    for (const record of records) {
      if (typeof record.Id !== 'string') continue;
      found.set(key(record.Id), typeof record.AccountId === 'string' && record.AccountId !== '' ? record.AccountId : null);
    }
    return found;
  }

  #remember(contactKey: string, accountId: string | null): void {
    this.#contacts.delete(contactKey);
    this.#contacts.set(contactKey, accountId);
    if (this.#contacts.size > CONTACT_CACHE_LIMIT) {
      const oldest = this.#contacts.keys().next();
      if (oldest.done !== true) this.#contacts.delete(oldest.value);
    }
  }

  // ---- the end ----

  /** #finished, read through a call: it changes across awaits, which TypeScript's narrowing does not see. */
  #ended(): boolean {
    return this.#finished;
  }

  async #finish(error: unknown): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#generation += 1;
    this.#options.signal.removeEventListener('abort', this.#onAbort);
    if (this.#windowTimer !== undefined) clearTimeout(this.#windowTimer);
    this.#windowTimer = undefined;
    this.#clearDownTimer();
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) this.#closing.push(close(client));
    await Promise.all(this.#closing);
    // A batch being delivered is let finish (the engine stores its cursor); errors after the end are moot.
    await this.#delivery.catch(() => undefined);
    if (error === undefined) this.#resolve();
    else this.#reject(error);
  }
}

/** Disconnects the client (bounded), then makes sure it sends nothing more and holds no timer or request. */
async function close(client: FayeClient): Promise<void> {
  let disconnected: PromiseLike<unknown> | undefined;
  // A client the server told not to reconnect is already gone there: nothing to say goodbye to.
  if (client._advice?.reconnect !== 'none') {
    try {
      disconnected = client.disconnect();
    } catch {
      disconnected = undefined;
    }
  }
  if (disconnected !== undefined) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, DISCONNECT_TIMEOUT_MS);
      disconnected.then(() => { resolve(); }, () => { resolve(); });
    });
    clearTimeout(timer);
  }
  client._state = FAYE_DISCONNECTED;
  if (client._advice !== undefined) client._advice.reconnect = 'none';
  const dispatcher = client._dispatcher;
  if (dispatcher === undefined) return;
  for (const envelope of dispatcher._envelopes?.values() ?? []) {
    if (envelope.timer !== undefined && envelope.timer !== null) clearTimeout(envelope.timer);
    envelope.request?.then((request) => { request?.destroy?.(); }, () => undefined);
  }
  dispatcher._envelopes?.clear();
  dispatcher.close();
}

function rawEvent(data: unknown): RawEvent | undefined {
  if (!isRecord(data)) return undefined;
  const event = data.event;
  const replayId = isRecord(event) ? event.replayId : undefined;
  if (typeof replayId !== 'number' || !Number.isSafeInteger(replayId)) return undefined;
  const payload = isRecord(data.payload) ? data.payload : {};
  const header = isRecord(payload.ChangeEventHeader) ? (payload.ChangeEventHeader as ChangeEventHeader) : undefined;
  return { replayId, header, fields: payload };
}

function changeType(value: string | undefined): { kind: string; gap: boolean } {
  const type = value ?? '';
  return type.startsWith('GAP_') ? { kind: type.slice(4), gap: true } : { kind: type, gap: false };
}

function accountOp(kind: string): Op | undefined {
  switch (kind) {
    case 'CREATE': return 'create';
    case 'UPDATE': return 'update';
    case 'UNDELETE': return 'update';
    case 'DELETE': return 'delete';
    default: return kind === 'OVERFLOW' ? undefined : 'update';
  }
}

/** The Contact's AccountId as the event tells it: a string, null when cleared, undefined when not told. */
function accountIdIn(e: RawEvent): string | null | undefined {
  const value = e.fields.AccountId;
  if (typeof value === 'string' && value !== '') return value;
  if ((e.header?.nulledFields ?? []).includes('AccountId')) return null;
  if (value === null && (e.header?.changedFields ?? []).includes('AccountId')) return null;
  return undefined;
}

/** Salesforce ids compare on their first 15 characters (the rest is a checksum). */
function key(id: string): string {
  return id.slice(0, 15);
}

function isoTime(ms: number | undefined): string {
  const date = typeof ms === 'number' ? new Date(ms) : new Date();
  return Number.isNaN(date.getTime()) ? new Date().toISOString() : date.toISOString();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorCode(error: unknown): string | undefined {
  if (!isRecord(error)) return undefined;
  const code = error.errorCode ?? error.name;
  return typeof code === 'string' ? code : undefined;
}

function reauthorizeError(error: unknown): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const auth = /invalid_grant|invalid_client|authentication|unauthorized|expired/i.test(message);
  return new ConnectorError(auth ? 'auth' : 'retry', `Re-authorizing the Salesforce session for the change feed failed: ${message}`, { cause: error });
}

function queryError(error: unknown): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  const text = `Looking up the Accounts of changed Contacts failed: ${message}`;
  if (code === 'INVALID_SESSION_ID') return new ConnectorError('auth', text, { externalCode: code, status: 401, cause: error });
  if (code === 'REQUEST_LIMIT_EXCEEDED') return new ConnectorError('quota', text, { externalCode: code, status: 403, retryAfterMs: QUOTA_RETRY_AFTER_MS, cause: error });
  return new ConnectorError('retry', text, { externalCode: code, cause: error });
}
