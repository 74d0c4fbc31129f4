// The Salesforce connector against the in-process Salesforce simulator (port 0, never the internet):
// the shared connector contract, then what is Salesforce's own — sObject Collections request
// counts, per-record errors, idempotent creates under lost answers, session expiry, the three
// sign-in flows, the daily allocation, the replication poll and its resync, and secrets.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ConnectorError, type BatchOutcome, type BatchWrite, type ExternalNotification, type ExternalObject, type StreamBatch } from '../connector.ts';
import { connectorContract, type ConnectorHarness } from '../connector.contract.ts';
import { ConnectorRegistry, builtInConnectors } from '../index.ts';
import { SalesforceConnectorClient, ownClientTag, salesforceConnector, type SalesforceClientOptions, type SalesforceSettingsInput } from './salesforce-connector.ts';
import type { SalesforceCredentials } from './auth.ts';
import { DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_USERNAME, startSalesforceSimulator, to18, type SalesforceSimulator } from './simulator/index.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function clientFor(
  sim: SalesforceSimulator,
  credentials: SalesforceCredentials = { clientId: DEFAULT_CLIENT_ID, clientSecret: DEFAULT_CLIENT_SECRET },
  options: SalesforceClientOptions = {},
  settings: SalesforceSettingsInput = {},
  connectionId = 'con_test',
): SalesforceConnectorClient {
  return new SalesforceConnectorClient(credentials, salesforceConnector.settingsSchema.parse({ loginUrl: sim.url, ...settings }), { connectionId }, { timeoutMs: 1_500, ...options });
}

function sampleFields(i: number): Record<string, unknown> {
  const countries = ['GB', 'US', 'FR'];
  return {
    name: i % 4 === 3 ? `Mono${String(i)}` : `Ada${String(i)} Lovelace${String(i)}`,
    company: i % 3 === 1 ? null : `Company ${String(i)}`,
    email: `customer${String(i)}@example.com`,
    phone: `+1555${String(i).padStart(7, '0')}`,
    billing_address:
      i % 3 === 2
        ? null
        : {
            line1: `${String(i)} Main Street`,
            line2: i % 2 === 0 ? `Suite ${String(i)}` : null,
            city: i % 2 === 0 ? 'London' : 'Boston',
            state: i % 2 === 0 ? null : 'MA',
            postal_code: `P${String(i)}`,
            country: countries[i % 3] ?? 'GB',
          },
  };
}

/** Canonical fields as a person would type them into Salesforce (through the admin, like the UI). */
function changeAsUser(sim: SalesforceSimulator, accountId: string, fields: Record<string, unknown>): void {
  const account: Record<string, unknown> = {};
  const contact: Record<string, unknown> = {};
  if ('company' in fields) account['Name'] = fields['company'] ?? 'Someone';
  if ('phone' in fields) account['Phone'] = fields['phone'] ?? '';
  if ('billing_address' in fields) {
    const a = fields['billing_address'] as Record<string, string | null> | null;
    account['BillingStreet'] = a === null ? '' : [a['line1'], a['line2']].filter((l) => l !== null).join('\n');
    account['BillingCity'] = a?.['city'] ?? '';
    account['BillingState'] = a?.['state'] ?? '';
    account['BillingPostalCode'] = a?.['postal_code'] ?? '';
    account['BillingCountry'] = a?.['country'] ?? '';
  }
  if ('name' in fields) {
    const name = (fields['name'] as string | null) ?? '';
    const at = name.lastIndexOf(' ');
    contact['FirstName'] = at < 0 ? '' : name.slice(0, at);
    contact['LastName'] = at < 0 ? name || '[no name]' : name.slice(at + 1);
  }
  if ('email' in fields) contact['Email'] = fields['email'] ?? '';
  if (Object.keys(account).length > 0) sim.admin.update('Account', accountId, account);
  if (Object.keys(contact).length > 0) {
    const primary = sim.admin.records('Contact', { includeDeleted: false }).find((c) => c['AccountId'] === accountId);
    assert.ok(primary !== undefined, 'the Account has a Contact');
    sim.admin.update('Contact', String(primary['Id']), contact);
  }
}

