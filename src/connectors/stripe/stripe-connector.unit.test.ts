// The Stripe connector against the in-process Stripe simulator (port 0, never the internet): the
// shared connector contract, then what is Stripe's own — the poll cursor, webhook edge cases,
// error classification, search lag, settings and credentials.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import Stripe from 'stripe';
import { ConnectorError, type WebhookRequest } from '../connector.ts';
import { connectorContract, type ConnectorHarness } from '../connector.contract.ts';
import { ConnectorRegistry, builtInConnectors } from '../index.ts';
import { startStripeSimulator, type StripeSimulator } from './simulator/index.ts';
import { startReceiver, stripeClient, testKey, type WebhookReceiver } from './simulator/testing.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { classifyStripeError, maskSecrets, parseRetryAfter } from './errors.ts';
import { StripeConnectorClient, stripeConnector, type StripeClientOptions } from './stripe-connector.ts';

let sim: StripeSimulator;
let laggingSim: StripeSimulator;

before(async () => {
  sim = await startStripeSimulator({ rateLimitPerSecond: 0, delivery: { retryDelaysMs: [50, 100] } });
  laggingSim = await startStripeSimulator({ rateLimitPerSecond: 0, searchLagMs: 60_000 });
});

after(async () => {
  await sim.stop();
  await laggingSim.stop();
});

function clientFor(simulator: StripeSimulator, secretKey: string, options: StripeClientOptions = {}): StripeConnectorClient {
  return new StripeConnectorClient({ secretKey }, { apiBaseUrl: simulator.url }, { timeoutMs: 1_500, ...options });
}

function sampleFields(i: number): Record<string, unknown> {
  const countries = ['GB', 'US', 'FR'];
  return {
    name: `Customer ${i}`,
    email: `customer${i}@example.com`,
    phone: `+1555${String(i).padStart(7, '0')}`,
    billing_address:
      i % 3 === 2
        ? null
        : {
            line1: `${i} Main Street`,
            line2: i % 2 === 0 ? `Suite ${i}` : null,
            city: i % 2 === 0 ? 'London' : 'Boston',
            state: i % 2 === 0 ? null : 'MA',
            postal_code: `P${i}`,
            country: countries[i % 3] ?? 'GB',
          },
    metadata: { plan: `plan-${i}`, [`key${i}`]: `value ${i}`, ...(i % 2 === 0 ? { even: 'yes' } : {}) },
  };
}

/** Canonical fields as a user would write them through the Stripe SDK. */
function userParams(fields: Record<string, unknown>, current: Stripe.Customer): Stripe.CustomerUpdateParams {
  const params: Stripe.CustomerUpdateParams = {};
  for (const key of ['name', 'email', 'phone'] as const) {
    if (key in fields) params[key] = (fields[key] as string | null) ?? '';
  }
  if ('billing_address' in fields) {
    const address = fields['billing_address'] as Record<string, string | null> | null;
    params.address =
      address === null ? '' : Object.fromEntries(Object.entries(address).map(([k, v]) => [k, v ?? '']));
  }
  if ('metadata' in fields) {
    const next = fields['metadata'] as Record<string, string>;
    const metadata: Stripe.MetadataParam = { ...next };
    for (const k of Object.keys(current.metadata)) if (!(k in next) && k !== 'tandem_id') metadata[k] = '';
    params.metadata = metadata;
  }
  return params;
}

async function makeHarness(): Promise<ConnectorHarness> {
  const key = testKey();
  const sdk = stripeClient(sim, key);
  const receiver: WebhookReceiver = await startReceiver();
  const client = clientFor(sim, key);
  return {
    client,
    entityType: 'customer',
    sampleFields,
    clearedFields: { name: null, email: null, phone: null, billing_address: null, metadata: {} },
    missingId: 'cus_Missing0000000',
    async changeExternally(externalId, fields) {
      const current = await sdk.customers.retrieve(externalId);
      assert.ok(current.deleted !== true);
      await sdk.customers.update(externalId, userParams(fields, current));
    },
    async deleteExternally(externalId) {
      await sdk.customers.del(externalId);
    },
    badCredentials() {
      const secret = `sk_live_${randomUUID().replaceAll('-', '')}`;
      return { client: clientFor(sim, secret), secret };
    },
    webhook: {
      url: receiver.url,
      deliveries: () =>
        Promise.resolve(
          receiver.received.map(
            (r): WebhookRequest => ({ rawBody: Buffer.from(r.body, 'utf8'), headers: { ...r.headers } }),
          ),
        ),
    },
    faults: {
      inject(fault) {
        if (fault === 'rate_limit') sim.admin.setFaults({ account: key, rateLimitBurst: 1_000 });
        else if (fault === 'server_error') sim.admin.setFaults({ account: key, errorRate: 1, errorPhase: 'before' });
        else sim.admin.setFaults({ account: key, hangRate: 1, hangPhase: 'before' });
        return Promise.resolve(true);
      },
      clear() {
        sim.admin.clearFaults(key);
        return Promise.resolve();
      },
    },
    async cleanup() {
      await receiver.close();
    },
  };
}

