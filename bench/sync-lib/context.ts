// What every sync measure works on: one Tandem child process connected to one account of a Stripe
// simulator that runs in this process, and the official SDK pointed at the same account (the
// "other side" writing into Stripe).
import { setTimeout as delay } from 'node:timers/promises';
import Stripe from 'stripe';
import type { StripeSimulator } from '../../src/connectors/stripe/simulator/index.ts';
import { pool, pollUntil } from './stats.ts';
import type { RunningTandem } from '../lib/tandem.ts';
import type { TandemApi } from './tandem.ts';

export interface SyncContext {
  sim: StripeSimulator;
  /** The simulated account's secret key (its name in sim.admin). */
  key: string;
  tandem: RunningTandem;
  api: TandemApi;
  connectionId: string;
  /** The official SDK against the simulator, as another Stripe client would write. */
  stripe: Stripe;
  log: (message: string) => void;
}

/** A Tandem customer and the Stripe customer it is linked to. */
export interface LinkedCustomer {
  tandemId: string;
  stripeId: string;
}

export function stripeClient(sim: StripeSimulator, key: string): Stripe {
  return new Stripe(key, { host: sim.host, port: sim.port, protocol: 'http', telemetry: false, maxNetworkRetries: 0, timeout: 30_000 });
}

/** A customer as a product would create it: every field Stripe syncs, plus some it does not. */
export function customerBody(tag: string): Record<string, unknown> {
  return {
    name: `Ada ${tag}`,
    email: `ada-${tag}@example.com`,
    phone: '+44 20 7946 0000',
    company: 'Analytical Engines Ltd',
    currency: 'gbp',
    billing_address: { line1: '12 St James Square', city: 'London', postal_code: 'SW1Y 4JH', country: 'GB' },
    metadata: { plan: 'pro', source: 'bench' },
  };
}

/**
 * The account's counts (live customers, events, requests) without copying anything: the probes use
 * these rather than `admin.requests()`, which clones a map with an entry per path (thousands).
 */
export function accountCounts(ctx: SyncContext): { customers: number; events: number; requests: number } {
  const account = ctx.sim.admin.accounts().find((a) => a.key === ctx.key);
  return { customers: account?.customers ?? 0, events: account?.events ?? 0, requests: account?.requests ?? 0 };
}

/** Live (not deleted) customers of the account. */
export function liveCustomerCount(ctx: SyncContext): number {
  return accountCounts(ctx).customers;
}

/** Stripe customer id by the Tandem id it carries (metadata.tandem_id). */
export function stripeIdsByTandemId(ctx: SyncContext): Map<string, string> {
  const map = new Map<string, string>();
  for (const c of ctx.sim.admin.customers(ctx.key, { includeDeleted: false })) {
    const tandemId = c.metadata['tandem_id'];
    if (tandemId !== undefined) map.set(tandemId, c.id);
  }
  return map;
}

/**
 * Waits until the simulator's request count for the account stops moving for `quietMs`. Keep it
 * under the poll interval: the change feed is polled forever.
 */
export async function waitForSyncQuiet(ctx: SyncContext, quietMs: number, maxMs: number): Promise<boolean> {
  const deadline = performance.now() + maxMs;
  let last = -1;
  let since = performance.now();
  for (;;) {
    const total = accountCounts(ctx).requests;
    if (total !== last) {
      last = total;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) {
      return true;
    }
    if (performance.now() > deadline) return false;
    await delay(50);
  }
}

/**
 * Creates `count` customers in Tandem and waits until every one is linked in Stripe (it carries its
 * Tandem id there), then until the sync is quiet (the echo of each create handled).
 */
export async function seedLinkedCustomers(ctx: SyncContext, count: number, tag: string, timeoutMs: number): Promise<LinkedCustomer[]> {
  const ids: string[] = [];
  await pool(count, 16, async (i) => {
    const created = await ctx.api.createCustomer(customerBody(`${tag}-${String(i)}`));
    ids.push(created.id);
  });
  let map = new Map<string, string>();
  const done = await pollUntil(
    () => {
      map = stripeIdsByTandemId(ctx);
      return ids.every((id) => map.has(id));
    },
    performance.now() + timeoutMs,
    100,
  );
  if (!done) throw new Error(`seeding: only ${String(ids.filter((id) => map.has(id)).length)} of ${String(count)} customers reached Stripe within ${String(timeoutMs)} ms`);
  await waitForSyncQuiet(ctx, 600, 60_000);
  return ids.map((tandemId) => ({ tandemId, stripeId: map.get(tandemId) ?? '' }));
}
