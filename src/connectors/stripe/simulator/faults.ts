// Fault injection: settings for the whole simulator or for one account (by its secret key), with a
// seeded PRNG so a test that sets a seed sees the same faults on every run.
import { z } from 'zod';

const rate = z.number().min(0).max(1);
const ms = z.number().int().min(0).max(600_000);

/**
 * Where an injected 500 (`errorRate`) happens:
 * - `before`: the request is refused before it runs; nothing changes; nothing is stored for its
 *   idempotency key (a retry runs for real).
 * - `after`: the write is applied and its real answer stored for the idempotency key, then the
 *   client is answered 500 (like a response lost on the way back): a retry with the same key gets
 *   the stored answer replayed.
 * - `stored`: the endpoint itself answers 500 without applying anything, and that 500 is what the
 *   idempotency key keeps (Stripe replays stored 500s too). It carries `Stripe-Should-Retry: false`,
 *   as Stripe's own 500s do, so stripe-node does not retry it.
 * - `any`: one of the three at random.
 */
export const errorPhases = ['before', 'after', 'stored', 'any'] as const;
export type ErrorPhase = (typeof errorPhases)[number];

export const faultSettingsSchema = z.strictObject({
  /** Share of API requests answered 500 `api_error`. */
  errorRate: rate.optional(),
  errorPhase: z.enum(errorPhases).optional(),
  /** The next N API requests are answered 429 `rate_limit` (counts down). */
  rateLimitBurst: z.number().int().min(0).max(1_000_000).optional(),
  /** Added to every API request, after its idempotency key is taken (so duplicates see it in flight). */
  latencyMs: ms.optional(),
  /** Share of API requests never answered (the client times out); the connection is held until stop(). */
  hangRate: rate.optional(),
  /**
   * `before`: nothing applied; `after`: the write is applied (and its answer stored for the
   * idempotency key), then the answer never comes — a client retry with the same key gets the replay.
   */
  hangPhase: z.enum(['before', 'after']).optional(),
  /** Share of webhook deliveries silently never sent (a lost webhook). */
  dropRate: rate.optional(),
  /** Share of webhook deliveries sent twice (two independent deliveries of the same event). */
  duplicateRate: rate.optional(),
  /** Added before the first attempt of every webhook delivery. */
  delayMs: ms.optional(),
  /** Hold deliveries for `reorderWindowMs` (default 50) and send each window's batch shuffled. */
  reorder: z.boolean().optional(),
  reorderWindowMs: z.number().int().min(1).max(60_000).optional(),
  /** Seeds this scope's PRNG (otherwise a random seed). */
  seed: z.number().int().optional(),
});
export type FaultSettings = z.infer<typeof faultSettingsSchema>;

export const faultInputSchema = faultSettingsSchema.extend({
  /** The account's secret key (`sk_test_…`); absent for the global settings. */
  account: z.string().min(1).optional(),
});
export type FaultInput = z.infer<typeof faultInputSchema>;

/** mulberry32: small, fast, good enough to pick faults reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class FaultScope {
  readonly settings: FaultSettings;
  readonly random: () => number;
  burstLeft: number;

  constructor(settings: FaultSettings) {
    this.settings = settings;
    this.random = seededRandom(settings.seed ?? Math.floor(Math.random() * 2 ** 31));
    this.burstLeft = settings.rateLimitBurst ?? 0;
  }
}

/** The faults that apply to one request or delivery: an account's settings over the global ones. */
export class EffectiveFaults {
  readonly #scopes: FaultScope[];

  constructor(scopes: FaultScope[]) {
    this.#scopes = scopes;
  }

  #get<K extends keyof FaultSettings>(key: K): FaultSettings[K] {
    for (const scope of this.#scopes) {
      if (scope.settings[key] !== undefined) return scope.settings[key];
    }
    return undefined;
  }

  /** The PRNG of the most specific scope that has settings. */
  random(): number {
    const scope = this.#scopes[0];
    return scope === undefined ? Math.random() : scope.random();
  }

  /** True with probability `rate` (draws from the PRNG only when the rate is set). */
  #chance(rate: number | undefined): boolean {
    if (rate === undefined || rate <= 0) return false;
    return this.random() < rate;
  }

  takeRateLimitBurst(): boolean {
    for (const scope of this.#scopes) {
      if (scope.burstLeft > 0) {
        scope.burstLeft -= 1;
        return true;
      }
    }
    return false;
  }

  latencyMs(): number {
    return this.#get('latencyMs') ?? 0;
  }

  /** The phase of an injected 500 for this request, or undefined for none. */
  error(): Exclude<ErrorPhase, 'any'> | undefined {
    if (!this.#chance(this.#get('errorRate'))) return undefined;
    const phase = this.#get('errorPhase') ?? 'before';
    if (phase !== 'any') return phase;
    const pick = Math.floor(this.random() * 3);
    return pick === 0 ? 'before' : pick === 1 ? 'after' : 'stored';
  }

  hang(): 'before' | 'after' | undefined {
    if (!this.#chance(this.#get('hangRate'))) return undefined;
    return this.#get('hangPhase') ?? 'before';
  }

  dropWebhook(): boolean {
    return this.#chance(this.#get('dropRate'));
  }

  duplicateWebhook(): boolean {
    return this.#chance(this.#get('duplicateRate'));
  }

  webhookDelayMs(): number {
    return this.#get('delayMs') ?? 0;
  }

  reorderWindowMs(): number | undefined {
    return this.#get('reorder') === true ? (this.#get('reorderWindowMs') ?? 50) : undefined;
  }
}

export interface FaultSnapshot {
  global: FaultSettings | null;
  accounts: Record<string, FaultSettings>;
}

export class FaultRegistry {
  #global: FaultScope | undefined;
  readonly #accounts = new Map<string, FaultScope>();

  /** Replaces the settings of one scope (the account's, or the global ones). */
  set(input: FaultInput): void {
    const { account, ...settings } = input;
    const scope = new FaultScope(settings);
    if (account === undefined) this.#global = scope;
    else this.#accounts.set(account, scope);
  }

  /** Clears one account's settings, or (without an account) every setting. */
  clear(account?: string): void {
    if (account === undefined) {
      this.#global = undefined;
      this.#accounts.clear();
    } else {
      this.#accounts.delete(account);
    }
  }

  for(accountKey: string | undefined): EffectiveFaults {
    const scopes: FaultScope[] = [];
    const own = accountKey === undefined ? undefined : this.#accounts.get(accountKey);
    if (own !== undefined) scopes.push(own);
    if (this.#global !== undefined) scopes.push(this.#global);
    return new EffectiveFaults(scopes);
  }

  snapshot(): FaultSnapshot {
    const withBurst = (scope: FaultScope): FaultSettings =>
      scope.settings.rateLimitBurst === undefined ? scope.settings : { ...scope.settings, rateLimitBurst: scope.burstLeft };
    return {
      global: this.#global === undefined ? null : withBurst(this.#global),
      accounts: Object.fromEntries([...this.#accounts].map(([key, scope]) => [key, withBurst(scope)])),
    };
  }
}
