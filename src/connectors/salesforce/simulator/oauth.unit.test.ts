// OAuth through jsforce: client credentials, the web server flow (authorize → code → tokens),
// refresh on an expired session, the JWT bearer flow, and Salesforce's OAuth error shapes.
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Connection, OAuth2 } from 'jsforce';
import { DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_USERNAME, startSalesforceSimulator, type SalesforceSimulator } from './index.ts';
import { TEST_API_VERSION, connect, manualClock, rejection } from './testing.ts';

const clock = manualClock();
const SESSION_MS = 60 * 60 * 1000;
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const REDIRECT = 'http://127.0.0.1:9/callback';
let sim: SalesforceSimulator;

before(async () => {
  sim = await startSalesforceSimulator({
    clock: clock.now,
    sessionTimeoutMs: SESSION_MS,
    users: [{ username: DEFAULT_USERNAME, password: 'pw' }, { username: 'integration@tandem-sim.example' }],
    connectedApps: [
      { clientId: DEFAULT_CLIENT_ID, clientSecret: DEFAULT_CLIENT_SECRET, clientCredentialsUser: DEFAULT_USERNAME, redirectUris: [REDIRECT] },
      { clientId: 'jwt-app', clientSecret: 'jwt-secret', jwtPublicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() },
      { clientId: 'no-cc', clientSecret: 'no-cc-secret' },
    ],
  });
});
after(async () => {
  await sim.stop();
});

