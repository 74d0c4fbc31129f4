// In-process control and inspection of the simulator (`sim.admin`), and the same as JSON routes
// under /_sim/ for the standalone simulator. Accounts are named by their secret key.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Account, RequestLogEntry, RequestStats } from './account.ts';
import type { Delivery, WebhookDeliverer } from './delivery.ts';
import { faultInputSchema, type FaultInput, type FaultRegistry, type FaultSnapshot } from './faults.ts';
import type { Customer, StripeEvent, WebhookEndpoint } from './types.ts';

export interface AccountSummary {
  id: string;
  key: string;
  apiVersion: string;
  customers: number;
  deletedCustomers: number;
  events: number;
  webhookEndpoints: number;
  requests: number;
}

/** A customer as the simulator holds it: its last state, and whether it is deleted. */
export type CustomerView = Customer & { deleted: boolean };

export interface StripeSimulatorAdmin {
  accounts(): AccountSummary[];
  /** The account's customers, oldest first; deleted ones too unless `includeDeleted: false`. */
  customers(accountKey: string, options?: { includeDeleted?: boolean }): CustomerView[];
  customer(accountKey: string, id: string): CustomerView | undefined;
  /** The account's events, oldest first. */
  events(accountKey: string): StripeEvent[];
  /** The account's webhook endpoints with their secrets, oldest first. */
  webhookEndpoints(accountKey: string): (WebhookEndpoint & { secret: string })[];
  /** Request counts: one account's, or summed over every account. */
  requests(accountKey?: string): RequestStats;
  /** The account's requests, oldest first (the last 10,000). */
  requestLog(accountKey: string): RequestLogEntry[];
  /** Webhook deliveries (one per event and endpoint, plus injected duplicates), oldest first. */
  deliveries(accountKey?: string): Delivery[];
  /** Resolves true once no delivery is pending (false if `timeoutMs` passes first). */
  waitForDeliveries(timeoutMs?: number): Promise<boolean>;
  /** Replaces the fault settings of one scope: `account` (a secret key) or, without it, global. */
  setFaults(input: FaultInput): void;
  /** Clears one account's fault settings, or every fault setting. */
  clearFaults(accountKey?: string): void;
  faults(): FaultSnapshot;
  /** Forgets every account, delivery record and fault setting. */
  reset(): void;
}

function emptyStats(): RequestStats {
  return { total: 0, byRoute: {}, byPath: {}, byStatus: {}, rateLimited: 0, injectedErrors: 0, hung: 0, idempotentReplays: 0 };
}

function addStats(into: RequestStats, from: RequestStats): RequestStats {
  const merge = (a: Record<string, number>, b: Record<string, number>): void => {
    for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v;
  };
  into.total += from.total;
  merge(into.byRoute, from.byRoute);
  merge(into.byPath, from.byPath);
  merge(into.byStatus, from.byStatus);
  into.rateLimited += from.rateLimited;
  into.injectedErrors += from.injectedErrors;
  into.hung += from.hung;
  into.idempotentReplays += from.idempotentReplays;
  return into;
}

