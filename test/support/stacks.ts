// The two stacks Tandem ships on, for tests that run a whole Tandem (child processes, the sync
// engine end to end): `for (const stack of STACKS)`.
// - `sqlite`: SQLite + the embedded log (the default: one process, no services).
// - `postgres+kafka`: PostgreSQL + the Kafka log (the scale-out stack), on the broker named by
//   KAFKA_BROKERS (`npm run kafka:start`), with topics of its own per test (a unique
//   TANDEM_KAFKA_TOPIC_PREFIX).
// The second skips when PostgreSQL or Kafka does not answer, except under CI=true, where that
// throws (and the test runner fails CI on any skipped integration test anyway).
// PostgreSQL with the embedded log is covered by the store and log contract suites.
import { createEmbeddedLog } from '../../src/log/embedded/embedded-log.ts';
import { createKafkaLog } from '../../src/log/kafka/kafka-log.ts';
import type { EventLog } from '../../src/log/log.ts';
import { kafkaBrokers, skipUnlessKafka, uniqueTopicPrefix } from './kafka.ts';
import { createTestStore, skipUnless, type StoreKind, type TestStore } from './stores.ts';

export type StackName = 'sqlite' | 'postgres+kafka';

export interface Stack {
  readonly name: StackName;
  readonly store: StoreKind;
  readonly log: 'embedded' | 'kafka';
}

export const STACKS: readonly Stack[] = [
  { name: 'sqlite', store: 'sqlite', log: 'embedded' },
  { name: 'postgres+kafka', store: 'postgres', log: 'kafka' },
];

export const POSTGRES_KAFKA: Stack = { name: 'postgres+kafka', store: 'postgres', log: 'kafka' };

const inCi = process.env.CI === 'true' || process.env.CI === '1';

/** For `test(name, { skip: await skipUnlessStack(stack) }, …)`: a reason to skip, or false to run. */
export async function skipUnlessStack(stack: Stack): Promise<string | false> {
  const store = await skipUnless(stack.store);
  if (store !== false || stack.log === 'embedded') return store;
  const kafka = await skipUnlessKafka();
  if (kafka !== false && inCi) throw new Error(`${kafka}, and CI must run the ${stack.name} stack`);
  return kafka;
}

export interface TestStack extends TestStore {
  readonly stack: Stack;
  /**
   * For child processes: DATA_DIR, and on the second stack DATABASE_URL, KAFKA_BROKERS and
   * TANDEM_KAFKA_TOPIC_PREFIX. Every process started with it shares the store and the topics.
   */
  env: { DATA_DIR: string; DATABASE_URL?: string; KAFKA_BROKERS?: string; TANDEM_KAFKA_TOPIC_PREFIX?: string };
  /** In-process parts over the same stack: the Kafka options to pass to assembleParts, if any. */
  kafka: { brokers: string[]; topicPrefix: string } | undefined;
  /**
   * The stack's log, for questions only (lag, dead letters): no relay, no subscription. With Kafka,
   * lag counts what the children's relay has not moved yet and what their groups have not committed.
   */
  openLog(): EventLog;
}

/** A fresh store of the stack's kind, and on the Kafka stack a topic prefix of its own (its topics are deleted on cleanup). */
export async function createTestStack(stack: Stack): Promise<TestStack> {
  const testStore = await createTestStore(stack.store);
  if (stack.log === 'embedded') {
    return { ...testStore, stack, kafka: undefined, openLog: () => createEmbeddedLog({ store: testStore.store, partitions: 16, maxAttempts: 8 }) };
  }
  const topicPrefix = uniqueTopicPrefix();
  return {
    ...testStore,
    stack,
    openLog: () => createKafkaLog({ store: testStore.store, brokers: kafkaBrokers, topicPrefix, partitions: 16, maxAttempts: 8, relay: false }),
    env: { ...testStore.env, KAFKA_BROKERS: kafkaBrokers.join(','), TANDEM_KAFKA_TOPIC_PREFIX: topicPrefix },
    kafka: { brokers: kafkaBrokers, topicPrefix },
    cleanup: async () => {
      const log = createKafkaLog({ store: testStore.store, brokers: kafkaBrokers, topicPrefix, partitions: 1, maxAttempts: 1, relay: false });
      await log.close();
      await log.deleteTopics().catch(() => undefined);
      await testStore.cleanup();
    },
  };
}
