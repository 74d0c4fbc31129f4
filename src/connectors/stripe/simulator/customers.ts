// /v1/customers: create, retrieve, update, delete, list, search — with Stripe's semantics: an empty
// string clears a field, `metadata[k]=` removes a key, a hash such as `address[…]` replaces the
// whole address (sub-fields not sent become null), a deleted customer is retrieved as a stub.
import type { CustomerRecord } from './account.ts';
import { previousAttributes, type HandlerContext, type HandlerResult, type Route } from './context.ts';
import { invalidParam, noSuch } from './errors.ts';
import { newId, newInvoicePrefix } from './ids.ts';
import { createdFilter, LIST_PARAMS, paginate, readLimit } from './list.ts';
import { mergeMetadata, type ParamReader } from './params.ts';
import { decodePage, encodePage, matches, parseSearchQuery } from './search.ts';
import type { Address, Customer, DeletedObject, Shipping } from './types.ts';

const ADDRESS_FIELDS = ['city', 'country', 'line1', 'line2', 'postal_code', 'state'] as const;
const WRITABLE = [
  'address',
  'balance',
  'description',
  'email',
  'expand',
  'invoice_prefix',
  'metadata',
  'name',
  'next_invoice_sequence',
  'phone',
  'preferred_locales',
  'shipping',
  'tax_exempt',
] as const;
const TAX_EXEMPT = ['none', 'exempt', 'reverse'] as const;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function readAddress(reader: ParamReader): Address {
  reader.allow(ADDRESS_FIELDS);
  const address: Address = { city: null, country: null, line1: null, line2: null, postal_code: null, state: null };
  for (const field of ADDRESS_FIELDS) address[field] = reader.string(field, { max: 5000 }) ?? null;
  return address;
}

function readShipping(reader: ParamReader): Shipping {
  reader.allow(['address', 'name', 'phone']);
  const name = reader.requiredString('name', { max: 5000 });
  const addressReader = reader.object('address');
  if (addressReader == null) throw invalidParam(`Missing required param: ${reader.name('address')}.`, reader.name('address'), 'parameter_missing');
  const address = readAddress(addressReader);
  if (address.line1 === null) {
    throw invalidParam(`Missing required param: ${addressReader.name('line1')}.`, addressReader.name('line1'), 'parameter_missing');
  }
  return { address, name, phone: reader.string('phone', { max: 5000 }) ?? null };
}

/** The writable fields a request sets, validated; absent keys are left out. */
function readCustomerParams(params: ParamReader): { changes: Partial<Customer>; metadata: Record<string, string | null> | null | undefined } {
  params.allow(WRITABLE);
  const changes: Partial<Customer> = {};
  const email = params.string('email', { max: 512 });
  if (email !== undefined) {
    if (email !== null && !EMAIL.test(email)) throw invalidParam(`Invalid email address: ${email}`, 'email', 'email_invalid');
    changes.email = email;
  }
  const name = params.string('name', { max: 256 });
  if (name !== undefined) changes.name = name;
  const phone = params.string('phone', { max: 20 });
  if (phone !== undefined) changes.phone = phone;
  const description = params.string('description', { max: 5000 });
  if (description !== undefined) changes.description = description;
  const address = params.object('address');
  if (address !== undefined) changes.address = address === null ? null : readAddress(address);
  const shipping = params.object('shipping');
  if (shipping !== undefined) changes.shipping = shipping === null ? null : readShipping(shipping);
  const balance = params.integer('balance');
  if (balance !== undefined) changes.balance = balance;
  const invoicePrefix = params.string('invoice_prefix');
  if (invoicePrefix != null) {
    if (!/^[A-Z0-9]{3,12}$/.test(invoicePrefix)) {
      throw invalidParam('Invalid invoice_prefix: must be 3-12 uppercase letters or numbers.', 'invoice_prefix');
    }
    changes.invoice_prefix = invoicePrefix;
  }
  const sequence = params.integer('next_invoice_sequence', { min: 1 });
  if (sequence !== undefined) changes.next_invoice_sequence = sequence;
  const locales = params.stringArray('preferred_locales');
  if (locales !== undefined) changes.preferred_locales = locales;
  const taxExempt = params.oneOf('tax_exempt', TAX_EXEMPT);
  if (taxExempt !== undefined) changes.tax_exempt = taxExempt ?? 'none';
  return { changes, metadata: params.metadata('metadata') };
}

function findLive(ctx: HandlerContext, id: string): CustomerRecord {
  const record = ctx.account.customers.get(id);
  if (record === undefined || record.deleted) throw noSuch('customer', id);
  return record;
}

function deletedStub(id: string): DeletedObject {
  return { id, object: 'customer', deleted: true };
}

