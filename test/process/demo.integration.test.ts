// The demo, as the README walks a newcomer through it: `node src/main.ts` with the demo on (the
// default) starts a simulated Stripe and a simulated Salesforce in its process and connects the
// default workspace to both. Everything here goes over HTTP, as the README's curl commands do.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { freePort, killAllTandems, spawnTandem, waitUntil } from '../support/process.ts';

type Json = Record<string, unknown>;

const dataDir = mkdtempSync(join(tmpdir(), 'tandem-demo-'));

after(async () => {
  await killAllTandems();
  rmSync(dataDir, { recursive: true, force: true });
});

test('npm start: the demo syncs customers between Tandem, a simulated Stripe and a simulated Salesforce, both ways', { timeout: 90_000 }, async () => {
  const [stripePort, salesforcePort] = [await freePort(), await freePort()];
  const tandem = await spawnTandem({
    env: { DATA_DIR: dataDir, TANDEM_DEMO: 'on', TANDEM_DEMO_STRIPE_PORT: String(stripePort), TANDEM_DEMO_SALESFORCE_PORT: String(salesforcePort) },
  });
  const stripe = `http://127.0.0.1:${String(stripePort)}`;
  const salesforce = `http://127.0.0.1:${String(salesforcePort)}`;
  assert.match(tandem.stdout(), new RegExp(`Salesforce simulator at ${salesforce}`));
  const key = readFileSync(join(dataDir, 'admin-api-key'), 'utf8').trim();
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> => {
    const res = await fetch(`${tandem.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json()) as Json };
  };
  const stripeCustomers = async (): Promise<Json[]> =>
    ((await (await fetch(`${stripe}/v1/customers?limit=100`, { headers: { authorization: `Basic ${Buffer.from('sk_test_tandem_demo:').toString('base64')}` } })).json()) as { data: Json[] }).data;
  const records = async (sobject: string): Promise<Json[]> =>
    ((await (await fetch(`${salesforce}/_sim/records?sobject=${sobject}&include_deleted=false`)).json()) as { data: Json[] }).data;
  const wait = (check: () => Promise<boolean>, what: string) => waitUntil(check, 30_000, () => `${what}\n${tandem.diagnostics()}`, 100);

  const connections = await api('GET', '/api/v1/connections');
  const list = connections.json.data as Json[];
  assert.deepEqual(list.map((c) => [c.connector, c.status]).sort(), [['salesforce', 'active'], ['stripe', 'active']]);

  // Created in Tandem: in Stripe (its Tandem id in metadata) and in Salesforce (an Account and its Contact).
  const created = await api('POST', '/api/v1/customers', { name: 'Grace Hopper', email: 'grace@example.com', company: 'US Navy' });
  assert.equal(created.status, 201);
  const id = String(created.json.id);
  await wait(async () => (await stripeCustomers()).some((c) => (c.metadata as Json).tandem_id === id), 'the customer in Stripe');
  await wait(async () => (await records('Account')).some((a) => a.Tandem_Id__c === id && a.Name === 'US Navy'), 'the Account in Salesforce');
  await wait(async () => (await records('Contact')).some((c) => c.Email === 'grace@example.com' && c.LastName === 'Hopper'), 'the Contact in Salesforce');

  // Created in Salesforce (as a person would, through the simulator's admin route): in Tandem and Stripe.
  const account = (await (await fetch(`${salesforce}/_sim/records?sobject=Account`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ Name: 'NASA' }) })).json()) as Json;
  const contact = await fetch(`${salesforce}/_sim/records?sobject=Contact`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ AccountId: account.Id, FirstName: 'Katherine', LastName: 'Johnson', Email: 'katherine@example.com' }),
  });
  assert.equal(contact.status, 201);
  await wait(async () => ((await api('GET', '/api/v1/customers?email=katherine@example.com')).json.data as Json[]).some((c) => c.company === 'NASA' && c.name === 'Katherine Johnson'), 'the customer in Tandem');
  await wait(async () => (await stripeCustomers()).some((c) => c.email === 'katherine@example.com'), 'the customer in Stripe');

  tandem.kill('SIGTERM');
  assert.equal((await tandem.waitForExit(20_000)).code, 0);
});
