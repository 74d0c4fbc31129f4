// Outbound throughput: many changes written to Tandem as fast as a few connections allow, timed
// until the simulator holds every one of them.
//
// live:  the clock starts just before the first write to Tandem and stops at the first probe that
//        finds every change in the simulator (it includes the writes themselves).
// drain: the connection is paused, the changes are written (they wait as marks), and the clock
//        starts at POST …/resume: the sync engine alone, working off a backlog.
//
// Besides the end-to-end figure, the simulator's request log gives the rate at which the Stripe
// writes themselves completed ("steady": writes between the first and the last one), and the
// request mix (creates/updates, the GETs the engine makes, polls of the events feed, 429s).
import { setTimeout as delay } from 'node:timers/promises';
import type { RequestStats } from '../../src/connectors/stripe/simulator/index.ts';
import { accountCounts, customerBody, liveCustomerCount, stripeIdsByTandemId, type LinkedCustomer, type SyncContext } from './context.ts';
import { pool } from './stats.ts';

export interface ThroughputResult {
  kind: 'creates' | 'updates';
  mode: 'live' | 'drain';
  changes: number;
  /** Changes that reached the simulator before the deadline. */
  arrived: number;
  /** Changes over the time from the clock's start until all had arrived. */
  perSecond: number;
  seconds: number;
  /** How fast Tandem took the writes (live), or how long they took before the resume (drain). */
  writesPerSecond: number;
  /** Successful Stripe writes of this kind per second, first to last, from the simulator's log. */
  steadyPerSecond: number;
  /** Every request to the simulator's account per second while the clock ran. */
  requestsPerSecond: number;
  requests: RequestMix;
  timedOut: boolean;
  writeErrors: number;
  firstError?: string;
}

export interface RequestMix {
  total: number;
  creates: number;
  updates: number;
  retrieves: number;
  eventPolls: number;
  searches: number;
  rateLimited: number;
  errors5xx: number;
  other: number;
}

function requestMix(before: RequestStats, after: RequestStats): RequestMix {
  const route = (name: string) => (after.byRoute[name] ?? 0) - (before.byRoute[name] ?? 0);
  const status = (prefix: string) =>
    Object.entries(after.byStatus)
      .filter(([code]) => code.startsWith(prefix))
      .reduce((sum, [code, n]) => sum + n - (before.byStatus[code] ?? 0), 0);
  const total = after.total - before.total;
  const creates = route('POST /v1/customers');
  const updates = route('POST /v1/customers/:id');
  const retrieves = route('GET /v1/customers/:id');
  const eventPolls = route('GET /v1/events');
  const searches = route('GET /v1/customers/search') + route('GET /v1/customers');
  return {
    total,
    creates,
    updates,
    retrieves,
    eventPolls,
    searches,
    rateLimited: after.rateLimited - before.rateLimited,
    errors5xx: status('5'),
    other: total - creates - updates - retrieves - eventPolls - searches,
  };
}

/** Successful writes of one route per second, from the first to the last, in the log since `sinceIso`. */
function steadyRate(ctx: SyncContext, method: string, route: string, sinceIso: string): number {
  const times = ctx.sim.admin
    .requestLog(ctx.key)
    .filter((r) => r.method === method && r.route === route && r.status >= 200 && r.status < 300 && r.at >= sinceIso)
    .map((r) => Date.parse(r.at));
  const first = times[0];
  const last = times.at(-1);
  if (first === undefined || last === undefined || last <= first) return Number.NaN;
  return ((times.length - 1) / (last - first)) * 1000;
}

export interface BulkOptions {
  changes: number;
  /** Concurrent requests writing to Tandem. */
  concurrency: number;
  mode: 'live' | 'drain';
  timeoutMs: number;
  tag: string;
}

async function writeAll(ctx: SyncContext, count: number, concurrency: number, write: (i: number) => Promise<void>): Promise<{ errors: number; first?: string }> {
  let errors = 0;
  let first: string | undefined;
  await pool(count, concurrency, async (i) => {
    try {
      await write(i);
    } catch (error) {
      errors += 1;
      first ??= error instanceof Error ? error.message : String(error);
    }
  });
  if (errors > 0) ctx.log(`  ${String(errors)} writes to Tandem failed, first: ${first ?? ''}`);
  return first === undefined ? { errors } : { errors, first };
}

/**
 * Writes the changes to Tandem and answers when the clock starts: live, at the first write; drain,
 * the connection paused for the writes, at its resume (after the dispatcher marked them).
 */