connectorContract('stripe (simulator)', makeHarness);

/** Signs a body as Stripe does, with the SDK's own test helper. */
function signed(body: string, secret: string, timestamp?: number): WebhookRequest {
  const header = Stripe.webhooks.generateTestHeaderString({ payload: body, secret, ...(timestamp === undefined ? {} : { timestamp }) });
  return { rawBody: Buffer.from(body), headers: { 'stripe-signature': header } };
}

function event(type: string, object: Record<string, unknown>, created = Math.floor(Date.now() / 1000)): string {
  return JSON.stringify({ id: `evt_${randomUUID().replaceAll('-', '')}`, object: 'event', type, created, data: { object } });
}

function expectKind(fn: () => unknown, kind: string, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConnectorError, String(error));
    assert.equal(error.kind, kind, error.message);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  });
}

describe('stripe connector: webhooks', () => {
  const secret = 'whsec_test_secret_value';
  const client = new StripeConnectorClient({ secretKey: 'sk_test_unused' }, {});
  const customer = { id: 'cus_A', object: 'customer', name: 'Ada', email: null, phone: '', address: null, metadata: { tandem_id: 'cus_01', plan: 'pro' } };

  test('a customer event becomes one notification with the mapped object', () => {
    const body = event('customer.updated', customer, 1_800_000_000);
    const [n, ...rest] = client.parseWebhook(signed(body, secret, 1_800_000_000), secret, new Date(1_800_000_010_000));
    assert.equal(rest.length, 0);
    assert.deepEqual(n, {
      eventId: (JSON.parse(body) as { id: string }).id,
      entityType: 'customer',
      externalId: 'cus_A',
      op: 'update',
      occurredAt: new Date(1_800_000_000_000).toISOString(),
      object: {
        id: 'cus_A',
        fields: { name: 'Ada', email: null, phone: null, billing_address: null, metadata: { plan: 'pro' } },
        deleted: false,
        tandemId: 'cus_01',
        version: undefined,
      },
    });
  });

  test('customer.deleted carries the last state, marked deleted', () => {
    const [n] = client.parseWebhook(signed(event('customer.deleted', customer), secret), secret);
    assert.equal(n?.op, 'delete');
    assert.equal(n.object?.deleted, true);
    assert.equal(n.object.fields['name'], 'Ada');
  });

  test('other event types (even customer.* sub-resources) give no notification', () => {
    for (const type of ['invoice.paid', 'customer.subscription.created', 'customer.source.updated', 'customer.tax_id.created']) {
      assert.deepEqual(client.parseWebhook(signed(event(type, { id: 'x', object: 'subscription' }), secret), secret), [], type);
    }
  });

  test('bad, missing and stale signatures, and malformed bodies, are fatal with a clear message', () => {
    const body = event('customer.created', customer);
    expectKind(() => client.parseWebhook(signed(body, 'whsec_other'), secret), 'fatal', /signature does not match/);
    expectKind(() => client.parseWebhook({ rawBody: Buffer.from(body), headers: {} }, secret), 'fatal', /no Stripe-Signature/);
    expectKind(
      () => client.parseWebhook({ rawBody: Buffer.from(body), headers: { 'Stripe-Signature': 'garbage' } }, secret),
      'fatal',
      /signature does not match/,
    );
    const old = Math.floor(Date.now() / 1000) - 301;
    expectKind(() => client.parseWebhook(signed(body, secret, old), secret), 'fatal', /more than 300 s old/);
    // 299 s old still passes: the tolerance is Stripe's 300 s.
    assert.equal(client.parseWebhook(signed(body, secret, Math.floor(Date.now() / 1000) - 299), secret).length, 1);
    expectKind(() => client.parseWebhook(signed('{not json', secret), secret), 'fatal', /not a JSON event/);
    expectKind(() => client.parseWebhook(signed('{"id":"evt_1"}', secret), secret), 'fatal', /malformed/);
    expectKind(
      () => client.parseWebhook(signed(event('customer.created', { id: 'cus_A', object: 'invoice' }), secret), secret),
      'fatal',
      /no customer object/,
    );
    // A header given twice is refused rather than guessed at.
    const twice = signed(body, secret);
    expectKind(() => client.parseWebhook({ ...twice, headers: { 'stripe-signature': ['a', 'b'] } }, secret), 'fatal');
  });

  test('messages never carry the webhook secret', () => {
    try {
      client.parseWebhook(signed('{}', 'whsec_x'), secret);
      assert.fail('should throw');
    } catch (error) {
      assert.ok(error instanceof ConnectorError);
      assert.ok(!error.message.includes(secret));
    }
  });
});

