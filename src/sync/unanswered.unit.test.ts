import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answered, KEPT_PER_FIELD, ownValues, withUnanswered } from './unanswered.ts';

const fields = ['name', 'phone', 'metadata'];

test('unanswered values add up per field, oldest first, the newest few kept; answered fields leave', () => {
  let unanswered = withUnanswered(undefined, { phone: '1004', name: 'A' });
  unanswered = withUnanswered(unanswered, { phone: '1006' });
  assert.deepEqual(unanswered, { phone: ['1004', '1006'], name: ['A'] });
  for (let i = 0; i < KEPT_PER_FIELD + 2; i += 1) unanswered = withUnanswered(unanswered, { phone: String(i) });
  assert.deepEqual(unanswered.phone, ['2', '3', '4', '5']);
  assert.deepEqual(answered(unanswered, ['phone']), { name: ['A'] });
  assert.equal(answered(unanswered, ['phone', 'name']), undefined);
  assert.equal(answered(undefined, ['phone']), undefined);
});

test('a remote value Tandem sent unanswered moves the base onto it; values sent after it stay', () => {
  const base = { name: 'Ada', phone: '1002', metadata: {} };
  const unanswered = { phone: ['1004', '1006'] };
  const found = ownValues(base, { name: 'Ada L.', phone: '1004', metadata: {} }, unanswered, fields);
  assert.deepEqual(found.base, { name: 'Ada', phone: '1004', metadata: {} });
  assert.deepEqual(found.unanswered, { phone: ['1006'] });
  const newest = ownValues(base, { name: 'Ada', phone: '1006', metadata: {} }, unanswered, fields);
  assert.equal(newest.base.phone, '1006');
  assert.equal(newest.unanswered, undefined);
});

test('a remote value Tandem never sent is left to the merge, and the base is returned as given', () => {
  const base = { name: 'Ada', phone: '1002', metadata: {} };
  const unanswered = { phone: ['1004'] };
  const other = ownValues(base, { name: 'Ada', phone: '1005', metadata: {} }, unanswered, fields);
  assert.equal(other.base, base);
  assert.equal(other.unanswered, unanswered);
  // The object still at the base: nothing to recognise, even where the base equals a sent value.
  const same = ownValues(base, base, { phone: ['1002'] }, fields);
  assert.equal(same.base, base);
  assert.equal(ownValues(base, { ...base, phone: '1004' }, undefined, fields).base, base);
});

test('a string map (metadata) is recognised key by key: added, changed and removed keys Tandem sent', () => {
  const base = { name: 'Ada', phone: null, metadata: { plan: 'free', t: 'v1', old: 'x' } };
  // Tandem sent t: v2 and dropped `old`; meanwhile someone else set plan: pro in Stripe.
  const unanswered = { metadata: [{ plan: 'free', t: 'v2', seat: '3' }] };
  const remote = { name: 'Ada', phone: null, metadata: { plan: 'pro', t: 'v2', seat: '3' } };
  const found = ownValues(base, remote, unanswered, fields);
  // Tandem's keys move the base; the plan stays a remote change for the merge.
  assert.deepEqual(found.base.metadata, { plan: 'free', t: 'v2', seat: '3' });
  assert.equal(found.unanswered, undefined);
  // A map that holds none of Tandem's values is left alone.
  const foreign = ownValues(base, { ...base, metadata: { plan: 'free', t: 'v9', old: 'x' } }, unanswered, fields);
  assert.equal(foreign.base, base);
});
