import type { Kysely } from 'kysely';

// The Kafka log's outbox relay: per outbox partition, the last offset relayed to Kafka and the lease
// that lets one relay at a time move the partition (owner and lease expiry, ISO-8601 UTC; a free
// partition has no owner). Rows are created by the relay on first use. `log_relay_members`: the
// relays alive (each renews its row while it runs), so leases can be spread fairly between them.
export function up() {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('log_relay_progress')
      .addColumn('partition', 'integer', (c) => c.primaryKey())
      .addColumn('relayed_offset', 'integer', (c) => c.notNull())
      .addColumn('owner', 'text')
      .addColumn('lease_until', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('log_relay_members')
      .addColumn('owner', 'text', (c) => c.primaryKey())
      .addColumn('seen_until', 'text', (c) => c.notNull())
      .execute();
  };
}
