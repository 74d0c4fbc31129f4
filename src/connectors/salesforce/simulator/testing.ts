// Helpers for tests that drive the simulator through jsforce.
import { Connection, OAuth2 } from 'jsforce';
import { DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, type SalesforceSimulator } from './simulator.ts';

export const TEST_API_VERSION = '62.0';

/** A jsforce connection logged in with the client credentials flow of the default connected app. */
export async function connect(sim: SalesforceSimulator, options: { version?: string; clientId?: string; clientSecret?: string } = {}): Promise<Connection> {
  const oauth2 = new OAuth2({
    loginUrl: sim.url,
    clientId: options.clientId ?? DEFAULT_CLIENT_ID,
    clientSecret: options.clientSecret ?? DEFAULT_CLIENT_SECRET,
  });
  const conn = new Connection({ oauth2, loginUrl: sim.url, version: options.version ?? TEST_API_VERSION });
  await conn.authorize({ grant_type: 'client_credentials' });
  return conn;
}

/** A clock tests move by hand. */
export function manualClock(startIso = '2026-11-30T12:00:00.000Z'): { now: () => Date; advance: (ms: number) => void; set: (iso: string) => void } {
  let ms = Date.parse(startIso);
  return {
    now: () => new Date(ms),
    advance: (by) => { ms += by; },
    set: (iso) => { ms = Date.parse(iso); },
  };
}

/** The error a jsforce call rejects with (`errorCode`, `name`, `data`). */
export async function rejection(promise: PromiseLike<unknown>): Promise<Error & { errorCode?: string; data?: unknown }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}
