// The customer mapping is a fixed point: what Stripe stores for toStripe(x), read back, is exactly
// normalize(x) — for a table of edge cases and for random values, through a model of Stripe's write
// semantics and (fewer, slower) through the simulator itself.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type Stripe from 'stripe';
import { ConnectorError } from '../connector.ts';
import {
  ADDRESS_PARTS,
  CUSTOMER_FIELDS,
  customerCreateParams,
  customerFieldsFromStripe,
  customerFromStripe,
  customerUpdateParams,
  normalizeCustomerFields,
} from './mapping.ts';
import { startStripeSimulator, type StripeSimulator } from './simulator/index.ts';
import { stripeClient, testKey } from './simulator/testing.ts';

type Fields = Record<string, unknown>;
interface Stored {
  name: string | null;
  email: string | null;
  phone: string | null;
  address: Stripe.Address | null;
  metadata: Record<string, string>;
}

// A model of how Stripe applies customer parameters: '' unsets a scalar or the whole address, an
// address hash replaces the address (parts not sent are null, '' is null), metadata merges and
// `metadata[k]=''` removes k.
function applyParams(current: Stored, params: Stripe.CustomerCreateParams | Stripe.CustomerUpdateParams): Stored {
  const next: Stored = { ...current, metadata: { ...current.metadata } };
  for (const key of ['name', 'email', 'phone'] as const) {
    const value = params[key];
    if (value !== undefined) next[key] = value === '' ? null : value;
  }
  if (params.address !== undefined) {
    if (params.address === '' || params.address === null) next.address = null;
    else {
      const address = params.address;
      next.address = {
        line1: address.line1 || null,
        line2: address.line2 || null,
        city: address.city || null,
        state: address.state || null,
        postal_code: address.postal_code || null,
        country: address.country || null,
      };
    }
  }
  if (params.metadata !== undefined) {
    if (params.metadata === '' || params.metadata === null) next.metadata = {};
    else {
      for (const [key, value] of Object.entries(params.metadata)) {
        if (value === '' || value === null) Reflect.deleteProperty(next.metadata, key);
        else next.metadata[key] = String(value);
      }
    }
  }
  return next;
}

const EMPTY: Stored = { name: null, email: null, phone: null, address: null, metadata: {} };

function read(stored: Stored): Fields {
  return { ...customerFieldsFromStripe(stored) };
}

const address = (parts: Partial<Record<(typeof ADDRESS_PARTS)[number], string | null>>) => ({
  line1: null,
  line2: null,
  city: null,
  state: null,
  postal_code: null,
  country: null,
  ...parts,
});

