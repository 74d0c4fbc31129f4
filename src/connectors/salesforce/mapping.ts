// Tandem's canonical `customer` fields <-> a Salesforce Account and its primary Contact.
//
// The external object of a customer is the **Account** (its 18-character Id). The person and the
// email live on the Account's **primary Contact**: the Contact whose Tandem_Id__c is the customer's
// id, else the oldest Contact of the Account. Both records Tandem creates carry `Tandem_Id__c` (a
// unique external id field, which the org must have on Account and Contact).
//
// Fixed parts:
// - company            <-> Account.Name (required by Salesforce: when company is empty the Account
//                          is named after the person, or `[no name]` when there is none either)
// - name               <-> Contact.FirstName + ' ' + Contact.LastName (split at the last space;
//                          LastName is required: `[no name]` when only other Contact fields are set)
// Configurable per connection (settings `customerMapping`, defaults shown):
// - phone              <-> Account.Phone          ('Contact.Phone', any text field, or null)
// - email              <-> Contact.Email          (any text/email field, or null)
// - billing_address    <-> Account.Billing*       ('Account.Shipping', 'Contact.Mailing',
//                          'Contact.Other', or null): line1 and line2 joined by a newline in *Street,
//                          then *City, *State, *PostalCode, *Country
// - tax_id, currency   <-> unmapped (null) by default: a standard org has no honest place for them
//                          (CurrencyIsoCode exists only in multi-currency orgs); map them to a text
//                          field (e.g. a custom `Account.Tax_Id__c`) when the org has one.
// Never mapped: metadata (Salesforce has no free key/value map on a record).
// A Contact is created only when one of its fields has a value: a company-only customer is an
// Account alone.
//
// The mapping is a fixed point on normalised values: for every canonical value x,
// fromSalesforce(what Salesforce stores for toSalesforce(x)) equals normalizeCustomerFields(x), and
// normalising twice changes nothing. What Salesforce cannot tell apart is folded into one form:
// - '' and null are the same (Salesforce stores '' as null);
// - a name is trimmed and its last run of whitespace becomes one space (First/Last split);
// - company equal to the name, or the placeholder, is null (the Account is named after the person);
// - a name equal to the placeholder is null;
// - an address: line1/line2 as the Street splits them back (line1 = up to the first newline), all
//   parts empty is null, and a two-letter country is upper case.
import { z } from 'zod';
import type { ExternalObject } from '../connector.ts';
import { invalid, isRecord, text } from '../canonical-values.ts';

/** The external id field (on Account and Contact) that holds the Tandem record id. */
export const TANDEM_ID_FIELD = 'Tandem_Id__c';
/** Stands in for a required name Tandem does not have (Account.Name, Contact.LastName). */
export const NO_NAME = '[no name]';

export const ADDRESS_PARTS = ['line1', 'line2', 'city', 'state', 'postal_code', 'country'] as const;
export type CanonicalAddress = Record<(typeof ADDRESS_PARTS)[number], string | null>;

export type SObjectName = 'Account' | 'Contact';
const SCALAR_FIELDS = ['phone', 'email', 'tax_id', 'currency'] as const;
type ScalarField = (typeof SCALAR_FIELDS)[number];

/** Fields the mapping writes itself: no configurable field may name them. */
const RESERVED = new Set(['id', 'name', 'firstname', 'lastname', 'accountid', TANDEM_ID_FIELD.toLowerCase(), 'isdeleted', 'systemmodstamp', 'createddate', 'lastmodifieddate', 'ownerid']);

const target = z
  .string()
  .regex(/^(Account|Contact)\.[A-Za-z][A-Za-z0-9_]{0,79}$/, "'Account.<Field>' or 'Contact.<Field>' (an API field name, e.g. Account.Phone)")
  .refine((value) => !RESERVED.has(value.split('.')[1]?.toLowerCase() ?? ''), 'a field the mapping does not write itself (Name, FirstName, LastName, AccountId, Tandem_Id__c and audit fields are fixed)');

