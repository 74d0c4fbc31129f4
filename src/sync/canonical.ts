// Canonical values: a record's fields as the connector maps them, compared as JSON values.
import { isDeepStrictEqual } from 'node:util';

/** A JSON-clean copy (undefined dropped), so equal values compare equal whatever their origin. */
export function clean(value: unknown): unknown {
  return value === undefined ? null : (JSON.parse(JSON.stringify(value)) as unknown);
}

export function sameValue(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(clean(a), clean(b));
}

export function pick(source: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(fields.map((f) => [f, clean(source[f])]));
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
