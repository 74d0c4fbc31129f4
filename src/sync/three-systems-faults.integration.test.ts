// Three systems at once, under faults: Tandem in process (its API, engine and webhook endpoint on a
// real stack: SQLite + the embedded log, PostgreSQL + the Kafka log), a Stripe simulator (official
// SDK) and a Salesforce simulator, all connected. A mixed burst runs on the three sides while both
// simulators misbehave at once:
// - Stripe: 30% of API requests answered 500 (before, after or stored), a 429 burst every 1.5 s, and
//   webhooks dropped, duplicated, delayed and reordered (as stripe-faults.integration.test.ts);
// - Salesforce: 30% of API calls answered 500 UNKNOWN_EXCEPTION before or after the write was applied
//   (`errorPhase: 'any'`: some answers are lost after the write), 30% of Change Data Capture events
//   published as gap events (header only), and now and then a burst of 403 REQUEST_LIMIT_EXCEEDED
//   (the daily allocation: the connection shows `status: 'waiting'` and goes on by itself), seeded.
// The burst: customers created in Tandem (API), in Stripe (SDK) and in Salesforce (a person creates
// an Account and its Contact in the UI: admin.create), then updates from each side, then deletes
// from each side. Then the faults stop, and the three systems must converge: every live customer is
// one Tandem record, one live Stripe customer, one live Account with one Contact, each holding the
// expected values of the fields it maps; every deleted customer is gone from all three; nothing is
// duplicated; nothing moves any more (no ping-pong); no sync issue.
//
// One owner per field (per customer), so the expected end state is exact. What the mappings allow:
// Stripe maps name, email, phone, address, metadata (not company); Salesforce maps company
// (Account.Name), phone (Account.Phone), billing address (Account.Billing*), name (Contact
// FirstName/LastName) and email (Contact.Email), not metadata. So, after creation:
// - Tandem (API) writes company, billing_address and metadata key `t`;
// - Stripe writes phone and metadata key `s`;
// - Salesforce (a person editing the Contact) writes name and email.
// The creator sets every field its system has at creation (a Stripe-made customer has no company
// until Tandem gives it one). A person edits the Contact of a customer only once its Account is named
// after its company: while a customer has no company its Account is named after the person
// (mapping.ts), and a person renaming the Contact of such an Account also says "the company is the
// old name" — a real conflict with Tandem's company write, which one owner per field excludes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Stripe from 'stripe';
import { completeCustomerFields as completeSalesforceFields, customerFieldsFromSalesforce, resolveMapping } from '../connectors/salesforce/mapping.ts';
import { startSalesforceSimulator, type SalesforceSimulator } from '../connectors/salesforce/simulator/index.ts';
import { completeCustomerFields, customerFieldsFromStripe } from '../connectors/stripe/mapping.ts';
import { seededRandom } from '../connectors/stripe/simulator/faults.ts';
import { startStripeSimulator, type FaultInput, type StripeSimulator } from '../connectors/stripe/simulator/index.ts';
import { createTestApi, type TestApi } from '../../test/support/api.ts';
import { kafkaBrokers, uniqueTopicPrefix } from '../../test/support/kafka.ts';
import { freePort, sleep, waitUntil } from '../../test/support/process.ts';
import { STACKS, skipUnlessStack } from '../../test/support/stacks.ts';

type Side = 'tandem' | 'stripe' | 'salesforce';
type Op = 'create' | 'update' | 'delete';
type Json = Record<string, unknown> & { id: string };
type Row = Record<string, unknown>;
type Address = { line1: string; city: string; country: string };

const SIDES: readonly Side[] = ['tandem', 'stripe', 'salesforce'];
const LABELS: Record<Side, string> = { tandem: 'T', stripe: 'S', salesforce: 'F' };
/** The changes the run drives, phase by phase: 310 in all. */
const PLAN: Record<Op, Record<Side, number>> = {
  create: { tandem: 40, stripe: 30, salesforce: 30 },
  update: { tandem: 60, stripe: 60, salesforce: 60 },
  delete: { tandem: 10, stripe: 10, salesforce: 10 },
};
const LANES = 9;
const SEED = 20_260_601;
const CONVERGE_MS = 120_000;
/** After convergence, how long nothing may move. */
const QUIET_MS = 6000;
/** The faults last at least this long (the burst is quick; Tandem's syncing of it must meet them too). */
const FAULTS_MIN_MS = 20_000;
/** ...and longer, up to this, until the run met enough of every kind of fault (see faultsMet). */
const FAULTS_MAX_MS = 60_000;
const SF_MAPPING = resolveMapping();

interface Wanted {
  company: string | null;
  name: string | null;
  email: string | null;
  phone: string | null;
  address: Address | null;
  metadata: Record<string, string>;
}

/** One customer of the workload, as the test expects it to end up. */
interface Entity {
  label: string;
  origin: Side;
  tandemId: string | undefined;
  stripeId: string | undefined;
  accountId: string | undefined;
  want: Wanted;
  deleted: boolean;
  deletedBy: Side | undefined;
  busy: boolean;
  writes: number;
  /** What the test did to it, when (for TANDEM_TEST_EXPLAIN=1). */
  log: string[];
}

const CITIES = [['London', 'GB'], ['Paris', 'FR'], ['Berlin', 'DE'], ['Austin', 'US'], ['Lyon', 'FR']] as const;

