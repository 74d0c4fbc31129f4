import { z } from 'zod';
import { TandemError } from '../../errors/errors.ts';
import { defineEntity, type EntityContext } from '../entity.ts';
import { isId } from '../ids.ts';
import { applyPatch, currencySchema, mergeMap, metadataPatchSchema, metadataSchema, text } from './common.ts';

export const invoiceStatuses = ['draft', 'open', 'paid', 'void', 'uncollectible'] as const;
export type InvoiceStatus = (typeof invoiceStatuses)[number];

/** Allowed status changes, as Stripe allows them. paid and void are final. */
export const invoiceTransitions: Record<InvoiceStatus, readonly InvoiceStatus[]> = {
  draft: ['open'],
  open: ['paid', 'void', 'uncollectible'],
  uncollectible: ['paid', 'void'],
  paid: [],
  void: [],
};

/** Amounts are integers in minor units (cents); this bound keeps every total a safe integer. */
const MAX_AMOUNT = 1_000_000_000_000;

const lineItemInput = z
  .object({
    description: text(500),
    quantity: z.number().int().min(1).max(1_000_000),
    unit_amount: z.number().int().min(-MAX_AMOUNT).max(MAX_AMOUNT),
  })
  .strict();

export const invoiceFieldsSchema = z.object({
  customer_id: z.string(),
  number: z.string().nullable(),
  currency: z.string(),
  status: z.enum(invoiceStatuses),
  line_items: z.array(
    z.object({ description: z.string(), quantity: z.number(), unit_amount: z.number(), amount: z.number() }),
  ),
  due_date: z.string().nullable(),
  subtotal: z.number(),
  total: z.number(),
  metadata: z.record(z.string(), z.string()),
});
export type InvoiceFields = z.output<typeof invoiceFieldsSchema>;

const dueDate = z.iso.date();

export const invoiceCreateSchema = z
  .object({
    customer_id: z.string().max(64),
    number: text(64).nullable().optional(),
    currency: currencySchema,
    status: z.enum(['draft', 'open']).optional(),
    line_items: z.array(lineItemInput).max(250).optional(),
    due_date: dueDate.nullable().optional(),
    metadata: metadataSchema.optional(),
  })
  .strict();

export const invoiceUpdateSchema = z
  .object({
    customer_id: z.string().max(64),
    number: text(64).nullable(),
    currency: currencySchema,
    status: z.enum(invoiceStatuses),
    line_items: z.array(lineItemInput).max(250),
    due_date: dueDate.nullable(),
    metadata: metadataPatchSchema,
  })
  .partial()
  .strict();

function priced(items: readonly z.output<typeof lineItemInput>[]) {
  const line_items = items.map((item) => ({ ...item, amount: item.quantity * item.unit_amount }));
  const subtotal = line_items.reduce((sum, item) => sum + item.amount, 0);
  if (!Number.isSafeInteger(subtotal)) {
    throw new TandemError('VALIDATION_FAILED', 'The invoice total is out of range.', { field: 'line_items' });
  }
  return { line_items, subtotal, total: subtotal };
}

async function assertCustomer(ctx: EntityContext, customerId: string): Promise<void> {
  const found = isId('cus', customerId) ? await ctx.get('customer', customerId) : undefined;
  if (found === undefined || found.deletedAt !== null) {
    throw new TandemError('INVALID_REFERENCE', `customer_id ${customerId} is not a customer of this workspace.`, {
      field: 'customer_id',
    });
  }
}

/** Once an invoice leaves draft, what it bills can no longer change. */
const FROZEN_AFTER_DRAFT = ['customer_id', 'currency', 'line_items'] as const;

export const invoice = defineEntity({
  type: 'invoice',
  plural: 'invoices',
  prefix: 'inv',
  createSchema: invoiceCreateSchema,
  updateSchema: invoiceUpdateSchema,
  fieldsSchema: invoiceFieldsSchema,
  filters: [
    { param: 'customer_id', field: 'customer_id', schema: z.string().max(64) },
    { param: 'status', field: 'status', schema: z.enum(invoiceStatuses) },
  ],
  create: async (input, ctx) => {
    await assertCustomer(ctx, input.customer_id);
    return {
      customer_id: input.customer_id,
      number: input.number ?? null,
      currency: input.currency,
      status: input.status ?? 'draft',
      ...priced(input.line_items ?? []),
      due_date: input.due_date ?? null,
      metadata: input.metadata ?? {},
    };
  },
  update: async (current, patch, ctx) => {
    const was = current.fields;
    if (was.status !== 'draft') {
      const frozen = FROZEN_AFTER_DRAFT.filter((f) => patch[f] !== undefined);
      if (frozen.length > 0) {
        throw new TandemError('IMMUTABLE_FIELD', `${frozen.join(', ')} cannot change once an invoice is ${was.status}.`, {
          fields: frozen,
          status: was.status,
        });
      }
    }
    if (patch.status !== undefined && patch.status !== was.status && !invoiceTransitions[was.status].includes(patch.status)) {
      throw new TandemError('INVALID_STATE_TRANSITION', `An invoice cannot go from ${was.status} to ${patch.status}.`, {
        from: was.status,
        to: patch.status,
        allowed: invoiceTransitions[was.status],
      });
    }
    if (patch.customer_id !== undefined && patch.customer_id !== was.customer_id) {
      await assertCustomer(ctx, patch.customer_id);
    }
    const { line_items, metadata, ...scalars } = patch;
    const next = applyPatch(was, scalars);
    if (line_items !== undefined) Object.assign(next, priced(line_items));
    next.metadata = mergeMap(was.metadata, metadata);
    return next;
  },
  assertDeletable: (current) => {
    if (current.fields.status !== 'draft') {
      throw new TandemError('INVALID_STATE_TRANSITION', `Only draft invoices can be deleted; void a ${current.fields.status} one.`, {
        status: current.fields.status,
      });
    }
  },
});
