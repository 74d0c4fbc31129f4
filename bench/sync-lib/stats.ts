// Small helpers: percentiles, pacing, number formatting.
import { setTimeout as delay } from 'node:timers/promises';

/** The p-th percentile (0..100) by nearest rank; Infinity counts (a change never seen). NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Changes never seen within the timeout (counted as infinitely late in the percentiles). */
  lost: number;
}

export function summarise(latenciesMs: readonly number[]): LatencySummary {
  return {
    count: latenciesMs.length,
    p50Ms: percentile(latenciesMs, 50),
    p90Ms: percentile(latenciesMs, 90),
    p99Ms: percentile(latenciesMs, 99),
    maxMs: latenciesMs.length === 0 ? Number.NaN : Math.max(...latenciesMs),
    lost: latenciesMs.filter((v) => !Number.isFinite(v)).length,
  };
}

/** Sleeps until performance.now() reaches `at` (returns at once when it has passed). */
export async function sleepUntil(at: number): Promise<void> {
  const wait = at - performance.now();
  if (wait > 0) await delay(wait);
}

/** Runs fn(i) for i in 0..count-1, at most `concurrency` at a time. */
export async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        await fn(i);
      }
    }),
  );
}

/** Polls `check` every intervalMs until it answers true or `deadline` (performance.now()) passes. */
export async function pollUntil(check: () => boolean | Promise<boolean>, deadline: number, intervalMs: number): Promise<boolean> {
  for (;;) {
    if (await check()) return true;
    if (performance.now() > deadline) return false;
    await delay(intervalMs);
  }
}

export function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  if (!Number.isFinite(n)) return '∞';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