describe('stripe connector: poll cursor', () => {
  test('cursors encode and decode; garbage is refused', async () => {
    for (const cursor of [
      { kind: 'event', eventId: 'evt_123abc', created: 1_700_000_000 },
      { kind: 'time', since: 1_700_000_000 },
      { kind: 'scan', since: 1_700_000_000, olderThan: 'evt_9' },
    ] as const) {
      assert.deepEqual(decodeCursor(encodeCursor(cursor)), cursor);
    }
    for (const bad of ['', 'evt:', 'evt:evt_1', 'evt:cus_1:5', 'ts:abc', 'scan:1:x', 'evt:evt_1:2:3']) {
      assert.equal(decodeCursor(bad), undefined, bad);
    }
    const client = clientFor(sim, testKey());
    await assert.rejects(client.poll('nonsense'), (e: unknown) => e instanceof ConnectorError && e.kind === 'fatal');
  });

  test('a forgotten event restarts from its time; a time cursor walks back to the oldest event since then', async () => {
    const key = testKey();
    const client = clientFor(sim, key, { pollPageSize: 2, pollMaxPages: 1 });
    const customers = client.binding('customer');
    assert.ok(customers !== undefined);
    const since = Math.floor(Date.now() / 1000) - 5;
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push((await customers.create(`rec_${i}`, sampleFields(i), { idempotencyKey: randomUUID() })).id);

    // Stripe no longer knows the event: the poll falls back to the time it carried, then (no event
    // before it) walks back page by page to the oldest event since, and hands out every create in order.
    let cursor = encodeCursor({ kind: 'event', eventId: 'evt_forgotten', created: since });
    const seen: string[] = [];
    for (let round = 0; round < 20; round += 1) {
      const result = await client.poll(cursor);
      seen.push(...result.notifications.map((n) => n.externalId));
      cursor = result.cursor;
      if (!result.more) break;
    }
    assert.deepEqual(seen, ids);
    assert.match(cursor, /^evt:/);

    // From a time with an older event before it: anchored on that event, so only newer ones come.
    const later = clientFor(sim, key, { pollMaxPages: 5 });
    const third = sim.admin.events(key)[2];
    assert.ok(third !== undefined);
    const fromTime = await later.poll(encodeCursor({ kind: 'time', since: third.created + 1 }));
    assert.deepEqual(fromTime.notifications, [], 'nothing newer than "now + 1 s"');
  });

  test('a new feed on an account with no events starts from a time, then sees the first event', async () => {
    const key = testKey();
    const client = clientFor(sim, key);
    const start = await client.poll(undefined);
    assert.match(start.cursor, /^ts:\d+$/);
    assert.deepEqual(start.notifications, []);
    const customers = client.binding('customer');
    assert.ok(customers !== undefined);
    const created = await customers.create('rec_1', sampleFields(0), { idempotencyKey: randomUUID() });
    const next = await client.poll(start.cursor);
    assert.deepEqual(
      next.notifications.map((n) => [n.op, n.externalId]),
      [['create', created.id]],
    );
    assert.match(next.cursor, /^evt:/);
    assert.equal(next.more, false);
  });
});

