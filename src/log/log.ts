// The event log: what every log implementation (embedded SQL tables now, Kafka later) offers its
// consumers. The shape follows Kafka's model so both implementations fit it unchanged:
//
// - Entries are changes keyed by record id. One key always lands in one partition, and a partition
//   is delivered strictly in offset order, so one record's changes arrive in the order they committed.
// - A consumer group has its own committed offset per partition. A group that never committed starts
//   from the beginning of the log (Kafka: `auto.offset.reset=earliest`).
// - Delivery is at-least-once: an entry's offset is committed only after its handler succeeded, so a
//   crash before the commit delivers it again. Handlers must therefore be idempotent.
// - A handler that throws is retried (exponential backoff, full jitter) while its partition waits: a
//   later entry of that partition is never delivered before an earlier one. Other partitions go on.
//   After `maxAttempts` failed attempts the entry is dead-lettered and the group commits past it.
import type { LogEntry } from './change.ts';

export interface HandlerContext {
  /** 1 on the first delivery of this entry to this subscription, then 2, 3, … on each retry. */
  attempt: number;
  /** Aborted when the subscription stops: a long handler may cut its work short and throw. */
  signal: AbortSignal;
}

/**
 * Processes one entry. Resolving commits it (possibly batched with its neighbours); throwing retries
 * it. A handler may see an entry more than once (at-least-once), so it must be idempotent.
 */
export type ChangeHandler = (entry: LogEntry, ctx: HandlerContext) => Promise<void>;

/**
 * Processes consecutive entries of one partition at once (an optional speed-up: one transaction for
 * many entries rather than one each). Resolving handles them all; throwing hands each of them to the
 * subscription's `handler`, one by one, with its retries and dead letters — so the two must agree.
 */
export type BatchHandler = (entries: readonly LogEntry[], ctx: { signal: AbortSignal }) => Promise<void>;

/** Exponential backoff with full jitter: attempt n waits random() * min(maxMs, initialMs * 2^(n-1)). */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export interface SubscribeOptions {
  /** The consumer group: its committed offsets are its progress, shared by every member. */
  group: string;
  handler: ChangeHandler;
  /**
   * Optional: a log may hand entries over in batches through it (the embedded log does; the Kafka
   * log delivers one by one). `handler` is still required: it takes the entries of a failed batch.
   */
  batchHandler?: BatchHandler;
  /** Failed attempts before an entry is dead-lettered (at least 1). Default: the log's option. */
  maxAttempts?: number;
  /** Delay between attempts of a failing entry. Default: the log's option. */
  backoff?: BackoffOptions;
}

export interface Subscription {
  readonly group: string;
  /**
   * Stops delivering: aborts the handlers' signal, backoff sleeps and idle waits, waits for the
   * in-flight handlers to finish, and commits every entry whose handler succeeded. An entry whose
   * handler was interrupted (threw after the abort) is not committed and is delivered again to the
   * group's next subscription. Resolves once nothing of this subscription runs any more; idempotent.
   */
  stop(): Promise<void>;
}

export interface DeadLetter {
  group: string;
  partition: number;
  offset: number;
  changeId: string;
  /** How many attempts failed (the subscription's maxAttempts). */
  attempts: number;
  /** The last failure's message, at most DEAD_LETTER_ERROR_MAX_LENGTH characters. */
  error: string;
  /** ISO-8601 UTC. */
  createdAt: string;
  /** The dead-lettered entry, or undefined when the log no longer holds it (retention). */
  entry: LogEntry | undefined;
}

export interface EventLog {
  /**
   * Starts consuming for a group; delivery begins in the background. Each partition is consumed in
   * order, partitions independently of each other.
   */
  subscribe(options: SubscribeOptions): Subscription;
  /** Wakes idle consumers now (call after a local commit appended changes); an optional speed-up. */
  notify(): void;
  /** The group's dead-lettered entries, oldest first. */
  deadLetters(group: string): Promise<DeadLetter[]>;
  /** Entries appended but not yet committed by the group, summed over partitions. */
  lag(group: string): Promise<number>;
  /** Stops every subscription (as Subscription.stop) and releases the log; it accepts no new ones. */
  close(): Promise<void>;
}

/** Subset of pino's logger the logs use; pass a pino logger or anything with these two methods. */
export interface LogLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Dead-letter error messages are cut to this many characters. */
export const DEAD_LETTER_ERROR_MAX_LENGTH = 2000;

/** A thrown value as a dead-letter message: the Error's message (or the value as text), truncated. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  if (text.length <= DEAD_LETTER_ERROR_MAX_LENGTH) return text;
  const marker = '… (truncated)';
  return text.slice(0, DEAD_LETTER_ERROR_MAX_LENGTH - marker.length) + marker;
}

/** Delay before retry number `attempt` + 1, after `attempt` failures (full jitter). */
export function backoffDelay(attempt: number, backoff: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const cap = Math.min(backoff.maxMs, backoff.initialMs * 2 ** exponent);
  return Math.floor(random() * cap);
}

// Helpers every log implementation uses.

export function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer (got ${value})`);
  return value;
}

/** Reads the flag through a call, so TypeScript does not keep a narrowing across awaits. */
export function aborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** Resolves after ms, or at once when the signal aborts; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
