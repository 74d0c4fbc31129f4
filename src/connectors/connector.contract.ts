// The contract every connector must pass against its simulator (Stripe now; Salesforce and
// QuickBooks next). It speaks only through ConnectorClient and the harness: no SDK, no wire format,
// no knowledge of the system's ids or events. Every wait is bounded, so a broken connector fails
// rather than hangs.
//
// Usage, in a `*.unit.test.ts` (in-process simulator) or `*.integration.test.ts` file:
//   connectorContract('stripe', async () => ({ client, entityType: 'customer', sampleFields, … }));
// Each test gets its own harness (a fresh, empty account) and cleans it up.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import {
  ConnectorError,
  type ConnectorClient,
  type EntityBinding,
  type ExternalNotification,
  type ExternalObject,
  type FailureKind,
  type PollResult,
  type WebhookRequest,
} from './connector.ts';

/** A fault the harness can make the client's calls meet, until `clear()`. */
export type ContractFault =
  /** Answered "too many requests" (429 or the system's equivalent). */
  | 'rate_limit'
  /** Answered a server error (5xx). */
  | 'server_error'
  /** Never answered: the client's own timeout must end the call (keep it short in the harness). */
  | 'timeout';

export interface ConnectorHarness {
  /** A client on a fresh, empty account of the system (its simulator), with its default options. */
  client: ConnectorClient;
  /** The entity type exercised; the client must have a binding for it. */
  entityType: string;
  /**
   * The i-th sample (the suite uses i = 0..7): canonical values for every field of the binding, as
   * the system holds them (normalize(sample) equals sample). Samples i and i + 1 differ in every
   * field; between them, a map field should both add and remove keys.
   */
  sampleFields(i: number): Record<string, unknown>;
  /** Canonical values of an object whose every clearable field was cleared, if the system allows it. */
  clearedFields?: Record<string, unknown> | undefined;
  /** An id shaped like the system's ids that names no object. */
  missingId: string;
  /** Changes an object through the system's own API (as a user would), in canonical fields. */
  changeExternally(externalId: string, fields: Record<string, unknown>): Promise<void>;
  /** Deletes an object through the system's own API. */
  deleteExternally(externalId: string): Promise<void>;
  /** A client for the same system whose credentials it refuses, and the secret in them. */
  badCredentials(): { client: ConnectorClient; secret: string };
  /**
   * When the system sends webhooks: a receiver it can reach. If the client can registerWebhook, the
   * suite registers `url` itself and uses the secret it gets; otherwise `secret` must be given.
   */
  webhook?: {
    url: string;
    secret?: string | undefined;
    /** Every request the receiver got so far, raw. */
    deliveries(): Promise<WebhookRequest[]>;
  };
  /** Fault injection into the client's calls: `inject` answers false for a fault it cannot make. */
  faults?: {
    inject(fault: ContractFault): Promise<boolean>;
    clear(): Promise<void>;
  };
  cleanup(): Promise<void>;
}

export interface ConnectorContractOptions {
  /** node:test skip: a reason to skip the whole suite, or false to run it. */
  skip?: string | boolean;
}

const WAIT_MS = 10_000;
const TEST_OPTIONS = { timeout: 30_000 };

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls `probe` until it answers a value; fails with `what` after WAIT_MS. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, state?: () => unknown): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const detail = state === undefined ? '' : `; state: ${JSON.stringify(state())}`;
      assert.fail(`Timed out after ${WAIT_MS} ms waiting for ${what}${detail}`);
    }
    await delay(50);
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : JSON.stringify(error);
}

/** Asserts the error is a ConnectorError of `kind` with a message, and answers it. */
function assertKind(error: unknown, kind: FailureKind, what: string): ConnectorError {
  assert.ok(error instanceof ConnectorError, `${what}: expected a ConnectorError(${kind}), got ${describeError(error)}`);
  assert.equal(error.kind, kind, `${what}: kind (message: ${error.message})`);
  assert.ok(error.message.length > 0, `${what}: the error needs a message`);
  return error;
}

