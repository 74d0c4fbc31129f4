// The Kafka log against the shared log contract (unchanged), on every store kind, plus the relay's
// own guarantees. Needs the real broker: KAFKA_BROKERS (npm run kafka:start); each harness uses
// topics and groups of its own (a unique prefix) and deletes its topics afterwards.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Consumer, MessagesStreamModes, stringDeserializers } from '@platformatic/kafka';
import { STORE_KINDS, createTestStore, skipUnless, type StoreKind, type TestStore } from '../../../test/support/stores.ts';
import { kafkaBrokers, skipUnlessKafka, uniqueTopicPrefix } from '../../../test/support/kafka.ts';
import { completeChange, logContract, type ChangeInput, type LogHarness } from '../log.contract.ts';
import type { LogLogger } from '../log.ts';
import { partitionFor, type LogEntry } from '../change.ts';
import { createOutbox } from '../outbox.ts';
import type { Store } from '../../store/store.ts';
import { createKafkaLog, type KafkaLog, type KafkaLogOptions } from './kafka-log.ts';
import { RelayHalted } from './relay.ts';

const PARTITIONS = 8;

function quietLogger(): LogLogger {
  return { warn: () => undefined, error: () => undefined };
}

async function appendAll(store: Store, changes: ChangeInput[]): Promise<LogEntry[]> {
  const outbox = createOutbox(PARTITIONS);
  // Ascending partition order, as the embedded log's test does (PostgreSQL row locks).
  const ordered = changes
    .map((change) => completeChange(change))
    .sort((a, b) => partitionFor(a.recordId, PARTITIONS) - partitionFor(b.recordId, PARTITIONS));
  return store.transaction(async (trx) => {
    const entries: LogEntry[] = [];
    for (const change of ordered) entries.push(await outbox.append(trx, change));
    return entries;
  });
}

/** One store per kind for the whole file; emptied between tests. */
const stores = new Map<StoreKind, Promise<TestStore>>();
function storeOf(kind: StoreKind): Promise<TestStore> {
  let store = stores.get(kind);
  if (store === undefined) {
    store = createTestStore(kind);
    stores.set(kind, store);
  }
  return store;
}
after(async () => {
  for (const store of stores.values()) await (await store).cleanup();
});

async function emptyLogTables(store: Store): Promise<void> {
  await store.transaction(async (trx) => {
    await trx.deleteFrom('log_dead_letters').execute();
    await trx.deleteFrom('changes').execute();
    await trx.deleteFrom('log_partitions').execute();
    await trx.$extendTables<{ log_relay_progress: { partition: number } }>().deleteFrom('log_relay_progress').execute();
    await trx.$extendTables<{ log_relay_members: { owner: string } }>().deleteFrom('log_relay_members').execute();
  });
}

function kafkaLog(store: Store, prefix: string, extra: Partial<KafkaLogOptions> = {}): KafkaLog {
  return createKafkaLog({
    store,
    brokers: kafkaBrokers,
    topicPrefix: prefix,
    partitions: PARTITIONS,
    maxAttempts: 5,
    backoff: { initialMs: 1, maxMs: 8 },
    maxWaitMs: 50,
    commitIntervalMs: 20,
    relayOptions: { idlePollMs: 25, batchSize: 50 },
    logger: quietLogger(),
    ...extra,
  });
}

async function harness(kind: StoreKind): Promise<LogHarness> {
  const { store } = await storeOf(kind);
  await emptyLogTables(store);
  const log = kafkaLog(store, uniqueTopicPrefix());
  return {
    log,
    append: async (changes) => {
      await appendAll(store, changes);
      log.notify();
    },
    cleanup: async () => {
      await log.close();
      await log.deleteTopics();
      await emptyLogTables(store);
    },
  };
}

