// The rolling daily API allocation, the Sforce-Limit-Info header, injected faults, and the admin
// routes, through jsforce and plain HTTP.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import type { Connection } from 'jsforce';
import { startSalesforceSimulator, type SalesforceSimulator } from './index.ts';
import { TEST_API_VERSION, connect, manualClock, rejection } from './testing.ts';

const clock = manualClock('2026-11-30T00:00:00.000Z');
let sim: SalesforceSimulator;
let conn: Connection;

before(async () => {
  sim = await startSalesforceSimulator({ clock: clock.now, dailyApiLimit: 50, sessionTimeoutMs: 10 * 24 * 60 * 60 * 1000 });
  conn = await connect(sim);
});
afterEach(() => {
  sim.admin.clearFaults();
});
after(async () => {
  await sim.stop();
});

const get = (path: string): Promise<Response> =>
  fetch(`${sim.url}/services/data/v${TEST_API_VERSION}${path}`, { headers: { Authorization: `Bearer ${conn.accessToken ?? ''}` } });

test('every REST answer carries Sforce-Limit-Info; jsforce reads it into limitInfo; /limits agrees', async () => {
  const start = sim.admin.apiUsage().used;
  const res = await get('/sobjects/Account/describe');
  assert.equal(res.headers.get('sforce-limit-info'), `api-usage=${start + 1}/50`);
  const missing = await get('/sobjects/Account/0015g00000AAAAAAAA');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('sforce-limit-info'), `api-usage=${start + 2}/50`);
  await conn.query('SELECT Id FROM Account');
  assert.deepEqual(conn.limitInfo.apiUsage, { used: start + 3, limit: 50 });
  const limits = await conn.limits();
  assert.deepEqual(limits.DailyApiRequests, { Max: 50, Remaining: 50 - (start + 4) });
  // Token requests are no API calls.
  await connect(sim);
  assert.equal(sim.admin.apiUsage().used, start + 4);
});

test('the allocation is a rolling 24 hours: 403 REQUEST_LIMIT_EXCEEDED when used up, calls come back as the window moves', async () => {
  clock.set('2026-12-01T00:00:00.000Z');
  sim.admin.spendApiCalls(30);
  clock.set('2026-12-01T06:00:00.000Z');
  sim.admin.spendApiCalls(50 - sim.admin.apiUsage().used);
  const refused = await get('/limits');
  assert.equal(refused.status, 403);
  assert.deepEqual(await refused.json(), [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }]);
  assert.equal(refused.headers.get('sforce-limit-info'), 'api-usage=50/50');
  const viaJsforce = await rejection(conn.sobject('Account').create({ Name: 'Refused' }));
  assert.equal(viaJsforce.errorCode, 'REQUEST_LIMIT_EXCEEDED');
  assert.equal(sim.admin.apiUsage().used, 50); // refused calls are not counted

  clock.set('2026-12-02T00:00:30.000Z'); // the 30 calls of midnight yesterday left the window
  assert.equal(sim.admin.apiUsage().used, 20);
  assert.equal((await get('/limits')).status, 200);
  sim.admin.setDailyApiLimit(100_000);
});

test('faults: errorRate answers 500 UNKNOWN_EXCEPTION (before: nothing applied; after: applied), seeded', async () => {
  sim.admin.setFaults({ errorRate: 1, errorPhase: 'before' });
  const before = sim.admin.records('Account').length;
  const refused = await rejection(conn.sobject('Account').create({ Name: 'Never' }));
  assert.equal(refused.errorCode, 'UNKNOWN_EXCEPTION');
  assert.equal(sim.admin.records('Account').length, before);

  sim.admin.setFaults({ errorRate: 1, errorPhase: 'after' });
  const lost = await rejection(conn.sobject('Account').create({ Name: 'Applied anyway', Tandem_Id__c: 'cus_after' }));
  assert.equal(lost.errorCode, 'UNKNOWN_EXCEPTION');
  assert.equal(sim.admin.records('Account').filter((r) => r.Tandem_Id__c === 'cus_after').length, 1);
  sim.admin.clearFaults();
  // An upsert retry by external id is what keeps this from duplicating.
  const retry = await conn.sobject('Account').upsert({ Tandem_Id__c: 'cus_after', Name: 'Applied anyway' }, 'Tandem_Id__c');
  assert.equal((retry as { created?: boolean }).created, false);

  const pattern = async (): Promise<number[]> => {
    sim.admin.setFaults({ errorRate: 0.5, seed: 7 });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i += 1) statuses.push((await get('/sobjects')).status);
    return statuses;
  };
  const first = await pattern();
  assert.deepEqual(await pattern(), first);
  assert.ok(first.includes(500) && first.includes(200));
  assert.ok(sim.admin.requests().injectedErrors >= 3);
});

