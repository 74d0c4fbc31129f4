// The embedded log: consumes the outbox tables (`changes`, `log_partitions`) directly, keeps each
// consumer group's progress in `log_offsets` and its dead letters in `log_dead_letters`. Default log
// of a single Tandem process, on SQLite or PostgreSQL.
//
// Shape: one poller per log reads the partition heads (`log_partitions`, updated in the appending
// transaction, so a head is visible exactly when its changes are) every `idlePollMs`, or at once on
// `notify()`, and wakes the partition workers that are behind. A worker per (subscription,
// partition) fetches a batch after its position, runs the handler for each entry in offset order
// (retrying a failing one while the partition waits), and commits the last handled offset.
//
// One consuming process per group: two processes consuming the same group of one PostgreSQL
// database would both deliver every entry. Scale-out across processes uses the Kafka log.
import { entryFromRow, readDeadLetters } from '../outbox.ts';
import type { Store } from '../../store/store.ts';
import type { ChangesTable } from '../../store/schema.ts';
import type { LogEntry } from '../change.ts';
import {
  aborted,
  backoffDelay,
  positiveInteger,
  sleep,
  describeError,
  type BackoffOptions,
  type BatchHandler,
  type ChangeHandler,
  type DeadLetter,
  type EventLog,
  type LogLogger,
  type SubscribeOptions,
  type Subscription,
} from '../log.ts';

export interface EmbeddedLogOptions {
  store: Store;
  /** The outbox's partition count; partitions found beyond it in the store are consumed as well. */
  partitions: number;
  /** Failed attempts before an entry is dead-lettered, unless a subscription says otherwise. */
  maxAttempts: number;
  /** Retry delays, unless a subscription says otherwise. Default 200 ms doubling up to 60 s. */
  backoff?: BackoffOptions;
  /** Entries fetched per query and committed together. Default 500. */
  batchSize?: number;
  /** How often idle consumers look for new entries when nobody calls notify(). Default 200 ms. */
  idlePollMs?: number;
  logger?: LogLogger | undefined;
  /** For tests: the jitter source, default Math.random. */
  random?: () => number;
}

export const EMBEDDED_LOG_DEFAULTS = {
  backoff: { initialMs: 200, maxMs: 60_000 },
  batchSize: 500,
  idlePollMs: 200,
} as const;

/** Creates the embedded log over a migrated store. Close it before closing the store. */
export function createEmbeddedLog(options: EmbeddedLogOptions): EventLog {
  return new EmbeddedLog(options);
}

interface Settings {
  store: Store;
  partitions: number;
  maxAttempts: number;
  backoff: BackoffOptions;
  batchSize: number;
  idlePollMs: number;
  logger: LogLogger | undefined;
  random: () => number;
  turns: Turns;
}

function checkBackoff(backoff: BackoffOptions): BackoffOptions {
  const { initialMs, maxMs } = backoff;
  if (!(initialMs >= 0) || !(maxMs >= initialMs)) {
    throw new RangeError(`backoff must satisfy 0 <= initialMs <= maxMs (got ${initialMs}, ${maxMs})`);
  }
  return { initialMs, maxMs };
}

/** How long a worker runs handlers before it lets the event loop (and the other workers) go on. */
const SLICE_MS = 10;
/** Entries handed to a batch handler at once, at most. */
const BATCH_CHUNK = 64;

/**
 * Turns on the event loop, one per loop iteration, shared by a log's workers. better-sqlite3 answers
 * synchronously, so draining a backlog would otherwise run on microtasks alone and starve the event
 * loop (HTTP, timers) until every partition is caught up; with turns, I/O runs between time slices.
 */
class Turns {
  readonly #waiting: (() => void)[] = [];
  #scheduled = false;

  take(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#waiting.shift()?.();
      if (this.#waiting.length > 0) this.#schedule();
    });
  }
}