/** Reads every message of a changes topic (a throwaway group from the beginning) until `count` arrived. */
async function readTopic(topic: string, count: number, timeoutMs = 20_000): Promise<LogEntry[]> {
  const consumer = new Consumer({
    clientId: 'test-reader',
    groupId: `reader-${topic}-${String(Date.now())}`,
    bootstrapBrokers: kafkaBrokers,
    deserializers: stringDeserializers,
    maxWaitTime: 50,
  });
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false });
  const entries: LogEntry[] = [];
  const timer = setTimeout(() => void stream.close(), timeoutMs);
  try {
    for await (const message of stream) {
      entries.push(JSON.parse(message.value) as LogEntry);
      if (entries.length >= count) break;
    }
  } finally {
    clearTimeout(timer);
    await stream.close().catch(() => undefined);
    await consumer.close(true).catch(() => undefined);
  }
  return entries;
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every outbox (partition, offset) of `appended` is in `read`, and each partition's first copies are in order. */
function assertNoGap(appended: LogEntry[], read: LogEntry[]): void {
  const positions = new Set(read.map((e) => `${e.partition}:${e.offset}`));
  const missing = appended.filter((e) => !positions.has(`${e.partition}:${e.offset}`));
  assert.deepEqual(missing.map((e) => `${e.partition}:${e.offset}`), [], 'every change reached Kafka');
  const highest = new Map<number, number>();
  const seen = new Set<string>();
  for (const e of read) {
    const position = `${e.partition}:${e.offset}`;
    if (seen.has(position)) continue;
    seen.add(position);
    assert.ok(e.offset === (highest.get(e.partition) ?? 0) + 1, `partition ${e.partition}: offset ${e.offset} after ${highest.get(e.partition) ?? 0}`);
    highest.set(e.partition, e.offset);
  }
}

/** Whether the relays recorded every appended change as relayed. */
async function allRelayed(store: Store): Promise<boolean> {
  const heads = await store.db.selectFrom('log_partitions').select(['partition', 'next_offset']).execute();
  const progress = await store.db
    .$extendTables<{ log_relay_progress: { partition: number; relayed_offset: number } }>()
    .selectFrom('log_relay_progress')
    .select(['partition', 'relayed_offset'])
    .execute();
  const relayed = new Map(progress.map((p) => [p.partition, p.relayed_offset]));
  return heads.every((head) => relayed.get(head.partition) === head.next_offset);
}

const kafkaSkip = await skipUnlessKafka();

