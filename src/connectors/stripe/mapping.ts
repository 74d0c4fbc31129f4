// Tandem's canonical `customer` fields <-> a Stripe customer.
//
// Mapped: name, email, phone, billing_address (<-> `address`) and metadata (minus Tandem's own key
// `tandem_id`, which carries the Tandem record id on every customer Tandem creates).
//
// Not mapped in this version, so never sent and never compared:
// - `company`: the classic Stripe customer has no company field (newer API versions add
//   `business_name` / `individual_name`, which a later version of this mapping may use);
// - `currency`: Stripe sets a customer's currency itself, from its first invoice, subscription or
//   balance transaction, and refuses to change it afterwards — it is not a writable attribute;
// - `tax_id`: tax ids are a sub-resource (`/v1/customers/:id/tax_ids`, typed, validated per
//   country), not a field of the customer.
//
// The mapping is a fixed point on normalised values: for every canonical value x,
// fromStripe(what Stripe stores for toStripe(x)) equals normalizeCustomerFields(x), and normalising
// a normalised value changes nothing. The sync engine detects echoes by comparing canonical values,
// so everything Stripe cannot represent is folded into one form here:
// - an empty string and null are the same (Stripe clears a field given ''): both become null;
// - an address whose parts are all null (or '') is no address: null; `country` is upper case;
// - metadata drops keys whose value is '' (Stripe deletes a key given '') and the key `tandem_id`.
import type Stripe from 'stripe';
import type { ExternalObject } from '../connector.ts';
import { invalid, isRecord, text } from '../canonical-values.ts';

/** The Stripe metadata key that holds the Tandem record id. */
export const TANDEM_ID_KEY = 'tandem_id';

/** The canonical customer fields this mapping covers (the binding's `fields`). */
export const CUSTOMER_FIELDS = ['name', 'email', 'phone', 'billing_address', 'metadata'] as const;
export type CustomerField = (typeof CUSTOMER_FIELDS)[number];

export const ADDRESS_PARTS = ['line1', 'line2', 'city', 'state', 'postal_code', 'country'] as const;
export type AddressPart = (typeof ADDRESS_PARTS)[number];
export type CanonicalAddress = Record<AddressPart, string | null>;

export interface CanonicalCustomer {
  name: string | null;
  email: string | null;
  phone: string | null;
  billing_address: CanonicalAddress | null;
  metadata: Record<string, string>;
}

const SCALARS = ['name', 'email', 'phone'] as const;

function address(value: unknown): CanonicalAddress | null {
  if (value === null || value === undefined || value === '') return null;
  if (!isRecord(value)) invalid('billing_address', 'an object or null');
  const out = {} as CanonicalAddress;
  let empty = true;
  for (const part of ADDRESS_PARTS) {
    const v = text(value[part], `billing_address.${part}`);
    out[part] = part === 'country' && v !== null ? v.toUpperCase() : v;
    if (v !== null) empty = false;
  }
  return empty ? null : out;
}

function metadata(value: unknown): Record<string, string> {
  if (value === null || value === undefined || value === '') return {};
  if (!isRecord(value)) invalid('metadata', 'a string map');
  const out: Record<string, string> = {};
  for (const key of Object.keys(value).sort()) {
    const v = value[key];
    if (key === TANDEM_ID_KEY || v === '' || v === null || v === undefined) continue;
    if (typeof v !== 'string') invalid(`metadata.${key}`, 'a string');
    out[key] = v;
  }
  return out;
}

function normalizeField(field: CustomerField, value: unknown): unknown {
  switch (field) {
    case 'name':
    case 'email':
    case 'phone':
      return text(value, field);
    case 'billing_address':
      return address(value);
    case 'metadata':
      return metadata(value);
  }
}

/**
 * The canonical values as Stripe can hold them. Works on whole records and on diffs: only the
 * mapped keys present are normalised and answered; other keys (company, currency, tax_id…) are
 * dropped. Throws ConnectorError('fatal') for a value of the wrong type.
 */
export function normalizeCustomerFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of CUSTOMER_FIELDS) {
    if (Object.hasOwn(fields, key)) out[key] = normalizeField(key, fields[key]);
  }
  return out;
}

/** A whole canonical customer: every mapped field, missing ones as null / {}. */
export function completeCustomerFields(fields: Record<string, unknown>): CanonicalCustomer {
  return {
    name: text(fields['name'], 'name'),
    email: text(fields['email'], 'email'),
    phone: text(fields['phone'], 'phone'),
    billing_address: address(fields['billing_address']),
    metadata: metadata(fields['metadata']),
  };
}

