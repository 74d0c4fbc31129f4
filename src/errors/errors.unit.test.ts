import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { TandemError, errorCatalogue, type ErrorCode } from './errors.ts';

test('every error code is documented in docs/errors.md with its status', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const [code, entry] of Object.entries(errorCatalogue)) {
    assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${String(entry.status)} \\|`), `${code} is missing from docs/errors.md`);
  }
});

test('codes are SCREAMING_SNAKE_CASE and statuses are 4xx or 5xx', () => {
  for (const [code, entry] of Object.entries(errorCatalogue)) {
    assert.match(code, /^[A-Z][A-Z_]+$/);
    assert.ok(entry.status >= 400 && entry.status < 600, code);
    assert.equal(entry.retryable, entry.status >= 500 || entry.status === 429 || code === 'CONFLICT', code);
  }
});

test('a TandemError serialises to the public error shape', () => {
  const error = new TandemError('VERSION_MISMATCH' satisfies ErrorCode, undefined, { current_version: 3 });
  assert.equal(error.status, 412);
  assert.deepEqual(error.toJSON(), {
    error: { code: 'VERSION_MISMATCH', message: errorCatalogue.VERSION_MISMATCH.message, details: { current_version: 3 } },
  });
  assert.equal(new TandemError('NOT_FOUND').toJSON().error.details, null);
});