class EmbeddedLog implements EventLog {
  readonly #settings: Settings;
  readonly #subscriptions = new Map<string, EmbeddedSubscription>();
  readonly #closing = new AbortController();
  #poller: Promise<void> | undefined;
  #pollRequested = false;
  #wakePoller: (() => void) | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: EmbeddedLogOptions) {
    this.#settings = {
      store: options.store,
      partitions: positiveInteger('partitions', options.partitions),
      maxAttempts: positiveInteger('maxAttempts', options.maxAttempts),
      backoff: checkBackoff(options.backoff ?? EMBEDDED_LOG_DEFAULTS.backoff),
      batchSize: positiveInteger('batchSize', options.batchSize ?? EMBEDDED_LOG_DEFAULTS.batchSize),
      idlePollMs: positiveInteger('idlePollMs', options.idlePollMs ?? EMBEDDED_LOG_DEFAULTS.idlePollMs),
      logger: options.logger,
      random: options.random ?? Math.random,
      turns: new Turns(),
    };
  }

  subscribe(options: SubscribeOptions): Subscription {
    if (this.#closing.signal.aborted) throw new Error('The log is closed');
    const { group } = options;
    if (group === '') throw new RangeError('group must not be empty');
    if (this.#subscriptions.has(group)) {
      throw new Error(`Group "${group}" already has an active subscription on this log`);
    }
    const subscription = new EmbeddedSubscription(
      this.#settings,
      {
        group,
        handler: options.handler,
        batchHandler: options.batchHandler,
        maxAttempts: positiveInteger('maxAttempts', options.maxAttempts ?? this.#settings.maxAttempts),
        backoff: checkBackoff(options.backoff ?? this.#settings.backoff),
      },
      {
        ready: () => {
          this.notify();
        },
        stopped: () => {
          if (this.#subscriptions.get(group) === subscription) this.#subscriptions.delete(group);
        },
      },
    );
    this.#subscriptions.set(group, subscription);
    this.#poller ??= this.#pollLoop();
    return subscription;
  }

  notify(): void {
    this.#pollRequested = true;
    const wake = this.#wakePoller;
    this.#wakePoller = undefined;
    wake?.();
  }

  async deadLetters(group: string): Promise<DeadLetter[]> {
    return readDeadLetters(this.#settings.store.db, group);
  }

  async lag(group: string): Promise<number> {
    const rows = await this.#settings.store.db
      .selectFrom('log_partitions as p')
      .leftJoin('log_offsets as o', (join) => join.onRef('o.partition', '=', 'p.partition').on('o.group_name', '=', group))
      .select(['p.next_offset as head', 'o.committed_offset as committed'])
      .execute();
    // `next_offset` holds the last offset handed out (the outbox starts it at 1 for the first entry).
    return rows.reduce((sum, row) => sum + Math.max(0, row.head - (row.committed ?? 0)), 0);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort();
      this.notify();
      await Promise.all([...this.#subscriptions.values()].map((subscription) => subscription.stop()));
      await this.#poller;
    })();
    return this.#closed;
  }

  #pollWanted(): boolean {
    return this.#pollRequested;
  }

  /** Reads the partition heads and wakes every worker behind one; on notify() or every idlePollMs. */
  async #pollLoop(): Promise<void> {
    const { store, idlePollMs, logger } = this.#settings;
    const signal = this.#closing.signal;
    while (!signal.aborted) {
      this.#pollRequested = false;
      const ready = [...this.#subscriptions.values()].filter((subscription) => subscription.ready);
      if (ready.length > 0) {
        try {
          const heads = await store.db.selectFrom('log_partitions').select(['partition', 'next_offset']).execute();
          for (const subscription of ready) subscription.wakeBehind(heads);
        } catch (error) {
          logger?.warn({ err: error }, 'event log: reading partition heads failed; retrying');
        }
      }
      if (this.#pollWanted() || aborted(signal)) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#wakePoller = undefined;
          resolve();
        }, idlePollMs);
        this.#wakePoller = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

interface SubscriptionSettings {
  group: string;
  handler: ChangeHandler;
  batchHandler: BatchHandler | undefined;
  maxAttempts: number;
  backoff: BackoffOptions;
}

interface SubscriptionHooks {
  /** The committed offsets are loaded: the log should look for work now. */
  ready(): void;
  stopped(): void;
}

class EmbeddedSubscription implements Subscription {
  readonly group: string;
  readonly #log: Settings;
  readonly #settings: SubscriptionSettings;
  readonly #hooks: SubscriptionHooks;
  readonly #abort = new AbortController();
  readonly #workers = new Map<number, PartitionWorker>();
  readonly #committed = new Map<number, number>();
  readonly #running: Promise<void>[] = [];
  readonly #started: Promise<void>;
  #ready = false;
  #stopped: Promise<void> | undefined;

  constructor(log: Settings, settings: SubscriptionSettings, hooks: SubscriptionHooks) {
    this.group = settings.group;
    this.#log = log;
    this.#settings = settings;
    this.#hooks = hooks;
    this.#started = this.#start();
  }

  get ready(): boolean {
    return this.#ready && !this.#abort.signal.aborted;
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#abort.abort();
      for (const worker of this.#workers.values()) worker.wake();
      await this.#started;
      await Promise.all(this.#running);
      this.#hooks.stopped();
    })();
    return this.#stopped;
  }

  /** Wakes the workers of partitions whose head is past their position (creating missing workers). */
  wakeBehind(heads: ReadonlyArray<{ partition: number; next_offset: number }>): void {
    for (const head of heads) {
      const worker = this.#worker(head.partition);
      if (worker !== undefined && head.next_offset > worker.position) worker.wake();
    }
  }

  async #start(): Promise<void> {
    const signal = this.#abort.signal;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const rows = await this.#log.store.db
          .selectFrom('log_offsets')
          .select(['partition', 'committed_offset'])
          .where('group_name', '=', this.group)
          .execute();
        for (const row of rows) this.#committed.set(row.partition, row.committed_offset);
        break;
      } catch (error) {
        this.#log.logger?.warn({ err: error, group: this.group, attempt }, 'event log: loading committed offsets failed; retrying');
        await sleep(backoffDelay(attempt, this.#settings.backoff, this.#log.random), signal);
      }
    }
    if (signal.aborted) return;
    for (let partition = 0; partition < this.#log.partitions; partition++) this.#worker(partition);
    this.#ready = true;
    this.#hooks.ready();
  }

  #worker(partition: number): PartitionWorker | undefined {
    let worker = this.#workers.get(partition);
    if (worker === undefined) {
      if (this.#abort.signal.aborted) return undefined;
      if (partition >= this.#log.partitions) {
        this.#log.logger?.warn(
          { group: this.group, partition, partitions: this.#log.partitions },
          'event log: found a partition beyond the configured count; consuming it too',
        );
      }
      worker = new PartitionWorker(this.#log, this.#settings, partition, this.#committed.get(partition) ?? 0, this.#abort.signal);
      this.#workers.set(partition, worker);
      this.#running.push(
        worker.run().catch((error: unknown) => {
          this.#log.logger?.error({ err: error, group: this.group, partition }, 'event log: partition worker crashed');
        }),
      );
    }
    return worker;
  }
}

type Outcome = 'handled' | 'dead-lettered' | 'stopped';

class PartitionWorker {
  readonly #log: Settings;
  readonly #settings: SubscriptionSettings;
  readonly #partition: number;
  readonly #signal: AbortSignal;
  /** When this worker last took its turn on the event loop (performance.now()). */
  #sliceStart = 0;
  /** Last offset whose handler succeeded or that was dead-lettered: the next fetch starts after it. */
  #handled: number;
  /** Last offset stored in log_offsets for this group and partition. */
  #committed: number;
  #pending = false;
  #wake: (() => void) | undefined;

  constructor(log: Settings, settings: SubscriptionSettings, partition: number, committed: number, signal: AbortSignal) {
    this.#log = log;
    this.#settings = settings;
    this.#partition = partition;
    this.#handled = committed;
    this.#committed = committed;
    this.#signal = signal;
  }

  get position(): number {
    return this.#handled;
  }

  /** Makes the worker fetch again once it is done with the current batch (or at once when idle). */
  wake(): void {
    this.#pending = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async run(): Promise<void> {
    const signal = this.#signal;
    let failures = 0;
    while (!signal.aborted) {
      if (!this.#pending) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        continue;
      }
      this.#pending = false;
      await this.#log.turns.take();
      if (aborted(signal)) break;
      let rows: ChangesTable[];
      try {
        rows = await this.#fetch();
        failures = 0;
      } catch (error) {
        failures++;
        this.#log.logger?.warn(
          { err: error, group: this.#settings.group, partition: this.#partition, attempt: failures },
          'event log: fetching entries failed; retrying',
        );
        this.#pending = true;
        await sleep(backoffDelay(failures, this.#settings.backoff, this.#log.random), signal);
        continue;
      }
      this.#sliceStart = performance.now();
      for (let start = 0; start < rows.length && !aborted(signal); start += BATCH_CHUNK) {
        const chunk = rows.slice(start, start + BATCH_CHUNK);
        if (!(await this.#deliverBatch(chunk)) && (await this.#deliverEach(chunk)) === 'stopped') break;
        await this.#yieldAfterSlice();
      }
      await this.#commit();
      if (rows.length === this.#log.batchSize) this.#pending = true;
    }
    // Stopping: keep the progress of every handler that succeeded.
    await this.#commit();
  }

  #fetch(): Promise<ChangesTable[]> {
    return this.#log.store.db
      .selectFrom('changes')
      .selectAll()
      .where('partition', '=', this.#partition)
      .where('offset', '>', this.#handled)
      .orderBy('offset')
      .limit(this.#log.batchSize)
      .execute();
  }

  /** Lets the event loop (and the other partitions) go on once this worker ran for SLICE_MS. */
  async #yieldAfterSlice(): Promise<void> {
    if (performance.now() - this.#sliceStart <= SLICE_MS) return;
    await this.#log.turns.take();
    this.#sliceStart = performance.now();
  }

  /** Delivers the rows one by one, in order; stops at the first the subscription's stop interrupts. */
  async #deliverEach(rows: readonly ChangesTable[]): Promise<'handled' | 'stopped'> {
    for (const row of rows) {
      await this.#yieldAfterSlice();
      if ((await this.#deliver(row)) === 'stopped') return 'stopped';
      this.#handled = row.offset;
    }
    return 'handled';
  }

  /**
   * Hands the rows to the batch handler, if there is one: true when it handled them all (the
   * position moves past them). False: no batch handler, or it threw; the caller then delivers them
   * one by one (#deliverEach), with their retries and dead letters.
   */
  async #deliverBatch(rows: readonly ChangesTable[]): Promise<boolean> {
    const { batchHandler, group } = this.#settings;
    const last = rows.at(-1);
    if (batchHandler === undefined || last === undefined || rows.length < 2 || this.#signal.aborted) return false;
    try {
      await batchHandler(rows.map(entryFromRow), { signal: this.#signal });
      this.#handled = last.offset;
      return true;
    } catch (error) {
      if (!aborted(this.#signal)) {
        this.#log.logger?.warn({ group, partition: this.#partition, entries: rows.length, err: error }, 'event log: batch handler failed; delivering one by one');
      }
      return false;
    }
  }

  /** Runs the handler until it succeeds, the entry is dead-lettered, or the subscription stops. */
  async #deliver(row: ChangesTable): Promise<Outcome> {
    const signal = this.#signal;
    const { handler, maxAttempts, backoff, group } = this.#settings;
    let entry: LogEntry | undefined;
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return 'stopped';
      try {
        entry ??= entryFromRow(row);
        await handler(entry, { attempt, signal });
        return 'handled';
      } catch (error) {
        // An interrupted handler is not a failure of the entry: the next subscription gets it again.
        if (aborted(signal)) return 'stopped';
        if (attempt >= maxAttempts) return this.#deadLetter(row, attempt, error);
        this.#log.logger?.warn(
          { group, partition: this.#partition, offset: row.offset, changeId: row.id, attempt, err: error },
          'event log: handler failed; retrying',
        );
        await sleep(backoffDelay(attempt, backoff, this.#log.random), signal);
      }
    }
  }

  /** Records the dead letter and commits past it, in one transaction. */
  async #deadLetter(row: ChangesTable, attempts: number, error: unknown): Promise<Outcome> {
    const { group } = this.#settings;
    const message = describeError(error);
    this.#log.logger?.error(
      { group, partition: this.#partition, offset: row.offset, changeId: row.id, attempts, err: error },
      'event log: handler failed on every attempt; dead-lettering the entry',
    );
    for (let failures = 1; ; failures++) {
      try {
        await this.#log.store.transaction(async (trx) => {
          await trx
            .insertInto('log_dead_letters')
            .values({
              group_name: group,
              partition: this.#partition,
              offset: row.offset,
              change_id: row.id,
              attempts,
              error: message,
              created_at: new Date().toISOString(),
            })
            .execute();
          await this.#writeOffset(trx, row.offset);
        });
        this.#handled = row.offset;
        this.#committed = row.offset;
        return 'dead-lettered';
      } catch (writeError) {
        this.#log.logger?.warn(
          { err: writeError, group, partition: this.#partition, offset: row.offset, attempt: failures },
          'event log: writing a dead letter failed; retrying',
        );
        if (aborted(this.#signal)) return 'stopped';
        await sleep(backoffDelay(failures, this.#settings.backoff, this.#log.random), this.#signal);
        if (aborted(this.#signal)) return 'stopped';
      }
    }
  }

  /** Commits #handled. Retries until stored; once stopping, gives up after one failure (redelivery). */
  async #commit(): Promise<void> {
    for (let failures = 1; this.#handled > this.#committed; failures++) {
      const offset = this.#handled;
      try {
        await this.#writeOffset(this.#log.store.db, offset);
        this.#committed = offset;
      } catch (error) {
        this.#log.logger?.warn(
          { err: error, group: this.#settings.group, partition: this.#partition, offset, attempt: failures },
          'event log: committing the offset failed; retrying',
        );
        if (this.#signal.aborted) return;
        await sleep(backoffDelay(failures, this.#settings.backoff, this.#log.random), this.#signal);
      }
    }
  }

  /** Upserts the group's offset; never moves it backwards. */
  async #writeOffset(db: Pick<Store['db'], 'insertInto'>, offset: number): Promise<void> {
    await db
      .insertInto('log_offsets')
      .values({ group_name: this.#settings.group, partition: this.#partition, committed_offset: offset })
      .onConflict((oc) =>
        oc
          .columns(['group_name', 'partition'])
          .doUpdateSet((eb) => ({ committed_offset: eb.ref('excluded.committed_offset') }))
          .where('log_offsets.committed_offset', '<', offset),
      )
      .execute();
  }
}
