// The standalone CLI: starts a simulator by name, prints where it listens, answers the SDK, stops
// on SIGTERM; an unknown name lists the simulators and exits 2.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { Connection, OAuth2 } from 'jsforce';
import Stripe from 'stripe';

const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));

test('`sim stripe` listens, answers the official SDK and stops on SIGTERM', async () => {
  const child = spawn(process.execPath, [cli, 'stripe', '--port', '0', '--rate-limit', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const lines = createInterface({ input: child.stdout });
    const [first] = (await once(lines, 'line')) as [string];
    const match = /^Stripe simulator listening on (http:\/\/127\.0\.0\.1:(\d+)) — any sk_test_… key works$/.exec(first);
    assert.ok(match, `unexpected first line: ${first}`);
    const stripe = new Stripe('sk_test_cli', { host: '127.0.0.1', port: Number(match[2]), protocol: 'http', telemetry: false });
    const customer = await stripe.customers.create({ email: 'cli@example.com' });
    assert.equal((await stripe.customers.retrieve(customer.id)).id, customer.id);
    const accounts = (await (await fetch(`${match[1]}/_sim/accounts`)).json()) as { data: { key: string; customers: number }[] };
    assert.deepEqual(accounts.data.map((a) => [a.key, a.customers]), [['sk_test_cli', 1]]);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('`sim salesforce` listens with the connected app and user from its flags, answers jsforce and stops on SIGTERM', async () => {
  const child = spawn(
    process.execPath,
    [cli, 'salesforce', '--port', '0', '--client-id', 'cli-app', '--client-secret', 'cli-secret', '--username', 'ops@cli.example', '--daily-api-limit', '500'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    const lines = createInterface({ input: child.stdout });
    const [first] = (await once(lines, 'line')) as [string];
    const match = /^Salesforce simulator listening on (http:\/\/127\.0\.0\.1:\d+) — connected app cli-app \/ cli-secret, user ops@cli\.example$/.exec(first);
    assert.ok(match, `unexpected first line: ${first}`);
    const url = match[1] ?? '';
    const conn = new Connection({ oauth2: new OAuth2({ loginUrl: url, clientId: 'cli-app', clientSecret: 'cli-secret' }), version: '62.0' });
    await conn.authorize({ grant_type: 'client_credentials' });
    assert.equal((await conn.identity()).username, 'ops@cli.example');
    const created = await conn.sobject('Account').create({ Name: 'From the CLI test' });
    assert.equal(created.success, true);
    assert.deepEqual(conn.limitInfo.apiUsage, { used: 1, limit: 500 }); // the identity URL is no REST call
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('an unknown simulator prints the list and exits 2', async () => {
  const child = spawn(process.execPath, [cli, 'paypal'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 2);
  assert.match(stderr, /Unknown simulator: paypal/);
  assert.match(stderr, /stripe\s+Stripe API/);
  assert.match(stderr, /salesforce\s+Salesforce org/);
});