describe('stripe mapping: table', () => {
  const cases: [string, Fields, Fields][] = [
    ['all null', { name: null, email: null, phone: null, billing_address: null, metadata: {} }, { name: null, email: null, phone: null, billing_address: null, metadata: {} }],
    ['empty strings are null', { name: '', email: '', phone: '', billing_address: null, metadata: {} }, { name: null, email: null, phone: null, billing_address: null, metadata: {} }],
    ['missing fields are null', {}, { name: null, email: null, phone: null, billing_address: null, metadata: {} }],
    [
      'a full address; country upper case',
      { name: 'Ada', billing_address: { line1: '1 St', line2: 'Flat 2', city: 'London', state: 'LDN', postal_code: 'N1', country: 'gb' } },
      { name: 'Ada', email: null, phone: null, billing_address: { line1: '1 St', line2: 'Flat 2', city: 'London', state: 'LDN', postal_code: 'N1', country: 'GB' }, metadata: {} },
    ],
    ['a partial address keeps every part', { billing_address: { city: 'Paris' } }, { name: null, email: null, phone: null, billing_address: address({ city: 'Paris' }), metadata: {} }],
    ['an all-empty address is no address', { billing_address: address({ city: '', line1: '' }) }, { name: null, email: null, phone: null, billing_address: null, metadata: {} }],
    [
      'metadata drops tandem_id and empty values',
      { metadata: { plan: 'pro', tandem_id: 'cus_x', gone: '' } },
      { name: null, email: null, phone: null, billing_address: null, metadata: { plan: 'pro' } },
    ],
    [
      'unmapped fields are dropped',
      { name: 'A', company: 'Acme', currency: 'gbp', tax_id: 'GB123' },
      { name: 'A', email: null, phone: null, billing_address: null, metadata: {} },
    ],
    ['unicode and spaces are kept', { name: '  Zoë Ñandú 李  ', email: 'Zoe@Example.com' }, { name: '  Zoë Ñandú 李  ', email: 'Zoe@Example.com', phone: null, billing_address: null, metadata: {} }],
  ];
  for (const [label, input, expected] of cases) {
    test(label, () => {
      const stored = applyParams(EMPTY, customerCreateParams('rec_1', input));
      assert.equal(stored.metadata['tandem_id'], 'rec_1');
      assert.deepEqual(read(stored), expected, 'create round trip');
      assert.deepEqual(normalizeCustomerFields({ ...Object.fromEntries(CUSTOMER_FIELDS.map((f) => [f, null])), ...input }), expected, 'normalize');
      assert.deepEqual(read(applyParams(stored, customerUpdateParams(expected, read(stored)['metadata'] as Record<string, string>))), expected, 'update to itself');
    });
  }

  test('Stripe address shapes: null, absent, all-null parts and lower-case country', () => {
    assert.equal(customerFieldsFromStripe({ email: null, metadata: {} }).billing_address, null);
    assert.equal(customerFieldsFromStripe({ email: null, metadata: {}, address: null }).billing_address, null);
    assert.equal(customerFieldsFromStripe({ email: null, metadata: {}, address: address({}) }).billing_address, null);
    assert.deepEqual(customerFieldsFromStripe({ email: null, metadata: {}, address: address({ country: 'us' }) }).billing_address, address({ country: 'US' }));
  });

  test('create leaves null fields out; update sends "" to clear and only the diff', () => {
    assert.deepEqual(customerCreateParams('rec_1', { name: 'A', email: null, billing_address: address({ city: 'X' }), metadata: {} }), {
      name: 'A',
      address: { city: 'X' },
      metadata: { tandem_id: 'rec_1' },
    });
    assert.deepEqual(customerUpdateParams({ name: null }), { name: '' });
    assert.deepEqual(customerUpdateParams({ billing_address: null }), { address: '' });
    assert.deepEqual(customerUpdateParams({ billing_address: address({ city: 'X' }) }), {
      address: { line1: '', line2: '', city: 'X', state: '', postal_code: '', country: '' },
    });
    assert.deepEqual(customerUpdateParams({ metadata: { a: '1', b: '2' } }, { a: '1', c: '3', tandem_id: 'x' }), { metadata: { b: '2', c: '' } });
    assert.deepEqual(customerUpdateParams({ metadata: { a: '1' } }, { a: '1' }), {}, 'nothing to change in metadata');
    assert.deepEqual(customerUpdateParams({ email: 'a@b.c', company: 'ignored' }), { email: 'a@b.c' });
  });

  test('a deleted customer has no fields; the Tandem id comes from metadata', () => {
    assert.deepEqual(customerFromStripe({ id: 'cus_1', object: 'customer', deleted: true }), {
      id: 'cus_1',
      fields: {},
      deleted: true,
      tandemId: undefined,
      version: undefined,
    });
  });

  test('wrong types are refused as fatal', () => {
    for (const bad of [{ name: 5 }, { billing_address: 'London' }, { metadata: { a: 1 } }, { metadata: [] }, { billing_address: { city: 3 } }]) {
      assert.throws(() => normalizeCustomerFields(bad), (e: unknown) => e instanceof ConnectorError && e.kind === 'fatal', JSON.stringify(bad));
    }
  });
});

