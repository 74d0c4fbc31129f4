// The org's rolling 24-hour API allocation: calls are counted in one-minute buckets, and a call is
// refused with 403 REQUEST_LIMIT_EXCEEDED while the last 24 hours already hold `dailyLimit` calls.
const MINUTE = 60_000;
const WINDOW_MINUTES = 24 * 60;

export class ApiAllocation {
  limit: number;
  readonly #buckets = new Map<number, number>();
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  #expire(nowMs: number): void {
    const oldest = Math.floor(nowMs / MINUTE) - WINDOW_MINUTES + 1;
    for (const [minute, n] of this.#buckets) {
      if (minute < oldest) {
        this.#used -= n;
        this.#buckets.delete(minute);
      }
    }
  }

  /** Calls counted in the last 24 hours. */
  used(nowMs: number): number {
    this.#expire(nowMs);
    return this.#used;
  }

  /** Counts a call; false (and not counted) when the allocation is used up. */
  take(nowMs: number): boolean {
    if (this.used(nowMs) >= this.limit) return false;
    const minute = Math.floor(nowMs / MINUTE);
    this.#buckets.set(minute, (this.#buckets.get(minute) ?? 0) + 1);
    this.#used += 1;
    return true;
  }

  /** Adds calls as if made now (for tests that start near the limit). */
  spend(nowMs: number, calls: number): void {
    const minute = Math.floor(nowMs / MINUTE);
    this.#buckets.set(minute, (this.#buckets.get(minute) ?? 0) + calls);
    this.#used += calls;
  }

  reset(): void {
    this.#buckets.clear();
    this.#used = 0;
  }
}
