import type { Kysely } from 'kysely';

// Scale-out: many Tandem processes on one PostgreSQL.
// - `leases`: named leases (owner + expiry, ISO-8601 UTC; a free lease has no owner). A process does
//   a singleton's work (a connection's sync worker, the embedded log's consumers) only while it
//   holds its lease; a dead process's leases expire and another process takes them over.
// - `tandem_members`: the processes alive (each renews its row), so connection leases are spread.
// - `rate_budgets`: a token bucket per connection shared by every process (a budget per external
//   account, not per process). `version` makes each take a compare-and-set; times are ms since the epoch.
export function up() {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('leases')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('owner', 'text')
      .addColumn('lease_until', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('tandem_members')
      .addColumn('owner', 'text', (c) => c.primaryKey())
      .addColumn('roles', 'text', (c) => c.notNull())
      .addColumn('seen_until', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('rate_budgets')
      .addColumn('connection_id', 'text', (c) => c.primaryKey())
      .addColumn('tokens', 'double precision', (c) => c.notNull())
      .addColumn('refilled_at', 'bigint', (c) => c.notNull())
      .addColumn('paused_until', 'bigint', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .execute();
  };
}