function addressParam(value: CanonicalAddress, forCreate: boolean): Stripe.AddressParam {
  const out: Stripe.AddressParam = {};
  for (const part of ADDRESS_PARTS) {
    const v = value[part];
    // An update sends every part, so parts Tandem cleared are cleared in Stripe too ('').
    if (v !== null) out[part] = v;
    else if (!forCreate) out[part] = '';
  }
  return out;
}

/** The body of `POST /v1/customers` for Tandem record `tandemId`. Null fields are left out. */
export function customerCreateParams(tandemId: string, fields: Record<string, unknown>): Stripe.CustomerCreateParams {
  const canonical = completeCustomerFields(fields);
  const params: Stripe.CustomerCreateParams = {};
  for (const key of SCALARS) {
    const v = canonical[key];
    if (v !== null) params[key] = v;
  }
  if (canonical.billing_address !== null) params.address = addressParam(canonical.billing_address, true);
  params.metadata = { ...canonical.metadata, [TANDEM_ID_KEY]: tandemId };
  return params;
}

/**
 * The body of `POST /v1/customers/:id` that writes exactly the canonical fields given (a diff).
 * A cleared scalar or address is sent as '' (Stripe's "unset"). Metadata is diffed key by key
 * against `previousMetadata` (what Stripe is believed to hold): changed keys are sent, removed
 * keys are sent as '', untouched keys are not sent, and `tandem_id` is never touched.
 */
export function customerUpdateParams(
  fields: Record<string, unknown>,
  previousMetadata: Record<string, string> = {},
): Stripe.CustomerUpdateParams {
  const diff = normalizeCustomerFields(fields);
  const params: Stripe.CustomerUpdateParams = {};
  for (const key of SCALARS) {
    if (!Object.hasOwn(diff, key)) continue;
    params[key] = (diff[key] as string | null) ?? '';
  }
  if (Object.hasOwn(diff, 'billing_address')) {
    const value = diff['billing_address'] as CanonicalAddress | null;
    params.address = value === null ? '' : addressParam(value, false);
  }
  if (Object.hasOwn(diff, 'metadata')) {
    const next = diff['metadata'] as Record<string, string>;
    const previous = metadata(previousMetadata);
    const patch: Stripe.MetadataParam = {};
    for (const [key, value] of Object.entries(next)) if (previous[key] !== value) patch[key] = value;
    for (const key of Object.keys(previous)) if (!Object.hasOwn(next, key)) patch[key] = '';
    if (Object.keys(patch).length > 0) params.metadata = patch;
  }
  return params;
}

/** The parts of a Stripe customer the mapping reads (all optional: events and old API versions vary). */
export interface StripeCustomerShape {
  name?: string | null | undefined;
  email?: string | null | undefined;
  phone?: string | null | undefined;
  address?: Stripe.Address | null | undefined;
  metadata?: Record<string, string> | null | undefined;
}

/** The canonical fields of a (live) Stripe customer. */
export function customerFieldsFromStripe(customer: StripeCustomerShape): CanonicalCustomer {
  return completeCustomerFields({
    name: customer.name,
    email: customer.email,
    phone: customer.phone,
    billing_address: customer.address,
    metadata: customer.metadata,
  });
}

/** The Tandem record id a Stripe customer carries, if any. */
export function tandemIdOf(customer: { metadata?: Record<string, string> | null | undefined }): string | undefined {
  const value = customer.metadata?.[TANDEM_ID_KEY];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * A Stripe customer as an ExternalObject. A deleted customer as `GET` answers it (`{id, deleted}`)
 * has no fields; `deleted: true` with a whole customer (the object of a `customer.deleted` event)
 * keeps its last fields. Stripe customers carry no modification stamp, so `version` is undefined:
 * the engine re-fetches the current object instead of ordering snapshots.
 */
export function customerFromStripe(
  customer: Stripe.Customer | Stripe.DeletedCustomer,
  options: { deleted?: boolean } = {},
): ExternalObject {
  if (customer.deleted === true) {
    return { id: customer.id, fields: {}, deleted: true, tandemId: undefined, version: undefined };
  }
  return {
    id: customer.id,
    fields: { ...customerFieldsFromStripe(customer) },
    deleted: options.deleted ?? false,
    tandemId: tandemIdOf(customer),
    version: undefined,
  };
}
