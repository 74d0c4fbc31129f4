// Prefixed, time-ordered ids: `<prefix>_<ULID>`. ULIDs sort by creation time (monotonic within one
// process and millisecond), so ids double as a stable pagination order.
import { monotonicFactory } from 'ulid';

export type IdFactory = (prefix: string) => string;

export function createIdFactory(): IdFactory {
  const ulid = monotonicFactory();
  return (prefix) => `${prefix}_${ulid()}`;
}

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Does `id` look like an id Tandem issued with this prefix? */
export function isId(prefix: string, id: string): boolean {
  return id.startsWith(`${prefix}_`) && ULID.test(id.slice(prefix.length + 1));
}
