// A token bucket per connection: Tandem spends at most `ratePerSecond` requests against an external
// account, with bursts up to `burst`, and stops spending entirely while the account told it to wait
// (429 with Retry-After). Budgets are per process for now; sharing them across processes is part of
// the scale-out work.

export interface RateBudget {
  /** Resolves when a request may go; rejects with the signal's reason when aborted. */
  take(signal?: AbortSignal): Promise<void>;
  /** The external system asked us to wait: no request goes before `ms` from now. */
  pauseFor(ms: number): void;
  setRate(ratePerSecond: number, burst?: number): void;
}

/** Requests in flight per connection at least and at most (see lanesFor). */
export const MIN_LANES = 8;
export const MAX_LANES = 32;
/** How long an answer is expected to take when sizing the lanes. */
const LANE_LATENCY_MS = 50;

/**
 * How many requests a connection keeps in flight at once: enough to spend `ratePerSecond` with
 * answers taking 50 ms (8 at Stripe's 25/s, 32 from 640/s up). More would only wait on the budget.
 */
export function lanesFor(ratePerSecond: number): number {
  return Math.min(MAX_LANES, Math.max(MIN_LANES, Math.ceil((ratePerSecond * LANE_LATENCY_MS) / 1000)));
}

export function createRateBudget(ratePerSecond: number, burst = Math.max(1, Math.floor(ratePerSecond / 5)), now: () => number = Date.now): RateBudget {
  let rate = ratePerSecond;
  let capacity = burst;
  let tokens = capacity;
  let last = now();
  let pausedUntil = 0;
  // Waiters are served in order, one at a time.
  let queue: Promise<void> = Promise.resolve();

  const refill = () => {
    const t = now();
    tokens = Math.min(capacity, tokens + ((t - last) / 1000) * rate);
    last = t;
  };

  const sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason as Error);
        return;
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });

  const acquire = async (signal?: AbortSignal) => {
    for (;;) {
      const t = now();
      if (pausedUntil > t) {
        await sleep(pausedUntil - t, signal);
        continue;
      }
      refill();
      if (tokens >= 1) {
        tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - tokens) / rate) * 1000), signal);
    }
  };

  return {
    take(signal) {
      const turn = queue.then(() => acquire(signal));
      queue = turn.catch(() => undefined);
      return turn;
    },
    pauseFor(ms) {
      pausedUntil = Math.max(pausedUntil, now() + ms);
      tokens = 0;
    },
    setRate(ratePerSecond, newBurst) {
      refill();
      rate = ratePerSecond;
      capacity = newBurst ?? Math.max(1, Math.floor(ratePerSecond / 5));
      tokens = Math.min(tokens, capacity);
    },
  };
}
