// Field schemas shared by entity types.
import { z } from 'zod';

/** A string map, with Stripe's limits so metadata always fits the systems Tandem syncs with. */
export const metadataSchema = z
  .record(
    z.string().min(1).max(40).regex(/^[^[\]]+$/, 'keys may not contain square brackets'),
    z.string().max(500),
  )
  .refine((m) => Object.keys(m).length <= 50, 'at most 50 keys');

/** A metadata patch: a null value removes the key (JSON merge patch). */
export const metadataPatchSchema = z
  .record(
    z.string().min(1).max(40).regex(/^[^[\]]+$/, 'keys may not contain square brackets'),
    z.string().max(500).nullable(),
  )
  .refine((m) => Object.keys(m).length <= 50, 'at most 50 keys');

export const currencySchema = z
  .string()
  .regex(/^[A-Za-z]{3}$/, 'a three-letter ISO 4217 code')
  .transform((c) => c.toLowerCase());

export const text = (max: number) => z.string().max(max);

/** RFC 7396 merge of a patch into a string map: null removes a key. */
export function mergeMap(
  current: Record<string, string>,
  patch: Record<string, string | null> | undefined,
): Record<string, string> {
  if (patch === undefined) return current;
  const next: Record<string, string> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) Reflect.deleteProperty(next, key);
    else next[key] = value;
  }
  return next;
}

/** Applies the top-level keys a patch carries; `undefined` means "not given". */
export function applyPatch<T extends Record<string, unknown>>(current: T, patch: { [K in keyof T]?: T[K] | undefined }): T {
  const next: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined) next[key] = value;
  }
  return next as T;
}
