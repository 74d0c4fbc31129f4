// Request headers with meaning to Tandem: If-Match, Idempotency-Key, X-Correlation-Id.
import { createHash } from 'node:crypto';
import { TandemError } from '../errors/errors.ts';

/** `If-Match: "3"`, `W/"3"` or `3` -> 3; absent or `*` -> undefined. */
export function parseIfMatch(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = (Array.isArray(header) ? header.join(',') : header).trim();
  if (value === '*') return undefined;
  const match = /^(?:W\/)?(?:"([1-9][0-9]{0,14})"|([1-9][0-9]{0,14}))$/.exec(value);
  const version = match?.[1] ?? match?.[2];
  if (version === undefined) throw new TandemError('INVALID_IF_MATCH', undefined, { if_match: value.slice(0, 64) });
  return Number(version);
}

const PRINTABLE = /^[\x21-\x7e]{1,255}$/;

export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !PRINTABLE.test(header)) throw new TandemError('IDEMPOTENCY_KEY_INVALID');
  return header;
}

/** A correlation id the caller sent (if sane), else the request id. */
export function correlationIdFrom(header: string | string[] | undefined, requestId: string): string {
  return typeof header === 'string' && /^[\x21-\x7e]{1,128}$/.test(header) ? header : requestId;
}

/** Stable JSON: object keys sorted, so equal bodies fingerprint equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return value === undefined ? 'null' : JSON.stringify(value);
}

/** What makes two requests "the same request" for an Idempotency-Key. */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonical(body)}`).digest('hex');
}
