// The Stripe simulator's HTTP server: accounts by secret key, the /v1 routes, idempotency keys,
// the per-account rate limit, fault injection and the /_sim admin routes. One request goes through:
// auth → account → rate limit → injected 429/500/hang (before) → parameters → idempotency key →
// latency → the handler (state change + events + webhook deliveries) → injected 500/hang (after).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Account, type IdempotencyEntry, type RequestLogEntry, type RequestStats, type StoredResponse } from './account.ts';
import { handleAdminRequest, type StripeSimulatorAdmin, createAdmin } from './admin.ts';
import type { HandlerContext, Route } from './context.ts';
import { customerRoutes } from './customers.ts';
import { WebhookDeliverer, type DeliveryOptions } from './delivery.ts';
import { apiError, invalidParam, rateLimited, StripeApiError, unrecognizedUrl } from './errors.ts';
import { eventRoutes } from './events.ts';
import { FaultRegistry, type FaultInput } from './faults.ts';
import { newId } from './ids.ts';
import { ParamReader, parseForm, type RawParams } from './params.ts';
import type { StripeEvent } from './types.ts';
import { endpointWants, webhookEndpointRoutes } from './webhook-endpoints.ts';

/** Subset of pino's logger the simulator uses. */
export interface SimulatorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface StripeSimulatorOptions {
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Requests a second per account (token bucket, bursts of the same size). Default 25 (test mode); 0 turns it off. */
  rateLimitPerSecond?: number;
  /** Simulated time for `created`, event times and webhook signatures. Default: the real clock. */
  clock?: () => Date;
  logger?: SimulatorLogger;
  /** Webhook delivery: timeout and retry schedule. */
  delivery?: DeliveryOptions;
  /** How far customer search lags behind writes (Stripe: usually under a minute). Default 0. */
  searchLagMs?: number;
  /** An account's API version when its first request sends no `Stripe-Version`. */
  apiVersion?: string;
  /** Faults to start with (see `admin.setFaults`). */
  faults?: FaultInput[];
  /** Largest request body, bytes. Default 1 MiB. */
  bodyLimit?: number;
}

export interface StripeSimulator {
  /** e.g. `http://127.0.0.1:12111` */
  url: string;
  host: string;
  port: number;
  admin: StripeSimulatorAdmin;
  /** Stops listening, drops every connection (hung requests too) and cancels pending deliveries. */
  stop(): Promise<void>;
}

/** The API version the pinned stripe-node (23.x) sends; used only when a request sends none. */
export const DEFAULT_API_VERSION = '2026-10-28.endive';
const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Idempotency keys kept per account (oldest forgotten first), so a long run stays bounded. */
const IDEMPOTENCY_KEYS_PER_ACCOUNT = 100_000;
const KEY_PATTERN = /^sk_test_[A-Za-z0-9_]+$/;

interface CompiledRoute extends Route {
  regex: RegExp;
  names: string[];
}

function compile(routes: readonly Route[]): CompiledRoute[] {
  return routes.map((route) => {
    const names: string[] = [];
    const source = route.pattern
      .split('/')
      .map((segment) => {
        if (!segment.startsWith(':')) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(segment.slice(1));
        return '([^/]+)';
      })
      .join('/');
    return { ...route, regex: new RegExp(`^${source}/?$`), names };
  });
}

/** Stable JSON (sorted keys), so the same parameters in another order fingerprint the same. */
function stableJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
}

function maskKey(key: string): string {
  return key.length <= 12 ? key : `${key.slice(0, 8)}${'*'.repeat(Math.max(4, key.length - 12))}${key.slice(-4)}`;
}

