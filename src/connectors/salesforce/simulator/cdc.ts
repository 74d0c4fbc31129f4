// Change Data Capture over CometD (Bayeux long polling), as jsforce's streaming client (faye)
// consumes it: `/cometd/{version}` with /meta/handshake, /meta/subscribe (with the `replay`
// extension: -1 new events only, -2 every retained event, or a replay id), /meta/connect held until
// events come or the poll times out, /meta/unsubscribe and /meta/disconnect. Channels:
// `/data/ChangeEvents` (all) and `/data/AccountChangeEvent`, `/data/ContactChangeEvent`.
// Events are kept 72 hours. Gap and overflow events are not produced.
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FieldDef } from './schema.ts';
import { findSObject } from './schema.ts';
import { fieldValue, type StoredRecord } from './store.ts';

export const CDC_RETENTION_MS = 72 * 60 * 60 * 1000;
const CHANNELS = ['/data/ChangeEvents', '/data/AccountChangeEvent', '/data/ContactChangeEvent'];

export interface ChangeEvent {
  replayId: number;
  atMs: number;
  entity: string;
  channel: string;
  payload: Record<string, unknown>;
}

interface BayeuxMessage {
  channel?: string;
  clientId?: string;
  id?: string;
  subscription?: string;
  ext?: { replay?: Record<string, unknown> };
  [key: string]: unknown;
}

interface CometdClient {
  id: string;
  /** channel → replay id of the last event delivered (or queued). */
  subscriptions: Map<string, number>;
  queue: ChangeEvent[];
  waiting: { res: ServerResponse; reply: Record<string, unknown>[]; timer: NodeJS.Timeout } | undefined;
}

export interface WriteForCdc {
  record: StoredRecord;
  change: 'CREATE' | 'UPDATE' | 'DELETE';
  transactionKey: string;
  sequenceNumber: number;
  origin: string;
  userId: string;
  /** Publish a gap event instead: `GAP_<change>`, the header only, no field values. */
  gap?: boolean;
}

export class ChangeDataCapture {
  readonly events: ChangeEvent[] = [];
  readonly #clients = new Map<string, CometdClient>();
  readonly #published = new Map<string, Record<string, unknown>>();
  readonly #clock: () => number;
  readonly #pollTimeoutMs: number;
  #nextReplay = 1;
  #stopped = false;

  constructor(options: { clock: () => number; pollTimeoutMs: number }) {
    this.#clock = options.clock;
    this.#pollTimeoutMs = options.pollTimeoutMs;
  }

  static newTransactionKey(): string {
    return randomUUID();
  }

  /** Turns a committed write into a change event and delivers it to subscribers. */
  publish(write: WriteForCdc): void {
    const def = findSObject(write.record.type);
    if (def === undefined) return;
    const now = this.#clock();
    const current: Record<string, unknown> = {};
    for (const f of def.fields) current[f.name] = fieldValue(f, write.record.values[f.name]);
    const previous = this.#published.get(write.record.id);
    const skip = new Set(['Id', 'IsDeleted', 'SystemModstamp']);
    const changed = (f: FieldDef): boolean => !skip.has(f.name) && (previous === undefined ? current[f.name] !== null : previous[f.name] !== current[f.name]);
    const gap = write.gap === true;
    const fields = write.change === 'DELETE' || gap ? [] : def.fields.filter(changed);
    if (write.change === 'DELETE') this.#published.delete(write.record.id);
    else this.#published.set(write.record.id, current);
    const payload: Record<string, unknown> = {
      ChangeEventHeader: {
        entityName: def.name,
        recordIds: [write.record.id],
        changeType: gap ? `GAP_${write.change}` : write.change,
        changeOrigin: write.origin,
        transactionKey: write.transactionKey,
        sequenceNumber: write.sequenceNumber,
        commitTimestamp: now,
        commitNumber: this.#nextReplay,
        commitUser: write.userId,
        changedFields: write.change === 'UPDATE' && !gap ? fields.map((f) => f.name) : [],
        diffFields: [],
        nulledFields: write.change === 'UPDATE' && !gap ? fields.filter((f) => current[f.name] === null).map((f) => f.name) : [],
      },
    };
    for (const f of fields) payload[f.name] = current[f.name];
    const event: ChangeEvent = { replayId: this.#nextReplay, atMs: now, entity: def.name, channel: `/data/${def.name}ChangeEvent`, payload };
    this.#nextReplay += 1;
    this.events.push(event);
    while (this.events.length > 0 && now - (this.events[0]?.atMs ?? now) > CDC_RETENTION_MS) this.events.shift();
    for (const client of this.#clients.values()) {
      for (const [channel, last] of client.subscriptions) {
        if (matches(channel, event) && event.replayId > last) {
          client.queue.push(event);
          client.subscriptions.set(channel, event.replayId);
        }
      }
      this.#flush(client);
    }
  }

  #message(channel: string, event: ChangeEvent): Record<string, unknown> {
    return { channel, data: { schema: `sim-${event.entity}-schema`, payload: event.payload, event: { replayId: event.replayId } } };
  }