export function createAdmin(deps: {
  accounts: Map<string, Account>;
  faults: FaultRegistry;
  deliverer: WebhookDeliverer;
  reset: () => void;
}): StripeSimulatorAdmin {
  const { accounts, faults, deliverer } = deps;
  const view = (account: Account | undefined) => account;
  return {
    accounts: () =>
      [...accounts.values()].map((a) => ({
        id: a.id,
        key: a.key,
        apiVersion: a.apiVersion,
        customers: a.customerOrder.filter((r) => !r.deleted).length,
        deletedCustomers: a.customerOrder.filter((r) => r.deleted).length,
        events: a.eventOrder.length,
        webhookEndpoints: a.endpointOrder.length,
        requests: a.stats.total,
      })),
    customers: (key, options = {}) =>
      (view(accounts.get(key))?.customerOrder ?? [])
        .filter((r) => options.includeDeleted !== false || !r.deleted)
        .map((r) => ({ ...structuredClone(r.customer), deleted: r.deleted })),
    customer: (key, id) => {
      const record = accounts.get(key)?.customers.get(id);
      return record === undefined ? undefined : { ...structuredClone(record.customer), deleted: record.deleted };
    },
    events: (key) => (accounts.get(key)?.eventOrder ?? []).map((r) => structuredClone(r.event)),
    webhookEndpoints: (key) =>
      (accounts.get(key)?.endpointOrder ?? []).map((r) => ({ ...structuredClone(r.endpoint), secret: r.secret })),
    requests: (key) => {
      if (key !== undefined) return structuredClone(accounts.get(key)?.stats ?? emptyStats());
      return [...accounts.values()].reduce((sum, a) => addStats(sum, a.stats), emptyStats());
    },
    requestLog: (key) => structuredClone(accounts.get(key)?.requestLog ?? []),
    deliveries: (key) => deliverer.list(key),
    waitForDeliveries: (timeoutMs) => deliverer.idle(timeoutMs),
    setFaults: (input) => { faults.set(faultInputSchema.parse(input)); },
    clearFaults: (key) => { faults.clear(key); },
    faults: () => faults.snapshot(),
    reset: deps.reset,
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The admin routes: `GET /_sim/accounts`; `GET /_sim/customers|events|requests|deliveries?account=<key>`
 * (`include_deleted=false` for customers; `requests` without an account sums all of them);
 * `GET|POST|DELETE /_sim/faults` (POST takes the JSON of `setFaults`; DELETE takes `?account=`);
 * `POST /_sim/reset`.
 */
export async function handleAdminRequest(
  admin: StripeSimulatorAdmin,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  readBody: (req: IncomingMessage, limit: number) => Promise<string | undefined>,
): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const account = url.searchParams.get('account') ?? undefined;
  const needAccount = (): string | undefined => {
    if (account === undefined) json(res, 400, { error: { type: 'invalid_request_error', message: 'Pass ?account=<secret key>.' } });
    return account;
  };
  const body = await readBody(req, 64 * 1024);
  const route = `${method} ${url.pathname.replace(/\/$/, '')}`;
  switch (route) {
    case 'GET /_sim/accounts':
      json(res, 200, { data: admin.accounts() });
      return;
    case 'GET /_sim/customers': {
      const key = needAccount();
      if (key !== undefined) json(res, 200, { data: admin.customers(key, { includeDeleted: url.searchParams.get('include_deleted') !== 'false' }) });
      return;
    }
    case 'GET /_sim/events': {
      const key = needAccount();
      if (key !== undefined) json(res, 200, { data: admin.events(key) });
      return;
    }
    case 'GET /_sim/requests':
      json(res, 200, account === undefined ? { stats: admin.requests() } : { stats: admin.requests(account), log: admin.requestLog(account) });
      return;
    case 'GET /_sim/deliveries':
      json(res, 200, { data: admin.deliveries(account) });
      return;
    case 'GET /_sim/faults':
      json(res, 200, admin.faults());
      return;
    case 'POST /_sim/faults': {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body === undefined || body === '' ? '{}' : body);
      } catch {
        json(res, 400, { error: { type: 'invalid_request_error', message: 'The body must be JSON.' } });
        return;
      }
      const result = faultInputSchema.safeParse(parsed);
      if (!result.success) {
        json(res, 400, { error: { type: 'invalid_request_error', message: result.error.message } });
        return;
      }
      admin.setFaults(result.data);
      json(res, 200, admin.faults());
      return;
    }
    case 'DELETE /_sim/faults':
      admin.clearFaults(account);
      json(res, 200, admin.faults());
      return;
    case 'POST /_sim/reset':
      admin.reset();
      json(res, 200, { reset: true });
      return;
    default:
      json(res, 404, { error: { type: 'invalid_request_error', message: `No admin route ${route}.` } });
  }
}
