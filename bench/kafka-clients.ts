// Measures the two Kafka clients Tandem could use, on the real broker (`npm run kafka:start`):
//
//   KAFKA_BROKERS=127.0.0.1:19092 node bench/kafka-clients.ts [--messages 50000] [--restart]
//
// For each client: produce N change-sized JSON messages keyed by record id to a fresh 16-partition
// topic (acks=all, idempotent, batches of 500 per send, as the outbox relay sends them), then
// consume them all in a fresh consumer group (as the log's consumers do) and commit. With --restart
// it also restarts the broker (scripts/kafka.mjs restart, data kept) under a steady produce+consume
// load and reports what each client did: errors surfaced, time until it produced again, and whether
// every acknowledged message was consumed. Figures and the choice: docs/scale-out.md.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Admin, Consumer, MessagesStreamModes, Producer, ProduceAcks, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const { values } = parseArgs({
  options: { messages: { type: 'string', default: '50000' }, restart: { type: 'boolean', default: false } },
});
const MESSAGES = Number(values.messages);
const PARTITIONS = 16;
const BATCH = 500;
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:19092').split(',');

function payload(i: number): { key: string; value: string; partition: number } {
  const id = `cus_${String(i).padStart(8, '0')}`;
  const value = JSON.stringify({
    id: `chg_${randomUUID()}`,
    workspaceId: 'ws_bench',
    entityType: 'customer',
    recordId: id,
    version: 1,
    op: 'create',
    origin: 'api',
    changedFields: ['name', 'email', 'metadata'],
    record: { id, name: `Customer ${i}`, email: `c${i}@example.com`, metadata: { plan: 'pro' }, version: 1 },
    correlationId: null,
    createdAt: new Date().toISOString(),
    partition: i % PARTITIONS,
    offset: Math.floor(i / PARTITIONS) + 1,
  });
  return { key: id, value, partition: i % PARTITIONS };
}

const messages = Array.from({ length: MESSAGES }, (_, i) => payload(i));
const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000).toLocaleString('en')}/s`;

async function createTopic(topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: brokers });
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 });
  await admin.close();
}

async function deleteTopic(topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: brokers });
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.close();
}

interface Figures {
  client: string;
  produceMs: number;
  consumeMs: number;
}

async function platformatic(): Promise<Figures> {
  const topic = `bench.platformatic.${randomUUID()}`;
  await createTopic(topic);
  const producer = new Producer({ clientId: 'bench', bootstrapBrokers: brokers, serializers: stringSerializers, idempotent: true, acks: ProduceAcks.ALL });
  let started = performance.now();
  for (let i = 0; i < messages.length; i += BATCH) {
    await producer.send({ messages: messages.slice(i, i + BATCH).map((m) => ({ topic, ...m })) });
  }
  const produceMs = performance.now() - started;
  await producer.close();

  const consumer = new Consumer({
    clientId: 'bench',
    groupId: `bench-${randomUUID()}`,
    bootstrapBrokers: brokers,
    deserializers: stringDeserializers,
    maxWaitTime: 100,
  });
  started = performance.now();
  const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false });
  let seen = 0;
  for await (const message of stream) {
    JSON.parse(message.value);
    if (++seen === MESSAGES) {
      await message.commit();
      break;
    }
  }
  const consumeMs = performance.now() - started;
  await stream.close();
  await consumer.close(true);
  await deleteTopic(topic);
  return { client: '@platformatic/kafka', produceMs, consumeMs };
}

async function kafkajs(): Promise<Figures> {
  const topic = `bench.kafkajs.${randomUUID()}`;
  await createTopic(topic);
  const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let started = performance.now();
  for (let i = 0; i < messages.length; i += BATCH) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + BATCH) });
  }
  const produceMs = performance.now() - started;
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `bench-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  started = performance.now();
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch }) => {
          for (const message of batch.messages) JSON.parse(message.value?.toString() ?? '');
          seen += batch.messages.length;
          if (seen >= MESSAGES) resolve();
          await Promise.resolve();
        },
      })
      .catch(reject);
  });
  const consumeMs = performance.now() - started;
  await consumer.disconnect();
  await deleteTopic(topic);
  return { client: 'kafkajs', produceMs, consumeMs };
}

