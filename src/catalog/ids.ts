// Prefixed, time-ordered ids: `<prefix>_<ULID>`. ULIDs sort by creation time (monotonic within one
// process and millisecond), so ids double as a stable pagination order.
import { randomBytes } from 'node:crypto';
import { monotonicFactory } from 'ulid';

export type IdFactory = (prefix: string) => string;

/**
 * ulid's default source calls the system's random generator once per character; drawing from a
 * pooled buffer of cryptographic randomness gives the same quality at a fraction of the cost.
 */
function pooledRandom(): () => number {
  let pool = randomBytes(4096);
  let at = 0;
  return () => {
    if (at >= pool.length) {
      pool = randomBytes(4096);
      at = 0;
    }
    return (pool[at++] ?? 0) / 256;
  };
}

export function createIdFactory(): IdFactory {
  const ulid = monotonicFactory(pooledRandom());
  return (prefix) => `${prefix}_${ulid()}`;
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Does `id` look like an id Tandem issued with this prefix? */
export function isId(prefix: string, id: string): boolean {
  return id.startsWith(`${prefix}_`) && ULID.test(id.slice(prefix.length + 1));
}