async function writeAndStart(ctx: SyncContext, options: BulkOptions, count: number, write: (i: number) => Promise<void>) {
  if (options.mode === 'drain') await ctx.api.pause(ctx.connectionId);
  const since = new Date().toISOString();
  const writesStarted = performance.now();
  const written = await writeAll(ctx, count, options.concurrency, write);
  const writesSeconds = (performance.now() - writesStarted) / 1000;
  let start = writesStarted;
  if (options.mode === 'drain') {
    // The dispatcher marks the records for the paused connection from the change log: let it finish.
    await delay(1000);
    start = performance.now();
    await ctx.api.resume(ctx.connectionId);
  }
  return { since, written, writesSeconds, start };
}

/** Creates `changes` customers in Tandem; answers when all are in Stripe (or the deadline passed). */
export async function bulkCreates(ctx: SyncContext, options: BulkOptions): Promise<ThroughputResult & { created: LinkedCustomer[] }> {
  const baseline = liveCustomerCount(ctx);
  const stats0 = ctx.sim.admin.requests(ctx.key);
  const ids: string[] = [];
  const create = async (i: number) => {
    ids.push((await ctx.api.createCustomer(customerBody(`${options.tag}-${String(i)}`))).id);
  };
  const { since, written, writesSeconds, start } = await writeAndStart(ctx, options, options.changes, create);
  const target = baseline + ids.length;
  const deadline = start + options.timeoutMs;
  let arrivedAt = Number.NaN;
  while (performance.now() <= deadline) {
    if (liveCustomerCount(ctx) >= target) {
      arrivedAt = performance.now();
      break;
    }
    await delay(5);
  }
  const end = Number.isNaN(arrivedAt) ? performance.now() : arrivedAt;
  const seconds = (end - start) / 1000;
  const stats1 = ctx.sim.admin.requests(ctx.key);
  const map = stripeIdsByTandemId(ctx);
  const created = ids.flatMap((tandemId) => {
    const stripeId = map.get(tandemId);
    return stripeId === undefined ? [] : [{ tandemId, stripeId }];
  });
  const mix = requestMix(stats0, stats1);
  return {
    kind: 'creates',
    mode: options.mode,
    changes: options.changes,
    arrived: created.length,
    perSecond: created.length / seconds,
    seconds,
    writesPerSecond: ids.length / writesSeconds,
    steadyPerSecond: steadyRate(ctx, 'POST', '/v1/customers', since),
    requestsPerSecond: mix.total / seconds,
    requests: mix,
    timedOut: Number.isNaN(arrivedAt),
    writeErrors: written.errors,
    ...(written.first === undefined ? {} : { firstError: written.first }),
    created,
  };
}

/** Renames each of `customers` once in Tandem; answers when Stripe holds every new name. */
export async function bulkUpdates(ctx: SyncContext, customers: readonly LinkedCustomer[], options: BulkOptions): Promise<ThroughputResult> {
  const stats0 = ctx.sim.admin.requests(ctx.key);
  const events0 = accountCounts(ctx).events;
  const wanted = new Map<string, string>(); // Stripe id -> name
  const update = async (i: number) => {
    const customer = customers[i];
    if (customer === undefined) return;
    const name = `bulk ${options.tag} ${String(i)}`;
    wanted.set(customer.stripeId, name);
    await ctx.api.updateCustomer(customer.tandemId, { name });
  };
  const { since, written, writesSeconds, start } = await writeAndStart(ctx, options, customers.length, update);
  const deadline = start + options.timeoutMs;
  let arrivedAt = Number.NaN;
  let arrived = 0;
  const count = () => {
    arrived = 0;
    for (const c of ctx.sim.admin.customers(ctx.key, { includeDeleted: false })) if (wanted.get(c.id) === c.name) arrived += 1;
    return arrived;
  };
  while (performance.now() <= deadline) {
    // Copying every customer is not free: look only once every rename has made its event
    // (customer.updated), and not again for a while when some name is still missing.
    if (accountCounts(ctx).events - events0 >= wanted.size) {
      if (count() >= wanted.size) {
        arrivedAt = performance.now();
        break;
      }
      await delay(50);
    }
    await delay(5);
  }
  if (Number.isNaN(arrivedAt)) count();
  const end = Number.isNaN(arrivedAt) ? performance.now() : arrivedAt;
  const seconds = (end - start) / 1000;
  const mix = requestMix(stats0, ctx.sim.admin.requests(ctx.key));
  return {
    kind: 'updates',
    mode: options.mode,
    changes: customers.length,
    arrived,
    perSecond: arrived / seconds,
    seconds,
    writesPerSecond: customers.length / writesSeconds,
    steadyPerSecond: steadyRate(ctx, 'POST', '/v1/customers/:id', since),
    requestsPerSecond: mix.total / seconds,
    requests: mix,
    timedOut: Number.isNaN(arrivedAt),
    writeErrors: written.errors,
    ...(written.first === undefined ? {} : { firstError: written.first }),
  };
}
