// The contract every EventLog implementation must pass (embedded now, Kafka later). It speaks only
// through the EventLog interface and the harness: no SQL, no broker API, no knowledge of how keys
// map to partitions (it learns partitions from the entries it is given). Every wait is bounded, and
// every test asserts the real sequences delivered, so a broken log fails rather than hangs.
//
// Usage, in a `*.integration.test.ts` file:
//   logContract('embedded log on sqlite', async () => ({ log, append, cleanup }));
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Change, LogEntry } from './change.ts';
import { DEAD_LETTER_ERROR_MAX_LENGTH, type ChangeHandler, type EventLog, type HandlerContext, type Subscription } from './log.ts';

export type ChangeInput = Partial<Change> & { recordId: string };

export interface LogHarness {
  /**
   * A log over its own empty storage (fresh tables / topics), with small retry delays (backoff of a
   * few milliseconds), an idle poll of at most ~50 ms, and at least 4 partitions.
   */
  log: EventLog;
  /**
   * Appends the changes through the outbox in one transaction (all or nothing, in the given order),
   * then lets the log see them (e.g. notify()). Missing fields are filled as completeChange does.
   */
  append: (changes: ChangeInput[]) => Promise<void>;
  /** Closes the log and drops its storage. */
  cleanup: () => Promise<void>;
}

export interface LogContractOptions {
  /** node:test skip: a reason to skip the whole suite, or false to run it. */
  skip?: string | boolean;
}

/** A whole change from the fields a test cares about; harnesses use it to fill the rest. */
export function completeChange(input: ChangeInput): Change {
  const version = input.version ?? 1;
  return {
    id: input.id ?? `chg_${randomUUID().replaceAll('-', '')}`,
    workspaceId: input.workspaceId ?? 'ws_contract',
    entityType: input.entityType ?? 'customer',
    recordId: input.recordId,
    version,
    op: input.op ?? (version === 1 ? 'create' : 'update'),
    origin: input.origin ?? 'api',
    changedFields: input.changedFields ?? ['name'],
    record: input.record ?? { id: input.recordId, name: `version ${version}` },
    correlationId: input.correlationId ?? null,
    createdAt: input.createdAt ?? new Date().toISOString(),
  };
}

interface Delivery {
  group: string;
  key: string;
  version: number;
  changeId: string;
  partition: number;
  offset: number;
  attempt: number;
  entry: LogEntry;
}

type Behaviour = (entry: LogEntry, ctx: HandlerContext) => Promise<void> | void;

/** Records every call of the handlers it makes (failed attempts included), in call order. */
class Recorder {
  readonly deliveries: Delivery[] = [];

  handler(group: string, behaviour?: Behaviour): ChangeHandler {
    return async (entry, ctx) => {
      this.deliveries.push({
        group,
        key: entry.recordId,
        version: entry.version,
        changeId: entry.id,
        partition: entry.partition,
        offset: entry.offset,
        attempt: ctx.attempt,
        entry,
      });
      await behaviour?.(entry, ctx);
    };
  }

  of(group: string, key?: string): Delivery[] {
    return this.deliveries.filter((d) => d.group === group && (key === undefined || d.key === key));
  }

  versions(group: string, key: string): number[] {
    return this.of(group, key).map((d) => d.version);
  }

  has(group: string, key: string, version: number): boolean {
    return this.deliveries.some((d) => d.group === group && d.key === key && d.version === version);
  }
}

const WAIT_MS = 10_000;
const TEST_OPTIONS = { timeout: 30_000 };

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until the condition holds; fails with `what` (and the optional state) after WAIT_MS. */
async function waitFor(what: string, condition: () => boolean | Promise<boolean>, state?: () => unknown): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      const detail = state === undefined ? '' : `; state: ${JSON.stringify(state())}`;
      assert.fail(`Timed out after ${WAIT_MS} ms waiting for ${what}${detail}`);
    }
    await delay(5);
  }
}

/**
 * At-least-once delivery in order: the first deliveries of the versions are exactly `expected`, in
 * order, and no version arrives before every earlier one did (a redelivery of an older one is fine).
 */