describe('stripe connector: writes', () => {
  test('create sends tandem_id and the idempotency key; update sends only the diff', async () => {
    const key = testKey();
    const client = clientFor(sim, key);
    const customers = client.binding('customer');
    assert.ok(customers !== undefined);
    const created = await customers.create('rec_abc', sampleFields(0), { idempotencyKey: 'tandem:con_1:rec_abc:1' });
    const stored = sim.admin.customer(key, created.id);
    assert.equal(stored?.metadata['tandem_id'], 'rec_abc');
    const log = sim.admin.requestLog(key);
    assert.equal(log.at(-1)?.idempotencyKey, 'tandem:con_1:rec_abc:1');

    // Someone adds a key in Stripe meanwhile; Tandem removes `even` knowing the base: the new key stays.
    await stripeClient(sim, key).customers.update(created.id, { metadata: { added: 'outside' } });
    const base = sampleFields(0);
    const metadata = { ...(base['metadata'] as Record<string, string>) };
    delete metadata['even'];
    const updated = await customers.update(created.id, { metadata }, { idempotencyKey: randomUUID(), previous: base });
    assert.deepEqual(updated.fields['metadata'], { ...metadata, added: 'outside' });
    assert.equal(sim.admin.customer(key, created.id)?.metadata['tandem_id'], 'rec_abc', 'tandem_id is never touched');
    assert.equal(updated.fields['name'], base['name']);
  });

  test('SDK calls skip its call-site stack and leave Error.stackTraceLimit as they found it', async () => {
    const key = testKey();
    const customers = clientFor(sim, key).binding('customer');
    assert.ok(customers !== undefined);
    const limit = Error.stackTraceLimit;
    const prepare = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');
    // Counts the stacks captured from inside the SDK's request method (its call-site capture).
    let captured = 0;
    Error.prepareStackTrace = (error: Error, frames: NodeJS.CallSite[]) => {
      if (frames.some((frame) => frame.getFunctionName() === '_makeRequest')) captured += 1;
      const lines = frames.map((frame) => `    at ${frame.getFunctionName() ?? '<anonymous>'} (${frame.getFileName() ?? '?'}:${String(frame.getLineNumber())})`);
      return [String(error), ...lines].join('\n');
    };
    try {
      Error.stackTraceLimit = 17;
      const created = await customers.create('rec_stack', sampleFields(1), { idempotencyKey: randomUUID() });
      assert.equal(captured, 0, 'the SDK captured no call-site stack');
      assert.equal(Error.stackTraceLimit, 17);
      await assert.rejects(customers.update('cus_missing', { name: 'x' }, { idempotencyKey: randomUUID() }), ConnectorError);
      assert.equal(Error.stackTraceLimit, 17, 'restored after a failed call too');
      assert.equal((await customers.get(created.id))?.id, created.id);
      assert.ok((new Error('after').stack ?? '').split('\n').length > 1, 'stacks work again after the call');
    } finally {
      Error.stackTraceLimit = limit;
      if (prepare === undefined) Reflect.deleteProperty(Error, 'prepareStackTrace');
      else Object.defineProperty(Error, 'prepareStackTrace', prepare);
    }
  });

  test('findByTandemId finds a customer the lagging search index does not show yet', async () => {
    const key = testKey();
    const client = clientFor(laggingSim, key);
    const customers = client.binding('customer');
    assert.ok(customers?.findByTandemId !== undefined);
    const created = await customers.create('rec_lag', sampleFields(1), { idempotencyKey: randomUUID() });
    const search = await stripeClient(laggingSim, key).customers.search({ query: "metadata['tandem_id']:'rec_lag'" });
    assert.equal(search.data.length, 0, 'search does not see it yet');
    assert.equal((await customers.findByTandemId('rec_lag'))?.id, created.id);
    assert.equal(await customers.findByTandemId("rec_'quoted\\"), undefined);
  });

  test('a retried update whose first answer was lost succeeds, with or without the previous values', async () => {
    const key = testKey();
    const client = clientFor(sim, key);
    const customers = client.binding('customer');
    assert.ok(customers !== undefined);
    const base = sampleFields(0);
    const created = await customers.create('rec_lost', base, { idempotencyKey: randomUUID() });
    const wanted = { name: 'Renamed', metadata: { plan: 'gold' } };
    for (const previous of [undefined, base]) {
      const idempotencyKey = randomUUID();
      const target = { ...wanted, name: `${wanted.name} ${previous === undefined ? 'a' : 'b'}` };
      // The write is applied, then the answer is lost (a 500 after the fact).
      sim.admin.setFaults({ account: key, errorRate: 1, errorPhase: 'after' });
      await assert.rejects(customers.update(created.id, target, { idempotencyKey, previous }), (e: unknown) => e instanceof ConnectorError && e.kind === 'retry');
      sim.admin.clearFaults(key);
      const retried = await customers.update(created.id, target, { idempotencyKey, previous });
      assert.equal(retried.fields['name'], target.name);
      assert.deepEqual(retried.fields['metadata'], target.metadata);
    }
    // A different write under a used key is still refused.
    const used = randomUUID();
    await customers.update(created.id, { name: 'One' }, { idempotencyKey: used });
    await assert.rejects(
      customers.update(created.id, { name: 'Two' }, { idempotencyKey: used }),
      (e: unknown) => e instanceof ConnectorError && e.kind === 'fatal' && e.externalCode === 'idempotency_error',
    );
  });

  test('a signal that fires during a call ends it at once', async () => {
    const key = testKey();
    const client = clientFor(sim, key, { timeoutMs: 10_000 });
    sim.admin.setFaults({ account: key, hangRate: 1 });
    try {
      const started = Date.now();
      await assert.rejects(
        client.binding('customer')?.get('cus_x', AbortSignal.timeout(100)) ?? Promise.resolve(),
        (e: unknown) => e instanceof Error && e.name === 'TimeoutError',
      );
      assert.ok(Date.now() - started < 2_000, 'not the 10 s request timeout');
    } finally {
      sim.admin.clearFaults(key);
    }
  });

  test('register and unregister a webhook endpoint for the customer events', async () => {
    const key = testKey();
    const client = clientFor(sim, key);
    const registration = await client.registerWebhook('http://127.0.0.1:9/hook');
    assert.match(registration.secret, /^whsec_/);
    const [endpoint] = sim.admin.webhookEndpoints(key);
    assert.deepEqual(endpoint?.enabled_events, ['customer.created', 'customer.updated', 'customer.deleted']);
    await client.unregisterWebhook(registration.endpointId);
    assert.deepEqual(sim.admin.webhookEndpoints(key), []);
  });

  test('validate answers the account id (or, where GET /v1/account is not served, a key fingerprint)', async () => {
    const key = testKey();
    const account = await clientFor(sim, key).validate();
    const simulated = sim.admin.accounts().find((a) => a.key === key);
    assert.ok(simulated !== undefined);
    if (account.accountId.startsWith('acct_')) assert.equal(account.accountId, simulated.id);
    else assert.match(account.accountId, /^key_[0-9a-f]{12}$/);
    assert.ok(!account.accountId.includes(key.slice(8)));
    assert.equal((await clientFor(sim, key).validate()).accountId, account.accountId, 'stable');
  });
});