/**
 * A clock 60 times faster than real time (a replication minute passes every real second), which
 * `age()` moves two minutes on: an org made a moment ago has no delete log before its creation, and
 * a poll from a minute back would ask for a resync.
 */
function fastClock(): { now: () => Date; age: () => void } {
  const t0 = Date.now();
  let offset = 0;
  return {
    now: () => new Date(t0 + (Date.now() - t0) * 60 + offset),
    age: () => {
      offset += 120_000;
    },
  };
}

async function makeHarness(): Promise<ConnectorHarness> {
  const clock = fastClock();
  const sim = await startSalesforceSimulator({ clock: clock.now });
  clock.age();
  const client = clientFor(sim, undefined, { now: clock.now });
  return {
    client,
    entityType: 'customer',
    sampleFields,
    clearedFields: { name: null, company: null, email: null, phone: null, billing_address: null },
    missingId: to18('001000000000999'),
    async changeExternally(externalId, fields) {
      // Salesforce stamps to the whole second: a change in the second of the create would read as the create.
      await sleep(20);
      changeAsUser(sim, externalId, fields);
      return Promise.resolve();
    },
    deleteExternally(externalId) {
      sim.admin.delete('Account', externalId);
      return Promise.resolve();
    },
    badCredentials() {
      const secret = `bad-secret-${randomUUID()}`;
      return { client: clientFor(sim, { clientId: DEFAULT_CLIENT_ID, clientSecret: secret }), secret };
    },
    faults: {
      inject(fault) {
        // Salesforce has no 429: its REQUEST_LIMIT_EXCEEDED is the daily allocation ('quota', tested below).
        if (fault === 'rate_limit') return Promise.resolve(false);
        if (fault === 'server_error') sim.admin.setFaults({ errorRate: 1, errorPhase: 'before' });
        else sim.admin.setFaults({ hangRate: 1, hangPhase: 'before' });
        return Promise.resolve(true);
      },
      clear() {
        sim.admin.clearFaults();
        return Promise.resolve();
      },
    },
    async cleanup() {
      await sim.stop();
    },
  };
}

connectorContract('salesforce (simulator)', makeHarness);

let sim: SalesforceSimulator;
before(async () => {
  sim = await startSalesforceSimulator();
});
after(async () => {
  await sim.stop();
});

const noop = (): Promise<void> => Promise.resolve();

function idOf(outcome: BatchOutcome): string {
  assert.ok(outcome.ok && outcome.object !== undefined, 'a created object');
  return outcome.object.id;
}

function createWrites(n: number, prefix = randomUUID().slice(0, 8)): BatchWrite[] {
  return Array.from({ length: n }, (_, i) => ({ op: 'create' as const, tandemId: `cus_${prefix}_${String(i)}`, fields: sampleFields(i), idempotencyKey: `k${String(i)}` }));
}