for (const kind of STORE_KINDS) {
  const skip = (await skipUnless(kind)) || kafkaSkip;
  logContract(`kafka log on ${kind}`, () => harness(kind), { skip });

  describe(`kafka log on ${kind}: the outbox relay`, { skip }, () => {
    test('resumes after a restart where it stopped: no gap, no duplicate', async () => {
      const { store } = await storeOf(kind);
      await emptyLogTables(store);
      const prefix = uniqueTopicPrefix();
      const first = kafkaLog(store, prefix);
      let second: KafkaLog | undefined;
      try {
        const keys = Array.from({ length: 60 }, (_, i) => `r${i}`);
        const before = await appendAll(store, keys.map((recordId) => ({ recordId, version: 1 })));
        first.notify();
        await waitFor('the first relay to move everything', () => allRelayed(store));
        await first.close();
        // Appended while no relay runs.
        const during = await appendAll(store, keys.map((recordId) => ({ recordId, version: 2 })));
        second = kafkaLog(store, prefix);
        const all = [...before, ...during];
        const read = await readTopic(second.topics.changes, all.length);
        assert.equal(read.length, all.length);
        assertNoGap(all, read);
        assert.equal(new Set(read.map((e) => e.id)).size, all.length, 'a clean stop leaves no duplicate');
      } finally {
        await first.close();
        await second?.close();
        await first.deleteTopics();
        await emptyLogTables(store);
      }
    });

    test('a relay stopped dead between produce and recording progress: duplicates at most, no gap, consumers handle each change once', async () => {
      const { store } = await storeOf(kind);
      await emptyLogTables(store);
      const prefix = uniqueTopicPrefix();
      let halted = 0;
      const crashing = kafkaLog(store, prefix, {
        relayOptions: {
          idlePollMs: 25,
          batchSize: 20,
          leaseMs: 2_000,
          produceTimeoutMs: 1_000,
          // The third batch produced is never recorded: the relay stops there, as a kill -9 would.
          afterProduce: () => {
            if (++halted === 3) throw new RelayHalted();
          },
        },
      });
      let resumed: KafkaLog | undefined;
      try {
        const keys = Array.from({ length: 40 }, (_, i) => `d${i}`);
        const appended = await appendAll(store, [1, 2, 3].flatMap((version) => keys.map((recordId) => ({ recordId, version }))));
        crashing.notify();
        await waitFor('the relay to halt', () => halted >= 3);
        await crashing.close();
        resumed = kafkaLog(store, prefix);
        const handled: LogEntry[] = [];
        resumed.subscribe({
          group: 'g',
          handler: (entry) => {
            handled.push(entry);
            return Promise.resolve();
          },
        });
        await waitFor('every change to be handled', () => new Set(handled.map((e) => e.id)).size === appended.length);
        await waitFor('lag 0', async () => (await resumed?.lag('g')) === 0);
        // Everything the topic holds (the reader gives up after a quiet 3 s).
        const all = await readTopic(resumed.topics.changes, appended.length + 1_000, 3_000);
        assertNoGap(appended, all);
        assert.ok(all.length > appended.length, `the halted batch was produced twice (${all.length} messages for ${appended.length} changes)`);
        const copies = new Map<string, number>();
        for (const e of all) copies.set(e.id, (copies.get(e.id) ?? 0) + 1);
        const twice = [...copies.values()].filter((n) => n > 1);
        // The halted batch, and at most one batch per partition that was in flight with it (its
        // produce may have landed, its progress never recorded), are produced again; nothing else.
        assert.ok(twice.length <= 20 * PARTITIONS && twice.every((n) => n === 2), `duplicates: ${twice.length} changes copied (${JSON.stringify(twice)}), ${all.length} messages`);
        assert.equal(handled.length, appended.length, 'the consumer skips the copies it already handled');
        for (const key of keys) {
          assert.deepEqual(handled.filter((e) => e.recordId === key).map((e) => e.version), [1, 2, 3], key);
        }
      } finally {
        await crashing.close();
        await resumed?.close();
        await crashing.deleteTopics();
        await emptyLogTables(store);
      }
    });

    test('two relays on one store never move one partition at once; a stopped relay\'s partitions are taken over', async () => {
      const { store } = await storeOf(kind);
      await emptyLogTables(store);
      const prefix = uniqueTopicPrefix();
      const movedBy = new Map<number, Set<string>>();
      const moving = new Map<number, string>();
      let overlaps = 0;
      const logWith = (owner: string): KafkaLog =>
        kafkaLog(store, prefix, {
          relayOptions: {
            owner,
            idlePollMs: 10,
            batchSize: 10,
            afterProduce: async (partition) => {
              // Hold the batch a moment so an overlapping relay would be caught red-handed.
              if (moving.has(partition) && moving.get(partition) !== owner) overlaps++;
              moving.set(partition, owner);
              await new Promise((resolve) => setTimeout(resolve, 2));
            },
            onRelayed: (partition) => {
              if (moving.get(partition) === owner) moving.delete(partition);
              let owners = movedBy.get(partition);
              if (owners === undefined) movedBy.set(partition, (owners = new Set()));
              owners.add(owner);
            },
          },
        });
      const a = logWith('relay-a');
      const b = logWith('relay-b');
      try {
        const keys = Array.from({ length: 80 }, (_, i) => `t${i}`);
        const batches: LogEntry[] = [];
        for (let version = 1; version <= 5; version++) {
          batches.push(...(await appendAll(store, keys.map((recordId) => ({ recordId, version })))));
          a.notify();
          b.notify();
        }
        await waitFor('both relays to have moved everything', () => allRelayed(store));
        assert.equal(overlaps, 0, 'no partition was moved by two relays at once');
        const heldByA = a.relay?.partitions ?? [];
        const heldByB = b.relay?.partitions ?? [];
        assert.deepEqual(heldByA.filter((p) => heldByB.includes(p)), [], 'no partition is held by both');
        assert.ok(heldByA.length > 0 && heldByB.length > 0, `the partitions are spread: ${JSON.stringify([heldByA, heldByB])}`);

        await a.close(); // gives its leases back
        const more = await appendAll(store, keys.map((recordId) => ({ recordId, version: 6 })));
        b.notify();
        await waitFor('b to take over and move everything', () => allRelayed(store));
        assert.equal(b.relay?.partitions.length, PARTITIONS, 'b holds every partition');
        const read = await readTopic(b.topics.changes, batches.length + more.length);
        assertNoGap([...batches, ...more], read);
        assert.equal(new Set(read.map((e) => e.id)).size, read.length, 'no duplicate');
        assert.equal(overlaps, 0);
      } finally {
        await a.close();
        await b.close();
        await a.deleteTopics();
        await emptyLogTables(store);
      }
    });
  });
}
