// The customer mapping on its own: normalize is idempotent, and what Salesforce stores for a
// written value reads back as exactly normalize(value) (the fixed point the engine's echo detection
// relies on), under the default mapping and a configured one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConnectorError } from '../connector.ts';
import {
  NO_NAME,
  completeCustomerFields,
  contactNeeded,
  customerFieldsFromSalesforce,
  customerMappingSchema,
  normalizeCustomerFields,
  resolveMapping,
  salesforceValues,
  splitName,
  type CustomerMapping,
} from './mapping.ts';

/** What Salesforce holds after a create with these canonical fields: '' is null, no Contact unless needed. */
function stored(mapping: CustomerMapping, fields: Record<string, unknown>): Record<string, unknown> {
  const values = salesforceValues(mapping, completeCustomerFields(mapping, fields));
  const clean = (row: Record<string, string | null>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === '' ? null : v]));
  const account = clean(values.account);
  assert.ok(typeof account['Name'] === 'string' && account['Name'] !== '', 'Account.Name is required');
  const contact = contactNeeded(values.contact) ? clean(values.contact) : undefined;
  if (contact !== undefined) assert.ok(typeof contact['LastName'] === 'string' && contact['LastName'] !== '', 'Contact.LastName is required');
  return customerFieldsFromSalesforce(mapping, account, contact);
}

const address = { line1: '1 Main St', line2: null, city: 'London', state: null, postal_code: 'N1', country: 'GB' };
const CASES: Record<string, unknown>[] = [
  { name: 'Ada Lovelace', company: 'Analytical Ltd', email: 'ada@example.com', phone: '+44 1', billing_address: address },
  { name: 'Ada Lovelace', company: 'Ada Lovelace', email: null, phone: null, billing_address: null },
  { name: 'Ada Lovelace', company: null },
  { name: null, company: null, email: 'only@example.com' },
  { name: null, company: null, email: null, phone: null, billing_address: null },
  { name: 'Cher', company: '' },
  { name: '  Ada   King   Lovelace  ', company: 'X' },
  { name: NO_NAME, company: NO_NAME },
  { name: 'Grace Hopper', company: 'Navy', billing_address: { line1: null, line2: 'Suite 5', city: null, state: null, postal_code: null, country: 'us' } },
  { name: 'Grace Hopper', billing_address: { line1: 'a\nb', line2: 'c', city: 'NYC', state: 'NY', postal_code: '10001', country: 'United States' } },
  { company: 'Company only', phone: '+1 555' },
  { name: 'Ada Lovelace', billing_address: { line1: '', line2: '', city: '', state: '', postal_code: '', country: '' } },
];

function checkFixedPoint(mapping: CustomerMapping): void {
  for (const [i, fields] of CASES.entries()) {
    const normalized = normalizeCustomerFields(mapping, completeCustomerFields(mapping, fields));
    assert.deepEqual(normalizeCustomerFields(mapping, normalized), normalized, `case ${String(i)}: normalize is idempotent`);
    assert.deepEqual(stored(mapping, fields), normalized, `case ${String(i)}: round trip`);
  }
}