export const ADDRESS_TARGETS = ['Account.Billing', 'Account.Shipping', 'Contact.Mailing', 'Contact.Other'] as const;

export const customerMappingSchema = z
  .object({
    phone: target.nullable().default('Account.Phone'),
    email: target.nullable().default('Contact.Email'),
    billing_address: z.enum(ADDRESS_TARGETS).nullable().default('Account.Billing'),
    tax_id: target.nullable().default(null),
    currency: target.nullable().default(null),
  })
  .strict()
  .superRefine((mapping, ctx) => {
    const seen = new Map<string, string>();
    for (const key of SCALAR_FIELDS) {
      const value = mapping[key];
      if (value === null) continue;
      const other = seen.get(value.toLowerCase());
      if (other !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${value} is already mapped to ${other}` });
      seen.set(value.toLowerCase(), key);
      const [object, field = ''] = value.split('.');
      const address = mapping.billing_address;
      if (address !== null && address.startsWith(`${object ?? ''}.`) && field.toLowerCase().startsWith(address.split('.')[1]?.toLowerCase() ?? '')) {
        ctx.addIssue({ code: 'custom', path: [key], message: `${value} is part of billing_address (${address})` });
      }
    }
  });
export type CustomerMappingSettings = z.output<typeof customerMappingSchema>;
export const DEFAULT_CUSTOMER_MAPPING: CustomerMappingSettings = customerMappingSchema.parse({});

interface ScalarTarget {
  canonical: ScalarField;
  object: SObjectName;
  field: string;
}

/** A mapping setting resolved into what the connector reads and writes. */
export interface CustomerMapping {
  /** The canonical fields mapped (the binding's `fields`). */
  fields: string[];
  scalars: ScalarTarget[];
  address: { object: SObjectName; prefix: string } | undefined;
  /** Fields to select on each object. */
  select: Record<SObjectName, string[]>;
}

const AUDIT = ['Id', 'IsDeleted', 'CreatedDate', 'SystemModstamp', TANDEM_ID_FIELD];

export function addressFields(prefix: string): { street: string; city: string; state: string; postal: string; country: string } {
  return { street: `${prefix}Street`, city: `${prefix}City`, state: `${prefix}State`, postal: `${prefix}PostalCode`, country: `${prefix}Country` };
}

export function resolveMapping(settings: CustomerMappingSettings = DEFAULT_CUSTOMER_MAPPING): CustomerMapping {
  const scalars: ScalarTarget[] = [];
  for (const canonical of SCALAR_FIELDS) {
    const value = settings[canonical];
    if (value === null) continue;
    const [object, field] = value.split('.') as [SObjectName, string];
    scalars.push({ canonical, object, field });
  }
  const address =
    settings.billing_address === null
      ? undefined
      : (() => {
          const [object, prefix] = settings.billing_address.split('.') as [SObjectName, string];
          return { object, prefix };
        })();
  const select: Record<SObjectName, string[]> = {
    Account: [...AUDIT, 'Name'],
    Contact: [...AUDIT, 'AccountId', 'FirstName', 'LastName'],
  };
  for (const s of scalars) select[s.object].push(s.field);
  if (address !== undefined) select[address.object].push(...Object.values(addressFields(address.prefix)));
  const fields = ['name', 'company', ...scalars.map((s) => s.canonical), ...(address === undefined ? [] : ['billing_address'])];
  return { fields, scalars, address, select };
}

/** A person's name as First/Last: split at the last run of whitespace. */
export function splitName(name: string | null): { first: string | null; last: string | null } {
  if (name === null) return { first: null, last: null };
  const trimmed = name.trim();
  if (trimmed === '') return { first: null, last: null };
  const m = /^(.*\S)\s+(\S+)$/s.exec(trimmed);
  if (m === null) return { first: null, last: trimmed };
  return { first: m[1] ?? null, last: m[2] ?? null };
}

export function joinName(first: string | null, last: string | null): string | null {
  const f = first === null || first.trim() === '' ? null : first.trim();
  const l = last === null || last.trim() === '' || (last === NO_NAME && f === null) ? null : last.trim();
  if (f === null) return l;
  return l === null ? f : `${f} ${l}`;
}

function normalizeName(value: unknown): string | null {
  const name = text(value, 'name');
  if (name === null || name.trim() === NO_NAME) return null;
  const { first, last } = splitName(name);
  return joinName(first, last);
}

function formatStreet(address: CanonicalAddress): string | null {
  const lines = [address.line1, address.line2].filter((l) => l !== null);
  return lines.length === 0 ? null : lines.join('\n');
}

function parseStreet(street: string | null): { line1: string | null; line2: string | null } {
  if (street === null || street === '') return { line1: null, line2: null };
  const at = street.indexOf('\n');
  if (at < 0) return { line1: street, line2: null };
  const line1 = street.slice(0, at);
  const line2 = street.slice(at + 1);
  return { line1: line1 === '' ? null : line1, line2: line2 === '' ? null : line2 };
}

function normalizeCountry(country: string | null): string | null {
  return country !== null && /^[A-Za-z]{2}$/.test(country) ? country.toUpperCase() : country;
}

function addressFromParts(parts: CanonicalAddress): CanonicalAddress | null {
  const { line1, line2 } = parseStreet(formatStreet(parts));
  const out: CanonicalAddress = { ...parts, line1, line2, country: normalizeCountry(parts.country) };
  return ADDRESS_PARTS.every((p) => out[p] === null) ? null : out;
}

function normalizeAddress(value: unknown): CanonicalAddress | null {
  if (value === null || value === undefined || value === '') return null;
  if (!isRecord(value)) invalid('billing_address', 'an object or null');
  const parts = {} as CanonicalAddress;
  for (const part of ADDRESS_PARTS) parts[part] = text(value[part], `billing_address.${part}`);
  return addressFromParts(parts);
}

function normalizeCompany(company: string | null, name: string | null | undefined): string | null {
  if (company === null || company === NO_NAME) return null;
  if (name !== undefined && name !== null && company === name) return null;
  return company;
}

/**
 * The canonical values as Salesforce can hold them under `mapping`. Works on whole records and on
 * diffs: only the mapped keys present are answered; others are dropped. Throws
 * ConnectorError('fatal') for a value of the wrong type.
 */
export function normalizeCustomerFields(mapping: CustomerMapping, fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const name = Object.hasOwn(fields, 'name') ? normalizeName(fields['name']) : undefined;
  for (const key of mapping.fields) {
    if (!Object.hasOwn(fields, key)) continue;
    const value = fields[key];
    if (key === 'name') out[key] = name;
    else if (key === 'company') out[key] = normalizeCompany(text(value, 'company'), name);
    else if (key === 'billing_address') out[key] = normalizeAddress(value);
    else out[key] = text(value, key);
  }
  return out;
}

/** A row as Salesforce answers it (REST or SOQL). */
export type SalesforceRow = Record<string, unknown>;

function str(row: SalesforceRow | undefined, field: string): string | null {
  const value = row?.[field];
  return typeof value === 'string' && value !== '' ? value : null;
}

/** The canonical fields of an Account and its primary Contact. */
export function customerFieldsFromSalesforce(mapping: CustomerMapping, account: SalesforceRow, contact: SalesforceRow | undefined): Record<string, unknown> {
  const rows: Record<SObjectName, SalesforceRow | undefined> = { Account: account, Contact: contact };
  const name = contact === undefined ? null : joinName(str(contact, 'FirstName'), str(contact, 'LastName'));
  const out: Record<string, unknown> = { name, company: normalizeCompany(str(account, 'Name'), name) };
  for (const s of mapping.scalars) out[s.canonical] = str(rows[s.object], s.field);
  if (mapping.address !== undefined) {
    const row = rows[mapping.address.object];
    const f = addressFields(mapping.address.prefix);
    const { line1, line2 } = parseStreet(str(row, f.street));
    out['billing_address'] = addressFromParts({
      line1,
      line2,
      city: str(row, f.city),
      state: str(row, f.state),
      postal_code: str(row, f.postal),
      country: str(row, f.country),
    });
  }
  return out;
}

function modstampMs(row: SalesforceRow | undefined): number {
  const value = row?.['SystemModstamp'];
  if (typeof value !== 'string') return 0;
  const ms = Date.parse(value.replace(/\+0000$/, 'Z'));
  return Number.isNaN(ms) ? 0 : ms;
}

/** An Account (and its primary Contact) as an ExternalObject; version = the later SystemModstamp, in ms. */
export function customerFromSalesforce(mapping: CustomerMapping, account: SalesforceRow, contact: SalesforceRow | undefined): ExternalObject {
  const deleted = account['IsDeleted'] === true;
  const version = Math.max(modstampMs(account), modstampMs(contact));
  return {
    id: String(account['Id']),
    fields: customerFieldsFromSalesforce(mapping, account, contact),
    deleted,
    tandemId: str(account, TANDEM_ID_FIELD) ?? undefined,
    version: version === 0 ? undefined : String(version),
  };
}

/** What one canonical write becomes: values for the Account and for the Contact (null clears). */
export interface SalesforceValues {
  account: Record<string, string | null>;
  contact: Record<string, string | null>;
}

function put(values: SalesforceValues, object: SObjectName, field: string, value: string | null): void {
  (object === 'Account' ? values.account : values.contact)[field] = value;
}

/**
 * The Account and Contact values for canonical `fields` (a whole record or a diff). `context` gives
 * the current name and company for what Account.Name depends on when the diff does not say.
 */
export function salesforceValues(
  mapping: CustomerMapping,
  fields: Record<string, unknown>,
  context: { name: string | null; company: string | null } = { name: null, company: null },
): SalesforceValues {
  const diff = normalizeCustomerFields(mapping, fields);
  const values: SalesforceValues = { account: {}, contact: {} };
  const hasName = Object.hasOwn(diff, 'name');
  const hasCompany = Object.hasOwn(diff, 'company');
  const name = hasName ? (diff['name'] as string | null) : context.name;
  const company = hasCompany ? (diff['company'] as string | null) : normalizeCompany(context.company, name);
  if (hasName) {
    const { first, last } = splitName(name);
    values.contact['FirstName'] = first;
    values.contact['LastName'] = last ?? NO_NAME;
  }
  if (hasCompany || (hasName && company === null)) values.account['Name'] = company ?? name ?? NO_NAME;
  for (const s of mapping.scalars) if (Object.hasOwn(diff, s.canonical)) put(values, s.object, s.field, diff[s.canonical] as string | null);
  if (mapping.address !== undefined && Object.hasOwn(diff, 'billing_address')) {
    const address = diff['billing_address'] as CanonicalAddress | null;
    const f = addressFields(mapping.address.prefix);
    const object = mapping.address.object;
    put(values, object, f.street, address === null ? null : formatStreet(address));
    put(values, object, f.city, address?.city ?? null);
    put(values, object, f.state, address?.state ?? null);
    put(values, object, f.postal, address?.postal_code ?? null);
    put(values, object, f.country, address?.country ?? null);
  }
  return values;
}

/** Whether Contact values hold anything worth a Contact (a name or any other value). */
export function contactNeeded(contact: Record<string, string | null>): boolean {
  return Object.entries(contact).some(([field, value]) => value !== null && !(field === 'LastName' && value === NO_NAME));
}

/** A whole canonical customer under `mapping`: every mapped field, missing ones as null. */
export function completeCustomerFields(mapping: CustomerMapping, fields: Record<string, unknown>): Record<string, unknown> {
  const whole: Record<string, unknown> = {};
  for (const key of mapping.fields) whole[key] = fields[key] ?? null;
  return normalizeCustomerFields(mapping, whole);
}