async function tokenCall(params: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const res = await fetch(`${sim.url}/services/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

test('client credentials: a token with instance_url, id, signature and issued_at; no refresh token', async () => {
  const { status, body } = await tokenCall({ grant_type: 'client_credentials', client_id: DEFAULT_CLIENT_ID, client_secret: DEFAULT_CLIENT_SECRET });
  assert.equal(status, 200);
  assert.equal(body.instance_url, sim.url);
  assert.equal(body.token_type, 'Bearer');
  assert.match(body.access_token ?? '', new RegExp(`^${sim.orgId.slice(0, 15)}!`));
  assert.match(body.id ?? '', new RegExp(`^${sim.url}/id/${sim.orgId}/005`));
  assert.match(body.issued_at ?? '', /^\d{13}$/);
  assert.ok((body.signature ?? '').length > 20);
  assert.equal(body.refresh_token, undefined);

  const conn = await connect(sim);
  assert.equal(conn.instanceUrl, sim.url);
  assert.equal(conn.userInfo?.organizationId, sim.orgId);
  const identity = await conn.identity();
  assert.equal(identity.username, DEFAULT_USERNAME);
});

test('OAuth errors come as {error, error_description} with 400', async () => {
  assert.deepEqual(await tokenCall({ grant_type: 'client_credentials', client_id: 'nope', client_secret: 'x' }), {
    status: 400, body: { error: 'invalid_client_id', error_description: 'client identifier invalid' },
  });
  assert.deepEqual(await tokenCall({ grant_type: 'client_credentials', client_id: DEFAULT_CLIENT_ID, client_secret: 'wrong' }), {
    status: 400, body: { error: 'invalid_client', error_description: 'invalid client credentials' },
  });
  assert.deepEqual(await tokenCall({ grant_type: 'client_credentials', client_id: 'no-cc', client_secret: 'no-cc-secret' }), {
    status: 400, body: { error: 'invalid_grant', error_description: 'no client credentials user enabled' },
  });
  assert.equal((await tokenCall({ grant_type: 'refresh_token', client_id: DEFAULT_CLIENT_ID, refresh_token: 'bogus' })).body.error, 'invalid_grant');
  assert.equal((await tokenCall({ grant_type: 'magic' })).body.error, 'unsupported_grant_type');
  const error = await rejection(connect(sim, { clientSecret: 'wrong' }));
  assert.equal(error.name, 'invalid_client');
});

test('web server flow: authorize redirects with a code, the code buys tokens once, refresh renews an expired session', async () => {
  const oauth2 = new OAuth2({ loginUrl: sim.url, clientId: DEFAULT_CLIENT_ID, clientSecret: DEFAULT_CLIENT_SECRET, redirectUri: REDIRECT });
  const authorize = await fetch(oauth2.getAuthorizationUrl({ state: 'xyz' }), { redirect: 'manual' });
  assert.equal(authorize.status, 302);
  const location = new URL(authorize.headers.get('location') ?? '');
  assert.equal(`${location.origin}${location.pathname}`, REDIRECT);
  assert.equal(location.searchParams.get('state'), 'xyz');
  const code = location.searchParams.get('code') ?? '';

  const conn = new Connection({ oauth2, version: TEST_API_VERSION });
  await conn.authorize(code);
  assert.ok(conn.refreshToken !== undefined && conn.refreshToken !== null);
  const reused = await rejection(new Connection({ oauth2 }).authorize(code));
  assert.equal(reused.name, 'invalid_grant');

  const created = await conn.sobject('Account').create({ Name: 'Before expiry' });
  const firstToken = conn.accessToken;
  clock.advance(SESSION_MS + 1000);
  let refreshed = 0;
  conn.on('refresh', () => { refreshed += 1; });
  const account = await conn.sobject('Account').retrieve(created.id ?? '');
  assert.equal(account.Name, 'Before expiry');
  assert.equal(refreshed, 1);
  assert.notEqual(conn.accessToken, firstToken);
});

test('a redirect URI that is not the app’s is refused', async () => {
  const url = new URL(`${sim.url}/services/oauth2/authorize`);
  url.search = new URLSearchParams({ response_type: 'code', client_id: DEFAULT_CLIENT_ID, redirect_uri: 'http://evil.example/cb' }).toString();
  const res = await fetch(url, { redirect: 'manual' });
  assert.equal(res.status, 400);
  assert.equal(((await res.json()) as { error: string }).error, 'redirect_uri_mismatch');
});

test('an expired client-credentials session answers 401 INVALID_SESSION_ID; a refreshFn logging in again recovers', async () => {
  const conn = await connect(sim);
  clock.advance(SESSION_MS + 1000);
  const raw = await fetch(`${sim.url}/services/data/v${TEST_API_VERSION}/sobjects/Account/describe`, { headers: { Authorization: `Bearer ${conn.accessToken ?? ''}` } });
  assert.equal(raw.status, 401);
  assert.deepEqual(await raw.json(), [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);

  const oauth2 = new OAuth2({ loginUrl: sim.url, clientId: DEFAULT_CLIENT_ID, clientSecret: DEFAULT_CLIENT_SECRET });
  let logins = 0;
  const renewing = new Connection({
    oauth2,
    version: TEST_API_VERSION,
    instanceUrl: sim.url,
    accessToken: conn.accessToken ?? '',
    refreshFn: (_c, callback) => {
      logins += 1;
      oauth2.requestToken({ grant_type: 'client_credentials' }).then(
        (res) => { callback(null, res.access_token, res); },
        (error: unknown) => { callback(error as Error); },
      );
    },
  });
  const result = await renewing.query('SELECT Id FROM Account LIMIT 1');
  assert.equal(result.done, true);
  assert.equal(logins, 1);

  const expired = await connect(sim);
  sim.admin.expireSessions();
  const error = await rejection(expired.query('SELECT Id FROM Account'));
  assert.match(error.message, /refresh token/i); // jsforce tried to refresh, and client credentials give no refresh token
});

function jwt(claims: Record<string, unknown>, key = privateKey): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const unsigned = `${enc({ alg: 'RS256' })}.${enc(claims)}`;
  return `${unsigned}.${sign('RSA-SHA256', Buffer.from(unsigned), key).toString('base64url')}`;
}

test('JWT bearer: an RS256 assertion signed with the app’s key (iss, sub, aud, exp) gets a session, no refresh token', async () => {
  const exp = Math.floor(clock.now().getTime() / 1000) + 120;
  const assertion = jwt({ iss: 'jwt-app', sub: 'integration@tandem-sim.example', aud: sim.url, exp });
  const conn = new Connection({ loginUrl: sim.url, version: TEST_API_VERSION });
  const info = await conn.authorize({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion });
  assert.equal(info.organizationId, sim.orgId);
  assert.equal(conn.refreshToken ?? undefined, undefined);
  assert.equal((await conn.identity()).username, 'integration@tandem-sim.example');

  const bearer = (assertionText: string): Promise<{ status: number; body: Record<string, string> }> =>
    tokenCall({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: assertionText });
  const other = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
  assert.equal((await bearer(jwt({ iss: 'jwt-app', sub: DEFAULT_USERNAME, aud: sim.url, exp }, other))).body.error_description, 'invalid assertion');
  assert.equal((await bearer(jwt({ iss: 'jwt-app', sub: DEFAULT_USERNAME, aud: 'https://elsewhere.example', exp }))).body.error_description, 'audience is invalid');
  assert.equal((await bearer(jwt({ iss: 'jwt-app', sub: DEFAULT_USERNAME, aud: sim.url, exp: exp - 600 }))).body.error_description, 'expired authorization code');
  assert.equal((await bearer(jwt({ iss: 'jwt-app', sub: 'nobody@example.com', aud: sim.url, exp }))).body.error, 'invalid_grant');
  assert.equal((await bearer(jwt({ iss: 'unknown', sub: DEFAULT_USERNAME, aud: sim.url, exp }))).body.error, 'invalid_client_id');
  assert.equal((await bearer(jwt({ iss: DEFAULT_CLIENT_ID, sub: DEFAULT_USERNAME, aud: sim.url, exp }))).body.error_description, 'invalid assertion');
});

test('the password grant (jsforce login with a client id and secret) works for a user with a password', async () => {
  const oauth2 = new OAuth2({ loginUrl: sim.url, clientId: DEFAULT_CLIENT_ID, clientSecret: DEFAULT_CLIENT_SECRET });
  const conn = new Connection({ oauth2, version: TEST_API_VERSION });
  const info = await conn.login(DEFAULT_USERNAME, 'pw');
  assert.equal(info.organizationId, sim.orgId);
  const wrong = await rejection(new Connection({ oauth2 }).login(DEFAULT_USERNAME, 'nope'));
  assert.equal(wrong.name, 'invalid_grant');
});
