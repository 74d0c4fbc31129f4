// Versioned migrations, applied in name order at start. Add a file; never edit one that has shipped.
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import type { Store } from '../store.ts';
import * as initial from './0001-initial.ts';
import * as sync from './0002-sync.ts';
import * as logRelay from './0003-log-relay.ts';
import * as scaleOut from './0004-scale-out.ts';
import * as unanswered from './0005-unanswered-writes.ts';

export async function migrate(store: Store): Promise<void> {
  const migrations: Record<string, Migration> = {
    '0001-initial': { up: initial.up(store.capabilities) },
    '0002-sync': { up: sync.up() },
    '0003-log-relay': { up: logRelay.up() },
    '0004-scale-out': { up: scaleOut.up() },
    '0005-unanswered-writes': { up: unanswered.up() },
  };
  const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations) };
  const migrator = new Migrator({ db: store.db, provider });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined || failed !== undefined) {
    throw new Error(`Migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}
