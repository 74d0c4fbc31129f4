import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { EntityBinding, ExternalNotification } from '../connectors/connector.ts';
import { openStore } from '../store/open-store.ts';
import type { Store } from '../store/store.ts';
import { isEchoOf, withoutEchoes } from './echoes.ts';
import { SyncStore, type Link } from './sync-store.ts';

// Only what the echo test reads of a binding: its fields and how the system holds values (emails in
// lower case here, as a system that folds them would).
const binding = {
  fields: ['name', 'email'],
  normalize: (fields: Record<string, unknown>) => ({ ...fields, email: typeof fields.email === 'string' ? fields.email.toLowerCase() : fields.email }),
} as unknown as EntityBinding;

const link: Link = {
  entityType: 'customer',
  recordId: 'cus_1',
  externalId: 'ext_1',
  base: { name: 'Ada', email: 'ada@example.com' },
  localVersion: 2,
  externalVersion: null,
  deleted: false,
};

function note(eventId: string, op: ExternalNotification['op'], externalId: string, fields?: Record<string, unknown>, deleted = false): ExternalNotification {
  return {
    eventId,
    entityType: 'customer',
    externalId,
    op,
    occurredAt: '2026-11-30T00:00:00.000Z',
    object: fields === undefined ? undefined : { id: externalId, fields, deleted, tandemId: 'cus_1', version: undefined },
  };
}

test('an echo is a live object carried as the link base holds it, in every mapped field', () => {
  const echo = (n: ExternalNotification, ...linked: [Link | undefined] | []) => isEchoOf(binding, linked.length === 0 ? link : linked[0], n.externalId, n.op, n.object);
  assert.equal(echo(note('e1', 'update', 'ext_1', { name: 'Ada', email: 'ada@example.com' })), true);
  assert.equal(echo(note('e2', 'create', 'ext_1', { name: 'Ada', email: 'ADA@example.com', phone: 'unmapped' })), true, 'normalized, unmapped fields ignored');
  assert.equal(echo(note('e3', 'update', 'ext_1', { name: 'Ada L.', email: 'ada@example.com' })), false, 'a field differs');
  assert.equal(echo(note('e4', 'update', 'ext_1', { name: 'Ada' })), false, 'a mapped field missing differs from the base');
  assert.equal(echo(note('e5', 'update', 'ext_1')), false, 'no object carried');
  assert.equal(echo(note('e6', 'delete', 'ext_1', { name: 'Ada', email: 'ada@example.com' })), false, 'a delete');
  assert.equal(echo(note('e7', 'update', 'ext_1', { name: 'Ada', email: 'ada@example.com' }, true)), false, 'a deleted object');
  assert.equal(echo(note('e8', 'update', 'ext_1', { name: 'Ada', email: 'ada@example.com' }), undefined), false, 'no link');
  assert.equal(echo(note('e9', 'update', 'ext_1', { name: 'Ada', email: 'ada@example.com' }), { ...link, deleted: true }), false, 'a deleted link');
});

let dir: string;
let store: Store;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-echoes-'));
  store = await openStore({ dataDir: dir });
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('withoutEchoes drops the echoes of linked objects and keeps everything else, in order', async () => {
  const sync = new SyncStore(store.db, 'conn_echoes');
  await sync.saveLink(link);
  const notifications = [
    note('evt_echo', 'update', 'ext_1', { name: 'Ada', email: 'ada@example.com' }),
    note('evt_change', 'update', 'ext_1', { name: 'Countess', email: 'ada@example.com' }),
    note('evt_unlinked', 'create', 'ext_2', { name: 'Ada', email: 'ada@example.com' }),
    note('evt_delete', 'delete', 'ext_1'),
    { ...note('evt_other_type', 'update', 'ext_1', { name: 'Ada', email: 'ada@example.com' }), entityType: 'invoice' },
  ];
  const kept = await withoutEchoes(sync, { binding: (type) => (type === 'customer' ? binding : undefined) }, notifications);
  assert.deepEqual(
    kept.map((n) => n.eventId),
    ['evt_change', 'evt_unlinked', 'evt_delete', 'evt_other_type'],
  );
  // Another connection's link is not this one's.
  const other = new SyncStore(store.db, 'conn_other');
  assert.equal((await withoutEchoes(other, { binding: () => binding }, [notifications[0] as ExternalNotification])).length, 1);
});
