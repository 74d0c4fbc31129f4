import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { partitionFor } from './change.ts';

/** Deterministic record ids shaped like Tandem's: a prefix, a shared time part, a varying tail. */
function ids(count: number): string[] {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  return Array.from({ length: count }, (_, i) => {
    let tail = '';
    for (let n = i, k = 0; k < 6; k++, n = Math.floor(n / 32)) tail = (alphabet[n % 32] ?? '0') + tail;
    return `cus_01JD8X5Y7Z3K${tail}`;
  });
}

describe('partitionFor', () => {
  test('is stable: the 32-bit FNV-1a of the key, modulo the partition count', () => {
    // Pinned values: changing the hash would move keys between partitions and break per-key order
    // across an upgrade, so this must only ever change deliberately.
    assert.equal(partitionFor('', 16), 0x811c9dc5 % 16);
    assert.equal(partitionFor('a', 16), 0xe40c292c % 16);
    assert.equal(partitionFor('foobar', 1000), 0xbf9cf968 % 1000);
    for (const key of ids(200)) {
      assert.equal(partitionFor(key, 16), partitionFor(key, 16), key);
      assert.equal(partitionFor(key.split('').join(''), 7), partitionFor(key, 7), key);
    }
  });

  test('is an integer in [0, partitions) for every count', () => {
    const keys = [...ids(300), '', 'ü', '😀 emoji', 'x'.repeat(10_000)];
    for (const partitions of [1, 2, 3, 7, 16, 64, 255, 256]) {
      for (const key of keys) {
        const partition = partitionFor(key, partitions);
        assert.ok(Number.isInteger(partition) && partition >= 0 && partition < partitions, `${key.slice(0, 20)} → ${partition} of ${partitions}`);
      }
    }
    assert.ok(ids(50).every((key) => partitionFor(key, 1) === 0));
  });

  test('spreads keys evenly over the partitions', () => {
    for (const partitions of [4, 7, 16]) {
      const counts = new Array<number>(partitions).fill(0);
      const keys = ids(16_000);
      for (const key of keys) {
        const partition = partitionFor(key, partitions);
        counts[partition] = (counts[partition] ?? 0) + 1;
      }
      const mean = keys.length / partitions;
      for (const [partition, count] of counts.entries()) {
        assert.ok(Math.abs(count - mean) < mean * 0.15, `partition ${partition} of ${partitions} got ${count}, mean ${mean}`);
      }
    }
  });

  test('sends keys that differ in one character to different partitions often', () => {
    const keys = ids(1_000);
    let moved = 0;
    for (let i = 1; i < keys.length; i++) {
      if (partitionFor(keys[i] ?? '', 16) !== partitionFor(keys[i - 1] ?? '', 16)) moved++;
    }
    assert.ok(moved > keys.length * 0.8, `only ${moved} of ${keys.length - 1} neighbours changed partition`);
  });
});
