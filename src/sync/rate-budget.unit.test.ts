import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_LANES, MIN_LANES, lanesFor } from './rate-budget.ts';

test('a connection keeps as many requests in flight as its rate budget can use at 50 ms an answer, 8 to 32', () => {
  assert.equal(lanesFor(25), MIN_LANES, "Stripe's 25/s: 2 would do; never fewer than 8");
  assert.equal(lanesFor(300), 15, '300/s × 50 ms');
  assert.equal(lanesFor(301), 16, 'rounded up');
  assert.equal(lanesFor(640), MAX_LANES);
  assert.equal(lanesFor(5_000), MAX_LANES, 'a high budget does not open more than 32');
  assert.deepEqual([MIN_LANES, MAX_LANES], [8, 32]);
});
