// The outbox relay: moves the store's `changes` (the transactional outbox) to the Kafka changes
// topic, partition for partition (outbox partition p is Kafka partition p, so a record's changes
// stay in one partition, in order), keyed by record id.
//
// Guarantees:
// - In order, no gaps: a partition is read in offset order from just after its recorded progress
//   (`log_relay_progress.relayed_offset`); a batch is recorded only after Kafka acknowledged all of
//   it (acks=all, idempotent producer), so progress never passes an entry that is not in Kafka.
// - At least once: a relay that dies (or fails) between the produce and the record leaves the
//   batch unrecorded; the next relay produces it again. Consumers see such duplicates with the same
//   (partition, offset) as the first copy and skip what they already handled (kafka-log.ts).
// - One relay per partition: a relay moves a partition only while it holds the partition's lease
//   (owner + lease_until in the same row). It renews its leases every round; a lease that expires
//   (a dead or stalled relay) is taken over by another relay. Recording progress is conditional on
//   still owning the lease, and a batch is only produced with enough lease left to finish it, so two
//   relays never move one partition at once (clocks of relay hosts must agree to within
//   `leaseMs - produceTimeoutMs`). Leases are spread: a relay takes at most its fair share
//   (partitions / live relays, rounded up) while another relay holds leases.
import { randomUUID } from 'node:crypto';
import type { Producer } from '@platformatic/kafka';
import type { Store } from '../../store/store.ts';
import { entryFromRow } from '../outbox.ts';
import { aborted, backoffDelay, sleep, type LogLogger } from '../log.ts';
import { encodeEntry } from './codec.ts';

export interface RelayProgressTable {
  partition: number;
  relayed_offset: number;
  owner: string | null;
  lease_until: string;
}

export interface RelayMembersTable {
  owner: string;
  seen_until: string;
}

export interface RelayOptions {
  store: Store;
  producer: Producer<string, string, string, string>;
  topic: string;
  partitions: number;
  /** Resolves once the topic exists (the relay waits for it before its first produce). */
  ready: () => Promise<void>;
  /** Changes read and produced per partition per round. Default 500. */
  batchSize?: number;
  /** How often the relay looks for new changes when nobody calls wake(). Default 100 ms. */
  idlePollMs?: number;
  /** How long a lease lasts without renewal. Default 15 s. */
  leaseMs?: number;
  /** Longest a produce may take; a produce needs this much lease left to start. Default 5 s. */
  produceTimeoutMs?: number;
  logger?: LogLogger | undefined;
  /** Names this relay in the lease rows. Default a random id. */
  owner?: string;
  /** For tests: called after Kafka acknowledged a batch, before its progress is recorded. */
  afterProduce?: (partition: number, lastOffset: number) => Promise<void> | void;
  /** For tests: called once a batch's progress is recorded. */
  onRelayed?: (partition: number, firstOffset: number, lastOffset: number) => void;
}

/** Thrown by an afterProduce hook to make the relay stop dead, as a kill would: nothing more is recorded. */
export class RelayHalted extends Error {
  constructor() {
    super('relay halted');
    this.name = 'RelayHalted';
  }
}

const DEFAULTS = { batchSize: 500, idlePollMs: 100, leaseMs: 15_000, produceTimeoutMs: 5_000 } as const;

export class OutboxRelay {
  readonly owner: string;
  readonly #options: RelayOptions;
  readonly #batchSize: number;
  readonly #idlePollMs: number;
  readonly #leaseMs: number;
  readonly #produceTimeoutMs: number;
  readonly #abort = new AbortController();
  /** Partitions this relay holds, with the lease expiry it last wrote (ms since the epoch). */
  readonly #held = new Map<number, number>();
  #wanted = false;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #halted = false;

