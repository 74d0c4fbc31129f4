import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SECRET_KEY_FILE, createSecretBox, loadSecretKey } from './secrets.ts';

test('sealed secrets open with the same key only, and never contain the plaintext', () => {
  const box = createSecretBox('k'.repeat(32));
  const sealed = box.seal('sk_test_supersecret');
  assert.ok(!sealed.includes('supersecret'));
  assert.notEqual(box.seal('sk_test_supersecret'), sealed, 'a fresh IV every time');
  assert.equal(box.open(sealed), 'sk_test_supersecret');
  assert.throws(() => createSecretBox('x'.repeat(32)).open(sealed));
  const [v, iv, tag, body] = sealed.split('.');
  const flipped = `${v ?? ''}.${iv ?? ''}.${tag ?? ''}.${(body ?? '').startsWith('A') ? 'B' : 'A'}${(body ?? '').slice(1)}`;
  assert.throws(() => box.open(flipped), 'tampering is detected');
  assert.throws(() => box.open('plain text'));
});

test('without TANDEM_SECRET_KEY a key is generated once and kept owner-only in DATA_DIR', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-secrets-'));
  try {
    const first = loadSecretKey(undefined, dir);
    assert.ok(first.length >= 32);
    assert.equal(loadSecretKey(undefined, dir), first);
    assert.equal(readFileSync(join(dir, SECRET_KEY_FILE), 'utf8').trim(), first);
    assert.equal(statSync(join(dir, SECRET_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(loadSecretKey('configured-secret-configured-secret', dir), 'configured-secret-configured-secret');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