function readSecretKey(header: string | undefined): { key: string } | { error: StripeApiError } {
  // Made only when needed: an Error captures a stack, and this ran on every request.
  const noKey = (): StripeApiError =>
    new StripeApiError(
      401,
      'invalid_request_error',
      "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
      { storable: false, headers: { 'Www-Authenticate': 'Basic realm="Stripe"' } },
    );
  if (header === undefined || header.trim() === '') return { error: noKey() };
  const [scheme = '', value = ''] = header.trim().split(/\s+/, 2);
  let key: string;
  if (scheme.toLowerCase() === 'bearer') {
    key = value;
  } else if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    key = decoded.split(':')[0] ?? '';
  } else {
    return {
      error: new StripeApiError(
        401,
        'invalid_request_error',
        `Invalid Authorization header: use Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').`,
        { storable: false, headers: { 'Www-Authenticate': 'Basic realm="Stripe"' } },
      ),
    };
  }
  if (key === '') return { error: noKey() };
  if (!KEY_PATTERN.test(key)) {
    return {
      error: new StripeApiError(401, 'invalid_request_error', `Invalid API Key provided: ${maskKey(key)}`, {
        storable: false,
        headers: { 'Www-Authenticate': 'Basic realm="Stripe"' },
      }),
    };
  }
  return { key };
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => { resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')); });
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startStripeSimulator(options: StripeSimulatorOptions = {}): Promise<StripeSimulator> {
  const clock = options.clock ?? (() => new Date());
  const rateLimitPerSecond = options.rateLimitPerSecond ?? 25;
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  const searchLagMs = options.searchLagMs ?? 0;
  const routes = compile([...customerRoutes, ...webhookEndpointRoutes, ...eventRoutes]);
  const accounts = new Map<string, Account>();
  const faults = new FaultRegistry();
  for (const input of options.faults ?? []) faults.set(input);
  const deliverer = new WebhookDeliverer({ delivery: options.delivery ?? {}, faults, clock, logger: options.logger });
  /** Responses held open by the hang fault, answered never (closed on stop). */
  const hanging = new Set<ServerResponse>();
  let stopping = false;

  const admin = createAdmin({
    accounts,
    faults,
    deliverer,
    reset: () => {
      accounts.clear();
      faults.clear();
      deliverer.clear();
    },
  });

  const nowMs = (): number => clock().getTime();
  const nowSeconds = (): number => Math.floor(nowMs() / 1000);

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    const text = JSON.stringify(body, null, 2);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-cache, no-store',
      'Access-Control-Allow-Origin': '*',
      ...headers,
    });
    res.end(text);
  }

  function emitEvent(account: Account, ctx: { requestId: string; idempotencyKey: string | null }) {
    return (type: string, object: object, previous?: Record<string, unknown>): void => {
      const endpoints = account.endpointOrder.filter((e) => endpointWants(e.endpoint, type));
      const event: StripeEvent = {
        id: newId('evt'),
        object: 'event',
        api_version: account.apiVersion,
        created: nowSeconds(),
        data: previous === undefined
          ? { object: structuredClone(object) as Record<string, unknown> }
          : { object: structuredClone(object) as Record<string, unknown>, previous_attributes: structuredClone(previous) },
        livemode: false,
        pending_webhooks: endpoints.length,
        request: { id: ctx.requestId, idempotency_key: ctx.idempotencyKey },
        type,
      };
      const record = { seq: account.nextSeq(), event };
      account.events.set(event.id, record);
      account.eventOrder.push(record);
      deliverer.enqueue(account, event, endpoints);
    };
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, requestId: string, url: URL): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname;
    const headerValue = (name: string): string | undefined => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const stripeVersion = headerValue('stripe-version');
    const rawKey = headerValue('idempotency-key');
    const idempotencyKey = method === 'POST' && rawKey !== undefined && rawKey !== '' ? rawKey : null;
    const baseHeaders: Record<string, string> = { 'Request-Id': requestId };
    if (idempotencyKey !== null) baseHeaders['Idempotency-Key'] = idempotencyKey;

    const body = await readBody(req, bodyLimit);
    const auth = readSecretKey(headerValue('authorization'));
    if ('error' in auth) {
      send(res, auth.error.status, auth.error.body(requestId), { ...baseHeaders, ...auth.error.headers });
      return;
    }
    let account = accounts.get(auth.key);
    if (account === undefined) {
      account = new Account(auth.key, stripeVersion ?? options.apiVersion ?? DEFAULT_API_VERSION, rateLimitPerSecond);
      accounts.set(auth.key, account);
    }
    const acct = account;
    if (stripeVersion === undefined) baseHeaders['Stripe-Version'] = acct.apiVersion;
    else baseHeaders['Stripe-Version'] = stripeVersion;

    const matched = (() => {
      for (const route of routes) {
        if (route.method !== method) continue;
        const m = route.regex.exec(path);
        if (m === null) continue;
        const params: Record<string, string> = {};
        try {
          route.names.forEach((name, i) => {
            params[name] = decodeURIComponent(m[i + 1] ?? '');
          });
        } catch {
          return undefined; // a malformed %-escape: no such URL
        }
        return { route, params };
      }
      return undefined;
    })();
    const routeName = matched?.route.pattern ?? path;
    const log = (status: number, extra: Partial<RequestLogEntry> = {}): void => {
      acct.logRequest({
        at: clock().toISOString(),
        requestId,
        method,
        path,
        route: routeName,
        status,
        idempotencyKey,
        replayed: false,
        fault: null,
        ...extra,
      });
    };
    const fail = (error: StripeApiError, extra: Partial<RequestLogEntry> = {}): void => {
      send(res, error.status, error.body(requestId), { ...baseHeaders, ...error.headers });
      log(error.status, extra);
    };
    const hang = (): void => {
      acct.stats.hung += 1;
      log(0, { fault: 'hang' });
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
    };

    // Rate limit: injected bursts first, then the account's token bucket.
    const fx = faults.for(acct.key);
    if (fx.takeRateLimitBurst()) {
      fail(rateLimited(), { fault: 'rate_limit_burst' });
      return;
    }
    if (!acct.bucket.take()) {
      fail(rateLimited());
      return;
    }
    const errorPhase = fx.error();
    const hangPhase = fx.hang();
    if (hangPhase === 'before') {
      hang();
      return;
    }
    if (errorPhase === 'before') {
      acct.stats.injectedErrors += 1;
      fail(apiError(), { fault: 'error_before' });
      return;
    }

    if (matched === undefined) {
      fail(unrecognizedUrl(method, path));
      return;
    }
    if (body === undefined) {
      fail(invalidParam(`Request body too large (over ${bodyLimit} bytes).`, 'body'));
      return;
    }
    const contentType = headerValue('content-type') ?? '';
    if (body !== '' && !contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      fail(
        new StripeApiError(
          400,
          'invalid_request_error',
          `Invalid request: unsupported Content-Type ${contentType || '(none)'}. Stripe takes application/x-www-form-urlencoded bodies.`,
          { storable: false },
        ),
      );
      return;
    }
    let raw: RawParams;
    try {
      raw = { ...parseForm(url.search.slice(1)), ...parseForm(body) };
    } catch {
      fail(invalidParam('Invalid request: the parameters could not be parsed.', 'body'));
      return;
    }

    // Idempotency: one stored answer per account and key, for POST requests.
    let entry: IdempotencyEntry | undefined;
    if (idempotencyKey !== null) {
      if (idempotencyKey.length > 255) {
        fail(invalidParam('Idempotency keys can be at most 255 characters long.', 'Idempotency-Key'));
        return;
      }
      const fingerprint = stableJson(raw);
      const existing = acct.idempotency.get(idempotencyKey);
      if (existing !== undefined && nowMs() - existing.createdAtMs > IDEMPOTENCY_TTL_MS) acct.idempotency.delete(idempotencyKey);
      const current = acct.idempotency.get(idempotencyKey);
      if (current !== undefined) {
        if (current.endpoint !== `${method} ${path}`) {
          fail(
            new StripeApiError(
              400,
              'idempotency_error',
              `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${current.endpoint.split(' ')[1] ?? ''}' vs '${path}'). Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
              { storable: false },
            ),
          );
          return;
        }
        if (current.fingerprint !== fingerprint) {
          fail(
            new StripeApiError(
              400,
              'idempotency_error',
              `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
              { storable: false },
            ),
          );
          return;
        }
        if (current.response === undefined) {
          fail(
            new StripeApiError(
              409,
              'idempotency_error',
              `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.`,
              { code: 'idempotency_key_in_use', storable: false },
            ),
          );
          return;
        }
        const stored = current.response;
        send(res, stored.status, stored.body, {
          ...baseHeaders,
          ...stored.headers,
          'Idempotent-Replayed': 'true',
          'Original-Request': stored.requestId,
        });
        log(stored.status, { replayed: true });
        return;
      }
      entry = { fingerprint, endpoint: `${method} ${path}`, createdAtMs: nowMs(), response: undefined };
      acct.idempotency.set(idempotencyKey, entry);
      if (acct.idempotency.size > IDEMPOTENCY_KEYS_PER_ACCOUNT) {
        for (const [oldKey, old] of acct.idempotency) {
          if (old.response === undefined) continue;
          acct.idempotency.delete(oldKey);
          break;
        }
      }
    }

    const latency = fx.latencyMs();
    if (latency > 0) await sleep(latency);
    if (stopping) return;

    let response: StoredResponse;
    let storable = true;
    if (errorPhase === 'stored') {
      acct.stats.injectedErrors += 1;
      // Stripe marks its own 500s "do not retry": the idempotency layer would replay them anyway.
      response = { status: 500, body: apiError().body(requestId), requestId, headers: { 'Stripe-Should-Retry': 'false' } };
    } else {
      const ctx: HandlerContext = {
        account: acct,
        params: new ParamReader(raw),
        path: matched.params,
        requestId,
        idempotencyKey,
        nowSeconds,
        nowMs,
        emit: emitEvent(acct, { requestId, idempotencyKey }),
        searchLagMs,
      };
      try {
        const result = matched.route.handler(ctx);
        response = { status: result.status ?? 200, body: result.body, requestId, headers: {} };
      } catch (error) {
        if (!(error instanceof StripeApiError)) throw error;
        response = { status: error.status, body: error.body(requestId), requestId, headers: error.headers };
        storable = error.storable;
      }
    }
    if (entry !== undefined && idempotencyKey !== null) {
      if (storable) entry.response = response;
      else acct.idempotency.delete(idempotencyKey);
    }

    if (hangPhase === 'after') {
      hang();
      return;
    }
    if (errorPhase === 'after') {
      acct.stats.injectedErrors += 1;
      fail(apiError(), { fault: 'error_after' });
      return;
    }
    send(res, response.status, response.body, { ...baseHeaders, ...response.headers });
    log(response.status, errorPhase === 'stored' ? { fault: 'error_stored' } : {});
  }

  const server: Server = createServer((req, res) => {
    const requestId = newId('req');
    const url = new URL(req.url ?? '/', 'http://simulator');
    const work = url.pathname.startsWith('/_sim/') || url.pathname === '/_sim'
      ? handleAdminRequest(admin, req, res, url, readBody)
      : handleApi(req, res, requestId, url);
    work.catch((error: unknown) => {
      options.logger?.warn({ err: error, path: url.pathname }, 'Stripe simulator: request failed');
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: { type: 'api_error', message: 'The Stripe simulator failed on this request.' } }, { 'Request-Id': requestId });
    });
  });
  // stripe-node keeps connections alive; answer on them as long as it wants.
  server.keepAliveTimeout = 30_000;

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    host,
    port,
    admin,
    async stop() {
      if (stopping) return;
      stopping = true;
      deliverer.stop();
      for (const res of hanging) res.destroy();
      hanging.clear();
      const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
      server.closeAllConnections();
      await closed;
    },
  };
}

export type { RequestStats };
