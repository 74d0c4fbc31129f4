// Kill -9 in the middle of a batch: Tandem as a real child process (`node src/main.ts`) on a test
// stack, a Salesforce simulator in this process, a Salesforce connection made through Tandem's API.
// A batch of 1,000 changes goes through Tandem's API (creates, then updates and deletes of them);
// Tandem pushes them to Salesforce in sObject Collections, carried in Composite calls. Tandem reaches
// Salesforce through a proxy in this process that lets Salesforce apply a composite call and kills
// Tandem before the answer reaches it — twice: during the creates (the upserts of Accounts and
// their Contacts) and during the updates.
// Each time Tandem is restarted on the same store. Once quiet, every live customer must be exactly
// one live Account (named after its company) with one Contact (its email); no Account duplicated,
// none left for a deleted customer, no sync issue.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startSalesforceSimulator, type SalesforceSimulator } from '../connectors/salesforce/simulator/index.ts';
import { startKillingProxy, type KillingProxy } from '../../test/support/killing-proxy.ts';
import { freePort, killAllTandems, sleep, spawnTandem, waitUntil, type TandemProcess } from '../../test/support/process.ts';
import { createTestStack, skipUnlessStack, STACKS, type TestStack } from '../../test/support/stacks.ts';

type Json = Record<string, unknown> & { id: string };
type Row = Record<string, unknown>;

const CREATES = 600;
const UPDATES = 300;
const DELETES = 100;
const LANES = 20;
const CONVERGE_MS = 120_000;

interface Wanted {
  company: string;
  email: string;
  deleted: boolean;
}

after(async () => {
  await killAllTandems();
});

