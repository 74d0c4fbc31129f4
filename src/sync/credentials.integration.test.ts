// Secrets stay secret: a real Tandem process logging at trace level syncs with a Stripe simulator
// that fails a third of its requests and refuses bursts, is given a key Stripe refuses, and is asked
// everything the API can answer. Neither its logs, nor any answer, nor the database files hold the
// Stripe secret key, the webhook signing secret, Tandem's own secret key or the admin API key.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Stripe from 'stripe';
import { startStripeSimulator } from '../connectors/stripe/simulator/index.ts';
import { killAllTandems, spawnTandem, waitUntil } from '../../test/support/process.ts';

after(() => killAllTandems());

test('no secret appears in logs, answers or the database files, under faults', { timeout: 120_000 }, async () => {
  const sim = await startStripeSimulator({ rateLimitPerSecond: 0, delivery: { retryDelaysMs: [50, 100, 200, 400] } });
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-secrets-'));
  const secretKey = `sk_test_secrets_${randomBytes(12).toString('hex')}`;
  const refusedKey = `sk_live_refused_${randomBytes(12).toString('hex')}`;
  const adminKey = `admin-${randomBytes(24).toString('hex')}`;
  const tandemSecret = `tandem-secret-${randomBytes(24).toString('hex')}`;
  try {
    const proc = await spawnTandem({
      env: { DATA_DIR: dataDir, LOG_LEVEL: 'trace', TANDEM_ADMIN_API_KEY: adminKey, TANDEM_SECRET_KEY: tandemSecret, TANDEM_SYNC_POLL_MS: '300' },
    });
    const answers: string[] = [];
    const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
      const response = await fetch(`${proc.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      answers.push(text);
      return { status: response.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    };

    // A key Stripe refuses: a clear 4xx that does not repeat the key.
    const refused = await call('POST', '/api/v1/connections', { connector: 'stripe', name: 'refused', credentials: { secretKey: refusedKey }, settings: { apiBaseUrl: sim.url } });
    assert.ok(refused.status >= 400 && refused.status < 500, JSON.stringify(refused.json));

    const created = await call('POST', '/api/v1/connections', { connector: 'stripe', name: 'Stripe', credentials: { secretKey }, settings: { apiBaseUrl: sim.url } });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const connectionId = String(created.json.id);
    const webhookSecret = sim.admin.webhookEndpoints(secretKey)[0]?.secret;
    assert.ok(webhookSecret?.startsWith('whsec_'));

    // Faults from here on: a third of the requests fail, a burst is refused, webhooks are lost.
    sim.admin.setFaults({ account: secretKey, errorRate: 0.3, errorPhase: 'any', rateLimitBurst: 10, dropRate: 0.3, seed: 7 });
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) {
      const res = await call('POST', '/api/v1/customers', { name: `Secret ${String(i)}`, email: `secret${String(i)}@example.com` });
      assert.equal(res.status, 201);
      ids.push(String(res.json.id));
    }
    for (const id of ids.slice(0, 5)) await call('PATCH', `/api/v1/customers/${id}`, { phone: '+1 555 0100' });
    const url = new URL(sim.url);
    const stripe = new Stripe(secretKey, { host: url.hostname, port: Number(url.port), protocol: 'http', telemetry: false, maxNetworkRetries: 5 });
    const fromStripe = Array.from({ length: 5 }, (_, i) => `from-stripe${String(i)}@example.com`);
    for (const [i, email] of fromStripe.entries()) {
      // A stored 500 is not retried by the SDK (Stripe-Should-Retry: false): ask again.
      for (let attempt = 1; ; attempt++) {
        try {
          await stripe.customers.create({ name: `From Stripe ${String(i)}`, email });
          break;
        } catch (error) {
          if (attempt >= 10) throw error;
        }
      }
    }

    // (Set TANDEM_TEST_EXPLAIN=1 to print the requests and issues of a customer that did not arrive.)
    const explain = async (missing: string[]): Promise<string> => {
      if (process.env.TANDEM_TEST_EXPLAIN !== '1') return '';
      const issues = await call('GET', '/api/v1/sync-issues');
      const requests = sim.admin
        .requestLog(secretKey)
        .filter((r) => missing.some((id) => r.path.includes(id) || (r.idempotencyKey ?? '').includes(id)))
        .map((r) => `${r.at} ${r.method} ${r.path} ${String(r.status)} key=${String(r.idempotencyKey)} replayed=${String(r.replayed)}`);
      return `\nissues ${JSON.stringify(issues.json)}\nrequests\n${requests.join('\n')}`;
    };
    const arrived = (id: string, remote: ReturnType<typeof sim.admin.customers>): boolean =>
      remote.some((c) => c.metadata.tandem_id === id && c.phone === (ids.indexOf(id) < 5 ? '+1 555 0100' : null));
    let missing: string[] = [];
    try {
      await waitUntil(
        () => {
          const remote = sim.admin.customers(secretKey, { includeDeleted: false });
          missing = ids.filter((id) => !arrived(id, remote));
          return missing.length === 0;
        },
        60_000,
        () => `every Tandem customer reached Stripe through the faults; missing ${JSON.stringify(missing)}`,
      );
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}${await explain(missing)}`);
    }
    await waitUntil(
      async () => {
        const local = (await call('GET', '/api/v1/customers?limit=100')).json.data as Array<{ email: string }>;
        return fromStripe.every((email) => local.some((c) => c.email === email));
      },
      60_000,
      () => `the Stripe customers reached Tandem through the faults; Tandem's warnings: ${proc
        .logLines()
        .filter((l) => Number(l.level) >= 40)
        .slice(-5)
        .map((l) => JSON.stringify(l).slice(0, 400))
        .join('\n')}`,
    );
    sim.admin.clearFaults();

    // Everything the API tells about connections and sync.
    await call('GET', '/api/v1/connections');
    await call('GET', `/api/v1/connections/${connectionId}`);
    await call('PATCH', `/api/v1/connections/${connectionId}`, { settings: { entities: { customer: { direction: 'both' } } } });
    await call('POST', `/api/v1/connections/${connectionId}/pause`);
    await call('POST', `/api/v1/connections/${connectionId}/resume`);
    await call('GET', '/api/v1/sync-issues');
    await call('GET', '/api/v1/openapi.json');

    proc.kill('SIGTERM');
    await proc.waitForExit(15_000);

    const secrets = { 'Stripe secret key': secretKey, 'refused key': refusedKey, 'webhook secret': webhookSecret ?? '', 'TANDEM_SECRET_KEY': tandemSecret, 'admin API key': adminKey };
    const logs = proc.stdout() + proc.stderr();
    assert.ok(logs.split('\n').length > 100, 'trace logging wrote the sync’s lines');
    assert.match(logs, /"statusCode":(500|429)|api_error|rate_limit/, 'the logs saw the injected failures');
    const files = readdirSync(dataDir)
      .filter((f) => f.startsWith('tandem.db'))
      .map((f) => ({ name: f, bytes: readFileSync(join(dataDir, f)) }));
    assert.ok(files.length > 0);
    for (const [what, secret] of Object.entries(secrets)) {
      assert.ok(!logs.includes(secret), `the logs hold the ${what}`);
      for (const [i, answer] of answers.entries()) assert.ok(!answer.includes(secret), `answer ${String(i)} holds the ${what}`);
      if (what !== 'admin API key') {
        // (The admin key is stored hashed; the others encrypted.)
        for (const file of files) assert.ok(!file.bytes.includes(secret), `${file.name} holds the ${what} in clear`);
      }
    }
    for (const file of files) assert.ok(!file.bytes.includes(adminKey), `${file.name} holds the admin API key in clear`);
  } finally {
    await killAllTandems();
    await sim.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
