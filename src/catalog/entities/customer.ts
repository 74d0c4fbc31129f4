import { z } from 'zod';
import { defineEntity } from '../entity.ts';
import { applyPatch, currencySchema, mergeMap, metadataPatchSchema, metadataSchema, text } from './common.ts';

export const addressSchema = z
  .object({
    line1: text(200).nullable(),
    line2: text(200).nullable(),
    city: text(100).nullable(),
    state: text(100).nullable(),
    postal_code: text(20).nullable(),
    country: z
      .string()
      .regex(/^[A-Za-z]{2}$/, 'a two-letter ISO 3166-1 code')
      .transform((c) => c.toUpperCase())
      .nullable(),
  })
  .strict();
export type Address = z.output<typeof addressSchema>;

const addressPatchSchema = addressSchema.partial().strict();
const emptyAddress: Address = { line1: null, line2: null, city: null, state: null, postal_code: null, country: null };

export const customerFieldsSchema = z.object({
  name: z.string().nullable(),
  email: z.string().nullable(),
  phone: z.string().nullable(),
  company: z.string().nullable(),
  billing_address: addressSchema.nullable(),
  currency: z.string().nullable(),
  tax_id: z.string().nullable(),
  metadata: z.record(z.string(), z.string()),
});
export type CustomerFields = z.output<typeof customerFieldsSchema>;

const writable = {
  name: text(256).nullable(),
  email: z.email().max(320).nullable(),
  phone: text(40).nullable(),
  company: text(256).nullable(),
  currency: currencySchema.nullable(),
  tax_id: text(64).nullable(),
};

export const customerCreateSchema = z
  .object({
    ...writable,
    billing_address: addressPatchSchema.nullable(),
    metadata: metadataSchema,
  })
  .partial()
  .strict();

export const customerUpdateSchema = z
  .object({
    ...writable,
    billing_address: addressPatchSchema.nullable(),
    metadata: metadataPatchSchema,
  })
  .partial()
  .strict();

export const customer = defineEntity({
  type: 'customer',
  plural: 'customers',
  prefix: 'cus',
  createSchema: customerCreateSchema,
  updateSchema: customerUpdateSchema,
  fieldsSchema: customerFieldsSchema,
  filters: [{ param: 'email', field: 'email', schema: z.string().max(320) }],
  matchBy: 'email',
  create: (input) =>
    Promise.resolve({
      name: input.name ?? null,
      email: input.email ?? null,
      phone: input.phone ?? null,
      company: input.company ?? null,
      billing_address:
        input.billing_address === undefined || input.billing_address === null
          ? null
          : { ...emptyAddress, ...input.billing_address },
      currency: input.currency ?? null,
      tax_id: input.tax_id ?? null,
      metadata: input.metadata ?? {},
    }),
  update: (current, patch) => {
    const { billing_address, metadata, ...scalars } = patch;
    const next = applyPatch(current.fields, scalars);
    if (billing_address === null) next.billing_address = null;
    else if (billing_address !== undefined) {
      next.billing_address = { ...(current.fields.billing_address ?? emptyAddress), ...billing_address };
    }
    next.metadata = mergeMap(current.fields.metadata, metadata);
    return Promise.resolve(next);
  },
});