/** A small deterministic PRNG so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(seed: number, options: { stripeValid: boolean }) {
  const random = rng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const oneOf = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const chars = ['a', 'b', 'c', 'X', 'Y', 'Z', '0', '1', '9', ' ', '-', '_', '.', "'", '"', 'é', '李', 'ü', '&', '/'];
  const word = (min: number, max: number) => Array.from({ length: min + int(max - min + 1) }, () => oneOf(chars)).join('');
  const maybe = (value: () => string): string | null => {
    const roll = random();
    if (roll < 0.2) return null;
    if (roll < 0.3 && !options.stripeValid) return '';
    return value();
  };
  const email = () => `${oneOf(['ada', 'Bob.S', 'x_1'])}${int(1000)}@${oneOf(['example.com', 'Mail.Example.org'])}`;
  const phone = () => `+${int(10)}${String(int(1e9)).padStart(9, '0')}`.slice(0, 20);
  const billingAddress = () => {
    if (random() < 0.25) return null;
    const parts: Record<string, string | null> = {};
    for (const part of ADDRESS_PARTS) {
      parts[part] = part === 'country' ? maybe(() => oneOf(['gb', 'GB', 'Us', 'fr', 'DE'])) : maybe(() => word(1, 20));
    }
    return parts;
  };
  const metadata = () => {
    const out: Record<string, string> = {};
    const count = int(6);
    for (let i = 0; i < count; i += 1) {
      const k = oneOf(['plan', 'tier', 'tandem_id', 'a', 'owner', `k${int(5)}`, 'long_key_name_with_40_characters_exactly']);
      out[k] = random() < 0.15 && !options.stripeValid ? '' : word(1, 30);
    }
    return out;
  };
  const customer = (): Fields => ({
    name: maybe(() => word(1, 40)),
    email: maybe(email),
    phone: maybe(phone),
    billing_address: billingAddress(),
    metadata: metadata(),
  });
  const subset = (fields: Fields): Fields => Object.fromEntries(Object.entries(fields).filter(() => random() < 0.5));
  return { customer, subset };
}

describe('stripe mapping: random round trips (model of Stripe)', () => {
  test('fromStripe(toStripe(x)) = normalize(x), normalize is idempotent, normalised values are fixed points', () => {
    for (let seed = 1; seed <= 300; seed += 1) {
      const { customer, subset } = generator(seed, { stripeValid: false });
      const x = customer();
      const normal = normalizeCustomerFields(x);
      assert.deepEqual(normalizeCustomerFields(normal), normal, `idempotent (seed ${seed})`);
      const stored = applyParams(EMPTY, customerCreateParams('rec_1', x));
      assert.deepEqual(read(stored), normal, `create (seed ${seed})`);
      assert.deepEqual(read(applyParams(EMPTY, customerCreateParams('rec_1', normal))), normal, `fixed point (seed ${seed})`);

      // An update of a random diff toward y: the diff fields become normalize(y), the others stay.
      const y = customer();
      const diff = subset(y);
      for (const previous of [normal['metadata'] as Record<string, string>, stored.metadata]) {
        const updated = applyParams(stored, customerUpdateParams(diff, previous));
        assert.deepEqual(read(updated), { ...normal, ...normalizeCustomerFields(diff) }, `update (seed ${seed})`);
        assert.equal(updated.metadata['tandem_id'], 'rec_1', `tandem_id kept (seed ${seed})`);
      }
    }
  });
});

describe('stripe mapping: random round trips through the simulator', () => {
  let sim: StripeSimulator;
  before(async () => {
    sim = await startStripeSimulator({ rateLimitPerSecond: 0 });
  });
  after(async () => {
    await sim.stop();
  });

  test('what the simulator stores reads back as normalize(x)', async () => {
    const sdk = stripeClient(sim, testKey());
    for (let seed = 1; seed <= 25; seed += 1) {
      const { customer, subset } = generator(1000 + seed, { stripeValid: true });
      const x = customer();
      const created = await sdk.customers.create(customerCreateParams('rec_1', x));
      assert.deepEqual({ ...customerFieldsFromStripe(created) }, normalizeCustomerFields(x), `create (seed ${seed})`);
      const diff = subset(customer());
      const updated = await sdk.customers.update(created.id, customerUpdateParams(diff, customerFieldsFromStripe(created).metadata));
      assert.deepEqual(
        { ...customerFieldsFromStripe(updated) },
        { ...normalizeCustomerFields(x), ...normalizeCustomerFields(diff) },
        `update (seed ${seed})`,
      );
      assert.equal(updated.metadata['tandem_id'], 'rec_1');
    }
  });
});