  constructor(options: RelayOptions) {
    this.#options = options;
    this.owner = options.owner ?? `relay-${randomUUID()}`;
    this.#batchSize = options.batchSize ?? DEFAULTS.batchSize;
    this.#idlePollMs = options.idlePollMs ?? DEFAULTS.idlePollMs;
    this.#leaseMs = options.leaseMs ?? DEFAULTS.leaseMs;
    this.#produceTimeoutMs = options.produceTimeoutMs ?? DEFAULTS.produceTimeoutMs;
    if (this.#produceTimeoutMs >= this.#leaseMs) throw new RangeError('produceTimeoutMs must be shorter than leaseMs');
  }

  /** The partitions this relay holds now. */
  get partitions(): number[] {
    return [...this.#held.keys()].sort((a, b) => a - b);
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  /** Looks for new changes now (call after a commit appended some). */
  wake(): void {
    this.#wanted = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Stops after the current batch and gives its leases back (unless it was halted, as by a kill). */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.wake();
    await this.#running;
    if (!this.#halted && this.#held.size > 0) {
      await this.#db
        .updateTable('log_relay_progress')
        .set({ owner: null, lease_until: new Date(0).toISOString() })
        .where('owner', '=', this.owner)
        .execute()
        .catch((error: unknown) => this.#options.logger?.warn({ err: error }, 'kafka relay: releasing leases failed'));
    }
    if (!this.#halted) {
      await this.#db
        .deleteFrom('log_relay_members')
        .where('owner', '=', this.owner)
        .execute()
        .catch((error: unknown) => this.#options.logger?.warn({ err: error }, 'kafka relay: leaving the members failed'));
    }
    this.#held.clear();
  }

  #wakeWanted(): boolean {
    return this.#wanted;
  }

  get #db() {
    return this.#options.store.db.$extendTables<{ log_relay_progress: RelayProgressTable; log_relay_members: RelayMembersTable }>();
  }

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    const { logger } = this.#options;
    for (let failures = 0; !signal.aborted; ) {
      try {
        await this.#options.ready();
        break;
      } catch (error) {
        failures++;
        logger?.warn({ err: error, attempt: failures }, 'kafka relay: the changes topic is not ready; retrying');
        await sleep(backoffDelay(failures, { initialMs: 200, maxMs: 5_000 }), signal);
      }
    }
    let failures = 0;
    while (!signal.aborted) {
      this.#wanted = false;
      let busy = false;
      try {
        await this.#claim();
        // Settle every partition's batch before going on (a failed one must not leave another
        // partition's batch in flight into the next round).
        const results = await Promise.allSettled(this.partitions.map((partition) => this.#relayPartition(partition)));
        const failed = results.find((r) => r.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        busy = results.some((r) => r.status === 'fulfilled' && r.value);
        failures = 0;
      } catch (error) {
        if (error instanceof RelayHalted) {
          this.#halted = true;
          return;
        }
        failures++;
        logger?.warn({ err: error, attempt: failures }, 'kafka relay: a round failed; retrying');
        await sleep(backoffDelay(failures, { initialMs: 100, maxMs: 5_000 }), signal);
        continue;
      }
      if (busy || this.#wakeWanted() || aborted(signal)) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#wake = undefined;
          resolve();
        }, this.#idlePollMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /**
   * Renews the leases it holds and takes free or expired ones, up to its fair share. Renewal is
   * due once a third of the lease has passed, so an idle relay does not write every round.
   */
  async #claim(): Promise<void> {
    const db = this.#db;
    const { partitions } = this.#options;
    const now = Date.now();
    const nowIso = new Date(now).toISOString();
    const until = now + this.#leaseMs;
    const untilIso = new Date(until).toISOString();
    const rows = await db.selectFrom('log_relay_progress').selectAll().execute();
    const known = new Set(rows.map((row) => row.partition));
    const missing = Array.from({ length: partitions }, (_, p) => p).filter((p) => !known.has(p));
    if (missing.length > 0) {
      await db
        .insertInto('log_relay_progress')
        .values(missing.map((partition) => ({ partition, relayed_offset: 0, owner: null, lease_until: new Date(0).toISOString() })))
        .onConflict((oc) => oc.column('partition').doNothing())
        .execute();
      for (const partition of missing) rows.push({ partition, relayed_offset: 0, owner: null, lease_until: new Date(0).toISOString() });
    }
    // Announce this relay, and count the live ones (those holding a lease count even if their
    // member row lapsed).
    await db
      .insertInto('log_relay_members')
      .values({ owner: this.owner, seen_until: untilIso })
      .onConflict((oc) => oc.column('owner').doUpdateSet({ seen_until: untilIso }))
      .execute();
    const members = await db.selectFrom('log_relay_members').select('owner').where('seen_until', '>', nowIso).execute();
    const others = new Set([
      ...members.map((m) => m.owner).filter((owner) => owner !== this.owner),
      ...rows.filter((r) => r.owner !== null && r.owner !== this.owner && r.lease_until > nowIso).map((r) => r.owner),
    ]);
    const share = Math.ceil(rows.length / (others.size + 1));
    // Forget leases another relay took over (ours expired).
    for (const row of rows) if (row.owner !== this.owner) this.#held.delete(row.partition);
    const renew = rows.filter((r) => r.owner === this.owner && (this.#held.get(r.partition) ?? 0) - now < (this.#leaseMs * 2) / 3);
    const free = rows.filter((r) => r.owner === null || (r.owner !== this.owner && r.lease_until <= nowIso));
    const take = free.slice(0, Math.max(0, share - rows.filter((r) => r.owner === this.owner).length));
    // Give back what is beyond the fair share while another relay runs, so work spreads.
    const mine = rows.filter((r) => r.owner === this.owner && r.lease_until > nowIso);
    const excess = others.size > 0 && mine.length > share ? mine.slice(share).map((r) => r.partition) : [];
    if (excess.length > 0) {
      await db
        .updateTable('log_relay_progress')
        .set({ owner: null, lease_until: new Date(0).toISOString() })
        .where('owner', '=', this.owner)
        .where('partition', 'in', excess)
        .execute();
      for (const partition of excess) this.#held.delete(partition);
    }
    for (const row of [...renew, ...take].filter((r) => !excess.includes(r.partition))) {
      // Conditional on the row still being ours or free as we read it: a concurrent relay that
      // won the race makes this update match nothing.
      const result = await db
        .updateTable('log_relay_progress')
        .set({ owner: this.owner, lease_until: untilIso })
        .where('partition', '=', row.partition)
        .where((eb) =>
          row.owner === this.owner
            ? eb('owner', '=', this.owner)
            : eb.and([row.owner === null ? eb('owner', 'is', null) : eb('owner', '=', row.owner), eb('lease_until', '=', row.lease_until)]),
        )
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) this.#held.set(row.partition, until);
      else this.#held.delete(row.partition);
    }
  }

  /** Relays one batch of a partition; true when the batch was full (more may be waiting). */
  async #relayPartition(partition: number): Promise<boolean> {
    const leaseUntil = this.#held.get(partition);
    if (leaseUntil === undefined || leaseUntil - Date.now() < this.#produceTimeoutMs) return false;
    const db = this.#db;
    const progress = await db
      .selectFrom('log_relay_progress')
      .select(['relayed_offset', 'owner'])
      .where('partition', '=', partition)
      .executeTakeFirst();
    if (progress?.owner !== this.owner) {
      this.#held.delete(partition);
      return false;
    }
    const rows = await this.#options.store.db
      .selectFrom('changes')
      .selectAll()
      .where('partition', '=', partition)
      .where('offset', '>', progress.relayed_offset)
      .orderBy('offset')
      .limit(this.#batchSize)
      .execute();
    const first = rows[0];
    const last = rows.at(-1);
    if (first === undefined || last === undefined) return false;
    const { topic, producer } = this.#options;
    const produced = producer.send({
      messages: rows.map((row) => {
        const entry = entryFromRow(row);
        return { topic, partition, key: entry.recordId, value: encodeEntry(entry) };
      }),
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`producing to partition ${partition} took longer than ${this.#produceTimeoutMs} ms`));
      }, this.#produceTimeoutMs);
    });
    try {
      await Promise.race([produced, timeout]);
    } finally {
      clearTimeout(timer);
    }
    await this.#options.afterProduce?.(partition, last.offset);
    const recorded = await db
      .updateTable('log_relay_progress')
      .set({ relayed_offset: last.offset })
      .where('partition', '=', partition)
      .where('owner', '=', this.owner)
      .where('relayed_offset', '<', last.offset)
      .executeTakeFirst();
    if (Number(recorded.numUpdatedRows) !== 1) {
      this.#held.delete(partition);
      this.#options.logger?.warn({ partition, offset: last.offset }, 'kafka relay: lost the lease of a partition while relaying; another relay goes on from its progress');
      return false;
    }
    this.#options.onRelayed?.(partition, first.offset, last.offset);
    return rows.length === this.#batchSize;
  }
}