describe('stripe connector: error classification', () => {
  const raw = (statusCode: number, extra: Record<string, unknown> = {}) => ({
    message: 'boom',
    type: 'invalid_request_error' as const,
    statusCode,
    headers: {},
    requestId: 'req_1',
    ...extra,
  });
  const cases: [string, unknown, string, Record<string, unknown>?][] = [
    ['connection error', new Stripe.errors.StripeConnectionError({ message: 'ECONNREFUSED' }), 'retry'],
    ['500', Stripe.errors.StripeError.generate(raw(500, { type: 'api_error' })), 'retry', { keySpent: false }],
    ['500 replayed', Stripe.errors.StripeError.generate(raw(500, { type: 'api_error', headers: { 'Idempotent-Replayed': 'true' } })), 'retry', { keySpent: true }],
    ['500 not to retry', Stripe.errors.StripeError.generate(raw(500, { type: 'api_error', headers: { 'stripe-should-retry': 'false' } })), 'retry', { keySpent: true }],
    ['503', Stripe.errors.StripeError.generate(raw(503, { type: 'api_error' })), 'retry'],
    ['409', Stripe.errors.StripeError.generate(raw(409, { type: 'idempotency_error', code: 'idempotency_key_in_use' })), 'retry'],
    ['invalid JSON', new Stripe.errors.StripeAPIError({ message: 'Invalid JSON received from the Stripe API' }), 'retry'],
    ['429', Stripe.errors.StripeError.generate(raw(429, { code: 'rate_limit' })), 'retry_after', { retryAfterMs: 1000 }],
    ['429 + Retry-After', Stripe.errors.StripeError.generate(raw(429, { headers: { 'retry-after': '7' } })), 'retry_after', { retryAfterMs: 7000 }],
    ['400 rate_limit', Stripe.errors.StripeError.generate(raw(400, { code: 'rate_limit' })), 'retry_after'],
    ['401', Stripe.errors.StripeError.generate(raw(401, { message: 'Invalid API Key provided: sk_test_abcdefghijklmnop' })), 'auth'],
    ['403', Stripe.errors.StripeError.generate(raw(403)), 'auth'],
    ['400', Stripe.errors.StripeError.generate(raw(400, { code: 'parameter_invalid_empty' })), 'fatal', { externalCode: 'parameter_invalid_empty', status: 400 }],
    ['400 idempotency', Stripe.errors.StripeError.generate(raw(400, { type: 'idempotency_error' })), 'fatal', { externalCode: 'idempotency_error' }],
    ['402', Stripe.errors.StripeError.generate(raw(402, { type: 'card_error', code: 'card_declined' })), 'fatal', { externalCode: 'card_declined' }],
    ['404', Stripe.errors.StripeError.generate(raw(404, { code: 'resource_missing' })), 'fatal', { externalCode: 'resource_missing', status: 404 }],
    ['a bug', new TypeError('x is undefined'), 'retry'],
  ];
  for (const [label, error, kind, expected] of cases) {
    test(`${label} -> ${kind}`, () => {
      const classified = classifyStripeError(error, 'customer read', ['sk_test_abcdefghijklmnop']);
      assert.equal(classified.kind, kind, classified.message);
      for (const [field, value] of Object.entries(expected ?? {})) {
        assert.equal((classified as unknown as Record<string, unknown>)[field], value, field);
      }
      assert.ok(!classified.message.includes('sk_test_abcdefghijklmnop'), classified.message);
      assert.match(classified.message, /^Stripe customer read failed/);
    });
  }

  test('Retry-After takes seconds or an HTTP date; secrets are masked', () => {
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter(new Date(Date.now() + 3000).toUTCString(), Date.now()) !== undefined, true);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(maskSecrets('key sk_live_123abc and whsec_zzz'), 'key sk_live_*** and whsec_***');
    assert.equal(maskSecrets('literal hunter22', ['hunter22']), 'literal [redacted]');
  });

  test('a refused key never reaches the message, even when the server echoes it whole', async () => {
    const secret = `sk_live_${randomUUID().replaceAll('-', '')}`;
    const client = clientFor(sim, secret);
    await assert.rejects(client.validate(), (e: unknown) => e instanceof ConnectorError && e.kind === 'auth' && !e.message.includes(secret));
  });

  test('the connection refused is retry', async () => {
    const client = new StripeConnectorClient({ secretKey: testKey() }, { apiBaseUrl: 'http://127.0.0.1:9' }, { timeoutMs: 1_000 });
    await assert.rejects(client.validate(), (e: unknown) => e instanceof ConnectorError && e.kind === 'retry');
  });
});

