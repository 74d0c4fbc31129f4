// The Stripe connector: customers through the official `stripe` SDK, webhooks and the events feed.
//
// The SDK never retries on its own (`maxNetworkRetries: 0`): retries, backoff and the rate budget
// are the engine's, and every write carries the engine's idempotency key. (stripe-node still
// repeats a request once when the connection closed before any answer — a stale keep-alive socket;
// the explicit idempotency key makes that safe for writes.) The SDK takes no AbortSignal, so a
// signal is checked before every call and, when it fires, the pending call is abandoned: the
// caller gets the signal's reason at once and the request's outcome is ignored.
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import Stripe from 'stripe';
import { z } from 'zod';
import {
  ConnectorError,
  type ConnectorClient,
  type ConnectorDefinition,
  type EntityBinding,
  type ExternalNotification,
  type ExternalObject,
  type PollResult,
  type UpdateOptions,
  type WebhookRegistration,
  type WebhookRequest,
  type WriteOptions,
} from '../connector.ts';
import { abortable, isServiceBaseUrl } from '../canonical-values.ts';
import { decodeCursor, encodeCursor, type PollCursor } from './cursor.ts';
import { classifyStripeError, isResourceMissing, maskSecrets } from './errors.ts';
import {
  CUSTOMER_FIELDS,
  TANDEM_ID_KEY,
  customerCreateParams,
  customerFromStripe,
  customerUpdateParams,
  normalizeCustomerFields,
  tandemIdOf,
} from './mapping.ts';

export const STRIPE_API_BASE_URL = 'https://api.stripe.com';

/** The customer events Tandem listens to (webhooks and the events feed). */
export const CUSTOMER_EVENT_TYPES = ['customer.created', 'customer.updated', 'customer.deleted'] as const;
const OPS: Readonly<Record<string, ExternalNotification['op']>> = {
  'customer.created': 'create',
  'customer.updated': 'update',
  'customer.deleted': 'delete',
};

/** Stripe's own webhook tolerance: a delivery signed more than 5 minutes ago is refused. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;


export const stripeCredentialsSchema = z
  .object({
    secretKey: z
      .string()
      .min(8, 'a Stripe secret key (sk_test_… or sk_live_…)')
      .max(255)
      .regex(/^sk_[A-Za-z0-9_]+$/, 'a Stripe secret key (sk_test_… or sk_live_…)'),
  })
  .strict();
export type StripeCredentials = z.output<typeof stripeCredentialsSchema>;

export const stripeSettingsSchema = z
  .object({
    apiBaseUrl: z
      .string()
      .max(2048)
      .refine(isServiceBaseUrl, 'an https:// URL with no path, or http:// to this machine (a simulator)')
      .optional(),
  })
  .strict();
export type StripeSettings = z.output<typeof stripeSettingsSchema>;

/** Tuning a test (or the engine) may change; the defaults suit the real Stripe. */
export interface StripeClientOptions {
  /** Per request, in ms. Default 30 s. */
  timeoutMs?: number;
  /** Customers per `list` page (1..100). Default 100. */
  listPageSize?: number;
  /** Events per page of the feed (1..100). Default 100. */
  pollPageSize?: number;
  /** Pages of the feed one `poll` reads at most. Default 2. */
  pollMaxPages?: number;
  /** How far back `findByTandemId` lists recent customers when search (which lags) finds none. Default 15 min. */
  searchLagWindowSeconds?: number;
  /** The clock, for tests. */
  now?: () => Date;
}

function sdkConfig(apiBaseUrl: string, timeoutMs: number): Stripe.StripeConfig {
  const url = new URL(apiBaseUrl);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port),
    protocol,
    telemetry: false,
    maxNetworkRetries: 0,
    timeout: timeoutMs,
    appInfo: { name: 'Tandem' },
  };
}

/**
 * Starts an SDK call without the call-site stack the SDK captures for every request
 * (`new Error().stack` before its first await: ~25 µs a call, a sixth of a create's cost in the
 * client). Tandem classifies the SDK's errors into its own and never shows that stack. The limit
 * is restored before anything else runs: the SDK captures it synchronously. (So an error the SDK
 * throws before its first await, a bug of its own, comes without a stack; the classified error's
 * message still says which call failed.)
 */
