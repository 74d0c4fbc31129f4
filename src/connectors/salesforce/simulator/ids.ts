// Salesforce record ids: 15 case-sensitive characters (3-char key prefix, 2-char pod, 1 reserved,
// 9-char base-62 counter) plus the 3-character checksum that makes the 18-character form
// case-insensitive-safe: for each 5-character block, bit i is set when character i is A-Z, and the
// 5-bit value indexes `A-Z0-5`.
const CHECKSUM_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The 3-character suffix of a 15-character id. */
export function idChecksum(id15: string): string {
  if (id15.length !== 15) throw new Error(`a Salesforce id has 15 characters before its checksum (got ${id15.length})`);
  let suffix = '';
  for (let block = 0; block < 3; block += 1) {
    let bits = 0;
    for (let i = 0; i < 5; i += 1) {
      const c = id15.charCodeAt(block * 5 + i);
      if (c >= 65 && c <= 90) bits |= 1 << i;
    }
    suffix += CHECKSUM_ALPHABET[bits] ?? '';
  }
  return suffix;
}

/** The 18-character form of a 15- or 18-character id (an 18-character id is returned re-checksummed). */
export function to18(id: string): string {
  const id15 = id.slice(0, 15);
  return id15 + idChecksum(id15);
}

const ID_SHAPE = /^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$/;

/**
 * The canonical 18-character id for what a client sent, or undefined when it is not an id: 15
 * characters, or 18 whose suffix matches the checksum of the first 15 (Salesforce compares the
 * suffix case-insensitively, as it is meant for case-insensitive systems).
 */
export function normalizeId(value: string): string | undefined {
  if (!ID_SHAPE.test(value) && !/^[a-zA-Z0-9]{18}$/.test(value)) return undefined;
  const id15 = value.slice(0, 15);
  if (value.length === 18 && value.slice(15).toUpperCase() !== idChecksum(id15)) return undefined;
  return id15 + idChecksum(id15);
}

/** Makes ids for one key prefix (`001` Account, `003` Contact, `005` User, `00D` Organization). */
export class IdSequence {
  readonly #prefix: string;
  #next: number;

  /** Starts well into the counter so ids carry mixed case, as real ones do (`0015g00000Ks3XbAAJ`). */
  constructor(prefix: string, start = 62 ** 5 * 1337 + 42_424) {
    if (prefix.length !== 3) throw new Error('a key prefix has 3 characters');
    this.#prefix = prefix;
    this.#next = start;
  }

  next(): string {
    let n = this.#next;
    this.#next += 1;
    let digits = '';
    for (let i = 0; i < 9; i += 1) {
      digits = (BASE62[n % 62] ?? '0') + digits;
      n = Math.floor(n / 62);
    }
    // "5g" stands for the pod, "0" is the reserved character, as in real ids (0015g00000AbCdE).
    return to18(`${this.#prefix}5g0${digits}`);
  }
}