describe('salesforce connector: writeMany', () => {
  test('200 creates take 1 request (one composite), 200 updates 1, 200 deletes 1; beforeRequest before each', async () => {
    sim.admin.reset();
    const client = clientFor(sim);
    const binding = client.binding('customer');
    assert.ok(binding?.writeMany !== undefined);
    assert.equal(binding.maxBatch, 200);
    let budget = 0;
    const beforeRequest = (): Promise<void> => {
      budget += 1;
      return Promise.resolve();
    };
    await client.validate();
    const base = sim.admin.requests().byRoute;
    const count = (): number => Object.values(sim.admin.requests().byRoute).reduce((a, b) => a + b, 0) - Object.values(base).reduce((a, b) => a + b, 0);

    const creates = createWrites(200);
    const created = await binding.writeMany(creates, { beforeRequest });
    assert.ok(created.every((o) => o.ok), JSON.stringify(created.find((o) => !o.ok)));
    assert.equal(count(), 1, 'creates: one composite call (the Account upsert, the Contact upsert referring to it)');
    assert.equal(sim.admin.requests().byRoute['POST composite'], 1);
    assert.equal(budget, 1);
    assert.equal(sim.admin.records('Account').length, 200);
    assert.equal(sim.admin.records('Contact').length, 200);

    const ids = created.map((o) => idOf(o));
    const updates: BatchWrite[] = ids.map((externalId, i) => ({
      op: 'update',
      externalId,
      tandemId: creates[i]?.op === 'create' ? creates[i].tandemId : '',
      fields: i % 2 === 0 ? { email: `new${String(i)}@example.com` } : { phone: `+44${String(i)}` },
      previous: sampleFields(i),
      idempotencyKey: `u${String(i)}`,
    }));
    const updated = await binding.writeMany(updates, { beforeRequest });
    assert.ok(updated.every((o) => o.ok));
    assert.equal(count(), 2, 'updates: one mixed collection PATCH');
    assert.equal(budget, 2);
    assert.equal(sim.admin.requests().byRoute['PATCH composite/sobjects'], 1);
    const got = await binding.get(ids[0] ?? '');
    assert.equal(got?.fields['email'], 'new0@example.com');
    const got1 = await binding.get(ids[1] ?? '');
    assert.equal(got1?.fields['phone'], '+441');

    // A fresh client (no Contact cache): one query finds every Contact.
    const fresh = clientFor(sim);
    await fresh.validate();
    const before2 = count();
    const again = await fresh.binding('customer')?.writeMany?.(updates.map((u) => ({ ...u, fields: { email: 'grace@example.com' } })), { beforeRequest: noop });
    assert.ok(again?.every((o) => o.ok));
    assert.equal(count() - before2, 2, 'one Contact query, one collection PATCH');

    // Both objects of 200 customers (400 records): one composite call with two collection PATCHes.
    const before3 = count();
    const budget3 = budget;
    const both = await binding.writeMany(updates.map((u, i) => ({ ...u, fields: { phone: `+33${String(i)}`, email: `both${String(i)}@example.com` } })), { beforeRequest });
    assert.ok(both.every((o) => o.ok));
    assert.equal(count() - before3, 1, 'both objects: one composite call');
    assert.equal(budget - budget3, 1);
    const got2 = await binding.get(ids[2] ?? '');
    assert.equal(got2?.fields['phone'], '+332');
    assert.equal(got2.fields['email'], 'both2@example.com');

    const deleted = await binding.writeMany(ids.map((externalId) => ({ op: 'delete', externalId, idempotencyKey: 'd' })), { beforeRequest });
    assert.ok(deleted.every((o) => o.ok));
    assert.equal(sim.admin.records('Account', { includeDeleted: false }).length, 0);
    assert.equal(sim.admin.records('Contact', { includeDeleted: false }).length, 0);
    // Deleting again: every write succeeds.
    const twice = await binding.writeMany(ids.slice(0, 3).map((externalId) => ({ op: 'delete', externalId, idempotencyKey: 'd' })), { beforeRequest });
    assert.ok(twice.every((o) => o.ok));
  });

  test('10,000 changed customers take at most 60 API calls (warm Contact cache, one object changed each)', async () => {
    sim.admin.reset();
    const client = clientFor(sim);
    const binding = client.binding('customer');
    assert.ok(binding?.writeMany !== undefined);
    await client.validate();
    const ids: { id: string; tandemId: string }[] = [];
    let calls = sim.admin.requests().total;
    for (let b = 0; b < 50; b += 1) {
      const writes = createWrites(200, `b${String(b)}`);
      const outcomes = await binding.writeMany(writes, { beforeRequest: noop });
      outcomes.forEach((o, i) => {
        const w = writes[i];
        if (o.ok && o.object !== undefined && w?.op === 'create') ids.push({ id: o.object.id, tandemId: w.tandemId });
      });
    }
    assert.equal(ids.length, 10_000);
    const createCalls = sim.admin.requests().total - calls;
    const burst = async (target: typeof binding, fields: (b: number, i: number) => Record<string, unknown>): Promise<number> => {
      const start = sim.admin.requests().total;
      for (let b = 0; b < 50; b += 1) {
        const writes: BatchWrite[] = ids.slice(b * 200, b * 200 + 200).map(({ id, tandemId }, i) => ({
          op: 'update',
          externalId: id,
          tandemId,
          fields: fields(b, i),
          previous: sampleFields(i),
          idempotencyKey: 'u',
        }));
        const outcomes = await target.writeMany?.(writes, { beforeRequest: noop });
        assert.ok(outcomes?.every((o) => o.ok));
      }
      return sim.admin.requests().total - start;
    };
    const email = (b: number, i: number): Record<string, unknown> => ({ email: `x${String(b)}_${String(i)}@example.com` });
    const warm = await burst(binding, email);
    assert.ok(warm <= 60, `10,000 Contact updates (warm) used ${String(warm)} calls`);
    const phone = await burst(binding, (b, i) => ({ phone: `+1${String(b)}${String(i)}` }));
    assert.ok(phone <= 60, `10,000 Account updates used ${String(phone)} calls`);
    const both = await burst(binding, (b, i) => ({ phone: `+2${String(b)}${String(i)}`, email: `y${String(b)}_${String(i)}@example.com` }));
    assert.ok(both <= 60, `10,000 Account + Contact updates used ${String(both)} calls`);
    assert.ok(createCalls <= 60, `10,000 creates used ${String(createCalls)} calls`);
    const fresh = clientFor(sim); // no Contact cache (after a restart): one query per batch more
    await fresh.validate();
    const freshBinding = fresh.binding('customer');
    assert.ok(freshBinding !== undefined);
    const cold = await burst(freshBinding, (b, i) => ({ email: `z${String(b)}_${String(i)}@example.com` }));
    assert.ok(cold <= 100, `10,000 Contact updates (cold) used ${String(cold)} calls`);
    calls = 0;
    console.log(`API calls for 10,000 customers: creates ${String(createCalls)}; updates, Contact only ${String(warm)} (cold cache ${String(cold)}), Account only ${String(phone)}, both ${String(both)}`);
  });

  test('per-record errors are that write own outcome, with Salesforce statusCode', async () => {
    sim.admin.reset();
    const client = clientFor(sim);
    const binding = client.binding('customer');
    assert.ok(binding?.writeMany !== undefined);
    const writes: BatchWrite[] = [
      { op: 'create', tandemId: 'cus_ok', fields: sampleFields(0), idempotencyKey: 'a' },
      { op: 'create', tandemId: 'cus_bad_email', fields: { ...sampleFields(1), email: 'not an email' }, idempotencyKey: 'b' },
      { op: 'create', tandemId: 'cus_long', fields: { ...sampleFields(2), company: 'x'.repeat(300) }, idempotencyKey: 'c' },
    ];
    await client.validate();
    const calls = sim.admin.requests().total;
    const outcomes = await binding.writeMany(writes, { beforeRequest: noop });
    // The refused Account halted the Contacts subrequest (its reference had no value): the other
    // Contacts went in one more call, and the refused Account's Contact was never written.
    assert.equal(sim.admin.requests().total - calls, 2);
    assert.equal(outcomes[0]?.ok, true);
    const contacts = sim.admin.records('Contact');
    assert.ok(contacts.some((c) => c.Tandem_Id__c === 'cus_ok'));
    assert.equal(contacts.some((c) => c.Tandem_Id__c === 'cus_long'), false);
    assert.equal(sim.admin.records('Account').some((a) => a.Tandem_Id__c === 'cus_long'), false);
    assert.equal(sim.admin.records('Account').some((a) => a.Tandem_Id__c === 'cus_bad_email'), true, 'the Contact refused: only its own write fails');
    const bad = outcomes[1];
    assert.ok(bad !== undefined && !bad.ok);
    assert.equal(bad.error.kind, 'fatal');
    assert.equal(bad.error.externalCode, 'INVALID_EMAIL_ADDRESS');
    const long = outcomes[2];
    assert.ok(long !== undefined && !long.ok);
    assert.equal(long.error.externalCode, 'STRING_TOO_LONG');

    const missing = to18('001000000000998');
    const more = await binding.writeMany(
      [
        { op: 'update', externalId: missing, tandemId: 'cus_x', fields: { phone: '+1' }, previous: {}, idempotencyKey: 'x' },
        { op: 'delete', externalId: missing, idempotencyKey: 'y' },
      ],
      { beforeRequest: noop },
    );
    assert.ok(more[0] !== undefined && !more[0].ok && more[0].error.kind === 'fatal', JSON.stringify(more[0]));
    assert.equal(more[1]?.ok, true, 'deleting a missing Account is fine');
  });

  test('a whole-request failure throws (the engine retries every write)', async () => {
    sim.admin.reset();
    const client = clientFor(sim);
    await client.validate();
    sim.admin.setFaults({ errorRate: 1, errorPhase: 'before' });
    try {
      await assert.rejects(client.binding('customer')?.writeMany?.(createWrites(3), { beforeRequest: noop }) ?? Promise.resolve(), (e: unknown) => e instanceof ConnectorError && e.kind === 'retry');
    } finally {
      sim.admin.clearFaults();
    }
  });

  test('creates are idempotent when answers are lost after the write: no duplicate Account or Contact', async () => {
    sim.admin.reset();
    const client = clientFor(sim);
    const binding = client.binding('customer');
    assert.ok(binding !== undefined);
    await client.validate();
    sim.admin.setFaults({ errorRate: 0.5, errorPhase: 'after', seed: 7 });
    const tandemIds = Array.from({ length: 10 }, (_, i) => `cus_idem_${String(i)}`);
    let failures = 0;
    try {
      for (const [i, tandemId] of tandemIds.entries()) {
        for (let attempt = 0; ; attempt += 1) {
          try {
            await binding.create(tandemId, sampleFields(i), { idempotencyKey: `k${tandemId}` });
            break;
          } catch (error) {
            assert.ok(error instanceof ConnectorError && error.kind === 'retry', String(error));
            failures += 1;
            assert.ok(attempt < 30);
          }
        }
      }
    } finally {
      sim.admin.clearFaults();
    }
    assert.ok(failures > 0, 'some answers were lost');
    assert.equal(sim.admin.records('Account').length, 10);
    assert.equal(sim.admin.records('Contact').length, 10);
    for (const [i, tandemId] of tandemIds.entries()) {
      const found: ExternalObject | undefined = await binding.findByTandemId?.(tandemId);
      assert.deepEqual(found?.fields, binding.normalize?.(sampleFields(i)));
    }
  });
});