test('faults: latency, hung requests (client times out; stop() closes them), a burst of REQUEST_LIMIT_EXCEEDED', async () => {
  sim.admin.setFaults({ latencyMs: 120 });
  const t0 = performance.now();
  await get('/sobjects');
  assert.ok(performance.now() - t0 >= 110);

  sim.admin.setFaults({ hangRate: 1 });
  await assert.rejects(
    fetch(`${sim.url}/services/data/v${TEST_API_VERSION}/sobjects`, { headers: { Authorization: `Bearer ${conn.accessToken ?? ''}` }, signal: AbortSignal.timeout(150) }),
    /TimeoutError|aborted/,
  );
  assert.ok(sim.admin.requests().hung >= 1);

  sim.admin.setFaults({ requestLimitBurst: 2 });
  assert.equal((await get('/sobjects')).status, 403);
  assert.equal((await get('/sobjects')).status, 403);
  assert.equal((await get('/sobjects')).status, 200);
});

test('admin routes: faults, limits, records, changes (with Sforce-Call-Options client), expire-sessions, requests', async () => {
  const post = async (path: string, body: unknown): Promise<Response> =>
    fetch(`${sim.url}/_sim/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.deepEqual(await (await post('faults', { errorRate: 0.1, seed: 1 })).json(), { errorRate: 0.1, seed: 1 });
  assert.equal((await post('faults', { errorRate: 3 })).status, 400);
  assert.deepEqual(await (await fetch(`${sim.url}/_sim/faults`, { method: 'DELETE' })).json(), {});

  const limits = (await (await post('limits', { dailyApiLimit: 1000 })).json()) as { limit: number };
  assert.equal(limits.limit, 1000);

  const created = (await (await post('records?sobject=Contact', { LastName: 'From the UI' })).json()) as { Id: string };
  const seqBefore = Math.max(0, ...sim.admin.changes().map((c) => c.seq));
  await conn.request({
    method: 'PATCH',
    url: `/sobjects/Contact/${created.Id}`,
    body: JSON.stringify({ Title: 'API edit' }),
    headers: { 'content-type': 'application/json', 'Sforce-Call-Options': 'client=tandem-conn-1' },
  });
  const changes = sim.admin.changes(seqBefore);
  assert.deepEqual(changes.map((c) => [c.sobject, c.id, c.change, c.connectedApp, c.callOptionsClient]), [['Contact', created.Id, 'UPDATE', 'tandem-sim', 'tandem-conn-1']]);
  const uiChange = sim.admin.changes().find((c) => c.id === created.Id && c.change === 'CREATE');
  assert.equal(uiChange?.connectedApp, null);

  const records = (await (await fetch(`${sim.url}/_sim/records?sobject=Contact`)).json()) as { data: { Id: string }[] };
  assert.ok(records.data.some((r) => r.Id === created.Id));
  const stats = (await (await fetch(`${sim.url}/_sim/requests`)).json()) as { stats: { byRoute: Record<string, number> } };
  assert.ok((stats.stats.byRoute['PATCH sobjects/Contact/:id'] ?? 0) >= 1);

  assert.ok(((await (await post('expire-sessions', {})).json()) as { expired: number }).expired >= 1);
  const expired = await get('/sobjects');
  assert.equal(expired.status, 401);
  assert.match(expired.headers.get('sforce-limit-info') ?? '', /^api-usage=\d+\/1000$/); // 401s carry it too, and are not counted
});