for (const stack of STACKS) {
  const kind = stack.name.replace('+', '_');
  describe(`Tandem + Stripe + Salesforce under faults on ${stack.name}`, { skip: await skipUnlessStack(stack) }, () => {
    let stripeSim: StripeSimulator;
    let sfSim: SalesforceSimulator;
    let t: TestApi;
    let stripe: Stripe;
    let stripeConnection: string;
    let sfConnection: string;
    const secretKey = `sk_test_three_faults_${kind}_${String(Date.now())}`;

    const accounts = (includeDeleted = true): Row[] => sfSim.admin.records('Account', { includeDeleted });
    const contacts = (includeDeleted = true): Row[] => sfSim.admin.records('Contact', { includeDeleted });
    /** Writes that reached Salesforce (reads, queries and collection retrieves left out). */
    const sfWrites = (): number =>
      Object.entries(sfSim.admin.requests().byRoute)
        .filter(([route]) => !route.startsWith('GET') && !route.includes('query') && !(route.startsWith('POST composite/sobjects/') && !route.includes('Tandem_Id__c')))
        .reduce((n, [, count]) => n + count, 0);
    const stripeWrites = (): number => stripeSim.admin.requestLog(secretKey).filter((r) => r.method !== 'GET' && r.path.startsWith('/v1/customers')).length;

    before(async () => {
      // Search lags writes (as Stripe's does), so a lost create answer is looked up the hard way.
      stripeSim = await startStripeSimulator({ rateLimitPerSecond: 400, searchLagMs: 5_000, delivery: { retryDelaysMs: [50, 100, 200, 400, 800] } });
      sfSim = await startSalesforceSimulator({ cometdPollTimeoutMs: 2000 });
      const port = await freePort();
      t = await createTestApi(stack.store, {
        sync: true,
        publicUrl: `http://127.0.0.1:${String(port)}`,
        pollIntervalMs: 300,
        // A quota wait is at most maxMs: the connection waits 1 s per limit burst, not a minute.
        retry: { maxAttempts: 40, initialMs: 20, maxMs: 1000 },
        kafka: stack.log === 'kafka' ? { brokers: kafkaBrokers, topicPrefix: uniqueTopicPrefix() } : undefined,
      });
      await t.app.listen({ port, host: '127.0.0.1' });
      const url = new URL(stripeSim.url);
      stripe = new Stripe(secretKey, { host: url.hostname, port: Number(url.port), protocol: 'http', telemetry: false, maxNetworkRetries: 3 });
      const s = await t.call('POST', '/api/v1/connections', { connector: 'stripe', name: 'Stripe', credentials: { secretKey }, settings: { apiBaseUrl: stripeSim.url, rateLimitPerSecond: 300 } });
      assert.equal(s.statusCode, 201, s.body);
      stripeConnection = s.json<Json>().id;
      const f = await t.call('POST', '/api/v1/connections', {
        connector: 'salesforce',
        name: 'Salesforce',
        credentials: { clientId: 'tandem-sim', clientSecret: 'tandem-sim-secret' },
        settings: { loginUrl: sfSim.url, pollIntervalMs: 1000, rateLimitPerSecond: 200 },
      });
      assert.equal(f.statusCode, 201, f.body);
      sfConnection = f.json<Json>().id;
      await waitUntil(() => sfSim.admin.cometdClients() > 0, 30_000, () => 'the Salesforce connection subscribed to Change Data Capture', 50);
      await t.parts.engine.settled();
      // The Stripe events feed starts where the first poll that succeeds finds it: start it before the faults.
      await waitUntil(
        async () => (await t.store.db.selectFrom('connection_cursors').select('value').where('connection_id', '=', stripeConnection).where('name', '=', 'events').executeTakeFirst()) !== undefined,
        10_000,
        () => 'the first poll started the Stripe events feed',
        50,
      );
    });

    after(async () => {
      await t.cleanup();
      await sfSim.stop();
      await stripeSim.stop();
    });

    test('a mixed burst on Tandem, Stripe and Salesforce under both simulators\' faults converges: no duplicate, nothing lost, no ping-pong, no issue', { timeout: 200_000 }, async (ctx) => {
      const random = seededRandom(SEED);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
      const entities: Entity[] = [];
      const counts = { attempted: 0, acknowledged: 0, stripe429Retries: 0, stripe500Retries: 0, waitedForTarget: 0 };
      const started = Date.now();

      // Faults. Setting a scope replaces it, so each round restates everything, with the seed moved on.
      let round = 0;
      let stripeBurstsInjected = 0;
      let stripeBurstSet = 0;
      let sfBurstsInjected = 0;
      let sfBurstSet = 0;
      let sfLimitBursts = 0;
      const stripeFaults = (rateLimitBurst: number): FaultInput => ({
        account: secretKey,
        errorRate: 0.3,
        errorPhase: 'any',
        rateLimitBurst,
        dropRate: 0.25,
        duplicateRate: 0.25,
        delayMs: 20,
        reorder: true,
        reorderWindowMs: 60,
        seed: SEED + round,
      });
      const sfFaults = (requestLimitBurst: number) => ({ errorRate: 0.3, errorPhase: 'any' as const, cdcGapRate: 0.3, requestLimitBurst, seed: SEED + round });
      const stripeBurstLeft = () => stripeSim.admin.faults().accounts[secretKey]?.rateLimitBurst ?? 0;
      const sfBurstLeft = () => sfSim.admin.faults().requestLimitBurst ?? 0;
      stripeSim.admin.setFaults(stripeFaults(0));
      sfSim.admin.setFaults(sfFaults(0));
      const drive = { on: true };
      const driving = () => drive.on;
      // What the assertions after the run ask of it: the faults were met, not just switched on.
      const faultsMet = (): boolean => {
        const stripe = stripeSim.admin.requests(secretKey);
        const salesforce = sfSim.admin.requests();
        return stripe.injectedErrors > 50 && stripe.rateLimited > 0 && salesforce.injectedErrors > 10 && salesforce.limitExceeded > 0;
      };
      const faultRounds = (async () => {
        for (;;) {
          await sleep(1500);
          if (!driving()) break;
          round += 1;
          // Past FAULTS_MIN_MS (some kind not met yet), a burst is re-armed only while its kind is
          // not met: a 429 burst of 25 a round takes every request an idle Tandem makes (its polls),
          // leaving none to meet the 500s.
          const extended = Date.now() - started > FAULTS_MIN_MS;
          stripeBurstsInjected += stripeBurstSet - stripeBurstLeft();
          stripeBurstSet = extended && stripeSim.admin.requests(secretKey).rateLimited > 0 ? 0 : 25;
          stripeSim.admin.setFaults(stripeFaults(stripeBurstSet));
          sfBurstsInjected += sfBurstSet - sfBurstLeft();
          // Every other round: the next 3 Salesforce calls are refused as over the daily allocation.
          sfBurstSet = (extended && sfSim.admin.requests().limitExceeded > 0) || round % 2 !== 0 ? 0 : 3;
          if (sfBurstSet > 0) sfLimitBursts += 1;
          sfSim.admin.setFaults(sfFaults(sfBurstSet));
        }
      })();
      // What the Salesforce connection says of itself meanwhile ('waiting' after a limit burst).
      const sfStatuses = new Set<string>();
      const watching = (async () => {
        while (driving()) {
          const res = await t.call('GET', `/api/v1/connections/${sfConnection}`);
          sfStatuses.add(String(res.json<Json>().status));
          await sleep(50);
        }
      })();

      async function stripeWrite<T>(baseKey: string | undefined, fn: (key: string | undefined) => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: Stripe.errors.StripeError }> {
        let key = baseKey;
        let last: unknown;
        const began = Date.now();
        for (let attempt = 1; Date.now() - began < 30_000; attempt += 1) {
          try {
            return { ok: true, value: await fn(key) };
          } catch (error) {
            last = error;
            if (!(error instanceof Stripe.errors.StripeError)) throw error;
            if (error.statusCode === 429) {
              counts.stripe429Retries += 1;
              await sleep(30 + random() * 70);
              continue;
            }
            if (error.statusCode === undefined || error.statusCode >= 500) {
              counts.stripe500Retries += 1;
              // A 500 stored under the key (nothing applied) is answered again forever: a new key.
              if (baseKey !== undefined && error.headers?.['stripe-should-retry'] === 'false') key = `${baseKey}-r${String(attempt)}`;
              await sleep(10 + random() * 20);
              continue;
            }
            return { ok: false, error };
          }
        }
        throw new Error(`a Stripe write kept failing for 30 s (${baseKey ?? 'delete'}): ${last instanceof Stripe.errors.StripeError ? `${String(last.statusCode)} ${String(last.code)} ${last.message}` : String(last)}`);
      }

      async function tandemWrite(method: 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, headers?: Record<string, string>) {
        for (let attempt = 1; ; attempt += 1) {
          const res = await t.call(method, url, body, headers);
          if (res.statusCode === 409 && res.json<{ error: { code: string } }>().error.code === 'CONFLICT' && attempt < 20) continue;
          return res;
        }
      }

      /** Learns each entity's ids in the systems it did not start in, as its copies appear. */
      const findIds = async () => {
        const stripeByTandem = new Map<string, string>();
        for (const c of stripeSim.admin.customers(secretKey, { includeDeleted: false })) {
          const tid = c.metadata.tandem_id;
          if (tid !== undefined) stripeByTandem.set(tid, c.id);
        }
        // A pending link (a create under way) names no external object yet.
        const links = (await t.store.db.selectFrom('links').select(['connection_id', 'record_id', 'external_id']).execute()).filter((l) => !l.external_id.startsWith('pending:'));
        const recordByExternal = new Map(links.map((l) => [`${l.connection_id}:${l.external_id}`, l.record_id]));
        const externalByRecord = new Map(links.map((l) => [`${l.connection_id}:${l.record_id}`, l.external_id]));
        for (const e of entities) {
          if (e.tandemId === undefined && e.stripeId !== undefined) e.tandemId = recordByExternal.get(`${stripeConnection}:${e.stripeId}`);
          if (e.tandemId === undefined && e.accountId !== undefined) e.tandemId = recordByExternal.get(`${sfConnection}:${e.accountId}`);
          if (e.tandemId === undefined) continue;
          e.stripeId ??= stripeByTandem.get(e.tandemId) ?? externalByRecord.get(`${stripeConnection}:${e.tandemId}`);
          e.accountId ??= externalByRecord.get(`${sfConnection}:${e.tandemId}`);
        }
      };
      let lastFind = 0;

      /** The live Contact of an Account a person would edit: the only one (none or several: not yet). */
      const contactOf = (accountId: string): Row | undefined => {
        const live = contacts(false).filter((c) => c.AccountId === accountId);
        return live.length === 1 ? live[0] : undefined;
      };

      const values = (e: Entity) => {
        e.writes += 1;
        const n = e.writes;
        const [city, country] = pick(CITIES);
        return {
          company: `${e.label} Company ${String(n)}`,
          name: `${e.label} Person${String(n)}`,
          email: `${e.label.toLowerCase()}.${String(n)}@example.com`,
          phone: `+1 555 ${String(1000 + n)}`,
          address: { line1: `${String(n)} Main St`, city, country } as Address,
          meta: `v${String(n)}`,
        };
      };

      async function create(side: Side): Promise<void> {
        const label = `${LABELS[side]}${String(entities.filter((e) => e.origin === side).length)}`;
        const e: Entity = { label, origin: side, tandemId: undefined, stripeId: undefined, accountId: undefined, deleted: false, deletedBy: undefined, busy: true, writes: 0, log: [], want: { company: null, name: null, email: null, phone: null, address: null, metadata: {} } };
        entities.push(e);
        const v = values(e);
        if (side === 'tandem') {
          const want: Wanted = { company: v.company, name: v.name, email: v.email, phone: v.phone, address: v.address, metadata: { origin: side, t: v.meta } };
          const res = await tandemWrite(
            'POST',
            '/api/v1/customers',
            { company: want.company, name: want.name, email: want.email, phone: want.phone, billing_address: want.address, metadata: want.metadata },
            { 'idempotency-key': `${kind}-${label}` },
          );
          assert.equal(res.statusCode, 201, res.body);
          e.tandemId = res.json<Json>().id;
          e.want = want;
        } else if (side === 'stripe') {
          const want: Wanted = { company: null, name: v.name, email: v.email, phone: v.phone, address: v.address, metadata: { origin: side, s: v.meta } };
          const done = await stripeWrite(`test-create-${label}`, (idempotencyKey) =>
            stripe.customers.create({ name: v.name, email: v.email, phone: v.phone, address: v.address, metadata: want.metadata }, idempotencyKey === undefined ? {} : { idempotencyKey }),
          );
          if (!done.ok) throw done.error;
          e.stripeId = done.value.id;
          e.want = want;
        } else {
          // A person: the Account, then its Contact (two saves in the UI).
          const account = sfSim.admin.create('Account', { Name: v.company, Phone: v.phone, BillingStreet: v.address.line1, BillingCity: v.address.city, BillingCountry: v.address.country });
          e.accountId = String(account.Id);
          const [first, last] = v.name.split(' ');
          await sleep(random() * 20);
          sfSim.admin.create('Contact', { AccountId: account.Id, FirstName: first, LastName: last, Email: v.email });
          e.want = { company: v.company, name: v.name, email: v.email, phone: v.phone, address: v.address, metadata: {} };
        }
        e.log.push(`${new Date().toISOString()} created in ${side}: ${JSON.stringify(e.want)}`);
        e.busy = false;
      }

      /** A customer this side can write now: its id there known, not deleted, no write of the test in flight. */
      async function target(side: Side, op: 'update' | 'delete'): Promise<Entity | undefined> {
        if (Date.now() - lastFind > 100) {
          lastFind = Date.now();
          await findIds();
        }
        const ready = entities.filter((e) => {
          if (e.deleted || e.busy || e.tandemId === undefined) return false;
          if (side === 'stripe') return e.stripeId !== undefined;
          if (side === 'salesforce') {
            if (e.accountId === undefined) return false;
            const account = sfSim.admin.record('Account', e.accountId);
            if (account === undefined || account.IsDeleted === true) return false;
            if (op === 'delete') return true;
            // A person edits the Contact of an Account named after its company (see the header).
            return e.want.company !== null && account.Name === e.want.company && contactOf(e.accountId) !== undefined;
          }
          return true;
        });
        const chosen = ready.length === 0 ? undefined : pick(ready);
        // Taken at once: another lane's target() may run before this one's caller goes on.
        if (chosen !== undefined) chosen.busy = true;
        return chosen;
      }

      async function update(side: Side, e: Entity): Promise<void> {
        const v = values(e);
        const begun = new Date().toISOString();
        const logged = () => e.log.push(`${begun}..${new Date().toISOString()} update ${String(e.writes)} in ${side}: ${JSON.stringify(e.want)}`);
        if (side === 'tandem') {
          const owns = ['company', 'address', 'meta'] as const;
          const chosen: (typeof owns)[number][] = owns.filter(() => random() < 0.5);
          // A customer made in Stripe gets its company from Tandem first.
          if (e.want.company === null && !chosen.includes('company')) chosen.push('company');
          if (chosen.length === 0) chosen.push(pick(owns));
          const patch: Record<string, unknown> = {};
          for (const field of chosen) {
            if (field === 'meta') patch.metadata = { t: v.meta };
            else if (field === 'address') patch.billing_address = v.address;
            else patch.company = v.company;
          }
          const res = await tandemWrite('PATCH', `/api/v1/customers/${e.tandemId ?? ''}`, patch);
          assert.equal(res.statusCode, 200, res.body);
          for (const field of chosen) {
            if (field === 'meta') e.want.metadata.t = v.meta;
            else if (field === 'address') e.want.address = v.address;
            else e.want.company = v.company;
          }
          logged();
        } else if (side === 'stripe') {
          const owns = ['phone', 'meta'] as const;
          const chosen: (typeof owns)[number][] = owns.filter(() => random() < 0.5);
          if (chosen.length === 0) chosen.push(pick(owns));
          const params: Stripe.CustomerUpdateParams = {};
          for (const field of chosen) {
            if (field === 'meta') params.metadata = { s: v.meta };
            else params.phone = v.phone;
          }
          const done = await stripeWrite(`test-update-${e.label}-${String(e.writes)}`, (idempotencyKey) =>
            stripe.customers.update(e.stripeId ?? '', params, idempotencyKey === undefined ? {} : { idempotencyKey }),
          );
          if (!done.ok) throw done.error;
          for (const field of chosen) {
            if (field === 'meta') e.want.metadata.s = v.meta;
            else e.want.phone = v.phone;
          }
          logged();
        } else {
          const contact = contactOf(e.accountId ?? '');
          assert.ok(contact !== undefined);
          const owns = ['name', 'email'] as const;
          const chosen: (typeof owns)[number][] = owns.filter(() => random() < 0.5);
          if (chosen.length === 0) chosen.push(pick(owns));
          const fields: Record<string, unknown> = {};
          for (const field of chosen) {
            if (field === 'email') fields.Email = v.email;
            else {
              const [first, last] = v.name.split(' ');
              fields.FirstName = first;
              fields.LastName = last;
            }
          }
          sfSim.admin.update('Contact', String(contact.Id), fields);
          for (const field of chosen) e.want[field] = v[field];
          logged();
        }
      }

      async function remove(side: Side, e: Entity): Promise<void> {
        if (side === 'tandem') {
          const res = await tandemWrite('DELETE', `/api/v1/customers/${e.tandemId ?? ''}`);
          assert.equal(res.statusCode, 200, res.body);
        } else if (side === 'stripe') {
          const id = e.stripeId ?? '';
          const done = await stripeWrite(undefined, () => stripe.customers.del(id));
          // A 404 after a delete that was applied and then answered 500: deleted either way.
          if (!done.ok && !(done.error.code === 'resource_missing' && stripeSim.admin.customer(secretKey, id)?.deleted === true)) throw done.error;
        } else {
          sfSim.admin.delete('Account', e.accountId ?? '');
        }
        e.deleted = true;
        e.deletedBy = side;
        e.log.push(`${new Date().toISOString()} deleted in ${side}`);
      }

      /** One phase: its operations shuffled over the three sides, run by LANES lanes. */
      const phase = async (op: Op): Promise<void> => {
        const queue = SIDES.flatMap((side) => Array.from({ length: PLAN[op][side] }, () => side));
        for (let i = queue.length - 1; i > 0; i -= 1) {
          const j = Math.floor(random() * (i + 1));
          [queue[i], queue[j]] = [queue[j] as Side, queue[i] as Side];
        }
        const lane = async () => {
          let waited = 0;
          for (;;) {
            const side = queue.shift();
            if (side === undefined) return;
            if (op === 'create') {
              counts.attempted += 1;
              await create(side);
              counts.acknowledged += 1;
            } else {
              const e = await target(side, op);
              if (e === undefined) {
                // Nothing this side can write yet (the other sides' customers are still on their way): later.
                assert.ok(waited < 3000, `no ${side} target for ${op} after a long wait`);
                waited += 1;
                counts.waitedForTarget += 1;
                queue.push(side);
                await sleep(10);
                continue;
              }
              counts.attempted += 1;
              try {
                if (op === 'update') await update(side, e);
                else await remove(side, e);
                counts.acknowledged += 1;
              } finally {
                e.busy = false;
              }
            }
            await sleep(random() * 15);
          }
        };
        await Promise.all(Array.from({ length: LANES }, lane));
      };
      try {
        await phase('create');
        await phase('update');
        await phase('delete');
        // Tandem is still syncing the burst: the faults go on a while.
        await sleep(Math.max(0, started + FAULTS_MIN_MS - Date.now()));
        // On a slow run Tandem may have made few calls while the faults were on (its writes go out in
        // batches): they go on until every kind was met, for at most FAULTS_MAX_MS in all.
        while (Date.now() - started < FAULTS_MAX_MS && !faultsMet()) await sleep(250);
      } finally {
        drive.on = false;
        await faultRounds;
        await watching;
      }
      stripeBurstsInjected += stripeBurstSet - stripeBurstLeft();
      sfBurstsInjected += sfBurstSet - sfBurstLeft();
      const driveMs = Date.now() - started;
      stripeSim.admin.clearFaults(secretKey);
      sfSim.admin.clearFaults();

      // Quiescence: no webhook delivery pending, no mark, no unprocessed external change, the Stripe
      // poll read up to the newest customer event and the Salesforce stream up to the newest change
      // event, both connections active — for 1.5 s in a row.
      const clearedAt = Date.now();
      let quietSince = 0;
      await waitUntil(
        async () => {
          const quiet = await isQuiet();
          if (!quiet) quietSince = 0;
          else if (quietSince === 0) quietSince = Date.now();
          return quiet && Date.now() - quietSince >= 1500;
        },
        CONVERGE_MS,
        () => `no quiescence: ${JSON.stringify(lastQuiet)}`,
        100,
      );
      const convergeMs = Date.now() - clearedAt;
      await findIds();
      await assertConverged(entities);

      // No ping-pong: nothing is written to Stripe or Salesforce, and no Tandem record moves.
      const tandemVersions = async () => (await tandemCustomers()).map((r) => `${r.id}:${String(r.version)}`).join(',');
      const before = { stripe: stripeWrites(), salesforce: sfWrites(), tandem: await tandemVersions() };
      await sleep(QUIET_MS);
      await t.parts.engine.settled();
      assert.equal(stripeWrites() - before.stripe, 0, 'no write reached Stripe after convergence');
      assert.equal(sfWrites() - before.salesforce, 0, 'no write reached Salesforce after convergence');
      assert.equal(await tandemVersions(), before.tandem, 'no Tandem record got a new version after convergence');
      for (const id of [stripeConnection, sfConnection]) {
        const res = await t.call('GET', `/api/v1/connections/${id}`);
        assert.equal(res.json<Json>().status, 'active', `connection ${id} is active again: ${res.body}`);
      }

      const stripeStats = stripeSim.admin.requests(secretKey);
      const deliveries = stripeSim.admin.deliveries(secretKey);
      const sfStats = sfSim.admin.requests();
      const changeEvents = sfSim.admin.changeEvents();
      const summary = {
        stack: stack.name,
        changes: counts,
        customers: Object.fromEntries(SIDES.map((side) => [side, entities.filter((e) => e.origin === side).length])),
        deleted: Object.fromEntries(SIDES.map((side) => [side, entities.filter((e) => e.deletedBy === side).length])),
        faultsOnMs: driveMs,
        convergeMsAfterFaultsCleared: convergeMs,
        stripe: {
          requests: stripeStats.total,
          injected500s: stripeStats.injectedErrors,
          answered429s: stripeStats.rateLimited,
          injected429Bursts: stripeBurstsInjected,
          webhooks: { deliveries: deliveries.length, dropped: deliveries.filter((d) => d.status === 'dropped').length, duplicated: deliveries.filter((d) => d.duplicate).length },
        },
        salesforce: {
          requests: sfStats.total,
          injected500s: sfStats.injectedErrors,
          limitExceeded403s: sfStats.limitExceeded,
          limitBursts: sfLimitBursts,
          limitRefusalsInjected: sfBurstsInjected,
          cdcEvents: changeEvents.length,
          cdcGaps: changeEvents.filter((ev) => ((ev.payload.ChangeEventHeader as { changeType?: string } | undefined)?.changeType ?? '').startsWith('GAP_')).length,
          statusesSeen: [...sfStatuses].sort(),
        },
      };
      ctx.diagnostic(JSON.stringify(summary));
      assert.ok(stripeStats.injectedErrors > 50, 'the run did see injected Stripe 500s');
      assert.ok(stripeStats.rateLimited > 0, 'the run did see Stripe 429s');
      assert.ok(summary.stripe.webhooks.dropped > 0 && summary.stripe.webhooks.duplicated > 0, 'webhooks were dropped and duplicated');
      assert.ok(sfStats.injectedErrors > 10, 'the run did see injected Salesforce 500s');
      assert.ok(sfStats.limitExceeded > 0, 'the run did see REQUEST_LIMIT_EXCEEDED');
      assert.ok(summary.salesforce.cdcGaps > 0, 'the run did see CDC gap events');
      assert.ok(sfStatuses.has('waiting'), `the Salesforce connection showed 'waiting' during a limit burst (saw ${[...sfStatuses].join(', ')})`);
    });

    let lastQuiet: Record<string, unknown> = {};
    async function isQuiet(): Promise<boolean> {
      const deliveriesIdle = await stripeSim.admin.waitForDeliveries(1);
      const marks = await t.store.db.selectFrom('sync_marks').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      const pending = await t.store.db.selectFrom('external_changes').select((eb) => eb.fn.countAll<number>().as('n')).where('processed_at', 'is', null).executeTakeFirstOrThrow();
      const cursors = await t.store.db.selectFrom('connection_cursors').select(['connection_id', 'name', 'value']).execute();
      const cursor = (connection: string, name: string) => cursors.find((c) => c.connection_id === connection && c.name === name)?.value;
      const newestStripe = stripeSim.admin.events(secretKey).filter((e) => e.type.startsWith('customer.')).at(-1);
      const stripeCaughtUp = newestStripe === undefined || (cursor(stripeConnection, 'events')?.startsWith(`evt:${newestStripe.id}:`) ?? false);
      const newestSf = sfSim.admin.changeEvents().at(-1);
      const sfCaughtUp = newestSf === undefined || cursor(sfConnection, 'stream') === String(newestSf.replayId);
      // The stream can lose events (a stream that fails before it stored its first cursor starts
      // again from now); the poll is the safety net, in whole minutes: it must have passed the last
      // change a person made in Salesforce.
      const lastUiChange = sfSim.admin.changes().filter((c) => c.connectedApp === null).at(-1);
      const sfPolled = cursor(sfConnection, 'events');
      const sfPollCaughtUp = lastUiChange === undefined || (sfPolled !== undefined && Date.parse(sfPolled) > Date.parse(lastUiChange.at));
      const statuses = await t.store.db.selectFrom('connections').select(['id', 'status']).execute();
      const active = statuses.every((c) => c.status === 'active');
      lastQuiet = { deliveriesIdle, marks: marks.n, pending: pending.n, stripeCursor: cursor(stripeConnection, 'events'), newestStripe: newestStripe?.id, sfCursor: cursor(sfConnection, 'stream'), newestSf: newestSf?.replayId, sfPolled, lastUiChange: lastUiChange?.at, statuses };
      return deliveriesIdle && marks.n === 0 && pending.n === 0 && stripeCaughtUp && sfCaughtUp && sfPollCaughtUp && active;
    }

    async function tandemCustomers(): Promise<(Json & { version: number; deleted_at: string | null })[]> {
      const all: (Json & { version: number; deleted_at: string | null })[] = [];
      let cursor: string | null = null;
      do {
        const res = await t.call('GET', `/api/v1/customers?limit=100&include_deleted=true${cursor === null ? '' : `&cursor=${cursor}`}`);
        assert.equal(res.statusCode, 200, res.body);
        const page = res.json<{ data: (Json & { version: number; deleted_at: string | null })[]; next_cursor: string | null }>();
        all.push(...page.data);
        cursor = page.next_cursor;
      } while (cursor !== null);
      return all;
    }

    /** TANDEM_TEST_EXPLAIN=1: the history of every customer with a problem, in the three systems. */
    async function explain(wrong: Entity[]): Promise<void> {
      const lines: string[] = [];
      const requests = stripeSim.admin.requestLog(secretKey);
      const events = stripeSim.admin.events(secretKey);
      const external = await t.store.db.selectFrom('external_changes').selectAll().execute();
      const changes = await t.store.db.selectFrom('changes').select(['record_id', 'version', 'op', 'origin', 'created_at', 'changed_fields']).execute();
      const sfChanges = sfSim.admin.changes();
      for (const e of wrong) {
        const ids = [e.tandemId, e.stripeId, e.accountId].filter((x) => x !== undefined);
        const contactIds = contacts().filter((c) => c.AccountId === e.accountId).map((c) => String(c.Id));
        lines.push(`${e.label} ${JSON.stringify(ids)} contacts ${JSON.stringify(contactIds)}`, ...e.log.map((l) => `  test ${l}`));
        for (const r of requests) if (ids.some((id) => r.path.includes(id))) lines.push(`  ${r.at} stripe ${r.method} ${r.path} ${String(r.status)} fault=${String(r.fault)} replayed=${String(r.replayed)}`);
        for (const ev of events.filter((x) => ids.includes(String(x.data.object.id)))) lines.push(`  ${new Date(ev.created * 1000).toISOString()} stripe event ${ev.id} ${ev.type} previous=${JSON.stringify(ev.data.previous_attributes ?? null)}`);
        for (const c of sfChanges) if (c.id === e.accountId || contactIds.includes(c.id)) lines.push(`  ${c.at} salesforce ${c.change} ${c.sobject} ${c.id} app=${String(c.connectedApp)}`);
        for (const x of external) if (ids.includes(x.external_id)) lines.push(`  ${x.received_at} external ${x.connection_id === sfConnection ? 'sf' : 'stripe'} ${x.event_id} ${x.op} ${x.source} processed=${String(x.processed_at)} attempts=${String(x.attempts)} ${String(x.last_error).slice(0, 150)}`);
        for (const c of changes) if (c.record_id === e.tandemId) lines.push(`  ${c.created_at} tandem v${String(c.version)} ${c.op} ${c.origin} ${c.changed_fields}`);
      }
      process.stderr.write(`${lines.join('\n')}\n`);
    }

    async function assertConverged(entities: Entity[]): Promise<void> {
      const problems: string[] = [];
      const problem = (text: string) => {
        if (problems.length < 60) problems.push(text);
      };
      const same = (a: unknown, b: unknown) => {
        try {
          assert.deepStrictEqual(a, b);
          return true;
        } catch {
          return false;
        }
      };
      const local = await tandemCustomers();
      const localById = new Map(local.map((r) => [r.id, r]));
      const stripeAll = stripeSim.admin.customers(secretKey);
      const stripeById = new Map(stripeAll.map((c) => [c.id, c]));
      const allAccounts = accounts();
      const accountById = new Map(allAccounts.map((a) => [String(a.Id), a]));
      const liveContacts = contacts(false);
      const links = await t.store.db.selectFrom('links').selectAll().execute();
      const linkOf = (connection: string, recordId: string) => links.filter((l) => l.connection_id === connection && l.record_id === recordId);

      // No duplicate anywhere: live objects per email, per Tandem id, links per external object.
      const tally = (keys: unknown[], what: string) => {
        const n = new Map<string, number>();
        for (const k of keys) if (typeof k === 'string' && k !== '') n.set(k, (n.get(k) ?? 0) + 1);
        for (const [k, count] of n) if (count > 1) problem(`${String(count)} ${what} ${k}`);
      };
      const liveLocal = local.filter((r) => r.deleted_at === null);
      const liveStripe = stripeAll.filter((c) => !c.deleted);
      const liveAccounts = allAccounts.filter((a) => a.IsDeleted !== true);
      tally(liveLocal.map((r) => r.email), 'live Tandem customers with email');
      tally(liveStripe.map((c) => c.email), 'live Stripe customers with email');
      tally(stripeAll.map((c) => c.metadata.tandem_id), 'Stripe customers (live or deleted) with tandem_id');
      tally(liveContacts.map((c) => c.Email), 'live Contacts with Email');
      tally(allAccounts.map((a) => a.Tandem_Id__c), 'Accounts (live or deleted) with Tandem_Id__c');
      tally(liveContacts.map((c) => c.AccountId), 'live Contacts on Account');
      tally(links.map((l) => `${l.connection_id}:${l.external_id}`), 'links to');
      tally(links.map((l) => `${l.connection_id}:${l.record_id}`), 'links of');
      const live = entities.filter((e) => !e.deleted);
      if (liveLocal.length !== live.length) problem(`${String(liveLocal.length)} live Tandem customers, expected ${String(live.length)}`);
      if (liveStripe.length !== live.length) problem(`${String(liveStripe.length)} live Stripe customers, expected ${String(live.length)}`);
      if (liveAccounts.length !== live.length) problem(`${String(liveAccounts.length)} live Accounts, expected ${String(live.length)}`);
      if (liveContacts.length !== live.length) problem(`${String(liveContacts.length)} live Contacts, expected ${String(live.length)}`);
      for (const c of liveContacts) if (accountById.get(String(c.AccountId))?.IsDeleted !== false) problem(`live Contact ${String(c.Id)} on no live Account (${String(c.AccountId)})`);

      const known = new Set<string>();
      for (const e of entities) {
        for (const id of [e.tandemId, e.stripeId, e.accountId]) if (id !== undefined) known.add(id);
        const r = e.tandemId === undefined ? undefined : localById.get(e.tandemId);
        const stripeIds = e.tandemId === undefined ? [] : linkOf(stripeConnection, e.tandemId).map((l) => l.external_id);
        const accountIds = e.tandemId === undefined ? [] : linkOf(sfConnection, e.tandemId).map((l) => l.external_id);
        for (const id of [...stripeIds, ...accountIds]) known.add(id);
        const stripeObjects = [...new Set([e.stripeId, ...stripeIds].filter((x) => x !== undefined))].map((id) => stripeById.get(id));
        const accountObjects = [...new Set([e.accountId, ...accountIds].filter((x) => x !== undefined))].map((id) => accountById.get(id));
        if (e.deleted) {
          if (r === undefined || r.deleted_at === null) problem(`${e.label}: deleted in ${String(e.deletedBy)}, but Tandem ${String(e.tandemId)} is ${r === undefined ? 'missing' : 'live'}`);
          for (const c of stripeObjects) if (c !== undefined && !c.deleted) problem(`${e.label}: deleted in ${String(e.deletedBy)}, but Stripe ${c.id} is live`);
          for (const a of accountObjects) if (a !== undefined && a.IsDeleted !== true) problem(`${e.label}: deleted in ${String(e.deletedBy)}, but Account ${String(a.Id)} is live`);
          continue;
        }
        const w = e.want;
        const whole = { company: w.company, name: w.name, email: w.email, phone: w.phone, billing_address: w.address, metadata: w.metadata };
        if (r === undefined || r.deleted_at !== null) problem(`${e.label}: Tandem record missing or deleted (${String(e.tandemId)})`);
        else {
          const got = { ...completeCustomerFields(r), company: (r.company as string | null) ?? null };
          const want = { ...completeCustomerFields(whole), company: w.company };
          if (!same(got, want)) problem(`${e.label}: Tandem ${r.id} holds ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
        }
        if (stripeObjects.length !== 1 || stripeObjects[0] === undefined || stripeObjects[0].deleted) problem(`${e.label}: not exactly one live Stripe customer (${JSON.stringify(stripeObjects.map((c) => c?.id))})`);
        else {
          const c = stripeObjects[0];
          if (!same(customerFieldsFromStripe(c), completeCustomerFields(whole))) problem(`${e.label}: Stripe ${c.id} holds ${JSON.stringify(customerFieldsFromStripe(c))}, expected ${JSON.stringify(completeCustomerFields(whole))}`);
        }
        const a = accountObjects[0];
        if (accountObjects.length !== 1 || a === undefined || a.IsDeleted === true) problem(`${e.label}: not exactly one live Account (${JSON.stringify(accountObjects.map((x) => x?.Id))})`);
        else {
          const its = liveContacts.filter((c) => c.AccountId === a.Id);
          if (its.length !== 1) problem(`${e.label}: Account ${String(a.Id)} has ${String(its.length)} live Contacts`);
          const got = customerFieldsFromSalesforce(SF_MAPPING, a, its[0]);
          const want = completeSalesforceFields(SF_MAPPING, whole);
          if (!same(got, want)) problem(`${e.label}: Account ${String(a.Id)} holds ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
        }
      }
      // Nothing unknown exists.
      for (const r of local) if (!known.has(r.id)) problem(`Tandem ${r.id} (${String(r.email)}) belongs to no customer of the run`);
      for (const c of stripeAll) if (!known.has(c.id) && !known.has(c.metadata.tandem_id ?? '')) problem(`Stripe ${c.id} (${String(c.email)}) belongs to no customer of the run`);
      for (const a of allAccounts) if (!known.has(String(a.Id)) && !known.has(String(a.Tandem_Id__c))) problem(`Account ${String(a.Id)} (${String(a.Name)}) belongs to no customer of the run`);

      const issues = await t.call('GET', '/api/v1/sync-issues?status=open&limit=100');
      const open = issues.json<{ data: { code: string; connection_id: string; record_id: string | null; external_id: string | null; message: string }[] }>().data;
      for (const issue of open) problem(`open sync issue ${issue.code} (${issue.connection_id === sfConnection ? 'Salesforce' : 'Stripe'}) on ${String(issue.record_id ?? issue.external_id)}: ${issue.message.slice(0, 200)}`);
      if (problems.length > 0 && process.env.TANDEM_TEST_EXPLAIN === '1') await explain(entities.filter((e) => problems.some((p) => p.startsWith(`${e.label}:`))));
      assert.deepEqual(problems, [], `${String(problems.length)} problems after convergence`);
    }
  });
}
