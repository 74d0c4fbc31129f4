// The Kafka log: the store's outbox moved to Kafka by the relay (relay.ts), consumed through Kafka
// consumer groups. Used when KAFKA_BROKERS is set; many Tandem processes can share one store and
// one cluster (a group's partitions spread over its members).
//
// Topics (the prefix names the installation, default `tandem.`):
// - `<prefix>changes`: every change, keyed by record id; outbox partition p = Kafka partition p, so
//   it is created with the outbox's partition count.
// - `<prefix>dead-letters`: every dead-lettered entry (value: the entry; headers: group, attempts,
//   error), for tools and people. `deadLetters(group)` answers from the store's `log_dead_letters`
//   table, written in the same step, which can be queried by group without reading a topic.
// Consumer group ids are `<prefix><group>`.
//
// Delivery: a subscription is one Kafka consumer of its group. Fetched entries go to a queue per
// partition; each partition's queue is handled in order by its own worker, so a failing entry
// (retried with backoff) holds back its partition only. Offsets are committed to Kafka after the
// handler succeeded (batched every `commitIntervalMs`, and on stop). An entry whose (partition,
// outbox offset) is not above the last one handled in that partition is a relay duplicate: it is
// skipped and committed past, not handed to the handler.
import { randomUUID } from 'node:crypto';
import {
  Admin,
  Consumer,
  MessagesStreamModes,
  Producer,
  ProduceAcks,
  stringDeserializers,
  stringSerializers,
  type Message,
  type MessagesStream,
} from '@platformatic/kafka';
import type { Store } from '../../store/store.ts';
import type { LogEntry } from '../change.ts';
import { readDeadLetters } from '../outbox.ts';
import {
  aborted,
  backoffDelay,
  positiveInteger,
  sleep,
  describeError,
  type BackoffOptions,
  type ChangeHandler,
  type DeadLetter,
  type EventLog,
  type LogLogger,
  type SubscribeOptions,
  type Subscription,
} from '../log.ts';
import { decodeEntry, encodeEntry } from './codec.ts';
import { OutboxRelay, type RelayOptions } from './relay.ts';

export interface KafkaLogOptions {
  store: Store;
  /** host:port of one or more brokers. */
  brokers: string[];
  /** Prefix of the topic and group names of this installation. Default `tandem.`. */
  topicPrefix?: string;
  /** The outbox's partition count: the changes topic is created with it. */
  partitions: number;
  /** Failed attempts before an entry is dead-lettered, unless a subscription says otherwise. */
  maxAttempts: number;
  backoff?: BackoffOptions;
  /** Run the outbox relay in this process (default true). */
  relay?: boolean;
  /** Relay tuning and test hooks. */
  relayOptions?: Pick<RelayOptions, 'batchSize' | 'idlePollMs' | 'leaseMs' | 'produceTimeoutMs' | 'afterProduce' | 'onRelayed' | 'owner'>;
  /** How long a fetch waits for new entries at most. Default 100 ms. */
  maxWaitMs?: number;
  /** How often handled offsets are committed. Default 100 ms. */
  commitIntervalMs?: number;
  /** Replication factor of the topics it creates. Default 1. */
  replicas?: number;
  /** Client id prefix. Default `tandem`. */
  clientId?: string;
  logger?: LogLogger | undefined;
  random?: () => number;
}

export const KAFKA_LOG_DEFAULTS = {
  topicPrefix: 'tandem.',
  backoff: { initialMs: 200, maxMs: 60_000 },
  maxWaitMs: 100,
  commitIntervalMs: 100,
} as const;

/** Entries buffered in memory per subscription before it stops fetching until handlers catch up. */
const MAX_BUFFERED = 10_000;

export interface KafkaLog extends EventLog {
  readonly topics: { changes: string; deadLetters: string };
  /** The relay of this process, when it runs one. */
  readonly relay: OutboxRelay | undefined;
  /** Deletes this installation's topics (tests). The log must be closed. */
  deleteTopics(): Promise<void>;
}

