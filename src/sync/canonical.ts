// Canonical values: a record's fields as the connector maps them, compared as JSON values.
import { isDeepStrictEqual } from 'node:util';
import type { EntityBinding } from '../connectors/connector.ts';

/** A JSON-clean copy (undefined dropped), so equal values compare equal whatever their origin. */
export function clean(value: unknown): unknown {
  // Scalars (most fields) as JSON would give them back, without the round trip: it was the sync
  // engine's busiest function in the throughput profile.
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value + 0 : null;
  return JSON.parse(JSON.stringify(value)) as unknown;
}

export function sameValue(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(clean(a), clean(b));
}

export function pick(source: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(fields.map((f) => [f, clean(source[f])]));
}

/** A record's or an object's mapped fields, as the external system can hold them. */
export function canonical(binding: EntityBinding, values: Record<string, unknown>): Record<string, unknown> {
  const picked = pick(values, binding.fields);
  return binding.normalize === undefined ? picked : pick(binding.normalize(picked), binding.fields);
}

/** The fields whose values differ between two canonical views. */
export function differing(a: Record<string, unknown>, b: Record<string, unknown>, fields: readonly string[]): string[] {
  return fields.filter((f) => !sameValue(a[f], b[f]));
}

/**
 * A catalog patch that makes `field` equal `value`: string maps (metadata) merge on update, so keys
 * the record has and the value lacks are removed explicitly.
 */
export function patchFor(field: string, value: unknown, current: unknown): unknown {
  if (field === 'metadata' && value !== null && typeof value === 'object' && current !== null && typeof current === 'object') {
    const removed = Object.keys(current).filter((k) => !(k in value));
    return { ...Object.fromEntries(removed.map((k) => [k, null])), ...(value as Record<string, unknown>) };
  }
  return value;
}

export function isStringMap(value: unknown): value is Record<string, string> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

/**
 * Three-way merge of a string map (metadata) key by key: a key only one side changed (or added, or
 * removed) takes that side's value; a key both changed takes the newer side's. Undefined when a
 * value is not a string map (the field is then merged whole).
 */
export function mergeMaps(base: unknown, local: unknown, remote: unknown, remoteWins: boolean): Record<string, string> | undefined {
  if (!isStringMap(base) || !isStringMap(local) || !isStringMap(remote)) return undefined;
  const merged: Record<string, string> = {};
  for (const key of new Set([...Object.keys(base), ...Object.keys(local), ...Object.keys(remote)])) {
    const b = base[key];
    const l = local[key];
    const r = remote[key];
    const value = r === b ? l : l === b ? r : remoteWins ? r : l;
    if (value !== undefined) merged[key] = value;
  }
  return merged;
}

/**
 * The three-way merge of the fields that changed remotely (differ between `remote` and `base`), field
 * by field: both sides hold the same value — agreed, whoever wrote it; a string map (metadata) merges
 * key by key (keys each side changed both survive); a field only the remote side changed takes its
 * value; a field both changed takes the newer write (`remoteIsNewer`; a local value that wins stays,
 * and goes out through its mark). Answers the catalog patch for the record and the new base (the
 * remote value wherever it was taken or agreed; the old base where the local value won).
 */
export function mergeFields(
  base: Record<string, unknown>,
  local: Record<string, unknown>,
  remote: Record<string, unknown>,
  changedRemotely: readonly string[],
  remoteIsNewer: boolean,
): { patch: Record<string, unknown>; base: Record<string, unknown> } {
  const patch: Record<string, unknown> = {};
  const next = { ...base };
  for (const field of changedRemotely) {
    if (sameValue(remote[field], local[field])) {
      next[field] = remote[field];
      continue;
    }
    const merged = mergeMaps(base[field], local[field], remote[field], remoteIsNewer);
    if (merged !== undefined) {
      if (!sameValue(merged, local[field])) patch[field] = patchFor(field, merged, local[field]);
      next[field] = remote[field];
      continue;
    }
    const changedLocally = !sameValue(local[field], base[field]);
    if (!changedLocally || remoteIsNewer) {
      patch[field] = patchFor(field, remote[field], local[field]);
      next[field] = remote[field];
    }
  }
  return { patch, base: next };
}

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || value === '';
}

/**
 * The base of a first link between a record and an object that were made apart (the initial sync
 * found them to be the same): what each side alone holds is kept, Tandem wins where both hold a
 * value. A field the record lacks takes the object's value (the base is the record's empty value,
 * so the object's counts as a change); a field the record holds goes out (the base is the object's
 * value, so the record's counts as a change); string maps (metadata) are joined key by key (the
 * base is empty, so both sides' keys count as added).
 */
export function firstLinkBase(local: Record<string, unknown>, remote: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(
    fields.map((f) => {
      const l = clean(local[f]);
      const r = clean(remote[f]);
      if (isStringMap(l) && isStringMap(r)) return [f, {}];
      return [f, isEmpty(l) ? l : r];
    }),
  );
}
