// Fault injection for the Salesforce simulator, as in the Stripe simulator: a share of API calls
// answered 500 UNKNOWN_EXCEPTION (before or after the write is applied), added latency, hung
// requests, bursts of 403 REQUEST_LIMIT_EXCEEDED, and a seeded PRNG so a test sees the same faults
// in the same order of requests.
import { z } from 'zod';

const rate = z.number().min(0).max(1);

export const faultSettingsSchema = z.strictObject({
  /** Share of API calls answered 500 UNKNOWN_EXCEPTION. */
  errorRate: rate.optional(),
  /** `before`: nothing applied. `after`: the call is applied, then answered 500. `any`: either. */
  errorPhase: z.enum(['before', 'after', 'any']).optional(),
  /** Added to every API call, ms. */
  latencyMs: z.number().int().min(0).max(600_000).optional(),
  /** Share of API calls never answered (the connection is held until stop()). */
  hangRate: rate.optional(),
  /** `before`: nothing applied; `after`: applied, then no answer. */
  hangPhase: z.enum(['before', 'after']).optional(),
  /** The next N API calls get 403 REQUEST_LIMIT_EXCEEDED (counts down). */
  requestLimitBurst: z.number().int().min(0).max(1_000_000).optional(),
  /** Share of change events published as gap events (GAP_CREATE / GAP_UPDATE / GAP_DELETE: header only, refetch the record). */
  cdcGapRate: rate.optional(),
  /** Seeds the PRNG (otherwise random). */
  seed: z.number().int().optional(),
});
export type FaultSettings = z.infer<typeof faultSettingsSchema>;

/** mulberry32. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Faults {
  #settings: FaultSettings = {};
  #random: () => number = Math.random;
  #burstLeft = 0;

  set(settings: FaultSettings): void {
    this.#settings = settings;
    this.#random = seededRandom(settings.seed ?? Math.floor(Math.random() * 2 ** 31));
    this.#burstLeft = settings.requestLimitBurst ?? 0;
  }

  clear(): void {
    this.set({});
  }

  snapshot(): FaultSettings {
    return this.#settings.requestLimitBurst === undefined ? { ...this.#settings } : { ...this.#settings, requestLimitBurst: this.#burstLeft };
  }

  #chance(rateValue: number | undefined): boolean {
    return rateValue !== undefined && rateValue > 0 && this.#random() < rateValue;
  }

  takeRequestLimitBurst(): boolean {
    if (this.#burstLeft <= 0) return false;
    this.#burstLeft -= 1;
    return true;
  }

  latencyMs(): number {
    return this.#settings.latencyMs ?? 0;
  }

  error(): 'before' | 'after' | undefined {
    if (!this.#chance(this.#settings.errorRate)) return undefined;
    const phase = this.#settings.errorPhase ?? 'before';
    if (phase !== 'any') return phase;
    return this.#random() < 0.5 ? 'before' : 'after';
  }

  cdcGap(): boolean {
    return this.#chance(this.#settings.cdcGapRate);
  }

  hang(): 'before' | 'after' | undefined {
    if (!this.#chance(this.#settings.hangRate)) return undefined;
    return this.#settings.hangPhase ?? 'before';
  }
}
