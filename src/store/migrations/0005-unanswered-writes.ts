import type { Kysely } from 'kysely';

// `links.unanswered`: JSON, field → the values Tandem sent in updates whose answer never came (they
// may have been applied), so a merge counts them as Tandem's own (src/sync/unanswered.ts). Null: none.
export function up() {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema.alterTable('links').addColumn('unanswered', 'text').execute();
  };
}