/** Asserts the promise rejects with a ConnectorError of `kind`, and answers it. */
async function rejectsWithKind(promise: Promise<unknown>, kind: FailureKind, what: string): Promise<ConnectorError> {
  try {
    await promise;
  } catch (error) {
    return assertKind(error, kind, what);
  }
  assert.fail(`${what}: expected a ConnectorError(${kind}), but it succeeded`);
}

function throwsWithKind(fn: () => unknown, kind: FailureKind, what: string): ConnectorError {
  try {
    fn();
  } catch (error) {
    return assertKind(error, kind, what);
  }
  assert.fail(`${what}: expected a ConnectorError(${kind}), but it succeeded`);
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

function pick(fields: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, fields[key]]));
}

function uniqueTandemId(): string {
  return `rec_contract_${randomUUID().replaceAll('-', '')}`;
}

function key(): string {
  return `contract-${randomUUID()}`;
}

function bindingOf(harness: ConnectorHarness): EntityBinding {
  const binding = harness.client.binding(harness.entityType);
  assert.ok(binding !== undefined, `the client has no binding for ${harness.entityType}`);
  return binding;
}

/** Polls from `cursor` until `until` holds for what was seen, or fails after WAIT_MS. */
async function pollUntil(
  client: ConnectorClient,
  cursor: string,
  what: string,
  until: (seen: ExternalNotification[]) => boolean,
): Promise<{ seen: ExternalNotification[]; cursor: string; results: PollResult[] }> {
  assert.ok(client.poll !== undefined);
  const seen: ExternalNotification[] = [];
  const results: PollResult[] = [];
  let position = cursor;
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const result = await client.poll(position);
    results.push(result);
    seen.push(...result.notifications);
    position = result.cursor;
    if (until(seen) && !result.more) return { seen, cursor: position, results };
    if (Date.now() > deadline) {
      assert.fail(`Timed out after ${WAIT_MS} ms polling for ${what}; seen: ${JSON.stringify(seen.map((n) => [n.op, n.externalId]))}`);
    }
    if (!result.more) await delay(50);
  }
}

function assertWellFormed(notification: ExternalNotification, entityType: string): void {
  assert.ok(notification.eventId.length > 0, 'a notification needs an event id');
  assert.equal(notification.entityType, entityType);
  assert.ok(notification.externalId.length > 0);
  assert.ok(['create', 'update', 'delete'].includes(notification.op), `op ${notification.op}`);
  assert.ok(!Number.isNaN(Date.parse(notification.occurredAt)), `occurredAt ${notification.occurredAt}`);
}

function assertOldestFirst(notifications: ExternalNotification[], label: string): void {
  for (let i = 1; i < notifications.length; i += 1) {
    const before = Date.parse(notifications[i - 1]?.occurredAt ?? '');
    const after = Date.parse(notifications[i]?.occurredAt ?? '');
    assert.ok(before <= after, `${label}: notifications must come oldest first`);
  }
}

