// Tests of the Kafka log run against the real broker named by KAFKA_BROKERS (`npm run kafka:start`
// prints it; .ci/run exports it). Without it, or when it does not answer, they skip with the reason;
// under CI=true the test runner counts a skipped integration test as a failure.
import { randomUUID } from 'node:crypto';
import { Admin } from '@platformatic/kafka';

export const kafkaBrokers: string[] = (process.env.KAFKA_BROKERS ?? '')
  .split(',')
  .map((b) => b.trim())
  .filter((b) => b !== '');

let reachable: Promise<string | false> | undefined;

/** For `describe(name, { skip: await skipUnlessKafka() }, …)`: a reason to skip, or false to run. */
export function skipUnlessKafka(): Promise<string | false> {
  reachable ??= (async () => {
    if (kafkaBrokers.length === 0) return 'KAFKA_BROKERS is not set (npm run kafka:start, then export what it prints)';
    const admin = new Admin({ clientId: 'tandem-test-probe', bootstrapBrokers: kafkaBrokers, retries: 2, retryDelay: 500, timeout: 5_000 });
    try {
      await admin.metadata({ topics: [] });
      return false;
    } catch (error) {
      return `Kafka not reachable at ${kafkaBrokers.join(',')}: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      await admin.close().catch(() => undefined);
    }
  })();
  return reachable;
}

/** A topic prefix no other test uses: `test.<uuid>.` */
export function uniqueTopicPrefix(): string {
  return `test.${randomUUID().slice(0, 13)}.`;
}
