// Sync latency at a steady rate of changes, one direction at a time. Changes are sent open loop on a
// fixed schedule (a slow answer never slows the sender), each to another linked customer of a pool
// large enough that no customer changes again before its last change was seen.
//
// outbound: PATCH /api/v1/customers/{id} {name: <unique>} to Tandem, then the simulator's customer
//   is read in-process every `probeMs` until it holds that name. Latency: from just before the
//   PATCH was sent to the first read that saw it.
// inbound: `stripe.customers.update(id, {name: <unique>})` through the official SDK, then Tandem's
//   API is polled (GET /api/v1/customers?updated_since=…, every `probeMs`, one request at a time)
//   until the record holds that name. Latency: from just before the SDK call to the answer of the
//   poll that saw it. Also reported: "committed", the record's updated_at minus the send time
//   (Tandem's own clock, the same machine's), which the poll interval does not blur.
import { setTimeout as delay } from 'node:timers/promises';
import type { LinkedCustomer, SyncContext } from './context.ts';
import { sleepUntil, summarise, type LatencySummary } from './stats.ts';

export interface LatencyOptions {
  ratePerSecond: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** A change not seen within this long counts as lost (infinitely late). */
  timeoutMs: number;
  /** How often the probe looks. */
  probeMs: number;
}

export interface LatencyResult {
  direction: 'outbound' | 'inbound';
  ratePerSecond: number;
  /** Changes sent in the measured part (after the warm-up). */
  sent: number;
  /** The rate the measured changes actually went out at. */
  achievedRatePerSecond: number;
  /** From sending the change to seeing it on the other side. */
  seen: LatencySummary;
  /** Inbound only: from sending to Tandem's commit (updated_at). */
  committed?: LatencySummary;
  /** How long the write call itself took to answer (Tandem's PATCH, or Stripe's update). */
  writeCall: LatencySummary;
  writeErrors: number;
  firstError?: string;
  probeMs: number;
}

interface Pending {
  index: number;
  customer: LinkedCustomer;
  name: string;
  sentAt: number;
  sentWallMs: number;
  measured: boolean;
}

/** The pool a run needs: enough customers that none changes twice within the timeout. */
export function poolSizeFor(options: LatencyOptions): number {
  return Math.ceil(options.ratePerSecond * (options.timeoutMs / 1000)) + 10;
}

export async function measureLatency(
  ctx: SyncContext,
  direction: 'outbound' | 'inbound',
  customers: readonly LinkedCustomer[],
  options: LatencyOptions,
): Promise<LatencyResult> {
  const interval = 1000 / options.ratePerSecond;
  const warmup = Math.round(options.warmupSeconds * options.ratePerSecond);
  const total = warmup + Math.round(options.durationSeconds * options.ratePerSecond);
  const run = `${direction === 'outbound' ? 'o' : 'i'}${Date.now().toString(36)}`;
  const pending = new Map<string, Pending>(); // by Tandem id: one change in flight per customer
  const seen: number[] = [];
  const committed: number[] = [];
  const writeCall: number[] = [];
  let writeErrors = 0;
  let firstError: string | undefined;
  let sending = true;
  let measuredStart = 0;
  let measuredEnd = 0;
  const writes: Promise<void>[] = [];

  const settle = (p: Pending, latency: number, commitMs?: number) => {
    pending.delete(p.customer.tandemId);
    if (!p.measured) return;
    seen.push(latency);
    if (commitMs !== undefined) committed.push(commitMs);
  };
  const expire = (now: number) => {
    for (const p of pending.values()) if (now - p.sentAt > options.timeoutMs) settle(p, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
  };

  const outboundProbe = async () => {
    while (sending || pending.size > 0) {
      const now = performance.now();
      for (const p of pending.values()) {
        if (ctx.sim.admin.customer(ctx.key, p.customer.stripeId)?.name === p.name) settle(p, now - p.sentAt);
      }
      expire(now);
      await delay(options.probeMs);
    }
  };

  const inboundProbe = async () => {
    while (sending || pending.size > 0) {
      const started = performance.now();
      let oldest = Number.POSITIVE_INFINITY;
      for (const p of pending.values()) oldest = Math.min(oldest, p.sentWallMs);
      if (Number.isFinite(oldest)) {
        try {
          const records = await ctx.api.customersUpdatedSince(new Date(oldest - 5).toISOString());
          const now = performance.now();
          for (const record of records) {
            const p = pending.get(record.id);
            if (p !== undefined && record.name === p.name) settle(p, now - p.sentAt, Date.parse(record.updated_at) - p.sentWallMs);
          }
        } catch (error) {
          ctx.log(`  inbound probe failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      expire(performance.now());
      await delay(Math.max(0, options.probeMs - (performance.now() - started)));
    }
  };

  const write = async (p: Pending) => {
    const started = performance.now();
    try {
      if (direction === 'outbound') await ctx.api.updateCustomer(p.customer.tandemId, { name: p.name });
      else await ctx.stripe.customers.update(p.customer.stripeId, { name: p.name });
      if (p.measured) writeCall.push(performance.now() - started);
    } catch (error) {
      if (p.measured) writeErrors += 1;
      firstError ??= error instanceof Error ? error.message : String(error);
      pending.delete(p.customer.tandemId);
    }
  };

  const probe = direction === 'outbound' ? outboundProbe() : inboundProbe();
  const start = performance.now();
  for (let i = 0; i < total; i += 1) {
    await sleepUntil(start + i * interval);
    const customer = customers[i % customers.length];
    if (customer === undefined) throw new Error('no customers to change');
    const measured = i >= warmup;
    if (i === warmup) measuredStart = performance.now();
    const previous = pending.get(customer.tandemId);
    if (previous !== undefined) settle(previous, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
    const p: Pending = { index: i, customer, name: `bench ${run} ${String(i)}`, sentAt: performance.now(), sentWallMs: Date.now(), measured };
    pending.set(customer.tandemId, p);
    writes.push(write(p));
  }
  measuredEnd = performance.now();
  sending = false;
  await Promise.all(writes);
  await probe;
  const sent = total - warmup;
  return {
    direction,
    ratePerSecond: options.ratePerSecond,
    sent,
    achievedRatePerSecond: sent > 1 ? ((sent - 1) / (measuredEnd - measuredStart)) * 1000 : Number.NaN,
    seen: summarise(seen),
    ...(direction === 'inbound' ? { committed: summarise(committed) } : {}),
    writeCall: summarise(writeCall),
    writeErrors,
    ...(firstError === undefined ? {} : { firstError }),
    probeMs: options.probeMs,
  };
}
