// Record ids: the 18-character checksum and how ids given by clients are read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdSequence, idChecksum, normalizeId, to18 } from './ids.ts';

test('the checksum follows Salesforce’s algorithm (known ids)', () => {
  assert.equal(idChecksum('001A0000006Vm9r'), 'IAC');
  assert.equal(to18('001A0000006Vm9r'), '001A0000006Vm9rIAC');
  assert.equal(idChecksum('000000000000000'), 'AAA');
  assert.equal(idChecksum('AAAAAAAAAAAAAAA'), '555');
  assert.equal(idChecksum('0015G00000ZZZZZ'), 'QA5'); // G is bit 4 of the first block
});

test('15- and 18-character ids read as the same 18-character id; a wrong checksum is not an id', () => {
  assert.equal(normalizeId('001A0000006Vm9r'), '001A0000006Vm9rIAC');
  assert.equal(normalizeId('001A0000006Vm9rIAC'), '001A0000006Vm9rIAC');
  assert.equal(normalizeId('001A0000006Vm9riac'), '001A0000006Vm9rIAC');
  assert.equal(normalizeId('001A0000006Vm9rAAA'), undefined);
  assert.equal(normalizeId('001A0000006Vm9'), undefined);
  assert.equal(normalizeId('001A0000006Vm9r!AC'), undefined);
});

test('a sequence makes distinct, well-formed ids with the key prefix and mixed case', () => {
  const seq = new IdSequence('001');
  const ids = Array.from({ length: 1000 }, () => seq.next());
  assert.equal(new Set(ids).size, 1000);
  for (const id of ids) {
    assert.match(id, /^0015g0[0-9A-Za-z]{9}[A-Z0-5]{3}$/);
    assert.equal(normalizeId(id), id);
  }
  assert.ok(ids.some((id) => /[a-z]/.test(id.slice(6, 15))) && ids.some((id) => /[A-Z]/.test(id.slice(6, 15))));
});
