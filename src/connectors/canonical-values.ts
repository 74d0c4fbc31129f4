// What every connector does the same way: check canonical field values in its mapping and the base
// URL its credentials may be sent to, and give up on a call when the engine's signal aborts.
// A value of the wrong type is the caller's mistake for this one record (a `fatal` sync issue), not
// a failure of the external system.
import { ConnectorError } from './connector.ts';

/** Refuses a canonical value of the wrong type for `customer.<field>`. */
export function invalid(field: string, expected: string): never {
  throw new ConnectorError('fatal', `customer.${field} must be ${expected}`, { externalCode: 'tandem_invalid_field' });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A text value: '' and null (and undefined, an optional field left out) are all "no value". */
export function text(value: unknown, field: string): string | null {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value !== 'string') invalid(field, 'a string or null');
  return value;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * A base URL a connection may send its credentials to: https anywhere, plain http only to this
 * machine (a simulator), never carrying a secret elsewhere in clear; no user info, path, query or hash.
 */
export function isServiceBaseUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return false;
  if (url.pathname !== '/' && url.pathname !== '') return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname));
}

/** Rejects with the signal's reason as soon as it fires; the promise itself is left to settle. */
export async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
