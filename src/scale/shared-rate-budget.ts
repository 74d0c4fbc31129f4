// A connection's rate budget shared by every Tandem process on one store: a token bucket in the
// `rate_budgets` row of the connection (tokens, last refill, pause), taken by compare-and-set on the
// row's version, so processes that spend against the same external account together never spend
// more than its rate (a budget per external account, not per process). Within a process, takes are
// served in order, one at a time, so its sync lanes do not race each other for the row; at high
// rates a take moves a few tokens at once (at most 50 ms of the rate, half the burst) into a local
// reserve spent first, so a busy connection does not cost two queries per external request.
//
// Times are the processes' clocks (ms since the epoch): hosts must agree to within a small part of a
// second (NTP); a clock behind the row's last refill refills nothing until it catches up.
import type { Store } from '../store/store.ts';
import type { RateBudget } from '../sync/rate-budget.ts';

export interface RateBudgetsTable {
  connection_id: string;
  tokens: number;
  refilled_at: number;
  paused_until: number;
  version: number;
}

function defaultBurst(ratePerSecond: number): number {
  return Math.max(1, Math.floor(ratePerSecond / 5));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function createSharedRateBudget(
  store: Store,
  connectionId: string,
  ratePerSecond: number,
  burst = defaultBurst(ratePerSecond),
  now: () => number = Date.now,
): RateBudget {
  const db = store.db.$extendTables<{ rate_budgets: RateBudgetsTable }>();
  let rate = ratePerSecond;
  let capacity = burst;
  let queue: Promise<void> = Promise.resolve();
  /** Tokens already taken from the row, not yet spent. */
  let reserve = 0;
  const batch = () => Math.max(1, Math.min(Math.floor(capacity / 2), Math.floor(rate / 20)));

  const row = async (): Promise<RateBudgetsTable> => {
    const found = await db.selectFrom('rate_budgets').selectAll().where('connection_id', '=', connectionId).executeTakeFirst();
    if (found !== undefined) return found;
    const fresh = { connection_id: connectionId, tokens: capacity, refilled_at: now(), paused_until: 0, version: 0 };
    await db.insertInto('rate_budgets').values(fresh).onConflict((oc) => oc.column('connection_id').doNothing()).execute();
    return (await db.selectFrom('rate_budgets').selectAll().where('connection_id', '=', connectionId).executeTakeFirst()) ?? fresh;
  };

  /** One try: spends a token (0 returned) or says how long to wait before the next try. */
  const tryTake = async (): Promise<number> => {
    const current = await row();
    const t = now();
    if (current.paused_until > t) return current.paused_until - t;
    const elapsed = Math.max(0, t - current.refilled_at);
    const tokens = Math.min(capacity, current.tokens + (elapsed / 1000) * rate);
    if (tokens < 1) return Math.max(1, Math.ceil(((1 - tokens) / rate) * 1000));
    const taking = Math.min(batch(), Math.floor(tokens));
    const result = await db
      .updateTable('rate_budgets')
      .set({ tokens: tokens - taking, refilled_at: Math.max(t, current.refilled_at), version: current.version + 1 })
      .where('connection_id', '=', connectionId)
      .where('version', '=', current.version)
      .executeTakeFirst();
    // Another process spent meanwhile: read again at once.
    if (Number(result.numUpdatedRows) !== 1) return -1;
    reserve += taking - 1;
    return 0;
  };

  const acquire = async (signal?: AbortSignal) => {
    if (reserve >= 1) {
      reserve -= 1;
      return;
    }
    for (;;) {
      if (signal?.aborted === true) throw signal.reason as Error;
      const wait = await tryTake();
      if (wait === 0) return;
      if (wait > 0) await sleep(wait, signal);
    }
  };

  return {
    take(signal) {
      const turn = queue.then(() => acquire(signal));
      queue = turn.catch(() => undefined);
      return turn;
    },
    pauseFor(ms) {
      const until = now() + ms;
      reserve = 0;
      void (async () => {
        const current = await row();
        if (current.paused_until >= until) return;
        await db
          .updateTable('rate_budgets')
          .set((eb) => ({ paused_until: until, tokens: 0, refilled_at: until, version: eb('version', '+', 1) }))
          .where('connection_id', '=', connectionId)
          .where('paused_until', '<', until)
          .execute();
      })().catch(() => undefined);
    },
    setRate(ratePerSecond, newBurst) {
      rate = ratePerSecond;
      capacity = newBurst ?? defaultBurst(ratePerSecond);
    },
  };
}