describe('salesforce connector: sessions and credentials', () => {
  test('an expired session is renewed once and the call succeeds', async () => {
    sim.admin.reset();
    const client = clientFor(sim);
    const binding = client.binding('customer');
    assert.ok(binding !== undefined);
    const created = await binding.create('cus_session', sampleFields(0), { idempotencyKey: 'k' });
    assert.ok(sim.admin.expireSessions() > 0);
    const got = await binding.get(created.id);
    assert.equal(got?.fields['name'], 'Ada0 Lovelace0');
    assert.ok(sim.admin.requests().invalidSession >= 1);
  });

  test('JWT bearer flow: signs in with an RSA key; a wrong key is kind auth', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    sim.admin.addConnectedApp({ clientId: 'jwt-app', clientSecret: 'unused-secret', jwtPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    const credentials = salesforceConnector.credentialsSchema.parse({ clientId: 'jwt-app', username: DEFAULT_USERNAME, privateKey: pem });
    const client = clientFor(sim, credentials);
    const account = await client.validate();
    assert.equal(account.accountId, sim.orgId);
    const created = await client.binding('customer')?.create('cus_jwt', sampleFields(1), { idempotencyKey: 'k' });
    assert.ok(created !== undefined);
    sim.admin.expireSessions();
    assert.equal((await client.binding('customer')?.get(created.id))?.id, created.id, 'a new JWT after expiry');

    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const bad = clientFor(sim, { clientId: 'jwt-app', username: DEFAULT_USERNAME, privateKey: other });
    await assert.rejects(bad.validate(), (e: unknown) => {
      assert.ok(e instanceof ConnectorError && e.kind === 'auth', String(e));
      assert.ok(!e.message.includes('PRIVATE KEY') && !JSON.stringify(e).includes(other.slice(40, 80)));
      return true;
    });
  });

  test('refresh token flow (web server flow tokens): signs in, renews after expiry', async () => {
    // Get a refresh token as the console will: the authorization code flow.
    const redirect = 'http://127.0.0.1/callback';
    const authorize = await fetch(`${sim.url}/services/oauth2/authorize?response_type=code&client_id=${DEFAULT_CLIENT_ID}&redirect_uri=${encodeURIComponent(redirect)}&state=s`, { redirect: 'manual' });
    const code = new URL(authorize.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const token = (await (
      await fetch(`${sim.url}/services/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, client_id: DEFAULT_CLIENT_ID, client_secret: DEFAULT_CLIENT_SECRET, redirect_uri: redirect }),
      })
    ).json()) as { refresh_token: string };
    assert.ok(token.refresh_token.length > 0);
    const credentials = salesforceConnector.credentialsSchema.parse({ clientId: DEFAULT_CLIENT_ID, clientSecret: DEFAULT_CLIENT_SECRET, refreshToken: token.refresh_token });
    const client = clientFor(sim, credentials);
    assert.equal((await client.validate()).accountId, sim.orgId);
    sim.admin.expireSessions();
    assert.equal(await client.binding('customer')?.get(to18('001000000000997')), undefined);
    sim.admin.revokeRefreshTokens();
    sim.admin.expireSessions();
    await assert.rejects(client.binding('customer')?.get(to18('001000000000997')) ?? Promise.resolve(), (e: unknown) => {
      assert.ok(e instanceof ConnectorError && e.kind === 'auth', String(e));
      assert.ok(!e.message.includes(token.refresh_token) && !e.message.includes(DEFAULT_CLIENT_SECRET), e.message);
      return true;
    });
  });

  test('REQUEST_LIMIT_EXCEEDED is kind quota with a wait', async () => {
    sim.admin.reset();
    const client = clientFor(sim);
    await client.validate();
    sim.admin.setFaults({ requestLimitBurst: 5 });
    try {
      await assert.rejects(client.binding('customer')?.get(to18('001000000000997')) ?? Promise.resolve(), (e: unknown) => {
        assert.ok(e instanceof ConnectorError, String(e));
        assert.equal(e.kind, 'quota');
        assert.equal(e.externalCode, 'REQUEST_LIMIT_EXCEEDED');
        assert.equal(e.retryAfterMs, 60_000);
        return true;
      });
    } finally {
      sim.admin.clearFaults();
    }
  });

  test('the credentials schema takes the three shapes, strictly; settings refuse unknown mapping fields', () => {
    const schema = salesforceConnector.credentialsSchema;
    assert.ok(schema.safeParse({ clientId: 'a', clientSecret: 'b' }).success);
    assert.ok(schema.safeParse({ clientId: 'a', clientSecret: 'b', refreshToken: 'c' }).success);
    assert.ok(!schema.safeParse({ clientId: 'a', clientSecret: 'b', extra: 1 }).success);
    assert.ok(!schema.safeParse({ clientId: 'a', username: 'u', privateKey: 'not a key' }).success);
    const settings = salesforceConnector.settingsSchema;
    const parsed = settings.parse({});
    assert.equal(parsed.loginUrl, 'https://login.salesforce.com');
    assert.equal(parsed.apiVersion, '62.0');
    assert.equal(parsed.customerMapping.phone, 'Account.Phone');
    assert.ok(!settings.safeParse({ loginUrl: 'http://example.com' }).success, 'plain http only to this machine');
    assert.ok(!settings.safeParse({ customerMapping: { phone: 'Opportunity.Phone' } }).success);
    assert.ok(!settings.safeParse({ customerMapping: { phone: 'Account.Name' } }).success);
    assert.ok(!settings.safeParse({ customerMapping: { nickname: 'Account.Phone' } }).success);
    assert.ok(settings.safeParse({ customerMapping: { phone: 'Contact.Phone', tax_id: 'Account.Tax_Id__c' } }).success);
    assert.ok(new ConnectorRegistry(builtInConnectors).has('salesforce'));
    assert.equal(ownClientTag('con_01ABC'), 'tandem-con_01ABC');
  });

  test('validate refuses a mapping to a field the org does not have, clearly', async () => {
    const client = clientFor(sim, undefined, {}, { customerMapping: { tax_id: 'Account.Tax_Id__c' } });
    await assert.rejects(client.validate(), (e: unknown) => {
      assert.ok(e instanceof ConnectorError && e.kind === 'fatal', String(e));
      assert.match(e.message, /Account\.Tax_Id__c does not exist/);
      return true;
    });
    const contactPhone = clientFor(sim, undefined, {}, { customerMapping: { phone: 'Contact.Phone', billing_address: 'Contact.Mailing' } });
    await contactPhone.validate();
    const created = await contactPhone.binding('customer')?.create('cus_cphone', sampleFields(0), { idempotencyKey: 'k' });
    assert.deepEqual(created?.fields, contactPhone.binding('customer')?.normalize?.(sampleFields(0)));
    const got = await contactPhone.binding('customer')?.get(created?.id ?? '');
    assert.deepEqual(got?.fields, created?.fields);
    const contact = sim.admin.records('Contact').find((c) => c['AccountId'] === created?.id);
    assert.equal(contact?.['Phone'], sampleFields(0)['phone']);
    assert.equal(contact?.['MailingCity'], 'London');
  });

  test('writes carry Sforce-Call-Options client=tandem-<connection id>', async () => {
    sim.admin.reset();
    const client = clientFor(sim, undefined, {}, {}, 'con_tag');
    const since = sim.admin.changes().at(-1)?.seq ?? 0;
    await client.binding('customer')?.create('cus_tag', sampleFields(0), { idempotencyKey: 'k' });
    const changes = sim.admin.changes(since);
    assert.ok(changes.length >= 2);
    for (const c of changes) assert.equal(c.callOptionsClient, 'tandem-con_tag');
  });
});

describe('salesforce connector: poll', () => {
  test('sees changes, Contact changes as their Account, deletes; resync after the Recycle Bin is purged', async () => {
    const fast = fastClock();
    const clock = fast.now;
    const local = await startSalesforceSimulator({ clock });
    fast.age();
    try {
      const client = clientFor(local, undefined, { now: clock });
      const binding = client.binding('customer');
      assert.ok(binding !== undefined);
      const a = await binding.create('cus_poll_a', sampleFields(0), { idempotencyKey: 'a' });
      const b = await binding.create('cus_poll_b', sampleFields(1), { idempotencyKey: 'b' });
      let cursor = (await client.poll(undefined)).cursor;
      const seen: { op: string; externalId: string; eventId: string }[] = [];
      const drain = async (until: () => boolean): Promise<void> => {
        const deadline = Date.now() + 8_000;
        while (!until()) {
          assert.ok(Date.now() < deadline, `timed out; seen ${JSON.stringify(seen)}`);
          const result = await client.poll(cursor);
          assert.notEqual(result.resync, true);
          seen.push(...result.notifications);
          cursor = result.cursor;
          await sleep(100);
        }
      };
      await drain(() => seen.some((n) => n.externalId === a.id) && seen.some((n) => n.externalId === b.id));
      await sleep(50);
      // A Contact change is reported as its Account's.
      const contact = local.admin.records('Contact').find((c) => c['AccountId'] === b.id);
      local.admin.update('Contact', String(contact?.['Id']), { Email: 'changed@example.com' });
      const mark = seen.length;
      await drain(() => seen.slice(mark).some((n) => n.externalId === b.id && n.op === 'update'));
      local.admin.delete('Account', a.id);
      await drain(() => seen.some((n) => n.externalId === a.id && n.op === 'delete'));
      assert.equal(new Set(seen.map((n) => n.eventId)).size, seen.length, 'no event twice');
      assert.ok(!seen.slice(mark).some((n) => n.op === 'update' && n.externalId === a.id && seen.slice(mark).some((m) => m.op === 'delete' && m.externalId === a.id && m.eventId === n.eventId)));

      // A quiet poll within the same minute makes no call.
      const calls = local.admin.requests().total;
      const quiet = await client.poll(new Date(Math.floor(clock().getTime() / 60_000) * 60_000).toISOString());
      assert.deepEqual(quiet.notifications, []);
      assert.equal(local.admin.requests().total, calls);

      // The Recycle Bin emptied past the cursor: a full resync.
      local.admin.delete('Account', b.id);
      await sleep(200);
      local.admin.purgeRecycleBin(0);
      await sleep(1_100); // a whole (simulated) minute later
      const stale = await client.poll(cursor);
      assert.equal(stale.resync, true);
      assert.deepEqual(stale.notifications, []);
      // A cursor older than the replication limit (30 days): resync too.
      const ancient = await client.poll(new Date(clock().getTime() - 40 * 86_400_000).toISOString());
      assert.equal(ancient.resync, true);
      assert.ok(Date.parse(ancient.cursor) > clock().getTime() - 120_000);
    } finally {
      await local.stop();
    }
  });
});

describe('salesforce connector: stream', () => {
  test('Change Data Capture: external changes arrive as customer notifications, own writes do not', async () => {
    const local = await startSalesforceSimulator({ cometdPollTimeoutMs: 500 });
    const controller = new AbortController();
    try {
      const client = clientFor(local, undefined, { timeoutMs: 5_000 }, {}, 'con_stream');
      const binding = client.binding('customer');
      assert.ok(binding !== undefined);
      const own = await binding.create('cus_stream', sampleFields(0), { idempotencyKey: 'k' });
      const batches: StreamBatch[] = [];
      const running = client.stream(
        undefined,
        (batch) => {
          batches.push(batch);
          return Promise.resolve();
        },
        controller.signal,
      );
      const deadline = Date.now() + 8_000;
      while (local.admin.cometdClients() === 0) {
        assert.ok(Date.now() < deadline, 'the stream subscribes');
        await sleep(20);
      }
      await sleep(200);
      await binding.update(own.id, { phone: '+1 own' }, { idempotencyKey: 'u', tandemId: 'cus_stream' });
      changeAsUser(local, own.id, { email: 'outside@example.com' });
      const seen = (): ExternalNotification[] => batches.flatMap((b) => b.notifications);
      while (!seen().some((n) => n.externalId === own.id)) {
        assert.ok(Date.now() < deadline, `a notification for the external change; got ${JSON.stringify(batches)}`);
        await sleep(20);
      }
      await sleep(300);
      assert.equal(seen().filter((n) => n.externalId === own.id).length, 1, 'the own update is dropped, the external one kept');
      assert.equal(seen()[0]?.entityType, 'customer');
      assert.ok((batches.at(-1)?.cursor ?? '').length > 0);
      controller.abort();
      await running;
    } finally {
      controller.abort();
      await local.stop();
    }
  });
});
