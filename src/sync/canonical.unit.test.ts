import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clean, differing, firstLinkBase, mergeFields, mergeMaps } from './canonical.ts';

const fields = ['name', 'email', 'phone', 'metadata'];

test('a first link keeps what each side alone holds and lets Tandem win where both hold a value', () => {
  const local = { name: 'Ada Lovelace', email: 'ada@example.com', phone: null, metadata: { plan: 'pro', seat: '1' } };
  const remote = { name: 'Ada L.', email: 'ada@example.com', phone: '+44 20 0000', metadata: { crm: '42', plan: 'free' } };
  const base = firstLinkBase(local, remote, fields);
  // What changed "remotely" since the base is applied to Tandem: the phone only Stripe had.
  assert.deepEqual(differing(remote, base, fields), ['phone', 'metadata']);
  // What changed "locally" goes out: the name only (Tandem wins), not the email both share.
  assert.deepEqual(differing(local, base, fields), ['name', 'metadata']);
  assert.equal(base.name, 'Ada L.');
  assert.equal(base.phone, null);
  // Metadata is joined key by key; on a key both hold, the side the merge favours wins.
  assert.deepEqual(mergeMaps(base.metadata, local.metadata, remote.metadata, false), { plan: 'pro', seat: '1', crm: '42' });
});

test('an empty string counts as no value', () => {
  const base = firstLinkBase({ name: '', phone: 'x' }, { name: 'Remote', phone: 'y' }, ['name', 'phone']);
  assert.deepEqual(base, { name: '', phone: 'y' });
});

test('clean gives what a JSON round trip gives, scalars included', () => {
  const values: unknown[] = [undefined, null, '', 'text', 0, -0, 1.5, -7, Number.NaN, Number.POSITIVE_INFINITY, true, false, { a: undefined, b: [1, undefined], c: -0 }, [null, 'x'], new Date(0)];
  for (const value of values) {
    const expected = value === undefined ? null : (JSON.parse(JSON.stringify(value)) as unknown);
    // Strict: -0 and 0 differ here, as NaN and null do.
    assert.deepStrictEqual(clean(value), expected, `value ${String(value)}`);
  }
});

test('the field-by-field merge: one side changed takes it, both changed takes the newer, agreed moves the base', () => {
  const base = { name: 'Ada', email: 'ada@example.com', phone: '1002', metadata: { plan: 'free', seat: '1' } };
  const local = { name: 'Ada', email: 'ada@tandem.example', phone: '1006', metadata: { plan: 'free', seat: '2' } };
  const remote = { name: 'Ada L.', email: 'ada@stripe.example', phone: '1006', metadata: { plan: 'pro', seat: '1' } };
  const changed = differing(remote, base, fields);
  assert.deepEqual(changed, ['name', 'email', 'phone', 'metadata']);

  const older = mergeFields(base, local, remote, changed, false);
  // name: only Stripe changed it; email: both, Tandem's is newer (stays, base behind, so it goes out);
  // phone: both hold 1006 (agreed: no patch, the base moves on); metadata: key by key.
  assert.deepEqual(older.patch, { name: 'Ada L.', metadata: { plan: 'pro', seat: '2' } });
  assert.deepEqual(older.base, { name: 'Ada L.', email: 'ada@example.com', phone: '1006', metadata: { plan: 'pro', seat: '1' } });

  const newer = mergeFields(base, local, remote, changed, true);
  assert.deepEqual(newer.patch, { name: 'Ada L.', email: 'ada@stripe.example', metadata: { plan: 'pro', seat: '2' } });
  assert.deepEqual(newer.base, remote);
  // Fields the remote side did not change are left alone, whatever the record holds.
  assert.deepEqual(mergeFields(base, local, { ...base, name: 'Ada L.' }, ['name'], true), { patch: { name: 'Ada L.' }, base: { ...base, name: 'Ada L.' } });
});