  #flush(client: CometdClient): void {
    const waiting = client.waiting;
    if (waiting === undefined || client.queue.length === 0) return;
    client.waiting = undefined;
    clearTimeout(waiting.timer);
    send(waiting.res, [...this.#take(client), ...waiting.reply]);
  }

  /** The client's queued events, as messages (the queue is emptied). */
  #take(client: CometdClient): Record<string, unknown>[] {
    const events: Record<string, unknown>[] = [];
    for (const event of client.queue.splice(0)) {
      for (const [channel] of client.subscriptions) if (matches(channel, event)) events.push(this.#message(channel, event));
    }
    return events;
  }

  /** Handles one POST to `/cometd/{version}`; `authorized` says whether the bearer session is valid. */
  handle(messages: BayeuxMessage[], res: ServerResponse, authorized: boolean): void {
    const replies: Record<string, unknown>[] = [];
    let connect: { client: CometdClient; reply: Record<string, unknown>; immediate: boolean } | undefined;
    for (const m of messages) {
      const base = { channel: m.channel, id: m.id, clientId: m.clientId };
      switch (m.channel) {
        case '/meta/handshake': {
          if (!authorized) {
            replies.push({ ...base, successful: false, error: '403::Handshake denied', advice: { reconnect: 'none' } });
            break;
          }
          const client: CometdClient = { id: randomUUID().replace(/-/g, ''), subscriptions: new Map(), queue: [], waiting: undefined };
          this.#clients.set(client.id, client);
          replies.push({
            ...base,
            clientId: client.id,
            version: '1.0',
            minimumVersion: '1.0',
            supportedConnectionTypes: ['long-polling'],
            successful: true,
            ext: { replay: true, 'payload.format': true },
            advice: { reconnect: 'retry', interval: 0, timeout: this.#pollTimeoutMs },
          });
          break;
        }
        case '/meta/connect': {
          const client = this.#clients.get(m.clientId ?? '');
          if (client === undefined || !authorized) {
            // A client told it is unknown is forgotten (else it would count, and queue events, forever).
            this.#forget(m.clientId ?? '');
            replies.push({ ...base, successful: false, error: '403::Unknown client', advice: { reconnect: 'handshake', interval: 0 } });
            break;
          }
          // Advice `timeout: 0` asks for an answer at once, not a held poll (faye sends it when it batches other messages with the connect).
          const immediate = (m.advice as { timeout?: unknown } | undefined)?.timeout === 0;
          connect = { client, reply: { ...base, successful: true, advice: { reconnect: 'retry', interval: 0, timeout: this.#pollTimeoutMs } }, immediate };
          break;
        }
        case '/meta/subscribe': {
          const client = this.#clients.get(m.clientId ?? '');
          const channel = m.subscription ?? '';
          if (client === undefined || !authorized) {
            this.#forget(m.clientId ?? '');
            replies.push({ ...base, subscription: channel, successful: false, error: '403::Unknown client', advice: { reconnect: 'handshake' } });
            break;
          }
          if (!CHANNELS.includes(channel)) {
            replies.push({ ...base, subscription: channel, successful: false, error: `400::The channel you requested to subscribe to does not exist {${channel}}` });
            break;
          }
          const requested = m.ext?.replay?.[channel];
          const replayFrom = typeof requested === 'number' ? requested : -1;
          const start = this.#replayStart(replayFrom);
          if (start === undefined) {
            replies.push({ ...base, subscription: channel, successful: false, error: `400::The replayId {${String(replayFrom)}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.` });
            break;
          }
          client.subscriptions.set(channel, start);
          for (const event of this.events) if (event.replayId > start && matches(channel, event)) client.queue.push(event);
          const last = this.events.at(-1)?.replayId ?? start;
          client.subscriptions.set(channel, Math.max(start, last));
          replies.push({ ...base, subscription: channel, successful: true });
          break;
        }
        case '/meta/unsubscribe': {
          this.#clients.get(m.clientId ?? '')?.subscriptions.delete(m.subscription ?? '');
          replies.push({ ...base, subscription: m.subscription, successful: true });
          break;
        }
        case '/meta/disconnect': {
          this.#forget(m.clientId ?? '');
          replies.push({ ...base, successful: true });
          break;
        }
        default:
          replies.push({ ...base, successful: false, error: `403::Publishing is not supported on ${String(m.channel)}` });
      }
    }
    if (connect === undefined) {
      send(res, replies);
      return;
    }
    const { client, reply, immediate } = connect;
    if (client.waiting !== undefined) {
      // A new poll replaces the old one, which ends now.
      clearTimeout(client.waiting.timer);
      send(client.waiting.res, client.waiting.reply);
      client.waiting = undefined;
    }
    if (immediate) {
      send(res, [...this.#take(client), ...replies, reply]);
      return;
    }
    const timer = setTimeout(() => {
      if (client.waiting?.res !== res) return;
      client.waiting = undefined;
      send(res, [...replies, reply]);
    }, this.#pollTimeoutMs);
    client.waiting = { res, reply: [...replies, reply], timer };
    res.on('close', () => {
      if (client.waiting?.res === res) {
        clearTimeout(timer);
        client.waiting = undefined;
      }
    });
    if (this.#stopped) send(res, [...replies, reply]);
    else this.#flush(client);
  }

  /** Ends a client: its held poll is answered, and it gets no more events. */
  #forget(clientId: string): void {
    const client = this.#clients.get(clientId);
    if (client === undefined) return;
    if (client.waiting !== undefined) {
      clearTimeout(client.waiting.timer);
      send(client.waiting.res, client.waiting.reply);
      client.waiting = undefined;
    }
    this.#clients.delete(clientId);
  }

  /** The replay id after which events are delivered, or undefined for one no longer retained. */
  #replayStart(replayFrom: number): number | undefined {
    const newest = this.events.at(-1)?.replayId ?? this.#nextReplay - 1;
    if (replayFrom === -1) return newest;
    if (replayFrom === -2) return (this.events[0]?.replayId ?? this.#nextReplay) - 1;
    const oldest = this.events[0]?.replayId ?? this.#nextReplay;
    if (replayFrom < oldest - 1 || replayFrom > newest) return undefined;
    return replayFrom;
  }

  clients(): number {
    return this.#clients.size;
  }

  /** Answers every held poll with advice not to reconnect (on stop), so clients stop polling. */
  stop(): void {
    this.#stopped = true;
    for (const client of this.#clients.values()) {
      if (client.waiting === undefined) continue;
      clearTimeout(client.waiting.timer);
      const reply = client.waiting.reply.map((m) =>
        m.channel === '/meta/connect' ? { ...m, successful: false, error: '403::Server shutting down', advice: { reconnect: 'none' } } : m,
      );
      send(client.waiting.res, reply);
      client.waiting = undefined;
    }
    this.#clients.clear();
  }

  clear(): void {
    this.events.length = 0;
    this.#published.clear();
    this.#clients.clear();
  }
}

function matches(channel: string, event: ChangeEvent): boolean {
  return channel === '/data/ChangeEvents' || channel === event.channel;
}

function send(res: ServerResponse, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(200, { 'Content-Type': 'application/json;charset=UTF-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