/** Sends one message every 10 ms and consumes them while the broker restarts; reports what happened. */
async function underRestart(name: string, client: 'platformatic' | 'kafkajs'): Promise<string> {
  const topic = `bench.restart.${client}.${randomUUID()}`;
  await createTopic(topic);
  const acknowledged = new Set<string>();
  const consumed = new Set<string>();
  const errors: string[] = [];
  const state = { stopping: false };
  let lastAck = 0;
  let restartedAt = 0;
  let firstAckAfter = 0;
  let send: (key: string) => Promise<void>;
  let closeAll: () => Promise<void>;

  if (client === 'platformatic') {
    const producer = new Producer({ clientId: 'bench-r', bootstrapBrokers: brokers, serializers: stringSerializers, idempotent: true, acks: ProduceAcks.ALL, retries: 3 });
    const consumer = new Consumer({ clientId: 'bench-r', groupId: `bench-r-${randomUUID()}`, bootstrapBrokers: brokers, deserializers: stringDeserializers, maxWaitTime: 100 });
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: 200 });
    stream.on('data', (message: { key: string }) => consumed.add(message.key));
    stream.on('error', (error: Error) => errors.push(`consumer: ${error.message}`));
    send = async (key) => {
      await producer.send({ messages: [{ topic, key, value: key }] });
    };
    closeAll = async () => {
      await stream.close().catch(() => undefined);
      await consumer.close(true).catch(() => undefined);
      await producer.close().catch(() => undefined);
    };
  } else {
    const kafka = new Kafka({ clientId: 'bench-r', brokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const consumer = kafka.consumer({ groupId: `bench-r-${randomUUID()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    consumer.on(consumer.events.CRASH, (event) => errors.push(`consumer crash: ${JSON.stringify(event.payload).slice(0, 120)}`));
    void consumer.run({
      eachMessage: async ({ message }) => {
        consumed.add(message.key?.toString() ?? '');
        await Promise.resolve();
      },
    });
    send = async (key) => {
      await producer.send({ topic, acks: -1, messages: [{ key, value: key }] });
    };
    closeAll = async () => {
      await consumer.disconnect().catch(() => undefined);
      await producer.disconnect().catch(() => undefined);
    };
  }

  const loop = (async () => {
    for (let i = 0; !state.stopping; i++) {
      const key = `k${i}`;
      try {
        await send(key);
        acknowledged.add(key);
        lastAck = performance.now();
        if (restartedAt > 0 && firstAckAfter === 0) firstAckAfter = lastAck;
      } catch (error) {
        errors.push(`producer: ${error instanceof Error ? error.message : String(error)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const restartStarted = performance.now();
  execFileSync(process.execPath, [join(root, 'scripts', 'kafka.mjs'), 'restart'], { stdio: 'ignore' });
  restartedAt = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 8_000));
  state.stopping = true;
  await loop;
  const deadline = performance.now() + 20_000;
  while ([...acknowledged].some((k) => !consumed.has(k)) && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const missing = [...acknowledged].filter((k) => !consumed.has(k)).length;
  await closeAll();
  await deleteTopic(topic).catch(() => undefined);
  const distinct = [...new Set(errors.map((e) => e.slice(0, 90)))];
  return (
    `${name}: restart took ${((restartedAt - restartStarted) / 1000).toFixed(1)}s; produced again ` +
    `${firstAckAfter === 0 ? 'never' : `${((firstAckAfter - restartedAt) / 1000).toFixed(1)}s after the broker was back`}; ` +
    `${acknowledged.size} acknowledged, ${missing} of them never consumed; ${errors.length} errors surfaced` +
    (distinct.length > 0 ? `:\n    ${distinct.slice(0, 5).join('\n    ')}` : '')
  );
}

console.log(`Kafka clients at ${brokers.join(',')}: ${MESSAGES.toLocaleString('en')} messages of ~${messages[0]?.value.length ?? 0} bytes, ${PARTITIONS} partitions`);
for (const run of [platformatic, kafkajs, platformatic, kafkajs]) {
  const f = await run();
  console.log(`  ${f.client.padEnd(20)} produce ${rate(MESSAGES, f.produceMs).padStart(9)} (${(f.produceMs / 1000).toFixed(2)}s)   consume ${rate(MESSAGES, f.consumeMs).padStart(9)} (${(f.consumeMs / 1000).toFixed(2)}s)`);
}
if (values.restart) {
  console.log('Broker restart under load (one send per 10 ms, acks=all):');
  console.log(`  ${await underRestart('@platformatic/kafka', 'platformatic')}`);
  console.log(`  ${await underRestart('kafkajs', 'kafkajs')}`);
}