/** Creates the Kafka log over a migrated store and starts its relay. Close it before the store. */
export function createKafkaLog(options: KafkaLogOptions): KafkaLog {
  return new KafkaEventLog(options);
}

interface Settings {
  store: Store;
  brokers: string[];
  clientId: string;
  prefix: string;
  changesTopic: string;
  deadLetterTopic: string;
  partitions: number;
  maxAttempts: number;
  backoff: BackoffOptions;
  maxWaitMs: number;
  commitIntervalMs: number;
  logger: LogLogger | undefined;
  random: () => number;
  producer: () => Producer<string, string, string, string>;
  ready: () => Promise<void>;
}

class KafkaEventLog implements KafkaLog {
  readonly topics: { changes: string; deadLetters: string };
  readonly relay: OutboxRelay | undefined;
  readonly #settings: Settings;
  readonly #replicas: number;
  readonly #subscriptions = new Set<KafkaSubscription>();
  #producer: Producer<string, string, string, string> | undefined;
  #ready: Promise<void> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(options: KafkaLogOptions) {
    if (options.brokers.length === 0) throw new RangeError('brokers must name at least one broker');
    const prefix = options.topicPrefix ?? KAFKA_LOG_DEFAULTS.topicPrefix;
    this.topics = { changes: `${prefix}changes`, deadLetters: `${prefix}dead-letters` };
    this.#replicas = options.replicas ?? 1;
    this.#settings = {
      store: options.store,
      brokers: options.brokers,
      clientId: options.clientId ?? 'tandem',
      prefix,
      changesTopic: this.topics.changes,
      deadLetterTopic: this.topics.deadLetters,
      partitions: positiveInteger('partitions', options.partitions),
      maxAttempts: positiveInteger('maxAttempts', options.maxAttempts),
      backoff: options.backoff ?? KAFKA_LOG_DEFAULTS.backoff,
      maxWaitMs: options.maxWaitMs ?? KAFKA_LOG_DEFAULTS.maxWaitMs,
      commitIntervalMs: options.commitIntervalMs ?? KAFKA_LOG_DEFAULTS.commitIntervalMs,
      logger: options.logger,
      random: options.random ?? Math.random,
      producer: () => this.#getProducer(),
      ready: () => this.#ensureTopics(),
    };
    if (options.relay ?? true) {
      this.relay = new OutboxRelay({
        store: options.store,
        producer: this.#getProducer(),
        topic: this.topics.changes,
        partitions: this.#settings.partitions,
        ready: () => this.#ensureTopics(),
        logger: options.logger,
        ...options.relayOptions,
      });
      this.relay.start();
    }
  }

  #getProducer(): Producer<string, string, string, string> {
    this.#producer ??= new Producer({
      clientId: `${this.#settings.clientId}-producer`,
      bootstrapBrokers: this.#settings.brokers,
      serializers: stringSerializers,
      idempotent: true,
      acks: ProduceAcks.ALL,
      retries: 5,
      retryDelay: 200,
    });
    // As the consumer's (below): an unheard 'error' event would end the process. A failed produce
    // also rejects its call, which the relay retries.
    this.#producer.on('error', (error: unknown) => this.#settings.logger?.warn({ err: error }, 'kafka log: producer error'));
    return this.#producer;
  }

  #admin(): Admin {
    return new Admin({ clientId: `${this.#settings.clientId}-admin`, bootstrapBrokers: this.#settings.brokers, retries: 3, retryDelay: 200 });
  }

  /** Creates the topics when missing (once per log; a failure is retried on the next call). */
  #ensureTopics(): Promise<void> {
    this.#ready ??= (async () => {
      const admin = this.#admin();
      try {
        const existing = new Set(await admin.listTopics());
        const missing = [this.topics.changes, this.topics.deadLetters].filter((t) => !existing.has(t));
        if (missing.length > 0) {
          try {
            await admin.createTopics({ topics: missing, partitions: this.#settings.partitions, replicas: this.#replicas });
          } catch (error) {
            // Another process may have created them meanwhile.
            const now = new Set(await admin.listTopics());
            if (!missing.every((t) => now.has(t))) throw error;
          }
        }
        const metadata = await admin.metadata({ topics: [this.topics.changes] });
        const count = metadata.topics.get(this.topics.changes)?.partitionsCount ?? 0;
        if (count !== this.#settings.partitions) {
          throw new Error(
            `Kafka topic ${this.topics.changes} has ${count} partitions, the outbox ${this.#settings.partitions}: ` +
              'they must be equal (keys would land in other partitions)',
          );
        }
      } finally {
        await admin.close();
      }
    })();
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }

  subscribe(options: SubscribeOptions): Subscription {
    if (this.#closing) throw new Error('The log is closed');
    if (options.group === '') throw new RangeError('group must not be empty');
    for (const subscription of this.#subscriptions) {
      if (subscription.group === options.group) throw new Error(`Group "${options.group}" already has an active subscription on this log`);
    }
    const subscription = new KafkaSubscription(this.#settings, {
      group: options.group,
      handler: options.handler,
      maxAttempts: positiveInteger('maxAttempts', options.maxAttempts ?? this.#settings.maxAttempts),
      backoff: options.backoff ?? this.#settings.backoff,
      stopped: () => this.#subscriptions.delete(subscription),
    });
    this.#subscriptions.add(subscription);
    return subscription;
  }

  notify(): void {
    this.relay?.wake();
  }

  async deadLetters(group: string): Promise<DeadLetter[]> {
    return readDeadLetters(this.#settings.store.db, group);
  }

  /**
   * Entries the group has not committed: in Kafka (end offset − committed offset, per partition)
   * plus those still in the outbox, not yet relayed. Relay duplicates not yet consumed count too.
   */
  async lag(group: string): Promise<number> {
    const { store, partitions, changesTopic, prefix } = this.#settings;
    const relayed = await store.db
      .$extendTables<{ log_relay_progress: { partition: number; relayed_offset: number } }>()
      .selectFrom('log_relay_progress')
      .select(['partition', 'relayed_offset'])
      .execute();
    const heads = await store.db.selectFrom('log_partitions').select(['partition', 'next_offset']).execute();
    const progress = new Map(relayed.map((r) => [r.partition, r.relayed_offset]));
    let lag = heads.reduce((sum, head) => sum + Math.max(0, head.next_offset - (progress.get(head.partition) ?? 0)), 0);

    await this.#ensureTopics();
    const admin = this.#admin();
    try {
      const indexes = Array.from({ length: partitions }, (_, p) => p);
      const [ends, starts, groups] = await Promise.all([
        admin.listOffsets({ topics: [{ name: changesTopic, partitions: indexes.map((p) => ({ partitionIndex: p, timestamp: -1n })) }] }),
        admin.listOffsets({ topics: [{ name: changesTopic, partitions: indexes.map((p) => ({ partitionIndex: p, timestamp: -2n })) }] }),
        admin.listConsumerGroupOffsets({ groups: [{ groupId: `${prefix}${group}`, topics: [{ name: changesTopic, partitionIndexes: indexes }] }] }),
      ]);
      const start = new Map(starts[0]?.partitions.map((p) => [p.partitionIndex, p.offset]) ?? []);
      const committed = new Map(groups[0]?.topics.find((t) => t.name === changesTopic)?.partitions.map((p) => [p.partitionIndex, p.committedOffset]) ?? []);
      for (const end of ends[0]?.partitions ?? []) {
        const from = [committed.get(end.partitionIndex) ?? -1n, start.get(end.partitionIndex) ?? 0n].reduce((a, b) => (a > b ? a : b));
        if (end.offset > from) lag += Number(end.offset - from);
      }
    } finally {
      await admin.close();
    }
    return lag;
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      await Promise.all([...this.#subscriptions].map((subscription) => subscription.stop()));
      await this.relay?.stop();
      await this.#producer?.close().catch((error: unknown) => this.#settings.logger?.warn({ err: error }, 'kafka log: closing the producer failed'));
    })();
    return this.#closed;
  }

  async deleteTopics(): Promise<void> {
    const admin = this.#admin();
    try {
      await admin.deleteTopics({ topics: [this.topics.changes, this.topics.deadLetters] }).catch(() => undefined);
    } finally {
      await admin.close();
    }
  }
}

interface SubscriptionSettings {
  group: string;
  handler: ChangeHandler;
  maxAttempts: number;
  backoff: BackoffOptions;
  stopped: () => void;
}

type KafkaMessage = Message<string, string, string, string>;

class KafkaSubscription implements Subscription {
  readonly group: string;
  readonly #log: Settings;
  readonly #settings: SubscriptionSettings;
  readonly #abort = new AbortController();
  readonly #workers = new Map<number, PartitionWorker>();
  readonly #running: Promise<void>;
  #consumer: Consumer<string, string, string, string> | undefined;
  #stream: MessagesStream<string, string, string, string> | undefined;
  #buffered = 0;
  #drained: (() => void) | undefined;
  #stopped: Promise<void> | undefined;

  constructor(log: Settings, settings: SubscriptionSettings) {
    this.group = settings.group;
    this.#log = log;
    this.#settings = settings;
    this.#running = this.#run();
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#abort.abort();
      this.#drained?.();
      // Stop fetching first, so nothing new is handed out while the workers finish.
      await this.#stream?.close().catch(() => undefined);
      await this.#running;
      await Promise.all([...this.#workers.values()].map((worker) => worker.finished));
      await this.#commit();
      await this.#consumer?.close(true).catch((error: unknown) => this.#log.logger?.warn({ err: error, group: this.group }, 'kafka log: closing a consumer failed'));
      this.#settings.stopped();
    })();
    return this.#stopped;
  }

  /**
   * Consumes until stopped. The client retries a failing request a few times and then ends the
   * stream with the error (a broker restart takes longer than that): the subscription then commits
   * what its handlers finished, drops the consumer and starts a new one from the committed offsets,
   * with backoff, for as long as it runs. Entries already handled come again and are skipped.
   */
  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const { logger } = this.#log;
    const committer = this.#commitLoop();
    for (let failures = 0; !signal.aborted; ) {
      let stream: MessagesStream<string, string, string, string>;
      try {
        await this.#log.ready();
        this.#consumer = new Consumer({
          clientId: `${this.#log.clientId}-${this.group}-${randomUUID().slice(0, 8)}`,
          groupId: `${this.#log.prefix}${this.group}`,
          bootstrapBrokers: this.#log.brokers,
          deserializers: stringDeserializers,
          maxWaitTime: this.#log.maxWaitMs,
          sessionTimeout: 10_000,
          heartbeatInterval: 1_000,
          retries: 5,
          retryDelay: 200,
        });
        // The client reports some failures as an 'error' event on the consumer (rejoining the group
        // while the broker is away): unheard, Node ends the process on it. It is a lost consumer:
        // end its stream, and the loop below starts a new one from the committed offsets.
        const consumer = this.#consumer;
        consumer.on('error', (error: unknown) => {
          logger?.warn({ err: error, group: this.group }, 'kafka log: the consumer failed; reconnecting');
          if (this.#consumer === consumer) void this.#stream?.close().catch(() => undefined);
        });
        if (aborted(signal)) break;
        stream = await this.#consumer.consume({
          topics: [this.#log.changesTopic],
          mode: MessagesStreamModes.COMMITTED,
          fallbackMode: 'earliest',
          autocommit: false,
        });
        this.#stream = stream;
        stream.on('error', (error: unknown) => logger?.warn({ err: error, group: this.group }, 'kafka log: consumer stream error'));
      } catch (error) {
        failures++;
        logger?.warn({ err: error, group: this.group, attempt: failures }, 'kafka log: starting a consumer failed; retrying');
        await this.#dropConsumer();
        await sleep(backoffDelay(failures, { initialMs: 200, maxMs: 5_000 }, this.#log.random), signal);
        continue;
      }
      if (aborted(signal)) {
        await stream.close().catch(() => undefined);
        break;
      }
      try {
        for await (const message of stream as AsyncIterable<KafkaMessage>) {
          if (aborted(signal)) break;
          failures = 0;
          this.#worker(message.partition).push(message);
          this.#buffered++;
          if (this.#buffered >= MAX_BUFFERED) {
            await new Promise<void>((resolve) => {
              this.#drained = resolve;
            });
          }
        }
      } catch (error) {
        if (!aborted(signal)) logger?.warn({ err: error, group: this.group }, 'kafka log: the consumer stream failed; reconnecting');
      }
      if (aborted(signal)) break;
      // The stream ended without a stop (the broker went away): start over from the committed offsets.
      failures++;
      await this.#commit();
      await this.#dropConsumer();
      await sleep(backoffDelay(failures, { initialMs: 200, maxMs: 5_000 }, this.#log.random), signal);
    }
    await committer;
  }

  async #dropConsumer(): Promise<void> {
    const consumer = this.#consumer;
    this.#consumer = undefined;
    this.#stream = undefined;
    await consumer?.close(true).catch(() => undefined);
  }

  #worker(partition: number): PartitionWorker {
    let worker = this.#workers.get(partition);
    if (worker === undefined) {
      worker = new PartitionWorker(this.#log, this.#settings, partition, this.#abort.signal, () => {
        this.#buffered--;
        if (this.#buffered < MAX_BUFFERED / 2) {
          const drained = this.#drained;
          this.#drained = undefined;
          drained?.();
        }
      });
      this.#workers.set(partition, worker);
    }
    return worker;
  }

  async #commitLoop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      await sleep(this.#log.commitIntervalMs, signal);
      await this.#commit();
    }
  }

  /** Commits the handled positions of every partition that moved since the last commit. */
  async #commit(): Promise<void> {
    const consumer = this.#consumer;
    if (consumer === undefined) return;
    const offsets = [...this.#workers.values()].flatMap((worker) => worker.toCommit());
    if (offsets.length === 0) return;
    try {
      await consumer.commit({ offsets: offsets.map(({ offset, leaderEpoch, partition }) => ({ topic: this.#log.changesTopic, partition, offset, leaderEpoch })) });
      for (const { worker, offset } of offsets) worker.committed(offset);
    } catch (error) {
      // Not committed: redelivered after a restart or rebalance (at least once); tried again next round.
      this.#log.logger?.warn({ err: error, group: this.group }, 'kafka log: committing offsets failed');
    }
  }
}

class PartitionWorker {
  readonly finished: Promise<void>;
  readonly #log: Settings;
  readonly #settings: SubscriptionSettings;
  readonly #partition: number;
  readonly #signal: AbortSignal;
  readonly #took: () => void;
  readonly #queue: KafkaMessage[] = [];
  #wake: (() => void) | undefined;
  /** Highest outbox offset handled or dead-lettered: copies at or below it are relay duplicates. */
  #handledOutbox = 0;
  /** Next Kafka offset to commit (the one after the last handled message), and the last committed. */
  #next: { offset: bigint; leaderEpoch: number } | undefined;
  #committed = -1n;

  constructor(log: Settings, settings: SubscriptionSettings, partition: number, signal: AbortSignal, took: () => void) {
    this.#log = log;
    this.#settings = settings;
    this.#partition = partition;
    this.#signal = signal;
    this.#took = took;
    this.finished = this.#run();
  }

  push(message: KafkaMessage): void {
    this.#queue.push(message);
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  toCommit(): { worker: PartitionWorker; partition: number; offset: bigint; leaderEpoch: number }[] {
    const next = this.#next;
    if (next === undefined || next.offset <= this.#committed) return [];
    return [{ worker: this, partition: this.#partition, offset: next.offset, leaderEpoch: next.leaderEpoch }];
  }

  committed(offset: bigint): void {
    if (offset > this.#committed) this.#committed = offset;
  }

  async #run(): Promise<void> {
    const signal = this.#signal;
    while (!signal.aborted) {
      const message = this.#queue.shift();
      if (message === undefined) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          signal.addEventListener('abort', () => {
            resolve();
          }, { once: true });
        });
        continue;
      }
      this.#took();
      const outcome = await this.#deliver(message);
      if (outcome === 'stopped') break;
      this.#next = { offset: message.offset + 1n, leaderEpoch: message.leaderEpoch };
    }
  }

  async #deliver(message: KafkaMessage): Promise<'handled' | 'skipped' | 'dead-lettered' | 'stopped'> {
    const signal = this.#signal;
    const { handler, maxAttempts, backoff, group } = this.#settings;
    let entry: LogEntry;
    try {
      entry = decodeEntry(message.value);
    } catch (error) {
      this.#log.logger?.error({ err: error, group, partition: this.#partition, kafkaOffset: String(message.offset) }, 'kafka log: skipping a message that is not a log entry');
      return 'skipped';
    }
    if (entry.offset <= this.#handledOutbox) return 'skipped';
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) return 'stopped';
      try {
        await handler(entry, { attempt, signal });
        this.#handledOutbox = entry.offset;
        return 'handled';
      } catch (error) {
        if (aborted(signal)) return 'stopped';
        if (attempt >= maxAttempts) return this.#deadLetter(entry, attempt, error);
        this.#log.logger?.warn(
          { group, partition: this.#partition, offset: entry.offset, changeId: entry.id, attempt, err: error },
          'kafka log: handler failed; retrying',
        );
        await sleep(backoffDelay(attempt, backoff, this.#log.random), signal);
      }
    }
  }

  /** Produces the entry to the dead-letter topic and records it in the store; then it is committed past. */
  async #deadLetter(entry: LogEntry, attempts: number, error: unknown): Promise<'dead-lettered' | 'stopped'> {
    const { group } = this.#settings;
    const message = describeError(error);
    this.#log.logger?.error(
      { group, partition: this.#partition, offset: entry.offset, changeId: entry.id, attempts, err: error },
      'kafka log: handler failed on every attempt; dead-lettering the entry',
    );
    const { db } = this.#log.store;
    for (let failures = 1; ; failures++) {
      try {
        await this.#log.producer().send({
          messages: [
            {
              topic: this.#log.deadLetterTopic,
              key: entry.recordId,
              value: encodeEntry(entry),
              headers: new Map([
                ['group', group],
                ['attempts', String(attempts)],
                ['error', message],
              ]),
            },
          ],
        });
        // A redelivery after a crash dead-letters the entry again: keep one row per group and change.
        const known = await db
          .selectFrom('log_dead_letters')
          .select('id')
          .where('group_name', '=', group)
          .where('change_id', '=', entry.id)
          .executeTakeFirst();
        if (known === undefined) {
          await db
            .insertInto('log_dead_letters')
            .values({
              group_name: group,
              partition: entry.partition,
              offset: entry.offset,
              change_id: entry.id,
              attempts,
              error: message,
              created_at: new Date().toISOString(),
            })
            .execute();
        }
        this.#handledOutbox = entry.offset;
        return 'dead-lettered';
      } catch (writeError) {
        this.#log.logger?.warn({ err: writeError, group, partition: this.#partition, offset: entry.offset, attempt: failures }, 'kafka log: writing a dead letter failed; retrying');
        if (aborted(this.#signal)) return 'stopped';
        await sleep(backoffDelay(failures, this.#settings.backoff, this.#log.random), this.#signal);
        if (aborted(this.#signal)) return 'stopped';
      }
    }
  }
}
