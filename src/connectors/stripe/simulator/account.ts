// One simulated Stripe account (one per secret key): its objects, events, idempotency keys,
// rate-limit bucket and request statistics. All in memory.
import { newId } from './ids.ts';
import type { Customer, StripeEvent, WebhookEndpoint } from './types.ts';

export interface CustomerRecord {
  /** Creation order, for newest-first lists and stable ties within one second. */
  seq: number;
  customer: Customer;
  deleted: boolean;
  /** Every state the customer had, with when (ms) it started; search reads it to model its lag. */
  history: { atMs: number; customer: Customer | null }[];
}

export interface EndpointRecord {
  seq: number;
  endpoint: WebhookEndpoint;
  secret: string;
}

export interface EventRecord {
  seq: number;
  event: StripeEvent;
}

export interface StoredResponse {
  status: number;
  body: unknown;
  requestId: string;
  /** Headers that belong to the answer itself (replayed with it). */
  headers: Record<string, string>;
}

export interface IdempotencyEntry {
  fingerprint: string;
  endpoint: string;
  createdAtMs: number;
  /** Undefined while the first request with this key is in flight. */
  response: StoredResponse | undefined;
}

export interface RequestLogEntry {
  at: string;
  requestId: string;
  method: string;
  path: string;
  route: string;
  status: number;
  idempotencyKey: string | null;
  replayed: boolean;
  fault: string | null;
}

export interface RequestStats {
  total: number;
  /** By method and route pattern, e.g. `POST /v1/customers/:id`. */
  byRoute: Record<string, number>;
  /** By method and actual path, e.g. `POST /v1/customers/cus_123`. */
  byPath: Record<string, number>;
  byStatus: Record<string, number>;
  /** Requests answered 429 (token bucket or injected burst). */
  rateLimited: number;
  /** Requests answered an injected 500, and requests left hanging. */
  injectedErrors: number;
  hung: number;
  /** Requests answered from a stored idempotent result. */
  idempotentReplays: number;
}

/** Token bucket: `ratePerSecond` tokens a second, bursts up to the same number. */
export class TokenBucket {
  readonly #rate: number;
  #tokens: number;
  #lastMs: number;

  constructor(ratePerSecond: number) {
    this.#rate = ratePerSecond;
    this.#tokens = ratePerSecond;
    this.#lastMs = performance.now();
  }

  take(): boolean {
    if (this.#rate <= 0) return true;
    const now = performance.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#lastMs) / 1000) * this.#rate);
    this.#lastMs = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

const REQUEST_LOG_LIMIT = 10_000;

export class Account {
  readonly id = newId('acct');
  readonly key: string;
  /** The API version pinned at the account's first request, as Stripe pins it. */
  readonly apiVersion: string;
  readonly customers = new Map<string, CustomerRecord>();
  readonly customerOrder: CustomerRecord[] = [];
  readonly endpoints = new Map<string, EndpointRecord>();
  readonly endpointOrder: EndpointRecord[] = [];
  readonly events = new Map<string, EventRecord>();
  readonly eventOrder: EventRecord[] = [];
  readonly idempotency = new Map<string, IdempotencyEntry>();
  readonly bucket: TokenBucket;
  readonly stats: RequestStats = {
    total: 0,
    byRoute: {},
    byPath: {},
    byStatus: {},
    rateLimited: 0,
    injectedErrors: 0,
    hung: 0,
    idempotentReplays: 0,
  };
  readonly requestLog: RequestLogEntry[] = [];
  #seq = 0;

  constructor(key: string, apiVersion: string, rateLimitPerSecond: number) {
    this.key = key;
    this.apiVersion = apiVersion;
    this.bucket = new TokenBucket(rateLimitPerSecond);
  }

  nextSeq(): number {
    this.#seq += 1;
    return this.#seq;
  }

  logRequest(entry: RequestLogEntry): void {
    const count = (map: Record<string, number>, key: string): void => {
      map[key] = (map[key] ?? 0) + 1;
    };
    this.stats.total += 1;
    count(this.stats.byRoute, `${entry.method} ${entry.route}`);
    count(this.stats.byPath, `${entry.method} ${entry.path}`);
    count(this.stats.byStatus, String(entry.status));
    if (entry.status === 429) this.stats.rateLimited += 1;
    if (entry.replayed) this.stats.idempotentReplays += 1;
    this.requestLog.push(entry);
    if (this.requestLog.length > REQUEST_LOG_LIMIT) this.requestLog.splice(0, this.requestLog.length - REQUEST_LOG_LIMIT);
  }
}