describe('salesforce mapping', () => {
  test('round trips are a fixed point under the default mapping', () => {
    checkFixedPoint(resolveMapping());
  });

  test('round trips are a fixed point with phone and address on the Contact, and tax_id mapped', () => {
    const mapping = resolveMapping(customerMappingSchema.parse({ phone: 'Contact.Phone', billing_address: 'Contact.Mailing', tax_id: 'Account.AccountNumber' }));
    assert.deepEqual(mapping.fields, ['name', 'company', 'phone', 'email', 'tax_id', 'billing_address']);
    checkFixedPoint(mapping);
    const values = salesforceValues(mapping, { tax_id: 'GB123', phone: '+1' });
    assert.deepEqual(values, { account: { AccountNumber: 'GB123' }, contact: { Phone: '+1' } });
  });

  test('the default mapping: fields, and what a whole create writes', () => {
    const mapping = resolveMapping();
    assert.deepEqual(mapping.fields, ['name', 'company', 'phone', 'email', 'billing_address']);
    const values = salesforceValues(mapping, completeCustomerFields(mapping, CASES[0] ?? {}));
    assert.deepEqual(values.account, {
      Name: 'Analytical Ltd',
      Phone: '+44 1',
      BillingStreet: '1 Main St',
      BillingCity: 'London',
      BillingState: null,
      BillingPostalCode: 'N1',
      BillingCountry: 'GB',
    });
    assert.deepEqual(values.contact, { FirstName: 'Ada', LastName: 'Lovelace', Email: 'ada@example.com' });
  });

  test('company folds: equal to the name, or empty, names the Account after the person', () => {
    const mapping = resolveMapping();
    assert.deepEqual(normalizeCustomerFields(mapping, { name: 'Ada', company: 'Ada' }), { name: 'Ada', company: null });
    assert.deepEqual(salesforceValues(mapping, { name: 'Ada', company: null }).account, { Name: 'Ada' });
    assert.deepEqual(salesforceValues(mapping, { company: null }, { name: 'Bob Smith', company: 'Old' }).account, { Name: 'Bob Smith' });
    // A new name moves an Account named after the person along; a company name stays.
    assert.deepEqual(salesforceValues(mapping, { name: 'New Name' }, { name: 'Old', company: null }).account, { Name: 'New Name' });
    assert.deepEqual(salesforceValues(mapping, { name: 'New Name' }, { name: 'Old', company: 'Acme' }).account, {});
    assert.deepEqual(salesforceValues(mapping, { name: null, company: null }).account, { Name: NO_NAME });
  });

  test('names split at the last space; only a Contact with values is needed', () => {
    assert.deepEqual(splitName('Ada King Lovelace'), { first: 'Ada King', last: 'Lovelace' });
    assert.deepEqual(splitName('Cher'), { first: null, last: 'Cher' });
    assert.deepEqual(splitName('   '), { first: null, last: null });
    const mapping = resolveMapping();
    assert.equal(contactNeeded(salesforceValues(mapping, { name: null, email: null }).contact), false);
    assert.equal(contactNeeded(salesforceValues(mapping, { name: null, email: 'a@b.c' }).contact), true);
    assert.deepEqual(salesforceValues(mapping, { name: null, email: 'a@b.c' }).contact, { FirstName: null, LastName: NO_NAME, Email: 'a@b.c' });
  });

  test('a value of the wrong type is fatal; unmapped fields are dropped', () => {
    const mapping = resolveMapping();
    assert.throws(() => normalizeCustomerFields(mapping, { name: 42 }), (e: unknown) => e instanceof ConnectorError && e.kind === 'fatal');
    assert.throws(() => normalizeCustomerFields(mapping, { billing_address: 'x' }), (e: unknown) => e instanceof ConnectorError && e.kind === 'fatal');
    assert.deepEqual(normalizeCustomerFields(mapping, { metadata: { a: 'b' }, currency: 'EUR', tax_id: 'X' }), {});
  });

  test('the mapping settings refuse unknown objects, reserved fields and one field mapped twice', () => {
    assert.ok(!customerMappingSchema.safeParse({ email: 'Lead.Email' }).success);
    assert.ok(!customerMappingSchema.safeParse({ email: 'Contact.LastName' }).success);
    assert.ok(!customerMappingSchema.safeParse({ email: 'Account.Phone' }).success, 'Account.Phone is the phone');
    assert.ok(!customerMappingSchema.safeParse({ tax_id: 'Account.BillingCity' }).success, 'part of the address');
    assert.ok(!customerMappingSchema.safeParse({ billing_address: 'Account.Mailing' }).success);
    assert.ok(customerMappingSchema.safeParse({ email: null, phone: null, billing_address: null }).success);
  });
});
