import type { Kysely } from 'kysely';

// The sync engine's tables: connections, links with their bases, outbound marks, inbound external
// changes, feed cursors and sync issues.
export function up() {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('connections')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
      .addColumn('connector', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('status_reason', 'text')
      .addColumn('settings', 'text', (c) => c.notNull())
      .addColumn('credentials', 'text', (c) => c.notNull())
      .addColumn('webhook', 'text')
      .addColumn('account_id', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('connections_workspace').on('connections').column('workspace_id').execute();

    await db.schema
      .createTable('links')
      .addColumn('connection_id', 'text', (c) => c.notNull())
      .addColumn('entity_type', 'text', (c) => c.notNull())
      .addColumn('record_id', 'text', (c) => c.notNull())
      .addColumn('external_id', 'text', (c) => c.notNull())
      .addColumn('base', 'text', (c) => c.notNull())
      .addColumn('local_version', 'integer', (c) => c.notNull())
      .addColumn('external_version', 'text')
      .addColumn('deleted', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('links_pk', ['connection_id', 'entity_type', 'record_id'])
      .addUniqueConstraint('links_external', ['connection_id', 'entity_type', 'external_id'])
      .execute();

    await db.schema
      .createTable('sync_marks')
      .addColumn('connection_id', 'text', (c) => c.notNull())
      .addColumn('entity_type', 'text', (c) => c.notNull())
      .addColumn('record_id', 'text', (c) => c.notNull())
      .addColumn('wanted_version', 'integer', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('not_before', 'text', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('sync_marks_pk', ['connection_id', 'entity_type', 'record_id'])
      .execute();
    await db.schema.createIndex('sync_marks_due').on('sync_marks').columns(['connection_id', 'not_before']).execute();

    await db.schema
      .createTable('external_changes')
      .addColumn('connection_id', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('entity_type', 'text', (c) => c.notNull())
      .addColumn('external_id', 'text', (c) => c.notNull())
      .addColumn('op', 'text', (c) => c.notNull())
      .addColumn('occurred_at', 'text', (c) => c.notNull())
      .addColumn('object', 'text')
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('received_at', 'text', (c) => c.notNull())
      .addColumn('processed_at', 'text')
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('not_before', 'text', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addPrimaryKeyConstraint('external_changes_pk', ['connection_id', 'event_id'])
      .execute();
    await db.schema
      .createIndex('external_changes_pending')
      .on('external_changes')
      .columns(['connection_id', 'processed_at', 'not_before'])
      .execute();

    await db.schema
      .createTable('connection_cursors')
      .addColumn('connection_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('connection_cursors_pk', ['connection_id', 'name'])
      .execute();

    await db.schema
      .createTable('sync_issues')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull())
      .addColumn('connection_id', 'text', (c) => c.notNull())
      .addColumn('entity_type', 'text', (c) => c.notNull())
      .addColumn('record_id', 'text')
      .addColumn('external_id', 'text')
      .addColumn('direction', 'text', (c) => c.notNull())
      .addColumn('code', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('sync_issues_workspace').on('sync_issues').columns(['workspace_id', 'status']).execute();
  };
}
