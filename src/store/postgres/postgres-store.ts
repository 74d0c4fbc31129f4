import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database as Schema } from '../schema.ts';
import { storeOver, type Store, type StoreCapabilities } from '../store.ts';

const capabilities: StoreCapabilities = {
  jsonText: (column, field) => sql<string | null>`(${sql.ref(column)}::jsonb ->> ${field})`,
  autoIncrementType: 'bigserial',
  multiProcess: true,
};

// int8 (bigint, count(*)) as a JavaScript number: offsets and counts stay far below 2^53.
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

export function createPostgresStore(connectionString: string, options: { poolSize?: number } = {}): Store {
  const pool = new pg.Pool({ connectionString, max: options.poolSize ?? 10, types });
  // An idle pooled connection the server ends (a restart, a terminated backend) is dropped from the
  // pool and replaced on the next query; without a listener its 'error' would crash the process.
  pool.on('error', () => undefined);
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  return storeOver('postgres', db, capabilities);
}
