import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createIdFactory, isId } from './ids.ts';

test('ids are prefixed and sort in creation order, even within one millisecond', () => {
  const ids = createIdFactory();
  const made = Array.from({ length: 1000 }, () => ids('cus'));
  assert.ok(made.every((id) => isId('cus', id)));
  assert.deepEqual([...made].sort(), made);
  assert.equal(new Set(made).size, made.length);
});

test('isId refuses other prefixes and malformed ids', () => {
  const id = createIdFactory()('inv');
  assert.equal(isId('inv', id), true);
  assert.equal(isId('cus', id), false);
  assert.equal(isId('inv', `${id}x`), false);
  assert.equal(isId('inv', 'inv_01ARZ3NDEKTSV4RRFFQ69G5FAV'), true);
  assert.equal(isId('inv', 'inv_01ARZ3NDEKTSV4RRFFQ69G5FAI'), false, 'I is not a Crockford base32 digit');
  assert.equal(isId('inv', "inv_' or 1=1--"), false);
});
