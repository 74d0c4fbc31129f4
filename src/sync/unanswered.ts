// Unanswered writes: values Tandem sent to an external system in updates whose answer never came (a
// 5xx, a timeout, a dropped connection). Such a write may have been applied, so the object can hold
// Tandem's own value while the link's base still holds the one before it. A merge that took that
// value for an external change would count the field as changed on both sides and could let it
// overwrite a newer Tandem write (a lost update). The link keeps these values until the field is
// answered, and the merge counts a remote value equal to one of them as Tandem's own.
import { clean, isStringMap, sameValue } from './canonical.ts';

/** Field → the values sent for it in unanswered writes, oldest first. */
export type Unanswered = Readonly<Record<string, readonly unknown[]>>;

/** How many unanswered values a field keeps (the newest). */
export const KEPT_PER_FIELD = 4;

/** `unanswered` with the values of a write that got no answer added. */
export function withUnanswered(unanswered: Unanswered | undefined, changes: Record<string, unknown>): Unanswered {
  const next: Record<string, readonly unknown[]> = { ...unanswered };
  for (const [field, value] of Object.entries(changes)) next[field] = [...(next[field] ?? []), clean(value)].slice(-KEPT_PER_FIELD);
  return next;
}

/** `unanswered` less the fields given (answered, or taken from the other side); undefined when empty. */
export function answered(unanswered: Unanswered | undefined, fields: Iterable<string>): Unanswered | undefined {
  if (unanswered === undefined) return undefined;
  const gone = new Set(fields);
  const next = Object.entries(unanswered).filter(([field]) => !gone.has(field));
  return next.length === 0 ? undefined : Object.fromEntries(next);
}

/**
 * The base with every field where the object holds a value Tandem itself sent in an unanswered write
 * moved onto that value (a string map (metadata) key by key), and the unanswered values left: for a
 * field found, the values sent after the one found. The base is returned as given when nothing was
 * found.
 */
export function ownValues(
  base: Record<string, unknown>,
  remote: Record<string, unknown>,
  unanswered: Unanswered | undefined,
  fields: readonly string[],
): { base: Record<string, unknown>; unanswered: Unanswered | undefined } {
  if (unanswered === undefined) return { base, unanswered };
  let nextBase = base;
  const left = new Map(Object.entries(unanswered));
  for (const field of fields) {
    const sent = unanswered[field];
    if (sent === undefined || sameValue(remote[field], base[field])) continue;
    const found = foundIn(sent, base[field], remote[field]);
    if (found === undefined) continue;
    nextBase = { ...nextBase, [field]: found.value };
    const rest = sent.slice(found.index + 1);
    if (rest.length === 0) left.delete(field);
    else left.set(field, rest);
  }
  if (nextBase === base) return { base, unanswered };
  return { base: nextBase, unanswered: left.size === 0 ? undefined : Object.fromEntries(left) };
}

/** Where the remote value (or, for a string map, some of its keys) was sent, and the base it makes. */
function foundIn(sent: readonly unknown[], base: unknown, remote: unknown): { index: number; value: unknown } | undefined {
  const whole = sent.findLastIndex((value) => sameValue(value, remote));
  if (whole >= 0) return { index: whole, value: clean(remote) };
  if (!isStringMap(base) || !isStringMap(remote)) return undefined;
  // Key by key: a key the object holds as Tandem sent it (or lacks, as Tandem sent it without) is
  // Tandem's; the others are left to the merge.
  const value = new Map(Object.entries(base));
  let index = -1;
  for (const key of new Set([...Object.keys(base), ...Object.keys(remote)])) {
    if (remote[key] === base[key]) continue;
    const at = sent.findLastIndex((map) => isStringMap(map) && map[key] === remote[key]);
    if (at < 0) continue;
    index = Math.max(index, at);
    const r = remote[key];
    if (r === undefined) value.delete(key);
    else value.set(key, r);
  }
  return index < 0 ? undefined : { index, value: Object.fromEntries(value) };
}
