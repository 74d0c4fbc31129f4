// Three systems at once, end to end: Tandem's API and engine on a real store, connected to a Stripe
// simulator (official SDK) and a Salesforce simulator (jsforce), on both stacks (SQLite + the
// embedded log, PostgreSQL + the Kafka log). A customer made in one system reaches the two others;
// nothing ping-pongs between Stripe and Salesforce; nothing is duplicated anywhere.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Stripe from 'stripe';
import { startSalesforceSimulator, type SalesforceSimulator } from '../connectors/salesforce/simulator/index.ts';
import { startStripeSimulator, type StripeSimulator } from '../connectors/stripe/simulator/index.ts';
import { createTestApi, type TestApi } from '../../test/support/api.ts';
import { kafkaBrokers, uniqueTopicPrefix } from '../../test/support/kafka.ts';
import { freePort, sleep, waitUntil } from '../../test/support/process.ts';
import { STACKS, skipUnlessStack } from '../../test/support/stacks.ts';

type Json = Record<string, unknown> & { id: string };
type Row = Record<string, unknown>;

/** Waits for `check`, naming what it waited for when it times out. */
function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  return waitUntil(check, timeoutMs, () => what, 50);
}

for (const stack of STACKS) {
  const kind = stack.name.replace('+', '_');
  describe(`Stripe + Salesforce + Tandem on ${stack.name}`, { skip: await skipUnlessStack(stack) }, () => {
    let stripeSim: StripeSimulator;
    let sfSim: SalesforceSimulator;
    let t: TestApi;
    let stripe: Stripe;
    let stripeConnection: string;
    let sfConnection: string;
    const secretKey = `sk_test_three_${kind}_${String(Date.now())}`;
    /** Moves the Salesforce simulator's clock on (its replication feed works in whole minutes). */
    let sfClockOffset = 0;

    const accounts = (includeDeleted = false): Row[] => sfSim.admin.records('Account', { includeDeleted });
    const contacts = (includeDeleted = false): Row[] => sfSim.admin.records('Contact', { includeDeleted });
    const accountOf = (tandemId: string): Row | undefined => accounts(true).find((a) => a.Tandem_Id__c === tandemId);
    const contactOf = (accountId: unknown): Row | undefined => contacts(true).find((c) => c.AccountId === accountId);
    // For checks over many records: one copy of the org per check, not one per record (at 450
    // records, a scan per record took the test process's event loop for seconds at a time, starving
    // the in-process Tandem and simulators it waits on).
    const accountsByTandemId = (): Map<unknown, Row> => new Map(accounts(true).map((a) => [a.Tandem_Id__c, a]));
    const accountsWithContact = (): Set<unknown> => new Set(contacts(true).map((c) => c.AccountId));
    const sfWrites = (): number =>
      Object.entries(sfSim.admin.requests().byRoute)
        .filter(([route]) => !route.startsWith('GET') && !route.includes('query') && !(route.startsWith('POST composite/sobjects/') && !route.includes('Tandem_Id__c')))
        .reduce((n, [, count]) => n + count, 0);
    const stripeWrites = (): number =>
      stripeSim.admin.requestLog(secretKey).filter((r) => r.method !== 'GET' && r.path.startsWith('/v1/customers')).length;
    const tandemCustomer = async (id: string): Promise<Json & { version: number; name: string | null; email: string | null; phone: string | null; deleted_at?: string | null }> => {
      const res = await t.call('GET', `/api/v1/customers/${id}`);
      return res.json();
    };
    const byEmail = async (email: string): Promise<(Json & { version: number })[]> => {
      const res = await t.call('GET', `/api/v1/customers?email=${encodeURIComponent(email)}`);
      return res.json<{ data: (Json & { version: number })[] }>().data;
    };
    /** Waits until nothing moves: no write to either system and no new Tandem version for `quietMs`. */
    const settle = async (quietMs = 1500): Promise<void> => {
      let last = '';
      let since = Date.now();
      await waitUntil(
        async () => {
          await t.parts.engine.settled();
          const list = await t.call('GET', '/api/v1/customers?limit=100');
          const state = `${String(stripeWrites())}/${String(sfWrites())}/${list.body}`;
          if (state !== last) {
            last = state;
            since = Date.now();
          }
          return Date.now() - since >= quietMs;
        },
        60_000,
        () => 'the three systems to settle',
        200,
      );
    };

    before(async () => {
      stripeSim = await startStripeSimulator({ rateLimitPerSecond: 0, delivery: { retryDelaysMs: [50, 100, 200, 400, 800] } });
      sfSim = await startSalesforceSimulator({ cometdPollTimeoutMs: 2000, clock: () => new Date(Date.now() + sfClockOffset) });
      const port = await freePort();
      t = await createTestApi(stack.store, {
        sync: true,
        publicUrl: `http://127.0.0.1:${String(port)}`,
        pollIntervalMs: 500,
        retry: { maxAttempts: 12, initialMs: 50, maxMs: 1000 },
        kafka: stack.log === 'kafka' ? { brokers: kafkaBrokers, topicPrefix: uniqueTopicPrefix() } : undefined,
      });
      await t.app.listen({ port, host: '127.0.0.1' });
      const url = new URL(stripeSim.url);
      stripe = new Stripe(secretKey, { host: url.hostname, port: Number(url.port), protocol: 'http', telemetry: false, maxNetworkRetries: 2 });
      const s = await t.call('POST', '/api/v1/connections', { connector: 'stripe', name: 'Stripe', credentials: { secretKey }, settings: { apiBaseUrl: stripeSim.url, rateLimitPerSecond: 1000 } });
      assert.equal(s.statusCode, 201, s.body);
      stripeConnection = s.json<Json>().id;
      // A long poll interval: Salesforce changes must come through Change Data Capture to be seen in time.
      const f = await t.call('POST', '/api/v1/connections', {
        connector: 'salesforce',
        name: 'Salesforce',
        credentials: { clientId: 'tandem-sim', clientSecret: 'tandem-sim-secret' },
        settings: { loginUrl: sfSim.url, pollIntervalMs: 60_000 },
      });
      assert.equal(f.statusCode, 201, f.body);
      sfConnection = f.json<Json>().id;
      await until(() => sfSim.admin.cometdClients() > 0, 'the Salesforce connection subscribed to Change Data Capture');
      await t.parts.engine.settled();
    });

    after(async () => {
      await t.cleanup();
      await sfSim.stop();
      await stripeSim.stop();
    });

    test('the Salesforce connection answers without credentials and keeps them sealed', async () => {
      const res = await t.call('GET', `/api/v1/connections/${sfConnection}`);
      assert.equal(res.statusCode, 200);
      assert.ok(!res.body.includes('tandem-sim-secret'));
      assert.equal(res.json<Json>().status, 'active');
      const stored = await t.store.db.selectFrom('connections').select(['credentials']).where('id', '=', sfConnection).executeTakeFirstOrThrow();
      assert.ok(!stored.credentials.includes('tandem-sim-secret'));
    });

    test('made in Stripe, a customer reaches Tandem and Salesforce; edited in Salesforce, Tandem and Stripe; deleted in Tandem, it leaves both — no ping-pong', async () => {
      const email = `ada.${kind}@example.com`;
      const made = await stripe.customers.create({ name: 'Ada Lovelace', email, phone: '+44 20 7946 0000' });
      await until(async () => (await byEmail(email)).length === 1, 'async () => (await byEmail(email)).length === 1');
      const [record] = await byEmail(email);
      assert.ok(record !== undefined);
      await until(() => contactOf(accountOf(record.id)?.Id)?.Email === email, '() => contactOf(accountOf(record.id)?.Id)?.Email === email');
      const account = accountOf(record.id);
      assert.ok(account !== undefined);
      assert.equal(account.Phone, '+44 20 7946 0000');
      assert.equal(account.Name, 'Ada Lovelace', 'no company: the Account is named after the person');
      const contact = contactOf(account.Id);
      assert.ok(contact !== undefined);
      assert.equal(contact.FirstName, 'Ada');
      assert.equal(contact.LastName, 'Lovelace');
      await settle();
      const versionBefore = (await tandemCustomer(record.id)).version;
      const stripeBefore = stripeWrites();
      const sfBefore = sfWrites();

      // A person edits the Contact in Salesforce (a UI change: no API client).
      sfSim.admin.update('Contact', String(contact.Id), { LastName: 'King' });
      await until(async () => (await tandemCustomer(record.id)).name === 'Ada King', "async () => (await tandemCustomer(record.id)).name === 'Ada King'");
      await until(async () => ((await stripe.customers.retrieve(made.id)) as Stripe.Customer).name === 'Ada King', 'async () => ((await stripe.customers.retrieve(made.id)) as Stripe.Cust');
      await settle();
      assert.equal((await tandemCustomer(record.id)).version, versionBefore + 1, 'one Tandem version for one Salesforce edit');
      assert.equal(stripeWrites() - stripeBefore, 1, 'one Stripe write');
      assert.equal(sfWrites() - sfBefore, 0, 'nothing written back to Salesforce');

      // Deleted in Tandem: it leaves both.
      const del = await t.call('DELETE', `/api/v1/customers/${record.id}`);
      assert.equal(del.statusCode, 200, del.body);
      await until(async () => ((await stripe.customers.retrieve(made.id)) as Stripe.Customer | Stripe.DeletedCustomer).deleted === true, 'async () => ((await stripe.customers.retrieve(made.id)) as Stripe.Cust');
      await until(() => accountOf(record.id)?.IsDeleted === true, '() => accountOf(record.id)?.IsDeleted === true');
      await settle();
      assert.equal(accounts().filter((a) => a.Tandem_Id__c === record.id).length, 0);
      assert.equal(stripeSim.admin.customers(secretKey).filter((c) => c.email === email).length, 1, 'one Stripe customer ever');
    });

    test('made in Salesforce, an Account with its Contact reaches Tandem and Stripe once', async () => {
      const email = `grace.${kind}@example.com`;
      const account = sfSim.admin.create('Account', { Name: 'Navy', Phone: '+1 555 0100', BillingCity: 'Arlington', BillingCountry: 'US' });
      sfSim.admin.create('Contact', { AccountId: account.Id, FirstName: 'Grace', LastName: 'Hopper', Email: email });
      await until(async () => (await byEmail(email)).length === 1, 'async () => (await byEmail(email)).length === 1');
      const [record] = await byEmail(email);
      assert.ok(record !== undefined);
      await until(async () => {
        const view = await tandemCustomer(record.id);
        return view.name === 'Grace Hopper' && view.email === email;
      }, 'async () => {\n        const view = await tandemCustomer(record.id);');
      const view = await tandemCustomer(record.id);
      assert.equal(view.company, 'Navy');
      assert.equal(view.phone, '+1 555 0100');
      await until(() => stripeSim.admin.customers(secretKey).some((c) => c.email === email && c.name === 'Grace Hopper'), '() => stripeSim.admin.customers(secretKey).some((c) => c.email === ema');
      await settle();
      assert.equal(stripeSim.admin.customers(secretKey).filter((c) => c.email === email).length, 1);
      assert.equal((await byEmail(email)).length, 1, 'one Tandem record');
      assert.equal(accounts().filter((a) => a.Name === 'Navy').length, 1, 'no second Account');
    });

    test('a burst of changes from Tandem goes to Salesforce in sObject Collections', async () => {
      const before = sfSim.admin.requests().byRoute;
      const n = 450;
      const ids: string[] = [];
      for (let i = 0; i < n; i += 50) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(50, n - i) }, (_, j) =>
            t.call('POST', '/api/v1/customers', { name: `Burst ${String(i + j)}`, email: `burst${String(i + j)}.${kind}@example.com`, company: `Burst Co ${String(i + j)}` }),
          ),
        );
        for (const res of batch) ids.push(res.json<Json>().id);
      }
      await until(
        () => {
          const byTandemId = accountsByTandemId();
          const withContact = accountsWithContact();
          return ids.every((id) => withContact.has(byTandemId.get(id)?.Id));
        },
        'every burst customer as an Account with its Contact',
        60_000,
      );
      await settle();
      const afterRoutes = sfSim.admin.requests().byRoute;
      const delta = (route: string) => (afterRoutes[route] ?? 0) - (before[route] ?? 0);
      const singleCreates = delta('POST sobjects/Account') + delta('PATCH sobjects/Account/Tandem_Id__c/:value');
      assert.equal(singleCreates, 0, 'no Account written one by one');
      // Write calls: sObject Collections calls, and Composite calls that carry them as subrequests.
      const writeCalls = Object.keys(afterRoutes)
        .filter((route) => route.includes('composite/sobjects') || route === 'POST composite')
        .reduce((sum, route) => sum + delta(route), 0);
      // 450 customers: up to 200 a batch, each batch ONE composite call (the Accounts upsert and the
      // Contacts upsert referring to it), in as many batches as the burst took: 3 when the marks come
      // in faster than they go out; more when they trickle in (the Kafka log on a loaded machine took
      // 17–19). Unbatched it would be 900.
      assert.ok(writeCalls >= 3 && writeCalls <= 25, `write calls: ${String(writeCalls)}`);
      assert.equal(writeCalls, delta('POST composite'), 'every write call a composite call: no collection call of its own');
      assert.equal(new Set(accounts().map((a) => a.Tandem_Id__c).filter((x) => x !== undefined && x !== null)).size, accounts().filter((a) => a.Tandem_Id__c !== null && a.Tandem_Id__c !== undefined).length);

      // Then one field of every one of them: one PATCH collection per 200.
      const patchCalls = (): number => (sfSim.admin.requests().byRoute['PATCH composite/sobjects'] ?? 0) + (sfSim.admin.requests().byRoute['POST composite'] ?? 0);
      const patchBefore = patchCalls();
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(ids.slice(i, i + 50).map((id, j) => t.call('PATCH', `/api/v1/customers/${id}`, { company: `Renamed ${String(i + j)}` })));
      }
      await until(
        () => {
          const byTandemId = accountsByTandemId();
          return ids.every((id, i) => byTandemId.get(id)?.Name === `Renamed ${String(i)}`);
        },
        'every burst Account renamed',
        60_000,
      );
      const patches = patchCalls() - patchBefore;
      assert.ok(patches >= 3 && patches <= 25, `PATCH collection calls for ${String(n)} updates: ${String(patches)} (unbatched: ${String(n)})`);
    });

    test('when the daily allocation runs out, the Salesforce connection waits with a visible reason, Stripe goes on, and it resumes by itself', async () => {
      const usage = sfSim.admin.apiUsage();
      sfSim.admin.setDailyApiLimit(usage.used);
      const email = `quota.${kind}@example.com`;
      const res = await t.call('POST', '/api/v1/customers', { name: 'Quota Person', email });
      const id = res.json<Json>().id;
      await until(() => stripeSim.admin.customers(secretKey).some((c) => c.email === email), 'the customer in Stripe');
      await until(async () => (await t.call('GET', `/api/v1/connections/${sfConnection}`)).json<Json>().status === 'waiting', "async () => (await t.call('GET', `/api/v1/connections/${sfConnection}`");
      const waiting = (await t.call('GET', `/api/v1/connections/${sfConnection}`)).json<Json & { status_reason: string }>();
      assert.match(waiting.status_reason, /allocation/i);
      assert.equal((await t.call('GET', `/api/v1/connections/${stripeConnection}`)).json<Json>().status, 'active');
      assert.equal(accountOf(id), undefined);
      sfSim.admin.setDailyApiLimit(100_000);
      await until(() => accountOf(id) !== undefined, 'the Account made once the allocation frees', 120_000);
      await until(async () => (await t.call('GET', `/api/v1/connections/${sfConnection}`)).json<Json>().status === 'active', "async () => (await t.call('GET', `/api/v1/connections/${sfConnection}`", 120_000);
    });

    test('a stream that drops (sessions expired) comes back, and changes made meanwhile arrive', async () => {
      // First a change through the stream (the poll is a minute away), so the stream holds a replay
      // id to resume from. (A stream that never received an event resumes from "new events only":
      // a change made while it re-subscribes is then left to the poll — docs/sync.md.)
      const before = sfSim.admin.create('Account', { Name: 'Before Expiry Ltd' });
      sfSim.admin.create('Contact', { AccountId: before.Id, LastName: 'Before', Email: `before.${kind}@example.com` });
      await until(
        async () => (await byEmail(`before.${kind}@example.com`)).length === 1,
        `the Account made before the sessions expired, in Tandem (CometD clients: ${String(sfSim.admin.cometdClients())})`,
      );
      sfSim.admin.expireSessions();
      const account = sfSim.admin.create('Account', { Name: 'After Expiry Ltd' });
      sfSim.admin.create('Contact', { AccountId: account.Id, LastName: 'Expiry', Email: `expiry.${kind}@example.com` });
      await until(async () => (await byEmail(`expiry.${kind}@example.com`)).length === 1, 'the Account made after the sessions expired, in Tandem', 60_000);
      await sleep(500);
      assert.equal((await byEmail(`expiry.${kind}@example.com`)).length, 1);
    });

    test('an Account deleted while Tandem heard nothing, then purged from the Recycle Bin: the full resync tombstones its customer', async () => {
      const email = `purged.${kind}@example.com`;
      const res = await t.call('POST', '/api/v1/customers', { name: 'Purged Person', email, company: 'Purged Ltd' });
      const id = res.json<Json>().id;
      await until(() => accountOf(id) !== undefined, 'the Account made');
      await settle();
      const account = accountOf(id);
      assert.ok(account !== undefined);
      // Tandem does not hear the delete (its stream is paused with the connection), and the bin is emptied.
      assert.equal((await t.call('POST', `/api/v1/connections/${sfConnection}/pause`)).statusCode, 200);
      sfSim.admin.delete('Account', String(account.Id));
      sfSim.admin.purgeRecycleBin(0);
      // Two minutes later in Salesforce: the replication feed has a whole minute past the purge to answer.
      sfClockOffset += 120_000;
      assert.equal(sfSim.admin.record('Account', String(account.Id)), undefined, 'gone for good');
      // As if the connection had been down longer than Change Data Capture keeps events (72 h): its
      // stream starts from now, so only the poll can find out.
      await t.store.db.updateTable('connection_cursors').set({ value: '' }).where('connection_id', '=', sfConnection).where('name', '=', 'stream').execute();
      const resyncs = async () => (await t.store.db.selectFrom('external_changes').select('event_id').where('connection_id', '=', sfConnection).where('source', '=', 'resync').execute()).length;
      assert.equal(await resyncs(), 0);
      assert.equal((await t.call('POST', `/api/v1/connections/${sfConnection}/resume`)).statusCode, 200);
      // The next poll finds the delete log purged past its cursor: a full resync re-reads every linked Account.
      await t.call('PATCH', `/api/v1/connections/${sfConnection}`, { settings: { pollIntervalMs: 1000 } });
      await until(async () => typeof (await tandemCustomer(id)).deleted_at === 'string', 'the customer tombstoned by the resync', 150_000);
      assert.ok((await resyncs()) > 0, 'the resync re-read the linked Accounts');
      await t.call('PATCH', `/api/v1/connections/${sfConnection}`, { settings: { pollIntervalMs: 60_000 } });
      await until(() => !stripeSim.admin.customers(secretKey, { includeDeleted: false }).some((c) => c.email === email), 'the Stripe customer deleted too');
    });
  });
}