describe('stripe connector: definition and registry', () => {
  test('credentials and settings are checked', () => {
    assert.equal(stripeConnector.credentialsSchema.safeParse({ secretKey: 'sk_test_abc123' }).success, true);
    for (const bad of [{ secretKey: 'pk_test_abc123' }, { secretKey: 'rk_test_abc123' }, {}, { secretKey: 'sk_test_abc', extra: 1 }]) {
      assert.equal(stripeConnector.credentialsSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
    for (const ok of [{}, { apiBaseUrl: 'https://api.stripe.com' }, { apiBaseUrl: 'http://127.0.0.1:12111' }, { apiBaseUrl: 'http://localhost:1' }]) {
      assert.equal(stripeConnector.settingsSchema.safeParse(ok).success, true, JSON.stringify(ok));
    }
    for (const bad of [
      { apiBaseUrl: 'http://example.com' },
      { apiBaseUrl: 'https://api.stripe.com/v1' },
      { apiBaseUrl: 'ftp://x' },
      { apiBaseUrl: 'https://user:pw@api.stripe.com' },
      { other: true },
    ]) {
      assert.equal(stripeConnector.settingsSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });

  test('the registry knows stripe and refuses unknown ids', () => {
    const registry = new ConnectorRegistry(builtInConnectors);
    assert.equal(registry.get('stripe'), stripeConnector);
    assert.equal(registry.find('nope'), undefined);
    assert.throws(() => registry.get('nope'), /Unknown connector nope/);
    assert.throws(() => new ConnectorRegistry([stripeConnector, stripeConnector]), /twice/);
    assert.deepEqual(registry.all().map((c) => c.id), ['stripe', 'salesforce']);
    assert.equal(stripeConnector.entities['customer']?.directions.includes('both'), true);
  });
});
