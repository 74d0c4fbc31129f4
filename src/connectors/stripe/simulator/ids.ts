// Stripe-looking identifiers: a prefix and random base-62 characters (`cus_NffrFeUfNV2Hib`).
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

// Random bytes are drawn 4 KiB at a time: a randomBytes() call per id was 3% of the simulator's CPU
// in a burst.
const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let poolAt = 0;

function randomByte(): number {
  if (poolAt === POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolAt = 0;
  }
  const byte = pool[poolAt] ?? 0;
  poolAt += 1;
  return byte;
}

/** `length` random base-62 characters (rejection sampling keeps them uniform). */
export function randomToken(length: number, alphabet: string = ALPHABET): string {
  let out = '';
  const limit = 256 - (256 % alphabet.length);
  while (out.length < length) {
    const byte = randomByte();
    if (byte >= limit) continue;
    out += alphabet[byte % alphabet.length] ?? '';
  }
  return out;
}

/** Lengths of the random part, as real Stripe ids have them. */
export const ID_LENGTHS = {
  cus: 14,
  evt: 24,
  we: 24,
  req: 14,
  acct: 16,
} as const;

export function newId(prefix: keyof typeof ID_LENGTHS): string {
  return `${prefix}_${randomToken(ID_LENGTHS[prefix])}`;
}

export function newWebhookSecret(): string {
  return `whsec_${randomToken(32)}`;
}

/** A customer's invoice prefix: 8 characters of upper-case hex, like `0759376C`. */
export function newInvoicePrefix(): string {
  return randomToken(8, '0123456789ABCDEF');
}
