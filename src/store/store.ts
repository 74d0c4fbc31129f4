// The store: one Kysely query layer over SQLite or PostgreSQL. Differences between the two are
// capabilities on the adapter (never `if (dialect === ...)` in callers).
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

export interface StoreCapabilities {
  /** A SQL expression reading a top-level string field of a JSON text column. */
  jsonText(column: string, field: string): RawBuilder<string | null>;
  /** The type of an auto-incrementing integer primary key, for migrations. */
  readonly autoIncrementType: 'integer' | 'bigserial';
  /** Whether the database accepts writes from more than one process at once. */
  readonly multiProcess: boolean;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  readonly db: Db;
  readonly capabilities: StoreCapabilities;
  /** Runs fn in one transaction; everything it writes commits together or not at all. */
  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A store over a Kysely instance; the dialects differ only in how they make it and their capabilities. */
export function storeOver(
  kind: Store['kind'],
  db: Db,
  capabilities: StoreCapabilities,
  transaction: Store['transaction'] = (fn) => db.transaction().execute(fn),
): Store {
  return {
    kind,
    db,
    capabilities,
    transaction,
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

/** Is this error a unique-constraint violation, in either dialect? */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
