// Salesforce failures as ConnectorErrors: the connector classifies, the engine obeys.
//
// | what Salesforce (or the network) did                          | kind          |
// | ------------------------------------------------------------- | ------------- |
// | connection refused / reset, no answer within the timeout      | `retry`       |
// | 5xx, `UNKNOWN_EXCEPTION`, `SERVER_UNAVAILABLE`, `UNABLE_TO_LOCK_ROW` | `retry` |
// | 403 `REQUEST_LIMIT_EXCEEDED` (the daily allocation is used up) | `quota`, retryAfterMs 60 s |
// | 429 (not sent by the REST API, but proxies may)               | `retry_after` |
// | 401 `INVALID_SESSION_ID` that a re-authentication did not fix, | `auth`        |
// | a token endpoint refusal (`invalid_grant`, `invalid_client`…), |               |
// | `API_DISABLED_FOR_ORG`, `API_CURRENTLY_DISABLED`              |               |
// | anything else Salesforce answered (validation: `REQUIRED_FIELD_MISSING`, `INVALID_EMAIL_ADDRESS`, `STRING_TOO_LONG`…; `NOT_FOUND`, `ENTITY_IS_DELETED`) | `fatal`, externalCode = Salesforce's errorCode / statusCode |
// | anything else thrown (a bug, an unexpected shape)             | `retry`       |
//
// Why 60 s for the quota: Salesforce counts the daily allocation over a rolling 24 hours and sends
// no Retry-After. Calls come back as the oldest minutes leave the window, so a minute is the
// shortest wait that can help; a refused call is not counted, so trying again every minute costs
// nothing.
//
// Messages name the operation and Salesforce's code and message, never a secret: every secret of
// the connection (client secret, refresh token, private key, access token) is masked wherever it
// appears.
import { ConnectorError } from '../connector.ts';

export const QUOTA_RETRY_AFTER_MS = 60_000;
export const RATE_LIMIT_RETRY_AFTER_MS = 1_000;

const RETRY_CODES = new Set(['UNKNOWN_EXCEPTION', 'SERVER_UNAVAILABLE', 'UNABLE_TO_LOCK_ROW', 'REQUEST_RUNNING_TOO_LONG', 'QUERY_TIMEOUT']);
const AUTH_CODES = new Set(['INVALID_SESSION_ID', 'API_DISABLED_FOR_ORG', 'API_CURRENTLY_DISABLED', 'INVALID_AUTH_HEADER', 'INVALID_OPERATION_WITH_EXPIRED_PASSWORD']);
/** The token endpoint's own error codes (`error` of an OAuth 2.0 answer). */
const OAUTH_CODES = /^(invalid_\w+|unsupported_\w+|unauthorized_client|redirect_uri_mismatch|inactive_\w+|access_denied)$/;

/** Masks the given literal secrets (and anything shaped like a Salesforce access token or a PEM key). */
export function maskSecrets(message: string, secrets: readonly string[] = []): string {
  let out = message;
  for (const secret of secrets) if (secret.length >= 4) out = out.replaceAll(secret, '[redacted]');
  return out
    .replace(/-----BEGIN [A-Z ]+-----[\s\S]*?(-----END [A-Z ]+-----|$)/g, '[redacted key]')
    .replace(/\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]+/g, '[redacted token]');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The network-level code of a fetch failure (ECONNREFUSED, UND_ERR_SOCKET…), if any. */
function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && isRecord(current); depth += 1) {
    const code = current['code'];
    if (typeof code === 'string' && code !== '') return code;
    current = current['cause'];
  }
  return undefined;
}

/** Classifies one error code (a REST `errorCode`, a collection result's `statusCode`, an OAuth `error`). */
export function kindOfCode(code: string): 'retry' | 'retry_after' | 'quota' | 'auth' | 'fatal' {
  if (code === 'REQUEST_LIMIT_EXCEEDED') return 'quota';
  if (RETRY_CODES.has(code)) return 'retry';
  if (AUTH_CODES.has(code) || OAUTH_CODES.test(code)) return 'auth';
  const http = /^ERROR_HTTP_(\d{3})$/.exec(code);
  if (http !== null) {
    const status = Number(http[1]);
    if (status === 429) return 'retry_after';
    if (status === 401 || status === 403) return 'auth';
    return status >= 500 ? 'retry' : 'fatal';
  }
  return 'fatal';
}

/** One error of a Salesforce answer (`{message, errorCode}` or a collection's `{message, statusCode}`) as a ConnectorError. */
export function errorFromCode(code: string, message: string, what: string, secrets: readonly string[] = [], cause?: unknown): ConnectorError {
  const kind = kindOfCode(code);
  const text = maskSecrets(`Salesforce ${what} failed: ${message} (${code})`, secrets);
  const retryAfterMs = kind === 'quota' ? QUOTA_RETRY_AFTER_MS : kind === 'retry_after' ? RATE_LIMIT_RETRY_AFTER_MS : undefined;
  return new ConnectorError(kind, text, { externalCode: code, retryAfterMs, cause: cause === undefined ? undefined : sanitizedCause(cause, secrets) });
}

/** A cause safe to keep: only its name and masked message (jsforce errors may carry request data). */
function sanitizedCause(error: unknown, secrets: readonly string[]): Error {
  const message = error instanceof Error ? error.message : String(error);
  const out = new Error(maskSecrets(message, secrets));
  out.name = error instanceof Error ? error.name : 'Error';
  return out;
}

/**
 * Turns whatever a jsforce call (or the token endpoint) threw into a ConnectorError. `what` names
 * the operation; `timedOut` is true when the client's own timeout ended the call.
 */
export function classifySalesforceError(error: unknown, what: string, secrets: readonly string[] = [], timeoutMs?: number): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : '';
  if (name === 'AbortError' || name === 'TimeoutError') {
    const after = timeoutMs === undefined ? '' : ` after ${String(timeoutMs)} ms`;
    return new ConnectorError('retry', maskSecrets(`Salesforce ${what} got no answer${after} (timed out)`, secrets));
  }
  if (isRecord(error)) {
    const code = typeof error['errorCode'] === 'string' ? error['errorCode'] : undefined;
    if (code !== undefined && code !== '') return errorFromCode(code, message, what, secrets, error);
  }
  // The token endpoint's refusals come from jsforce's OAuth2 as errors named after the OAuth code.
  if (OAUTH_CODES.test(name)) return errorFromCode(name, message, what, secrets, error);
  if (/^ERROR_HTTP_\d{3}$/.test(name)) return errorFromCode(name, message.slice(0, 300), what, secrets, error);
  const network = networkCode(error);
  if (network !== undefined || (error instanceof TypeError && /fetch failed/i.test(message))) {
    return new ConnectorError('retry', maskSecrets(`Salesforce ${what} failed: network error ${network ?? ''} ${message}`.trim(), secrets));
  }
  return new ConnectorError('retry', maskSecrets(`Salesforce ${what} failed unexpectedly: ${message}`, secrets));
}

/** True for a write or read of a record that is not there (any more): `NOT_FOUND`, `ENTITY_IS_DELETED`. */
export function isMissing(error: unknown): boolean {
  return (
    error instanceof ConnectorError &&
    error.kind === 'fatal' &&
    (error.externalCode === 'NOT_FOUND' || error.externalCode === 'ENTITY_IS_DELETED' || error.externalCode === 'INVALID_CROSS_REFERENCE_KEY')
  );
}
