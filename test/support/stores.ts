// Every store-backed test runs once per store kind: `for (const kind of STORE_KINDS)`.
// SQLite always runs. PostgreSQL runs when it is reachable (TANDEM_TEST_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test); without it the tests skip — except under CI=true,
// where an unreachable PostgreSQL fails them (CI must run the PostgreSQL tier).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore } from '../../src/store/open-store.ts';
import type { Store } from '../../src/store/store.ts';

export type StoreKind = 'sqlite' | 'postgres';
export const STORE_KINDS: readonly StoreKind[] = ['sqlite', 'postgres'];

export const postgresAdminUrl = process.env.TANDEM_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const inCi = process.env.CI === 'true' || process.env.CI === '1';

let reachable: Promise<boolean> | undefined;
export function postgresReachable(): Promise<boolean> {
  // A loaded machine can be slow to answer one connection: ask a few times before calling it absent.
  reachable ??= (async () => {
    const attempts = inCi ? 5 : 2;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const client = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 5000 });
      try {
        await client.connect();
        await client.query('select 1');
        return true;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    return false;
  })();
  return reachable;
}

/** For `test(name, { skip: await skipUnless(kind) }, …)`: a reason to skip, or false to run. */
export async function skipUnless(kind: StoreKind): Promise<string | false> {
  if (kind === 'sqlite') return false;
  if (await postgresReachable()) return false;
  if (inCi) throw new Error(`PostgreSQL is not reachable at ${postgresAdminUrl}, and CI must run the PostgreSQL tier`);
  return `PostgreSQL not reachable at ${postgresAdminUrl}`;
}

export interface TestStore {
  store: Store;
  /** For child processes: the env that points Tandem at this same database. */
  env: { DATA_DIR: string; DATABASE_URL?: string };
  cleanup(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** A fresh, migrated store of its own: a temp SQLite file, or a new PostgreSQL database. */
export async function createTestStore(kind: StoreKind): Promise<TestStore> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-test-'));
  if (kind === 'sqlite') {
    const store = await openStore({ dataDir });
    return {
      store,
      env: { DATA_DIR: dataDir },
      cleanup: async () => {
        await store.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const database = `tandem_test_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`create database ${database}`);
  await admin.end();
  const databaseUrl = withDatabase(postgresAdminUrl, database);
  const store = await openStore({ dataDir, databaseUrl });
  return {
    store,
    env: { DATA_DIR: dataDir, DATABASE_URL: databaseUrl },
    cleanup: async () => {
      await store.close();
      const client = new pg.Client({ connectionString: postgresAdminUrl });
      await client.connect();
      await client.query(`drop database if exists ${database} with (force)`);
      await client.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