function assertInOrder(delivered: number[], expected: number[], label: string): void {
  const index = new Map(expected.map((version, i) => [version, i]));
  let reached = -1;
  for (const version of delivered) {
    const i = index.get(version);
    assert.ok(i !== undefined, `${label}: unexpected version ${version} in [${delivered.join(',')}]`);
    assert.ok(
      i <= reached + 1,
      `${label}: version ${version} delivered before ${expected[reached + 1]} in [${delivered.join(',')}]`,
    );
    if (i === reached + 1) reached = i;
  }
  assert.equal(reached, expected.length - 1, `${label}: never got [${expected.slice(reached + 1).join(',')}]`);
}

/** Within a partition, each offset delivered for the first time is above every earlier one. */
function assertOffsetsIncrease(deliveries: Delivery[], label: string): void {
  const highest = new Map<number, number>();
  const seen = new Set<string>();
  for (const d of deliveries) {
    const position = `${d.partition}:${d.offset}`;
    if (seen.has(position)) continue;
    seen.add(position);
    const top = highest.get(d.partition) ?? -Infinity;
    assert.ok(d.offset > top, `${label}: partition ${d.partition} delivered offset ${d.offset} after ${top}`);
    highest.set(d.partition, d.offset);
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** `keys` × `versions` changes, grouped by version: every key's version v precedes its v+1. */
function changesFor(keys: string[], versions: number[]): Change[] {
  return versions.flatMap((version) => keys.map((recordId) => completeChange({ recordId, version })));
}

function keysNamed(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

export function logContract(name: string, makeHarness: () => Promise<LogHarness>, options: LogContractOptions = {}): void {
  async function withHarness(fn: (harness: LogHarness, subscriptions: Subscription[]) => Promise<void>): Promise<void> {
    const harness = await makeHarness();
    const subscriptions: Subscription[] = [];
    try {
      await fn(harness, subscriptions);
    } finally {
      await Promise.all(subscriptions.map((s) => s.stop()));
      await harness.cleanup();
    }
  }

  describe(name, { skip: options.skip ?? false }, () => {
    test('delivers every appended change, with its content, backlog and live', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }, subscriptions) => {
        const recorder = new Recorder();
        const keys = keysNamed('cus_', 40);
        const backlog = changesFor(keys, range(1, 4));
        for (const version of range(1, 4)) await append(backlog.filter((c) => c.version === version));
        subscriptions.push(log.subscribe({ group: 'g', handler: recorder.handler('g') }));
        // Live appends, concurrent, on disjoint key sets so each key's order is still defined.
        const live = Array.from({ length: 5 }, (_, j) => changesFor(keys.slice(j * 8, j * 8 + 8), range(5, 10)));
        await Promise.all(live.map((changes) => append(changes)));
        const all = [...backlog, ...live.flat()];

        const ids = new Set(all.map((c) => c.id));
        await waitFor(
          'every change to be delivered',
          () => ids.size === new Set(recorder.of('g').map((d) => d.changeId)).size,
          () => ({ expected: ids.size, delivered: recorder.of('g').length }),
        );
        for (const d of recorder.of('g')) assert.ok(ids.has(d.changeId), `unknown change ${d.changeId}`);
        for (const key of keys) assertInOrder(recorder.versions('g', key), range(1, 10), key);
        assertOffsetsIncrease(recorder.of('g'), 'g');
        assert.ok(new Set(recorder.of('g').map((d) => d.partition)).size >= 2, 'changes should spread over partitions');

        // The entry is the appended change plus its position.
        const sample = all[17];
        assert.ok(sample !== undefined);
        const delivered = recorder.of('g').find((d) => d.changeId === sample.id);
        assert.ok(delivered !== undefined);
        const { partition, offset, ...change } = delivered.entry;
        assert.deepEqual(change, sample);
        assert.ok(Number.isInteger(partition) && partition >= 0, `partition ${partition}`);
        assert.ok(Number.isInteger(offset) && offset >= 0, `offset ${offset}`);
        // One record id, one partition.
        for (const key of keys) assert.equal(new Set(recorder.of('g', key).map((d) => d.partition)).size, 1, key);
      });
    });

    test('keeps per-key order under many keys and partitions with slow, uneven handlers', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }, subscriptions) => {
        const recorder = new Recorder();
        const keys = keysNamed('k', 120);
        let calls = 0;
        subscriptions.push(
          log.subscribe({
            group: 'g',
            handler: recorder.handler('g', async () => {
              calls++;
              // Uneven handler times make partitions race each other.
              if (calls % 7 === 0) await delay(1);
              else if (calls % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
            }),
          }),
        );
        for (const version of range(1, 6)) {
          await append(changesFor(keys, [version]));
          if (version % 2 === 0) await delay(10);
        }
        await waitFor(
          'all 720 changes',
          () => new Set(recorder.of('g').map((d) => d.changeId)).size === keys.length * 6,
          () => recorder.of('g').length,
        );
        for (const key of keys) assertInOrder(recorder.versions('g', key), range(1, 6), key);
        assertOffsetsIncrease(recorder.of('g'), 'g');
        assert.ok(new Set(recorder.of('g').map((d) => d.partition)).size >= 2, 'changes should spread over partitions');
      });
    });

    test('gives each group everything, independently; a new group starts from the beginning', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }, subscriptions) => {
        const recorder = new Recorder();
        const keys = keysNamed('k', 20);
        subscriptions.push(log.subscribe({ group: 'a', handler: recorder.handler('a') }));
        subscriptions.push(log.subscribe({ group: 'b', handler: recorder.handler('b') }));
        await append(changesFor(keys, [1, 2]));
        await append(changesFor(keys, [3]));
        const complete = (group: string) => () => keys.every((key) => recorder.has(group, key, 3));
        await waitFor('group a to get everything', complete('a'));
        await waitFor('group b to get everything', complete('b'));
        subscriptions.push(log.subscribe({ group: 'late', handler: recorder.handler('late') }));
        await waitFor('the late group to get everything', complete('late'));
        for (const group of ['a', 'b', 'late']) {
          for (const key of keys) assertInOrder(recorder.versions(group, key), [1, 2, 3], `${group}/${key}`);
        }
        for (const group of ['a', 'b', 'late']) await waitFor(`lag of ${group} to reach 0`, async () => (await log.lag(group)) === 0);
      });
    });

    test('a group stuck on an entry does not hold back another group', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }, subscriptions) => {
        const recorder = new Recorder();
        const keys = keysNamed('k', 20);
        subscriptions.push(
          log.subscribe({
            group: 'stuck',
            maxAttempts: 1_000_000,
            handler: recorder.handler('stuck', (entry) => {
              if (entry.recordId === 'k0' && entry.version === 1) throw new Error('k0 is broken for this group');
            }),
          }),
        );
        subscriptions.push(log.subscribe({ group: 'free', handler: recorder.handler('free') }));
        await append(changesFor(keys, [1, 2, 3]));
        await waitFor('the free group to get everything', () => keys.every((key) => recorder.has('free', key, 3)));
        await waitFor('the stuck group to retry k0', () => recorder.of('stuck', 'k0').length >= 3);
        for (const key of keys) assertInOrder(recorder.versions('free', key), [1, 2, 3], `free/${key}`);
        assert.ok(
          recorder.versions('stuck', 'k0').every((version) => version === 1),
          `k0 v2 must wait for v1: [${recorder.versions('stuck', 'k0').join(',')}]`,
        );
      });
    });

    test('commits after success only: a failed entry is delivered again and nothing is skipped', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }, subscriptions) => {
        const recorder = new Recorder();
        const keys = ['a', ...keysNamed('other', 10)];
        subscriptions.push(
          log.subscribe({
            group: 'g',
            maxAttempts: 5,
            handler: recorder.handler('g', (entry, ctx) => {
              if (entry.recordId === 'a' && entry.version === 3 && ctx.attempt === 1) throw new Error('transient');
            }),
          }),
        );
        await append(changesFor(keys, range(1, 5)));
        await waitFor('every key to reach version 5', () => keys.every((key) => recorder.has('g', key, 5)));
        assert.deepEqual(recorder.versions('g', 'a'), [1, 2, 3, 3, 4, 5]);
        assert.deepEqual(
          recorder.of('g', 'a').map((d) => d.attempt),
          [1, 1, 1, 2, 1, 1],
        );
        for (const key of keys) assertInOrder(recorder.versions('g', key), range(1, 5), key);
        await waitFor('lag to reach 0', async () => (await log.lag('g')) === 0);
        assert.deepEqual(await log.deadLetters('g'), []);
      });
    });

    test('a new subscription of the group skips committed entries and redelivers uncommitted ones', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }) => {
        const first = new Recorder();
        const subscription = log.subscribe({
          group: 'g',
          maxAttempts: 1_000_000,
          handler: first.handler('g', (entry) => {
            if (entry.recordId === 'a' && entry.version === 4) throw new Error('not yet');
          }),
        });
        await append([...changesFor(['a'], range(1, 6)), ...changesFor(['b'], range(1, 3))]);
        await waitFor('a v4 to fail twice and b to be handled', () =>
          first.of('g', 'a').filter((d) => d.version === 4).length >= 2 && first.has('g', 'b', 3),
        );
        await subscription.stop();
        const stoppedAt = first.deliveries.length;
        assert.ok(!first.has('g', 'a', 5), 'a v5 must not pass a v4 that failed');
        assert.deepEqual(first.versions('g', 'b'), [1, 2, 3]);
        await waitFor('lag to be the 3 uncommitted entries', async () => (await log.lag('g')) === 3);

        const second = new Recorder();
        const resumed = log.subscribe({ group: 'g', handler: second.handler('g') });
        try {
          // Sentinels on the same keys: once they arrive, anything redelivered before them has been.
          await append([completeChange({ recordId: 'a', version: 7 }), completeChange({ recordId: 'b', version: 4 })]);
          await waitFor('the sentinels', () => second.has('g', 'a', 7) && second.has('g', 'b', 4));
          assert.deepEqual(second.versions('g', 'a'), [4, 5, 6, 7], 'committed a v1-v3 skipped, a v4-v6 redelivered');
          assert.equal(second.of('g', 'a')[0]?.attempt, 1, 'a new subscription counts attempts afresh');
          assert.deepEqual(second.versions('g', 'b'), [4], 'committed b v1-v3 skipped');
          assert.equal(first.deliveries.length, stoppedAt, 'a stopped subscription delivers nothing more');
          await waitFor('lag to reach 0', async () => (await log.lag('g')) === 0);
        } finally {
          await resumed.stop();
        }
      });
    });

    test('retries with backoff, dead-letters after maxAttempts, then goes on with the partition', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }, subscriptions) => {
        const recorder = new Recorder();
        const longMessage = `boom: ${'x'.repeat(3 * DEAD_LETTER_ERROR_MAX_LENGTH)}`;
        const poison = completeChange({ recordId: 'p', version: 2 });
        const plain = completeChange({ recordId: 'r', version: 1 });
        subscriptions.push(
          log.subscribe({
            group: 'g',
            maxAttempts: 3,
            handler: recorder.handler('g', (entry) => {
              if (entry.id === poison.id) throw new Error(longMessage);
              // eslint-disable-next-line @typescript-eslint/only-throw-error -- a handler may throw anything
              if (entry.id === plain.id) throw 'plain string';
            }),
          }),
        );
        await append([
          completeChange({ recordId: 'p', version: 1 }),
          poison,
          completeChange({ recordId: 'p', version: 3 }),
          completeChange({ recordId: 'p', version: 4 }),
          plain,
          completeChange({ recordId: 'r', version: 2 }),
          ...changesFor(['q'], [1, 2]),
        ]);
        await waitFor('p v4, r v2 and q v2', () => recorder.has('g', 'p', 4) && recorder.has('g', 'r', 2) && recorder.has('g', 'q', 2));
        assert.deepEqual(recorder.versions('g', 'p'), [1, 2, 2, 2, 3, 4]);
        assert.deepEqual(
          recorder.of('g', 'p').map((d) => d.attempt),
          [1, 1, 2, 3, 1, 1],
        );
        assert.deepEqual(recorder.versions('g', 'r'), [1, 1, 1, 2]);
        assert.deepEqual(recorder.versions('g', 'q'), [1, 2]);

        await waitFor('lag to reach 0', async () => (await log.lag('g')) === 0);
        const letters = await log.deadLetters('g');
        assert.equal(letters.length, 2);
        const poisoned = recorder.of('g', 'p').find((d) => d.version === 2);
        assert.ok(poisoned !== undefined);
        const letter = letters.find((l) => l.changeId === poison.id);
        assert.ok(letter !== undefined, 'the poison entry is dead-lettered');
        assert.equal(letter.group, 'g');
        assert.equal(letter.partition, poisoned.partition);
        assert.equal(letter.offset, poisoned.offset);
        assert.equal(letter.attempts, 3);
        assert.ok(letter.error.length <= DEAD_LETTER_ERROR_MAX_LENGTH, `error is ${letter.error.length} characters`);
        assert.ok(letter.error.startsWith('boom: xxx'), letter.error.slice(0, 40));
        assert.ok(!Number.isNaN(Date.parse(letter.createdAt)), letter.createdAt);
        assert.deepEqual(letter.entry, poisoned.entry);
        const other = letters.find((l) => l.changeId === plain.id);
        assert.ok(other !== undefined, 'the entry that threw a string is dead-lettered');
        assert.equal(other.error, 'plain string');
        assert.equal(other.attempts, 3);
        assert.deepEqual(await log.deadLetters('another-group'), []);

        // Committed past the dead letters: a new subscription does not see them again.
        await Promise.all(subscriptions.splice(0).map((s) => s.stop()));
        const again = new Recorder();
        subscriptions.push(log.subscribe({ group: 'g', handler: again.handler('g') }));
        await append([completeChange({ recordId: 'p', version: 5 }), completeChange({ recordId: 'r', version: 3 })]);
        await waitFor('the sentinels', () => again.has('g', 'p', 5) && again.has('g', 'r', 3));
        assert.deepEqual(again.versions('g', 'p'), [5]);
        assert.deepEqual(again.versions('g', 'r'), [3]);
        assert.equal((await log.deadLetters('g')).length, 2);
      });
    });

    test('a failing entry holds back its own partition only', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }, subscriptions) => {
        const recorder = new Recorder();
        const keys = keysNamed('k', 80);
        subscriptions.push(
          log.subscribe({
            group: 'g',
            maxAttempts: 1_000_000,
            handler: recorder.handler('g', (entry) => {
              if (entry.recordId === 'stuck') throw new Error('always failing');
            }),
          }),
        );
        // Learn every key's partition first, then block one partition and append to all of them.
        await append(changesFor(keys, [1]));
        await waitFor('every key once', () => keys.every((key) => recorder.has('g', key, 1)));
        const partitionOf = new Map(recorder.of('g').map((d) => [d.key, d.partition]));
        await append(changesFor(['stuck'], [1, 2]));
        await waitFor('stuck v1 to be retried', () => recorder.of('g', 'stuck').length >= 3);
        const blocked = recorder.of('g', 'stuck')[0]?.partition;
        await append(changesFor(keys, [2]));

        const free = keys.filter((key) => partitionOf.get(key) !== blocked);
        const held = keys.filter((key) => partitionOf.get(key) === blocked);
        assert.ok(free.length > 0, 'some keys must live in other partitions');
        await waitFor('keys of other partitions to get version 2', () => free.every((key) => recorder.has('g', key, 2)));
        await waitFor('a few more retries of stuck v1', () => recorder.of('g', 'stuck').length >= 6);
        assert.ok(
          recorder.versions('g', 'stuck').every((version) => version === 1),
          'stuck v2 must never pass the failing v1',
        );
        for (const key of held) {
          assert.deepEqual(recorder.versions('g', key), [1], `${key} shares the blocked partition: its v2 waits`);
        }
        for (const key of free) assert.deepEqual(recorder.versions('g', key), [1, 2], key);
        const attempts = recorder.of('g', 'stuck').map((d) => d.attempt);
        assert.deepEqual(attempts, range(1, attempts.length), 'attempts count up by one');
      });
    });

    test('stop() waits for the in-flight handler, aborts its signal and keeps its progress', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }) => {
        const recorder = new Recorder();
        let release!: () => void;
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        let signal: AbortSignal | undefined;
        let finished = false;
        const subscription = log.subscribe({
          group: 'g',
          handler: recorder.handler('g', async (entry, ctx) => {
            if (entry.version !== 2) return;
            signal = ctx.signal;
            await gate;
            finished = true;
          }),
        });
        await append(changesFor(['a'], range(1, 3)));
        await waitFor('a v2 to start', () => signal !== undefined);
        assert.equal(signal?.aborted, false);

        let stopped = false;
        let finishedBeforeStopped: boolean | undefined;
        const stopping = subscription.stop().then(() => {
          stopped = true;
          finishedBeforeStopped = finished;
        });
        assert.equal(signal.aborted, true, 'stop() aborts the handler signal at once');
        await delay(100);
        assert.equal(stopped, false, 'stop() must wait for the in-flight handler');
        release();
        await stopping;
        assert.equal(finishedBeforeStopped, true, 'the handler finished before stop() resolved');
        assert.deepEqual(recorder.versions('g', 'a'), [1, 2], 'nothing is delivered once stopping');

        const second = new Recorder();
        const resumed = log.subscribe({ group: 'g', handler: second.handler('g') });
        try {
          await append([completeChange({ recordId: 'a', version: 4 })]);
          await waitFor('the sentinel', () => second.has('g', 'a', 4));
          assert.deepEqual(second.versions('g', 'a'), [3, 4], 'a v2 succeeded while stopping, so it was committed');
          assert.deepEqual(recorder.versions('g', 'a'), [1, 2], 'the stopped subscription stays stopped');
        } finally {
          await resumed.stop();
        }
      });
    });

    test('stop() cuts a retry backoff short', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }) => {
        const recorder = new Recorder();
        const subscription = log.subscribe({
          group: 'g',
          maxAttempts: 10,
          // Long enough that a sleep stop() does not cut short is caught (but bounded: the test ends).
          backoff: { initialMs: 60_000, maxMs: 60_000 },
          handler: recorder.handler('g', () => {
            throw new Error('failing');
          }),
        });
        await append([completeChange({ recordId: 'a' })]);
        await waitFor('the first attempt', () => recorder.of('g').length >= 1);
        await delay(20);
        const outcome = await Promise.race([subscription.stop().then(() => 'stopped'), delay(3_000).then(() => 'still waiting')]);
        assert.equal(outcome, 'stopped', 'stop() must abort the backoff sleep');
        assert.deepEqual(await log.deadLetters('g'), [], 'an interrupted retry is not a dead letter');
      });
    });

    test('lag counts the entries a group has not committed', TEST_OPTIONS, async () => {
      await withHarness(async ({ log, append }, subscriptions) => {
        const recorder = new Recorder();
        const keys = keysNamed('k', 5);
        await append(changesFor(keys, [1, 2]));
        await waitFor('lag of a new group to be 10', async () => (await log.lag('g')) === 10);
        subscriptions.push(log.subscribe({ group: 'g', handler: recorder.handler('g') }));
        await waitFor('lag to reach 0', async () => (await log.lag('g')) === 0);
        assert.equal(new Set(recorder.of('g').map((d) => d.changeId)).size, 10);
        assert.equal(await log.lag('other'), 10, 'another group is not affected');
        await append(changesFor(keys, [3]));
        await waitFor('lag of the idle group to be 15', async () => (await log.lag('other')) === 15);
        await waitFor('lag of the consuming group to return to 0', async () => (await log.lag('g')) === 0);
      });
    });
  });
}
