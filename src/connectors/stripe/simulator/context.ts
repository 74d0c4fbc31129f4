// What a route handler gets and returns. Handlers are synchronous: they validate everything first,
// then change the account's state and record the events of that change.
import type { Account } from './account.ts';
import type { ParamReader } from './params.ts';

export interface HandlerContext {
  account: Account;
  params: ParamReader;
  /** Path parameters, e.g. `{ id: 'cus_…' }` for `/v1/customers/:id`. */
  path: Readonly<Record<string, string>>;
  requestId: string;
  idempotencyKey: string | null;
  /** Simulated time, unix seconds (Stripe's `created`). */
  nowSeconds(): number;
  nowMs(): number;
  /** Records an event of the change this request made (and schedules its webhook deliveries). */
  emit(type: string, object: object, previousAttributes?: Record<string, unknown>): void;
  /** How far behind the search index runs (see StripeSimulatorOptions.searchLagMs). */
  searchLagMs: number;
}

export interface HandlerResult {
  status?: number;
  body: unknown;
}

export type Handler = (ctx: HandlerContext) => HandlerResult;

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** `/v1/customers/:id`: segments starting with `:` are parameters. */
  pattern: string;
  handler: Handler;
}

/** The fields whose values differ, with their old values; nested objects list only changed keys. */
export function previousAttributes(
  before: Readonly<Record<string, unknown>>,
  after: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const key of keys) {
    const old = before[key] ?? null;
    const now = after[key] ?? null;
    if (isPlainObject(old) && isPlainObject(now)) {
      const nested = previousAttributes(old, now);
      if (Object.keys(nested).length > 0) out[key] = nested;
    } else if (JSON.stringify(old) !== JSON.stringify(now)) {
      out[key] = old;
    }
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