export function connectorContract(
  name: string,
  makeHarness: () => Promise<ConnectorHarness>,
  options: ConnectorContractOptions = {},
): void {
  async function withHarness(fn: (harness: ConnectorHarness, binding: EntityBinding) => Promise<void>): Promise<void> {
    const harness = await makeHarness();
    try {
      await fn(harness, bindingOf(harness));
    } finally {
      await harness.faults?.clear();
      await harness.cleanup();
    }
  }

  /** Asserts the object holds exactly `expected` in the binding's fields. */
  function assertFields(
    binding: EntityBinding,
    object: ExternalObject | undefined,
    expected: Record<string, unknown>,
    label: string,
  ): asserts object is ExternalObject {
    assert.ok(object !== undefined, `${label}: the object is missing`);
    assert.equal(object.deleted, false, `${label}: the object should not be deleted`);
    assert.deepEqual(pick(object.fields, binding.fields), pick(expected, binding.fields), label);
  }

  describe(`connector contract: ${name}`, { skip: options.skip ?? false }, () => {
    test('validate answers the account; refused credentials are kind auth and never echoed', TEST_OPTIONS, async () => {
      await withHarness(async (harness) => {
        const account = await harness.client.validate();
        assert.equal(typeof account.accountId, 'string');
        assert.ok(account.accountId.length > 0, 'an account id');

        const bad = harness.badCredentials();
        const refused = await rejectsWithKind(bad.client.validate(), 'auth', 'validate with bad credentials');
        const badBinding = bad.client.binding(harness.entityType);
        assert.ok(badBinding !== undefined);
        const refusedGet = await rejectsWithKind(badBinding.get(harness.missingId), 'auth', 'get with bad credentials');
        for (const error of [refused, refusedGet]) {
          assert.ok(!error.message.includes(bad.secret), `the secret must not appear in: ${error.message}`);
          assert.ok(!JSON.stringify(error).includes(bad.secret), 'the secret must not appear in the error');
        }
      });
    });

    test('samples are normalised: normalize(sample) is the sample, and normalize is idempotent', TEST_OPTIONS, async () => {
      await withHarness((harness, binding) => {
        for (let i = 0; i < 4; i += 1) {
          const sample = harness.sampleFields(i);
          assert.deepEqual(Object.keys(sample).sort(), [...binding.fields].sort(), 'a sample has every field of the binding');
          if (binding.normalize === undefined) continue;
          const once = binding.normalize(sample);
          assert.deepEqual(once, sample, `sample ${i}`);
          assert.deepEqual(binding.normalize(once), once, `sample ${i} twice`);
        }
        return Promise.resolve();
      });
    });

    test('create, then get, round-trips the canonical fields exactly and carries the Tandem id', TEST_OPTIONS, async () => {
      await withHarness(async (harness, binding) => {
        for (let i = 0; i < 3; i += 1) {
          const sample = harness.sampleFields(i);
          const tandemId = uniqueTandemId();
          const created = await binding.create(tandemId, sample, { idempotencyKey: key() });
          assert.ok(created.id.length > 0);
          assertFields(binding, created, sample, `create answer of sample ${i}`);
          assert.equal(created.tandemId, tandemId, 'the created object carries its Tandem id');
          const fetched = await binding.get(created.id);
          assertFields(binding, fetched, sample, `get of sample ${i}`);
          assert.equal(fetched.id, created.id);
          assert.equal(fetched.tandemId, tandemId);
        }
      });
    });

    test('create twice with the same idempotency key makes one external object', TEST_OPTIONS, async () => {
      await withHarness(async (harness, binding) => {
        const tandemId = uniqueTandemId();
        const idempotencyKey = key();
        const sample = harness.sampleFields(0);
        const first = await binding.create(tandemId, sample, { idempotencyKey });
        const second = await binding.create(tandemId, sample, { idempotencyKey });
        assert.equal(second.id, first.id, 'a retried create answers the same object');
        if (binding.list !== undefined) {
          const all: ExternalObject[] = [];
          let cursor: string | undefined;
          do {
            const page = await binding.list(cursor);
            all.push(...page.objects);
            cursor = page.next;
          } while (cursor !== undefined);
          assert.equal(all.filter((o) => o.tandemId === tandemId).length, 1, 'exactly one object for the record');
        }
      });
    });

    test('update writes only the fields of the diff, with or without the previous values', TEST_OPTIONS, async () => {
      await withHarness(async (harness, binding) => {
        const created = await binding.create(uniqueTandemId(), harness.sampleFields(0), { idempotencyKey: key() });
        let expected = harness.sampleFields(0);
        // First toward sample 1 telling the connector what it holds, then toward sample 2 without.
        for (const [target, withPrevious] of [
          [1, true],
          [2, false],
        ] as const) {
          const next = harness.sampleFields(target);
          for (const field of binding.fields) {
            if (isDeepStrictEqual(next[field], expected[field])) continue;
            const diff = { [field]: next[field] };
            const updated = await binding.update(created.id, diff, {
              idempotencyKey: key(),
              previous: withPrevious ? expected : undefined,
            });
            expected = { ...expected, ...diff };
            assertFields(binding, updated, expected, `update answer after ${field} (sample ${target})`);
            assertFields(binding, await binding.get(created.id), expected, `get after ${field} (sample ${target})`);
          }
        }
      });
    });

    test('update can clear every clearable field', TEST_OPTIONS, async (t) => {
      await withHarness(async (harness, binding) => {
        const cleared = harness.clearedFields;
        if (cleared === undefined) {
          t.skip('the harness gives no clearedFields');
          return;
        }
        const sample = harness.sampleFields(0);
        const created = await binding.create(uniqueTandemId(), sample, { idempotencyKey: key() });
        const updated = await binding.update(created.id, cleared, { idempotencyKey: key(), previous: sample });
        assertFields(binding, updated, { ...sample, ...cleared }, 'update answer');
        assertFields(binding, await binding.get(created.id), { ...sample, ...cleared }, 'get after clearing');
        // And back: a cleared object takes values again.
        const restored = await binding.update(created.id, sample, { idempotencyKey: key(), previous: { ...sample, ...cleared } });
        assertFields(binding, restored, sample, 'update answer after restoring');
      });
    });

    test('get of an unknown id is undefined; writing to it is fatal', TEST_OPTIONS, async () => {
      await withHarness(async (harness, binding) => {
        assert.equal(await binding.get(harness.missingId), undefined);
        const [field] = binding.fields;
        assert.ok(field !== undefined);
        await rejectsWithKind(
          binding.update(harness.missingId, { [field]: harness.sampleFields(1)[field] }, { idempotencyKey: key() }),
          'fatal',
          'update of an unknown id',
        );
      });
    });

    test('delete, then get says deleted; deleting again succeeds; updating it is fatal', TEST_OPTIONS, async () => {
      await withHarness(async (harness, binding) => {
        const created = await binding.create(uniqueTandemId(), harness.sampleFields(0), { idempotencyKey: key() });
        await binding.delete(created.id, { idempotencyKey: key() });
        const gone = await binding.get(created.id);
        assert.ok(gone !== undefined, 'a deleted object is still known (as deleted)');
        assert.equal(gone.deleted, true);
        assert.equal(gone.id, created.id);
        await binding.delete(created.id, { idempotencyKey: key() });
        const [field] = binding.fields;
        assert.ok(field !== undefined);
        await rejectsWithKind(
          binding.update(created.id, { [field]: harness.sampleFields(1)[field] }, { idempotencyKey: key() }),
          'fatal',
          'update of a deleted object',
        );
      });
    });

    test('findByTandemId finds the object created for a record, and nothing for another', TEST_OPTIONS, async (t) => {
      await withHarness(async (harness, binding) => {
        if (binding.findByTandemId === undefined) {
          t.skip('the binding has no findByTandemId');
          return;
        }
        const tandemId = uniqueTandemId();
        await binding.create(uniqueTandemId(), harness.sampleFields(1), { idempotencyKey: key() });
        const created = await binding.create(tandemId, harness.sampleFields(0), { idempotencyKey: key() });
        const found = await binding.findByTandemId(tandemId);
        assert.equal(found?.id, created.id);
        assert.equal(found.tandemId, tandemId);
        assertFields(binding, found, harness.sampleFields(0), 'found object');
        assert.equal(await binding.findByTandemId(uniqueTandemId()), undefined);
      });
    });

    test('list pages through every object exactly once', TEST_OPTIONS, async (t) => {
      await withHarness(async (harness, binding) => {
        if (binding.list === undefined) {
          t.skip('the binding has no list');
          return;
        }
        const ids: string[] = [];
        for (let i = 0; i < 5; i += 1) {
          ids.push((await binding.create(uniqueTandemId(), harness.sampleFields(i), { idempotencyKey: key() })).id);
        }
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await binding.list(cursor);
          pages += 1;
          assert.ok(pages <= 100, 'list must end');
          seen.push(...page.objects.map((o) => o.id));
          for (const object of page.objects) {
            const index = ids.indexOf(object.id);
            if (index >= 0) assertFields(binding, object, harness.sampleFields(index), `listed object ${index}`);
          }
          cursor = page.next;
        } while (cursor !== undefined);
        assert.equal(new Set(seen).size, seen.length, 'no object twice');
        for (const id of ids) assert.ok(seen.includes(id), `${id} is listed`);
      });
    });

    test('poll starts from now, then sees external changes and deletes, oldest first, once', TEST_OPTIONS, async (t) => {
      await withHarness(async (harness, binding) => {
        const { client } = harness;
        if (client.poll === undefined) {
          t.skip('the client cannot poll');
          return;
        }
        const before = await binding.create(uniqueTandemId(), harness.sampleFields(0), { idempotencyKey: key() });
        const start = await client.poll(undefined);
        assert.equal(
          start.notifications.filter((n) => n.externalId === before.id).length,
          0,
          'a new feed does not replay history',
        );
        const target = harness.sampleFields(1);
        const [field] = binding.fields;
        assert.ok(field !== undefined);
        await harness.changeExternally(before.id, { [field]: target[field] });
        const changed = await pollUntil(client, start.cursor, 'the external change', (seen) =>
          seen.some((n) => n.externalId === before.id && n.op === 'update'),
        );
        for (const result of changed.results) assertOldestFirst(result.notifications, 'a poll result');
        for (const n of changed.seen) assertWellFormed(n, harness.entityType);
        const update = changed.seen.find((n) => n.externalId === before.id && n.op === 'update');
        if (update?.object !== undefined) assert.deepEqual(update.object.fields[field], target[field], 'the event carries the change');

        await harness.deleteExternally(before.id);
        const deleted = await pollUntil(client, changed.cursor, 'the external delete', (seen) =>
          seen.some((n) => n.externalId === before.id && n.op === 'delete'),
        );
        const all = [...changed.seen, ...deleted.seen];
        assert.equal(new Set(all.map((n) => n.eventId)).size, all.length, 'no event is handed out twice');
        const again = await client.poll(deleted.cursor);
        assert.deepEqual(
          again.notifications.filter((n) => all.some((m) => m.eventId === n.eventId)),
          [],
          'a poll from the latest cursor repeats nothing',
        );
      });
    });

    test('poll drains a burst of changes page by page, in order', TEST_OPTIONS, async (t) => {
      await withHarness(async (harness, binding) => {
        const { client } = harness;
        if (client.poll === undefined) {
          t.skip('the client cannot poll');
          return;
        }
        const start = await client.poll(undefined);
        const ids: string[] = [];
        for (let i = 0; i < 8; i += 1) {
          ids.push((await binding.create(uniqueTandemId(), harness.sampleFields(i), { idempotencyKey: key() })).id);
        }
        const drained = await pollUntil(client, start.cursor, 'every create', (seen) =>
          ids.every((id) => seen.some((n) => n.externalId === id && n.op === 'create')),
        );
        const creates = drained.seen.filter((n) => n.op === 'create').map((n) => n.externalId);
        assert.deepEqual(creates, ids, 'creates arrive once each, oldest first');
        assert.equal(new Set(drained.seen.map((n) => n.eventId)).size, drained.seen.length, 'no event twice');
      });
    });

    test('a delivered webhook is accepted; forged, tampered, stale or unsigned ones are fatal', TEST_OPTIONS, async (t) => {
      await withHarness(async (harness, binding) => {
        const { client, webhook } = harness;
        const parse = client.parseWebhook?.bind(client);
        if (webhook === undefined || parse === undefined) {
          t.skip('no webhooks');
          return;
        }
        let secret = webhook.secret;
        let endpointId: string | undefined;
        if (client.registerWebhook !== undefined) {
          const registration = await client.registerWebhook(webhook.url);
          assert.ok(registration.endpointId.length > 0);
          assert.ok(registration.secret.length > 0);
          secret = registration.secret;
          endpointId = registration.endpointId;
        }
        assert.ok(secret !== undefined, 'the harness must give the webhook secret when the client cannot register');
        const signingSecret = secret;

        const created = await binding.create(uniqueTandemId(), harness.sampleFields(0), { idempotencyKey: key() });
        const [field] = binding.fields;
        assert.ok(field !== undefined);
        await harness.changeExternally(created.id, { [field]: harness.sampleFields(1)[field] });
        const delivery = await eventually('a webhook for the external change', async () => {
          for (const request of await webhook.deliveries()) {
            const notifications = parse(request, signingSecret);
            for (const n of notifications) assertWellFormed(n, harness.entityType);
            if (notifications.some((n) => n.externalId === created.id && n.op === 'update')) return request;
          }
          return undefined;
        });

        throwsWithKind(() => parse(delivery, `${signingSecret}x`), 'fatal', 'a delivery checked with another secret');
        const tampered = Buffer.from(delivery.rawBody);
        const middle = Math.floor(tampered.length / 2);
        tampered[middle] = (tampered[middle] ?? 0) ^ 1;
        throwsWithKind(() => parse({ ...delivery, rawBody: tampered }, signingSecret), 'fatal', 'a tampered body');
        throwsWithKind(() => parse({ rawBody: delivery.rawBody, headers: {} }, signingSecret), 'fatal', 'a delivery without headers');
        const later = new Date(Date.now() + 60 * 60 * 1000);
        throwsWithKind(() => parse(delivery, signingSecret, later), 'fatal', 'a delivery replayed an hour later');

        if (endpointId !== undefined && client.unregisterWebhook !== undefined) {
          await client.unregisterWebhook(endpointId);
          await client.unregisterWebhook(endpointId);
        }
      });
    });

    test('rate limits are retry_after, server errors and timeouts are retry', TEST_OPTIONS, async (t) => {
      await withHarness(async (harness, binding) => {
        const { faults } = harness;
        if (faults === undefined) {
          t.skip('the harness cannot inject faults');
          return;
        }
        const created = await binding.create(uniqueTandemId(), harness.sampleFields(0), { idempotencyKey: key() });
        const expectations: [ContractFault, FailureKind][] = [
          ['rate_limit', 'retry_after'],
          ['server_error', 'retry'],
          ['timeout', 'retry'],
        ];
        let tried = 0;
        for (const [fault, kind] of expectations) {
          if (!(await faults.inject(fault))) continue;
          tried += 1;
          const error = await rejectsWithKind(binding.get(created.id), kind, `get under ${fault}`);
          if (kind === 'retry_after') assert.ok((error.retryAfterMs ?? 0) > 0, 'retry_after says how long to wait');
          await rejectsWithKind(
            binding.update(created.id, { [binding.fields[0] ?? '']: harness.sampleFields(1)[binding.fields[0] ?? ''] }, { idempotencyKey: key() }),
            kind,
            `update under ${fault}`,
          );
          await faults.clear();
        }
        assert.ok(tried > 0, 'the harness injected no fault at all');
        // Once the faults stop, the same calls work.
        assertFields(binding, await binding.get(created.id), harness.sampleFields(0), 'get after the faults');
      });
    });

    test('an aborted signal stops a call before it is made', TEST_OPTIONS, async () => {
      await withHarness(async (harness, binding) => {
        const signal = AbortSignal.abort();
        await assert.rejects(binding.get(harness.missingId, signal), isAbortError);
        await assert.rejects(binding.create(uniqueTandemId(), harness.sampleFields(0), { idempotencyKey: key(), signal }), isAbortError);
        await assert.rejects(harness.client.validate(signal), isAbortError);
        if (harness.client.poll !== undefined) await assert.rejects(harness.client.poll(undefined, signal), isAbortError);
        if (binding.list !== undefined) {
          const page = await binding.list(undefined);
          assert.equal(page.objects.length, 0, 'the aborted create made nothing');
        }
      });
    });
  });
}