for (const stack of STACKS) {
  describe(`Salesforce sync across kill -9 on ${stack.name}`, { skip: await skipUnlessStack(stack) }, () => {
    let sim: SalesforceSimulator;
    let proxy: KillingProxy;
    let testStore: TestStack;
    let proc: TandemProcess;
    let port: number;
    let env: Record<string, string>;
    let connectionId: string;
    const adminKey = `crash-admin-${randomBytes(16).toString('hex')}`;
    /** Settles once Tandem answers again after a kill; replaced at each kill. */
    let alive: Promise<void> = Promise.resolve();

    const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json }> => {
      const response = await fetch(`http://127.0.0.1:${String(port)}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await response.text();
      return { status: response.status, json: (text === '' ? {} : JSON.parse(text)) as Json };
    };

    /** Sends until Tandem answers (it may be dead for a while): every request here is safe to repeat. */
    const reliably = async (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: Json }> => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          return await call(method, path, body, headers);
        } catch (error) {
          if (attempt > 200) throw error;
          await alive;
          await sleep(50);
        }
      }
    };

    before(async () => {
      sim = await startSalesforceSimulator({ cometdPollTimeoutMs: 2000 });
      let proxyUrl = '';
      proxy = await startKillingProxy(
        sim.url,
        () => {
          proc.kill('SIGKILL');
        },
        // The token answer names the instance URL: the proxy's, so every later call passes through it.
        (body) => Buffer.from(body.toString('utf8').replaceAll(sim.url, proxyUrl)),
      );
      proxyUrl = proxy.url;
      testStore = await createTestStack(stack);
      port = await freePort();
      env = {
        ...testStore.env,
        TANDEM_DEMO: 'off',
        PUBLIC_URL: `http://127.0.0.1:${String(port)}`,
        TANDEM_SYNC_POLL_MS: '1000',
        TANDEM_ADMIN_API_KEY: adminKey,
        TANDEM_SECRET_KEY: `crash-test-secret-${randomBytes(16).toString('hex')}`,
        LOG_LEVEL: 'warn',
      };
      proc = await spawnTandem({ env, port });
      const res = await call('POST', '/api/v1/connections', {
        connector: 'salesforce',
        name: 'Salesforce across crashes',
        credentials: { clientId: 'tandem-sim', clientSecret: 'tandem-sim-secret' },
        settings: { loginUrl: proxy.url, rateLimitPerSecond: 1000 },
      });
      assert.equal(res.status, 201, JSON.stringify(res.json));
      connectionId = res.json.id;
    });

    after(async () => {
      await killAllTandems();
      await proxy.close();
      await sim.stop();
      await testStore.cleanup();
    });

    /** Arms a kill on the next call (`method`, `path`) that Salesforce applies; restarts Tandem after it. */
    const killDuring = (method: string, path: RegExp): Promise<boolean> => {
      let restarted!: () => void;
      const aimed = proxy.killOn(method, path, 20_000);
      alive = new Promise<void>((resolve) => {
        restarted = resolve;
      });
      return aimed.then(async (hit) => {
        await proc.exited;
        proc = await spawnTandem({ env, port });
        restarted();
        return hit;
      });
    };

    test('1,000 changes, Tandem killed -9 twice in the middle of a composite call and restarted: converged, no duplicate Account', { timeout: 300_000 }, async () => {
      const wanted = new Map<string, Wanted>();
      const ids: string[] = [];
      const lanes = async (count: number, work: (i: number) => Promise<void>): Promise<void> => {
        let next = 0;
        await Promise.all(
          Array.from({ length: LANES }, async () => {
            while (next < count) {
              const i = next++;
              await work(i);
            }
          }),
        );
      };

      // The first kill: once Salesforce applied a composite call of creates (the Accounts upsert and
      // the Contacts upsert referring to it).
      const firstKill = killDuring('POST', /^\/services\/data\/v[\d.]+\/composite$/);
      await lanes(CREATES, async (i) => {
        const body = { name: `Crash Person ${String(i)}`, email: `crash${String(i)}@example.com`, company: `Crash Co ${String(i)}` };
        const res = await reliably('POST', '/api/v1/customers', body, { 'idempotency-key': `crash-create-${String(i)}` });
        // 200: a replay — the first try was made before the kill, and its answer lost with it.
        assert.ok(res.status === 201 || res.status === 200, JSON.stringify(res.json));
        ids[i] = res.json.id;
        wanted.set(res.json.id, { company: body.company, email: body.email, deleted: false });
      });
      assert.ok(await firstKill, 'the first kill came after Salesforce applied a composite call of upserts');

      // The second kill: once Salesforce applied a composite call of updates (Account and Contact PATCHes).
      const secondKill = killDuring('POST', /^\/services\/data\/v[\d.]+\/composite$/);
      await lanes(UPDATES + DELETES, async (i) => {
        const id = ids[i] ?? '';
        const want = wanted.get(id);
        assert.ok(want !== undefined);
        if (i < UPDATES) {
          const change = { company: `Renamed Co ${String(i)}`, email: `renamed${String(i)}@example.com` };
          const res = await reliably('PATCH', `/api/v1/customers/${id}`, change);
          assert.equal(res.status, 200, JSON.stringify(res.json));
          want.company = change.company;
          want.email = change.email;
        } else {
          const res = await reliably('DELETE', `/api/v1/customers/${ids[CREATES - 1 - (i - UPDATES)] ?? ''}`);
          assert.ok(res.status === 200 || res.status === 404, JSON.stringify(res.json));
          const gone = wanted.get(ids[CREATES - 1 - (i - UPDATES)] ?? '');
          if (gone !== undefined) gone.deleted = true;
        }
      });
      const secondHit = await secondKill;

      const problems = (): string[] => {
        const accounts = sim.admin.records('Account', { includeDeleted: false });
        const contacts = sim.admin.records('Contact', { includeDeleted: false });
        const byTandem = new Map<unknown, Row[]>();
        for (const a of accounts) byTandem.set(a.Tandem_Id__c, [...(byTandem.get(a.Tandem_Id__c) ?? []), a]);
        const contactsOf = new Map<unknown, Row[]>();
        for (const c of contacts) contactsOf.set(c.AccountId, [...(contactsOf.get(c.AccountId) ?? []), c]);
        const found: string[] = [];
        for (const [id, want] of wanted) {
          const live = byTandem.get(id) ?? [];
          if (want.deleted) {
            if (live.length > 0) found.push(`${id}: deleted in Tandem, ${String(live.length)} live Account(s)`);
            continue;
          }
          if (live.length !== 1) {
            found.push(`${id}: ${String(live.length)} live Accounts`);
            continue;
          }
          const [account] = live;
          if (account?.Name !== want.company) found.push(`${id}: Account named ${String(account?.Name)}, wanted ${want.company}`);
          const its = contactsOf.get(account?.Id) ?? [];
          if (its.length !== 1 || its[0]?.Email !== want.email) found.push(`${id}: ${String(its.length)} Contacts, email ${String(its[0]?.Email)}, wanted ${want.email}`);
        }
        if (accounts.length !== [...wanted.values()].filter((w) => !w.deleted).length) found.push(`${String(accounts.length)} live Accounts in all`);
        return found;
      };
      await waitUntil(() => problems().length === 0, CONVERGE_MS, () => `not converged:\n${problems().slice(0, 15).join('\n')}\n${proc.diagnostics()}`, 250);
      const issues = await reliably('GET', '/api/v1/sync-issues?limit=100');
      assert.deepEqual((issues.json.data as unknown[]).length, 0, JSON.stringify(issues.json));
      const connection = await reliably('GET', `/api/v1/connections/${connectionId}`);
      assert.equal(connection.json.status, 'active');
      assert.ok(secondHit, 'the second kill came after Salesforce applied a collection update');
    });
  });
}