function remember(ctx: HandlerContext, record: CustomerRecord): void {
  record.history.push({ atMs: ctx.nowMs(), customer: record.deleted ? null : structuredClone(record.customer) });
  if (record.history.length > 20) record.history.splice(0, record.history.length - 20);
}

function create(ctx: HandlerContext): HandlerResult {
  const { changes, metadata } = readCustomerParams(ctx.params);
  const customer: Customer = {
    id: newId('cus'),
    object: 'customer',
    address: null,
    balance: 0,
    created: ctx.nowSeconds(),
    currency: null,
    default_source: null,
    delinquent: false,
    description: null,
    discount: null,
    email: null,
    invoice_prefix: newInvoicePrefix(),
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: mergeMetadata({}, metadata),
    name: null,
    next_invoice_sequence: 1,
    phone: null,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
    ...changes,
  };
  const record: CustomerRecord = { seq: ctx.account.nextSeq(), customer, deleted: false, history: [] };
  ctx.account.customers.set(customer.id, record);
  ctx.account.customerOrder.push(record);
  remember(ctx, record);
  ctx.emit('customer.created', customer);
  return { body: customer };
}

function retrieve(ctx: HandlerContext): HandlerResult {
  ctx.params.allow(['expand']);
  const id = ctx.path.id ?? '';
  const record = ctx.account.customers.get(id);
  if (record === undefined) throw noSuch('customer', id);
  return { body: record.deleted ? deletedStub(id) : record.customer };
}

function update(ctx: HandlerContext): HandlerResult {
  const record = findLive(ctx, ctx.path.id ?? '');
  const { changes, metadata } = readCustomerParams(ctx.params);
  const before = record.customer;
  const after: Customer = { ...before, ...changes, metadata: mergeMetadata(before.metadata, metadata) };
  const previous = previousAttributes(
    before as unknown as Record<string, unknown>,
    after as unknown as Record<string, unknown>,
  );
  if (Object.keys(previous).length > 0) {
    record.customer = after;
    remember(ctx, record);
    ctx.emit('customer.updated', after, previous);
  }
  return { body: record.customer };
}

function remove(ctx: HandlerContext): HandlerResult {
  ctx.params.allow([]);
  const record = findLive(ctx, ctx.path.id ?? '');
  record.deleted = true;
  remember(ctx, record);
  ctx.emit('customer.deleted', record.customer);
  return { body: deletedStub(record.customer.id) };
}

function list(ctx: HandlerContext): HandlerResult {
  ctx.params.allow([...LIST_PARAMS, 'email', 'created', 'test_clock']);
  const email = ctx.params.string('email', { max: 512 });
  const created = createdFilter(ctx.params);
  const items = ctx.account.customerOrder
    .filter((r) => !r.deleted && (email == null || r.customer.email === email) && created(r.customer.created))
    .reverse()
    .map((r) => ({ seq: r.seq, item: r.customer }));
  const page = paginate(items, ctx.params, {
    url: '/v1/customers',
    kind: 'customer',
    seqOf: (id) => ctx.account.customers.get(id)?.seq,
  });
  return { body: page };
}

function search(ctx: HandlerContext): HandlerResult {
  ctx.params.allow(['query', 'limit', 'page', 'expand']);
  const text = ctx.params.requiredString('query', { max: 10_000 });
  const query = parseSearchQuery(text);
  const limit = readLimit(ctx.params);
  const page = ctx.params.string('page');
  const offset = page == null ? 0 : decodePage(text, page);
  // The index lags: each customer is seen as it was `searchLagMs` ago (absent if it did not exist).
  const horizon = ctx.nowMs() - ctx.searchLagMs;
  const visible: Customer[] = [];
  for (let i = ctx.account.customerOrder.length - 1; i >= 0; i -= 1) {
    const record = ctx.account.customerOrder[i];
    if (record === undefined) continue;
    const state =
      ctx.searchLagMs <= 0
        ? record.deleted
          ? null
          : record.customer
        : (record.history.findLast((h) => h.atMs <= horizon)?.customer ?? null);
    if (state !== null && matches(query, state)) visible.push(state);
  }
  const data = visible.slice(offset, offset + limit);
  const hasMore = visible.length > offset + limit;
  return {
    body: {
      object: 'search_result',
      data,
      has_more: hasMore,
      next_page: hasMore ? encodePage(text, offset + limit) : null,
      url: '/v1/customers/search',
    },
  };
}

export const customerRoutes: Route[] = [
  { method: 'POST', pattern: '/v1/customers', handler: create },
  { method: 'GET', pattern: '/v1/customers', handler: list },
  { method: 'GET', pattern: '/v1/customers/search', handler: search },
  { method: 'GET', pattern: '/v1/customers/:id', handler: retrieve },
  { method: 'POST', pattern: '/v1/customers/:id', handler: update },
  { method: 'DELETE', pattern: '/v1/customers/:id', handler: remove },
];
