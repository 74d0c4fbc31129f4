// Stripe failures as ConnectorErrors: the connector classifies, the engine obeys.
//
// | what Stripe (or the network) did                      | kind          |
// | ----------------------------------------------------- | ------------- |
// | connection refused / reset, timeout (no answer)       | `retry`       |
// | 5xx, or an answer that is not JSON                    | `retry`       |
// | a 5xx stored under the idempotency key (replayed, or  | `retry`, `keySpent` |
// | `Stripe-Should-Retry: false`)                         |               |
// | 409 (same idempotency key in flight, lock conflict)   | `retry`       |
// | 429, or 400 `rate_limit`                              | `retry_after` (Retry-After, else 1 s) |
// | 401 (bad key), 403 (key lacks permission)             | `auth`        |
// | 400, 402, 404 and any other 4xx                       | `fatal`, with Stripe's `code` |
// | anything else thrown (a bug, an unexpected shape)     | `retry`       |
//
// Messages name the operation, Stripe's message, code, status and request id, never a secret: keys
// (`sk_…`, `rk_…`, `whsec_…`) are masked wherever they appear.
import Stripe from 'stripe';
import { ConnectorError } from '../connector.ts';

export const DEFAULT_RETRY_AFTER_MS = 1_000;
const MAX_RETRY_AFTER_MS = 3_600_000;

const SECRET_PATTERN = /\b(sk|rk|pk)_(test|live)_[A-Za-z0-9_]+|\bwhsec_[A-Za-z0-9_]+/g;

/** Masks Stripe keys and webhook secrets (and the given literal secrets) in a message. */
export function maskSecrets(message: string, secrets: readonly string[] = []): string {
  let out = message;
  for (const secret of secrets) if (secret.length >= 4) out = out.replaceAll(secret, '[redacted]');
  return out.replace(SECRET_PATTERN, (match: string, kind: string | undefined, mode: string | undefined) =>
    kind === undefined ? 'whsec_***' : `${kind}_${mode ?? ''}_***`,
  );
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or bad. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return undefined;
  const trimmed = raw.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const at = Date.parse(trimmed);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(Math.ceil(ms), 0), MAX_RETRY_AFTER_MS);
}

function header(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** Turns whatever a Stripe call threw into a ConnectorError. `what` names the operation. */
export function classifyStripeError(error: unknown, what: string, secrets: readonly string[] = []): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const mask = (message: string): string => maskSecrets(message, secrets);
  if (!(error instanceof Stripe.errors.StripeError)) {
    const message = error instanceof Error ? error.message : String(error);
    return new ConnectorError('retry', mask(`Stripe ${what} failed unexpectedly: ${message}`));
  }
  const status = error.statusCode;
  const code = error.code ?? (error.type === 'StripeIdempotencyError' ? 'idempotency_error' : undefined);
  const details = [
    status === undefined ? undefined : `HTTP ${status}`,
    code === undefined ? undefined : `code ${code}`,
    error.requestId === undefined ? undefined : `request ${error.requestId}`,
  ].filter((d) => d !== undefined);
  const message = mask(`Stripe ${what} failed: ${error.message}${details.length > 0 ? ` (${details.join(', ')})` : ''}`);
  const options = { externalCode: code, status };

  if (error instanceof Stripe.errors.StripeConnectionError) return new ConnectorError('retry', message, options);
  if (status === 429 || error instanceof Stripe.errors.StripeRateLimitError) {
    const retryAfterMs = parseRetryAfter(header(error.headers, 'retry-after')) ?? DEFAULT_RETRY_AFTER_MS;
    return new ConnectorError('retry_after', message, { ...options, retryAfterMs });
  }
  if (status === 401 || status === 403) return new ConnectorError('auth', message, options);
  if (status !== undefined && status >= 500) {
    // A 500 Stripe stored under the idempotency key (a replay of it, or one marked not to retry) is
    // all that key will ever answer.
    const keySpent = header(error.headers, 'idempotent-replayed') === 'true' || header(error.headers, 'stripe-should-retry') === 'false';
    return new ConnectorError('retry', message, { ...options, keySpent });
  }
  if (status === undefined || status === 409) return new ConnectorError('retry', message, options);
  return new ConnectorError('fatal', message, options);
}

/** True for Stripe's "no such object" (404 `resource_missing`). */
export function isResourceMissing(error: unknown): boolean {
  return error instanceof ConnectorError && error.kind === 'fatal' && error.externalCode === 'resource_missing';
}
