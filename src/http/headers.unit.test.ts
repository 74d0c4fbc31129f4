import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TandemError } from '../errors/errors.ts';
import { correlationIdFrom, parseIdempotencyKey, parseIfMatch, requestFingerprint } from './headers.ts';

test('If-Match accepts a version as ETag, weak ETag or bare number; * and absent mean any', () => {
  assert.equal(parseIfMatch('"3"'), 3);
  assert.equal(parseIfMatch('W/"12"'), 12);
  assert.equal(parseIfMatch('7'), 7);
  assert.equal(parseIfMatch('*'), undefined);
  assert.equal(parseIfMatch(undefined), undefined);
  for (const bad of ['"0"', 'abc', '"3', '-1', '"1.5"', '', '"99999999999999999"']) {
    assert.throws(() => parseIfMatch(bad), (e: unknown) => e instanceof TandemError && e.code === 'INVALID_IF_MATCH', bad);
  }
});

test('Idempotency-Key: 1-255 printable ASCII', () => {
  assert.equal(parseIdempotencyKey('abc-123'), 'abc-123');
  assert.equal(parseIdempotencyKey(undefined), undefined);
  for (const bad of ['', 'with space', 'x'.repeat(256), 'é']) {
    assert.throws(() => parseIdempotencyKey(bad), (e: unknown) => e instanceof TandemError && e.code === 'IDEMPOTENCY_KEY_INVALID');
  }
});

test('a correlation id is taken from the caller when sane, else the request id', () => {
  assert.equal(correlationIdFrom('corr-1', 'req_1'), 'corr-1');
  assert.equal(correlationIdFrom(undefined, 'req_1'), 'req_1');
  assert.equal(correlationIdFrom('x'.repeat(129), 'req_1'), 'req_1');
  assert.equal(correlationIdFrom('has space', 'req_1'), 'req_1');
});

test('request fingerprints ignore key order but not values, paths or methods', () => {
  const a = requestFingerprint('POST', '/api/v1/customers', { name: 'A', metadata: { x: '1', y: '2' } });
  const b = requestFingerprint('POST', '/api/v1/customers', { metadata: { y: '2', x: '1' }, name: 'A' });
  assert.equal(a, b);
  assert.notEqual(a, requestFingerprint('POST', '/api/v1/customers', { name: 'B', metadata: { x: '1', y: '2' } }));
  assert.notEqual(a, requestFingerprint('POST', '/api/v1/invoices', { name: 'A', metadata: { x: '1', y: '2' } }));
  assert.notEqual(
    requestFingerprint('POST', '/p', [1, 2]),
    requestFingerprint('POST', '/p', [2, 1]),
  );
});
