import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TandemError } from '../../errors/errors.ts';
import type { EntityContext, StoredRecord } from '../entity.ts';
import { invoice, invoiceTransitions, type InvoiceFields } from './invoice.ts';

const CUSTOMER = 'cus_01ARZ3NDEKTSV4RRFFQ69G5FAV';
/** A workspace that holds exactly one live customer. */
const ctx: EntityContext = {
  get: (type, id) =>
    Promise.resolve(
      type === 'customer' && id === CUSTOMER
        ? { id, version: 1, fields: {}, createdAt: '', updatedAt: '', deletedAt: null }
        : undefined,
    ),
};

async function draft(): Promise<StoredRecord<InvoiceFields>> {
  const fields = await invoice.create(
    invoice.createSchema.parse({
      customer_id: CUSTOMER,
      currency: 'EUR',
      line_items: [
        { description: 'a', quantity: 2, unit_amount: 250 },
        { description: 'refund', quantity: 1, unit_amount: -100 },
      ],
    }),
    ctx,
  );
  return { id: 'inv_01ARZ3NDEKTSV4RRFFQ69G5FAV', version: 1, fields, createdAt: '', updatedAt: '', deletedAt: null };
}

const code = (c: string) => (e: unknown) => e instanceof TandemError && e.code === c;

test('a new invoice is a draft with computed amounts and totals', async () => {
  const { fields } = await draft();
  assert.equal(fields.status, 'draft');
  assert.equal(fields.currency, 'eur');
  assert.deepEqual(fields.line_items.map((l) => l.amount), [500, -100]);
  assert.equal(fields.subtotal, 400);
  assert.equal(fields.total, 400);
});

test('every transition allowed by the table works, every other is refused', async () => {
  const statuses = Object.keys(invoiceTransitions) as Array<keyof typeof invoiceTransitions>;
  for (const from of statuses) {
    for (const to of statuses) {
      if (from === to) continue;
      const current = await draft();
      current.fields.status = from;
      const attempt = invoice.update(current, invoice.updateSchema.parse({ status: to }), ctx);
      if (invoiceTransitions[from].includes(to)) assert.equal((await attempt).status, to, `${from} -> ${to}`);
      else await assert.rejects(attempt, code('INVALID_STATE_TRANSITION'), `${from} -> ${to}`);
    }
  }
});

test('lines are re-priced on update in draft and frozen afterwards', async () => {
  const current = await draft();
  const next = await invoice.update(current, invoice.updateSchema.parse({ line_items: [{ description: 'b', quantity: 3, unit_amount: 10 }] }), ctx);
  assert.equal(next.total, 30);
  current.fields.status = 'open';
  await assert.rejects(invoice.update(current, invoice.updateSchema.parse({ currency: 'usd' }), ctx), code('IMMUTABLE_FIELD'));
  const renamed = await invoice.update(current, invoice.updateSchema.parse({ number: 'INV-9', metadata: { k: 'v' } }), ctx);
  assert.equal(renamed.number, 'INV-9');
});

test('references must be live customers of the workspace; only drafts can be deleted', async () => {
  await assert.rejects(
    invoice.create(invoice.createSchema.parse({ customer_id: 'cus_01ARZ3NDEKTSV4RRFFQ69G5FAW', currency: 'usd' }), ctx),
    code('INVALID_REFERENCE'),
  );
  await assert.rejects(invoice.create(invoice.createSchema.parse({ customer_id: 'nope', currency: 'usd' }), ctx), code('INVALID_REFERENCE'));
  const current = await draft();
  assert.doesNotThrow(() => invoice.assertDeletable?.(current));
  current.fields.status = 'paid';
  assert.throws(() => invoice.assertDeletable?.(current), code('INVALID_STATE_TRANSITION'));
});