function withoutCallSiteStack<T>(fn: () => Promise<T>): Promise<T> {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Idempotency keys are at most 255 characters at Stripe; longer ones are hashed. */
function idempotencyKey(key: string): string {
  return key.length <= 255 ? key : `tandem-${createHash('sha256').update(key).digest('hex')}`;
}

function headerValue(headers: WebhookRequest['headers'], name: string): string | string[] | undefined {
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isoFromUnix(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** An event (from a webhook or the feed) as notifications: one for a customer event, none otherwise. */
export function notificationsFromEvent(event: unknown): ExternalNotification[] {
  if (!isRecord(event) || typeof event['id'] !== 'string' || typeof event['type'] !== 'string' || typeof event['created'] !== 'number') {
    throw new ConnectorError('fatal', 'Stripe event is malformed: it needs an id, a type and a created time', {
      externalCode: 'tandem_malformed_event',
    });
  }
  const op = OPS[event['type']];
  if (op === undefined) return [];
  const data = event['data'];
  const object = isRecord(data) ? data['object'] : undefined;
  if (!isRecord(object) || object['object'] !== 'customer' || typeof object['id'] !== 'string') {
    throw new ConnectorError('fatal', `Stripe event ${event['id']} (${event['type']}) carries no customer object`, {
      externalCode: 'tandem_malformed_event',
    });
  }
  const customer = object as unknown as Stripe.Customer;
  return [
    {
      eventId: event['id'],
      entityType: 'customer',
      externalId: customer.id,
      op,
      occurredAt: isoFromUnix(event['created']),
      object: customerFromStripe(customer, { deleted: op === 'delete' }),
    },
  ];
}

/** Escapes a value for a quoted string in Stripe's search query language. */
function searchString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

export class StripeConnectorClient implements ConnectorClient {
  readonly #stripe: Stripe;
  readonly #secretKey: string;
  readonly #listPageSize: number;
  readonly #pollPageSize: number;
  readonly #pollMaxPages: number;
  readonly #searchLagWindowSeconds: number;
  readonly #now: () => Date;
  readonly #customers: EntityBinding;

  constructor(credentials: StripeCredentials, settings: StripeSettings, options: StripeClientOptions = {}) {
    this.#secretKey = credentials.secretKey;
    this.#listPageSize = Math.min(Math.max(options.listPageSize ?? 100, 1), 100);
    this.#pollPageSize = Math.min(Math.max(options.pollPageSize ?? 100, 1), 100);
    this.#pollMaxPages = Math.max(options.pollMaxPages ?? 2, 1);
    this.#searchLagWindowSeconds = options.searchLagWindowSeconds ?? 15 * 60;
    this.#now = options.now ?? (() => new Date());
    this.#stripe = new Stripe(
      credentials.secretKey,
      sdkConfig(settings.apiBaseUrl ?? STRIPE_API_BASE_URL, options.timeoutMs ?? 30_000),
    );
    this.#customers = this.#customerBinding();
  }

  /** Runs one SDK call: checks the signal first, classifies whatever it throws. */
  async #call<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    signal?.throwIfAborted();
    try {
      return await abortable(withoutCallSiteStack(fn), signal);
    } catch (error) {
      if (signal?.aborted === true && error === signal.reason) throw error;
      throw classifyStripeError(error, what, [this.#secretKey]);
    }
  }

  /**
   * `GET /v1/account`: authenticated, cheap, and it names the account. A Stripe-compatible server
   * that does not serve that route (answers 404 with no error code: an unrecognized URL) is checked
   * with `GET /v1/customers?limit=1` instead, and the account is then named by a fingerprint of the
   * key (`key_<12 hex of its SHA-256>`: stable, and it reveals nothing of the key).
   */
  async validate(signal?: AbortSignal): Promise<{ accountId: string; accountName?: string | undefined }> {
    try {
      const account = await this.#call('account check', signal, () => this.#stripe.accounts.retrieve(null));
      const name = account.settings?.dashboard.display_name ?? account.business_profile?.name ?? undefined;
      return { accountId: account.id, accountName: name ?? undefined };
    } catch (error) {
      if (!(error instanceof ConnectorError && error.status === 404 && error.externalCode === undefined)) throw error;
    }
    await this.#call('account check', signal, () => this.#stripe.customers.list({ limit: 1 }));
    return { accountId: `key_${createHash('sha256').update(this.#secretKey).digest('hex').slice(0, 12)}` };
  }

  binding(entityType: string): EntityBinding | undefined {
    return entityType === 'customer' ? this.#customers : undefined;
  }

  #customerBinding(): EntityBinding {
    const customers = this.#stripe.customers;
    const get = async (externalId: string, signal?: AbortSignal): Promise<ExternalObject | undefined> => {
      try {
        const customer = await this.#call(`customer ${externalId} read`, signal, () => customers.retrieve(externalId));
        return customerFromStripe(customer);
      } catch (error) {
        if (isResourceMissing(error)) return undefined;
        throw error;
      }
    };
    return {
      fields: CUSTOMER_FIELDS,
      normalize: (fields) => normalizeCustomerFields(fields),
      create: async (tandemId: string, fields: Record<string, unknown>, options: WriteOptions) => {
        const params = customerCreateParams(tandemId, fields);
        const customer = await this.#call('customer create', options.signal, () =>
          customers.create(params, { idempotencyKey: idempotencyKey(options.idempotencyKey) }),
        );
        return customerFromStripe(customer);
      },
      update: async (externalId: string, fields: Record<string, unknown>, options: UpdateOptions) => {
        let previousMetadata: Record<string, string> | undefined;
        if (Object.hasOwn(fields, 'metadata')) {
          const previous = options.previous?.['metadata'];
          if (isRecord(previous)) previousMetadata = normalizeCustomerFields({ metadata: previous })['metadata'] as Record<string, string>;
          else {
            // No base given: diff against what Stripe holds now.
            const current = await get(externalId, options.signal);
            if (current === undefined || current.deleted) {
              throw new ConnectorError('fatal', `Stripe customer ${externalId} does not exist (or is deleted)`, {
                externalCode: 'resource_missing',
                status: 404,
              });
            }
            previousMetadata = current.fields['metadata'] as Record<string, string>;
          }
        }
        const params = customerUpdateParams(fields, previousMetadata);
        try {
          const customer = await this.#call(`customer ${externalId} update`, options.signal, () =>
            customers.update(externalId, params, { idempotencyKey: idempotencyKey(options.idempotencyKey) }),
          );
          return customerFromStripe(customer);
        } catch (error) {
          // A retry whose first attempt did go through (its answer was lost) diffs against the
          // written state, so it sends other parameters under the same key and Stripe refuses it.
          // If Stripe already holds what was asked, the write is done.
          if (!(error instanceof ConnectorError && error.externalCode === 'idempotency_error')) throw error;
          const current = await get(externalId, options.signal);
          const wanted = normalizeCustomerFields(fields);
          if (current !== undefined && !current.deleted && Object.entries(wanted).every(([k, v]) => isDeepStrictEqual(current.fields[k], v))) {
            return current;
          }
          throw error;
        }
      },
      delete: async (externalId: string, options: WriteOptions) => {
        // Stripe ignores idempotency keys on DELETE, and deleting twice is harmless here.
        try {
          await this.#call(`customer ${externalId} delete`, options.signal, () => customers.del(externalId));
        } catch (error) {
          if (isResourceMissing(error)) return; // already deleted, or never there: gone either way
          throw error;
        }
      },
      get,
      findByTandemId: (tandemId: string, signal?: AbortSignal) => this.#findByTandemId(tandemId, signal),
      list: async (cursor: string | undefined, signal?: AbortSignal) => {
        const page = await this.#call('customer list', signal, () =>
          customers.list({ limit: this.#listPageSize, ...(cursor === undefined ? {} : { starting_after: cursor }) }),
        );
        const last = page.data.at(-1);
        return { objects: page.data.map((c) => customerFromStripe(c)), next: page.has_more && last !== undefined ? last.id : undefined };
      },
    };
  }

  /**
   * Search first (`metadata['tandem_id']:'…'`). Stripe's search index lags (usually under a
   * minute), and this is called right after a crash between create and link — exactly when the
   * customer may not be indexed yet — so when search finds none, the customers created in the last
   * `searchLagWindowSeconds` are listed too. When several carry the id, the oldest wins.
   */
  async #findByTandemId(tandemId: string, signal?: AbortSignal): Promise<ExternalObject | undefined> {
    const pick = (found: Stripe.Customer[]): ExternalObject | undefined => {
      const matching = found.filter((c) => tandemIdOf(c) === tandemId).sort((a, b) => a.created - b.created);
      const first = matching[0];
      return first === undefined ? undefined : customerFromStripe(first);
    };
    try {
      const result = await this.#call('customer search', signal, () =>
        this.#stripe.customers.search({ query: `metadata[${searchString(TANDEM_ID_KEY)}]:${searchString(tandemId)}`, limit: 10 }),
      );
      const hit = pick(result.data);
      if (hit !== undefined) return hit;
    } catch (error) {
      // Search is not offered everywhere (e.g. some regions); listing still works.
      if (!(error instanceof ConnectorError) || error.kind !== 'fatal') throw error;
    }
    const since = Math.floor(this.#now().getTime() / 1000) - this.#searchLagWindowSeconds;
    let startingAfter: string | undefined;
    for (let page = 0; page < 10; page += 1) {
      const result = await this.#call('customer list', signal, () =>
        this.#stripe.customers.list({
          limit: 100,
          created: { gte: since },
          ...(startingAfter === undefined ? {} : { starting_after: startingAfter }),
        }),
      );
      const hit = pick(result.data);
      if (hit !== undefined) return hit;
      const last = result.data.at(-1);
      if (!result.has_more || last === undefined) return undefined;
      startingAfter = last.id;
    }
    return undefined;
  }

  async registerWebhook(url: string, signal?: AbortSignal): Promise<WebhookRegistration> {
    const endpoint = await this.#call('webhook endpoint create', signal, () =>
      this.#stripe.webhookEndpoints.create({
        url,
        enabled_events: [...CUSTOMER_EVENT_TYPES],
        api_version: Stripe.API_VERSION,
        description: 'Tandem sync',
      }),
    );
    if (endpoint.secret === undefined || endpoint.secret === '') {
      throw new ConnectorError('fatal', `Stripe created webhook endpoint ${endpoint.id} without a signing secret`);
    }
    return { endpointId: endpoint.id, secret: endpoint.secret };
  }

  async unregisterWebhook(endpointId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#call(`webhook endpoint ${endpointId} delete`, signal, () => this.#stripe.webhookEndpoints.del(endpointId));
    } catch (error) {
      if (isResourceMissing(error)) return;
      throw error;
    }
  }

  parseWebhook(request: WebhookRequest, secret: string, now: Date = this.#now()): ExternalNotification[] {
    const signature = headerValue(request.headers, 'stripe-signature');
    if (signature === undefined || signature === '') {
      throw new ConnectorError('fatal', 'Stripe webhook refused: no Stripe-Signature header', { externalCode: 'signature_missing' });
    }
    if (Array.isArray(signature)) {
      throw new ConnectorError('fatal', 'Stripe webhook refused: more than one Stripe-Signature header', {
        externalCode: 'signature_invalid',
      });
    }
    let event: unknown;
    try {
      event = this.#stripe.webhooks.constructEvent(
        request.rawBody,
        signature,
        secret,
        WEBHOOK_TOLERANCE_SECONDS,
        undefined,
        now.getTime(),
      );
    } catch (error) {
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
        const stale = /tolerance/i.test(error.message);
        const message = stale
          ? `Stripe webhook refused: its timestamp is more than ${WEBHOOK_TOLERANCE_SECONDS} s old (a replay or a stale delivery)`
          : `Stripe webhook refused: the signature does not match (${error.message.split('\n')[0]?.trim() ?? ''})`;
        throw new ConnectorError('fatal', maskSecrets(message, [secret]), {
          externalCode: stale ? 'signature_stale' : 'signature_invalid',
        });
      }
      const detail = error instanceof Error ? error.message : String(error);
      throw new ConnectorError('fatal', maskSecrets(`Stripe webhook refused: the body is not a JSON event (${detail})`, [secret]), {
        externalCode: 'tandem_malformed_event',
      });
    }
    return notificationsFromEvent(event);
  }

  async poll(cursor: string | undefined, signal?: AbortSignal): Promise<PollResult> {
    if (cursor === undefined) return this.#startFeed(signal);
    const decoded = decodeCursor(cursor);
    if (decoded === undefined) {
      throw new ConnectorError('fatal', `Not a Stripe poll cursor: ${JSON.stringify(cursor.slice(0, 100))}`, {
        externalCode: 'tandem_invalid_cursor',
      });
    }
    let position: PollCursor = decoded;
    const notifications: ExternalNotification[] = [];
    for (let page = 0; page < this.#pollMaxPages; page += 1) {
      signal?.throwIfAborted();
      const step = await this.#pollPage(position, signal);
      notifications.push(...step.notifications);
      position = step.cursor;
      if (!step.more) return { notifications, cursor: encodeCursor(position), more: false };
    }
    return { notifications, cursor: encodeCursor(position), more: true };
  }

  #listEvents(params: Stripe.EventListParams, signal: AbortSignal | undefined): Promise<Stripe.ApiList<Stripe.Event>> {
    return this.#call('events read', signal, () =>
      this.#stripe.events.list({ ...params, types: [...CUSTOMER_EVENT_TYPES] }),
    );
  }

  /** A new feed starts at the newest customer event, so a new connection does not replay history. */
  async #startFeed(signal: AbortSignal | undefined): Promise<PollResult> {
    const newest = (await this.#listEvents({ limit: 1 }, signal)).data[0];
    // No event yet: any event from now on counts. Five minutes back allow for clock skew with Stripe
    // (there is nothing older to replay).
    const position: PollCursor =
      newest === undefined
        ? { kind: 'time', since: Math.floor(this.#now().getTime() / 1000) - 300 }
        : { kind: 'event', eventId: newest.id, created: newest.created };
    return { notifications: [], cursor: encodeCursor(position), more: false };
  }

  /** One page of the feed from `position`: its notifications (oldest first) and where to go on. */
  async #pollPage(
    position: PollCursor,
    signal: AbortSignal | undefined,
  ): Promise<{ notifications: ExternalNotification[]; cursor: PollCursor; more: boolean }> {
    const limit = this.#pollPageSize;
    const handOut = (newestFirst: Stripe.Event[], more: boolean, fallback: PollCursor) => {
      const newest = newestFirst[0];
      return {
        notifications: [...newestFirst].reverse().flatMap((e) => notificationsFromEvent(e)),
        cursor: newest === undefined ? fallback : ({ kind: 'event', eventId: newest.id, created: newest.created } as const),
        more,
      };
    };
    switch (position.kind) {
      case 'event': {
        let page: Stripe.ApiList<Stripe.Event>;
        try {
          page = await this.#listEvents({ limit, ending_before: position.eventId }, signal);
        } catch (error) {
          // Stripe forgot the event (kept 30 days): restart from its time.
          if (isResourceMissing(error)) {
            return { notifications: [], cursor: { kind: 'time', since: position.created }, more: true };
          }
          throw error;
        }
        return handOut(page.data, page.has_more, position);
      }
      case 'time': {
        // The newest event before the time, if Stripe still has one, anchors the walk forward.
        const anchor = (await this.#listEvents({ limit: 1, created: { lt: position.since } }, signal)).data[0];
        if (anchor !== undefined) return { notifications: [], cursor: { kind: 'event', eventId: anchor.id, created: anchor.created }, more: true };
        const page = await this.#listEvents({ limit, created: { gte: position.since } }, signal);
        const last = page.data.at(-1);
        if (page.has_more && last !== undefined) {
          return { notifications: [], cursor: { kind: 'scan', since: position.since, olderThan: last.id }, more: true };
        }
        return handOut(page.data, false, position);
      }
      case 'scan': {
        let page: Stripe.ApiList<Stripe.Event>;
        try {
          page = await this.#listEvents({ limit, created: { gte: position.since }, starting_after: position.olderThan }, signal);
        } catch (error) {
          // The event the walk stopped at has expired meanwhile: start the walk again.
          if (isResourceMissing(error)) {
            return { notifications: [], cursor: { kind: 'time', since: position.since }, more: true };
          }
          throw error;
        }
        const last = page.data.at(-1);
        if (page.has_more && last !== undefined) {
          return { notifications: [], cursor: { kind: 'scan', since: position.since, olderThan: last.id }, more: true };
        }
        // The oldest page since the time: hand it out, then walk forward from its newest event. (If
        // the walk found nothing older, it continues after the event it stopped at.)
        const fallback: PollCursor = { kind: 'event', eventId: position.olderThan, created: position.since };
        return { ...handOut(page.data, false, fallback), more: true };
      }
    }
  }
}

export const stripeConnector: ConnectorDefinition<StripeCredentials, StripeSettings> = {
  id: 'stripe',
  displayName: 'Stripe',
  credentialsSchema: stripeCredentialsSchema,
  settingsSchema: stripeSettingsSchema,
  entities: { customer: { directions: ['both', 'outbound', 'inbound'] } },
  // Stripe allows 25 requests/s per account in test mode and 100/s in live mode; the default budget
  // is the test-mode one so a new connection never trips 429s. Settings may raise it for live keys.
  rateLimit: { requestsPerSecond: 25, burst: 25 },
  changeFeeds: { webhooks: true, polling: true },
  createClient: (credentials, settings) => new StripeConnectorClient(credentials, settings),
};
