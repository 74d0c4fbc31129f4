import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { ConnectorError, type BatchOptions, type BatchOutcome, type BatchWrite, type EntityBinding } from '../connectors/connector.ts';
import { canBatch, WriteBatcher } from './batcher.ts';

/** A binding that answers every write of a batch and records each batch (the connector is not under test here). */
function recordingBinding(options: { maxBatch?: number; requestsPerBatch?: number; refuse?: (w: BatchWrite) => boolean; fail?: () => boolean } = {}) {
  const batches: BatchWrite[][] = [];
  const binding: EntityBinding = {
    fields: ['name'],
    maxBatch: options.maxBatch ?? 200,
    create: () => Promise.reject(new Error('single create called')),
    update: () => Promise.reject(new Error('single update called')),
    delete: () => Promise.reject(new Error('single delete called')),
    get: () => Promise.resolve(undefined),
    async writeMany(writes: readonly BatchWrite[], batchOptions: BatchOptions): Promise<BatchOutcome[]> {
      for (let i = 0; i < (options.requestsPerBatch ?? 1); i += 1) await batchOptions.beforeRequest();
      batches.push([...writes]);
      await delay(2);
      if (options.fail?.() === true) throw new ConnectorError('retry', 'the whole request failed');
      return writes.map((w): BatchOutcome => {
        if (options.refuse?.(w) === true) return { ok: false, error: new ConnectorError('fatal', 'refused', { externalCode: 'INVALID_EMAIL_ADDRESS' }) };
        const id = w.op === 'create' ? `ext-${w.tandemId}` : w.externalId;
        return { ok: true, object: w.op === 'delete' ? undefined : { id, fields: w.fields, deleted: false, tandemId: undefined, version: undefined } };
      });
    },
  };
  return { binding, batches };
}

function batcherFor(binding: EntityBinding, maxWaitMs = 200) {
  assert.ok(canBatch(binding));
  let requests = 0;
  const batcher = new WriteBatcher(binding, {
    beforeRequest: () => {
      requests += 1;
      return Promise.resolve();
    },
    maxWaitMs,
  });
  return { batcher, requests: () => requests };
}

/** n lanes, each doing some work of its own (`work(i)`) then one write, as the worker's lanes do. */
async function lanes(batcher: WriteBatcher, n: number, work: (i: number) => Promise<void> = () => delay(1)) {
  const bound = batcher.binding();
  return Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      batcher.lane(async () => {
        await work(i);
        return bound.update(`ext-${String(i)}`, { name: `n${String(i)}` }, { idempotencyKey: `k${String(i)}`, tandemId: `cus_${String(i)}` });
      }),
    ),
  );
}

test('writes from lanes that reach the queue at different times leave as one batch once every lane is waiting', async () => {
  const { binding, batches } = recordingBinding();
  const { batcher, requests } = batcherFor(binding);
  const results = await lanes(batcher, 150, (i) => delay(i % 10));
  assert.equal(batches.length, 1);
  assert.equal(batches[0]?.length, 150);
  assert.equal(requests(), 1);
  assert.ok(results.every((r) => r.status === 'fulfilled'));
  assert.deepEqual(batcher.stats, { batches: 1, writes: 150 });
});

test('a full queue leaves at once; more than a batch goes in batches of at most maxBatch', async () => {
  const { binding, batches } = recordingBinding({ maxBatch: 200 });
  const { batcher } = batcherFor(binding);
  await lanes(batcher, 450);
  assert.ok(batches.every((b) => b.length <= 200));
  assert.equal(
    batches.reduce((n, b) => n + b.length, 0),
    450,
  );
  assert.equal(batches.length, 3);
  const ids = batches.flat().map((w) => (w.op === 'update' ? w.externalId : ''));
  assert.equal(new Set(ids).size, 450, 'every write sent once');
});

test('each caller gets its own outcome: a refused write fails only its caller, with its ConnectorError', async () => {
  const { binding } = recordingBinding({ refuse: (w) => w.op === 'update' && w.externalId === 'ext-3' });
  const { batcher } = batcherFor(binding);
  const results = await lanes(batcher, 10);
  const rejected = results.flatMap((r, i) => (r.status === 'rejected' ? [{ i, reason: r.reason as unknown }] : []));
  assert.equal(rejected.length, 1);
  assert.equal(rejected[0]?.i, 3);
  assert.ok(rejected[0].reason instanceof ConnectorError);
  assert.equal(rejected[0].reason.externalCode, 'INVALID_EMAIL_ADDRESS');
  const ok = results[4];
  assert.ok(ok?.status === 'fulfilled');
  assert.equal(ok.value.id, 'ext-4');
});

test('a failure of the whole request fails every write of it, and the next batch goes out anew', async () => {
  let calls = 0;
  const { binding, batches } = recordingBinding({ fail: () => (calls += 1) === 1 });
  const { batcher } = batcherFor(binding);
  const first = await lanes(batcher, 5);
  assert.ok(first.every((r) => r.status === 'rejected' && r.reason instanceof ConnectorError && r.reason.kind === 'retry'));
  const second = await lanes(batcher, 5);
  assert.ok(second.every((r) => r.status === 'fulfilled'));
  assert.equal(batches.length, 2);
});

test('a lane still on its way holds the batch back only up to maxWaitMs', async () => {
  const { binding, batches } = recordingBinding();
  const { batcher } = batcherFor(binding, 50);
  const bound = batcher.binding();
  const slow = batcher.lane(() => delay(1000));
  const started = Date.now();
  await batcher.lane(() => bound.delete('ext-1', { idempotencyKey: 'k' }));
  const waited = Date.now() - started;
  assert.ok(waited >= 40 && waited < 900, `waited ${String(waited)} ms`);
  assert.equal(batches.length, 1);
  await slow;
});

test('the rate budget is taken once per request a batch makes, not per write', async () => {
  const { binding } = recordingBinding({ requestsPerBatch: 2 });
  const { batcher, requests } = batcherFor(binding);
  await lanes(batcher, 120);
  assert.equal(requests(), 2);
});

test('a create answers the object writeMany made; writes outside lanes still go out', async () => {
  const { binding, batches } = recordingBinding();
  const { batcher } = batcherFor(binding);
  const object = await batcher.binding().create('cus_1', { name: 'A' }, { idempotencyKey: 'k' });
  assert.equal(object.id, 'ext-cus_1');
  assert.equal(batches.length, 1);
});
