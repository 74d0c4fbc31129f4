import { join } from 'node:path';
import { migrate } from './migrations/index.ts';
import { createPostgresStore } from './postgres/postgres-store.ts';
import { createSqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

export interface StoreOptions {
  dataDir: string;
  databaseUrl?: string | undefined;
}

/** Opens the configured store (PostgreSQL when a URL is given, else SQLite in dataDir) and migrates it. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const store =
    options.databaseUrl !== undefined
      ? createPostgresStore(options.databaseUrl)
      : createSqliteStore(join(options.dataDir, 'tandem.db'));
  try {
    await migrate(store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
