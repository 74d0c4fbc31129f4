// Request parameters as Stripe reads them: form-encoded bodies (POST) and query strings (GET,
// DELETE) with nested keys (`metadata[k]=v`, `address[city]=…`, `expand[0]=…`), parsed by `qs`
// (the encoding stripe-node produces). Every value arrives as a string; an empty string means
// "clear this field" (or "remove this metadata key"). Unknown parameters are refused like Stripe
// refuses them, naming the parameter with its brackets (`address[foo]`).
import qs from 'qs';
import { invalidParam, missingParam, unknownParam } from './errors.ts';

export type RawParams = Record<string, unknown>;

/** Parses a form body or a query string (without the leading `?`). */
export function parseForm(text: string): RawParams {
  if (text === '') return Object.create(null) as RawParams;
  return qs.parse(text, {
    // Arrays stay objects keyed by index ({0: 'a'}), so a metadata key "0" stays a key; readers
    // that want an array turn the object into one.
    parseArrays: false,
    plainObjects: true,
    depth: 5,
    parameterLimit: 10_000,
    duplicates: 'last',
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Reads typed values out of parsed parameters, remembering the path for error messages. */
export class ParamReader {
  readonly #raw: Record<string, unknown>;
  readonly #prefix: string;

  constructor(raw: Record<string, unknown>, prefix = '') {
    this.#raw = raw;
    this.#prefix = prefix;
  }

  /** The name Stripe gives a parameter in errors: `address[city]`. */
  name(key: string): string {
    return this.#prefix === '' ? key : `${this.#prefix}[${key}]`;
  }

  keys(): string[] {
    return Object.keys(this.#raw);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.#raw, key);
  }

  /** Refuses any parameter outside `allowed` (Stripe's `parameter_unknown`). */
  allow(allowed: readonly string[]): this {
    for (const key of Object.keys(this.#raw)) {
      if (!allowed.includes(key)) throw unknownParam(this.name(key));
    }
    return this;
  }

  /** A string; `null` for an empty string (clear); `undefined` when absent. */
  string(key: string, options: { max?: number } = {}): string | null | undefined {
    if (!this.has(key)) return undefined;
    const value = this.#raw[key];
    if (typeof value !== 'string') throw invalidParam(`Invalid string: ${describe(value)}`, this.name(key));
    if (value === '') return null;
    if (options.max !== undefined && value.length > options.max) {
      throw invalidParam(
        `Invalid ${this.name(key)}: must be at most ${options.max} characters`,
        this.name(key),
        'string_length_exceeded',
      );
    }
    return value;
  }

  requiredString(key: string, options: { max?: number } = {}): string {
    const value = this.string(key, options);
    if (value === undefined || value === null) throw missingParam(this.name(key));
    return value;
  }

  /** One of `values`; `null` for an empty string, `undefined` when absent. */
  oneOf<T extends string>(key: string, values: readonly T[]): T | null | undefined {
    const value = this.string(key);
    if (value === undefined || value === null) return value;
    if (!(values as readonly string[]).includes(value)) {
      throw invalidParam(`Invalid ${this.name(key)}: must be one of ${values.join(', ')}`, this.name(key));
    }
    return value as T;
  }

  integer(key: string, options: { min?: number; max?: number } = {}): number | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    if (value === null || !/^-?\d+$/.test(value)) throw invalidParam(`Invalid integer: ${value ?? ''}`, this.name(key));
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw invalidParam(`Invalid integer: ${value}`, this.name(key));
    if ((options.min !== undefined && n < options.min) || (options.max !== undefined && n > options.max)) {
      throw invalidParam(
        `Invalid ${this.name(key)}: must be between ${options.min ?? '-∞'} and ${options.max ?? '∞'}`,
        this.name(key),
      );
    }
    return n;
  }

  boolean(key: string): boolean | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw invalidParam(`Invalid boolean: ${value ?? ''}`, this.name(key));
  }

  /** An array sent as `k[0]=a&k[1]=b` (or `k[]=a`); an empty string is the empty array. */
  stringArray(key: string, options: { max?: number } = {}): string[] | undefined {
    if (!this.has(key)) return undefined;
    const value = this.#raw[key];
    if (value === '') return [];
    if (!isObject(value)) throw invalidParam(`Invalid array`, this.name(key));
    const entries = Object.entries(value);
    const out: string[] = [];
    for (const [index, item] of entries.sort(([a], [b]) => Number(a) - Number(b))) {
      if (!/^\d+$/.test(index)) throw invalidParam(`Invalid array`, this.name(key));
      if (typeof item !== 'string') throw invalidParam(`Invalid string: ${describe(item)}`, `${this.name(key)}[${index}]`);
      out.push(item);
    }
    if (options.max !== undefined && out.length > options.max) {
      throw invalidParam(`Invalid ${this.name(key)}: at most ${options.max} values`, this.name(key));
    }
    return out;
  }

  /** A nested hash; `null` for an empty string (clear the whole object); `undefined` when absent. */
  object(key: string): ParamReader | null | undefined {
    if (!this.has(key)) return undefined;
    const value = this.#raw[key];
    if (value === '') return null;
    if (!isObject(value)) throw invalidParam(`Invalid hash`, this.name(key));
    return new ParamReader(value, this.name(key));
  }

  /**
   * Metadata as Stripe takes it: `null` clears all of it (`metadata=`), a key whose value is the
   * empty string is removed (its entry is `null` here). Checks Stripe's limits on this request's
   * keys; `checkMetadataSize` checks the merged result.
   */
  metadata(key: string): Record<string, string | null> | null | undefined {
    const reader = this.object(key);
    if (reader === undefined || reader === null) return reader;
    const out: Record<string, string | null> = {};
    for (const metaKey of reader.keys()) {
      const param = reader.name(metaKey);
      const value = reader.#raw[metaKey];
      if (typeof value !== 'string') {
        throw invalidParam(`Invalid value for ${param}: metadata values must be strings (and keys cannot contain square brackets).`, param);
      }
      if (metaKey.length > 40) {
        throw invalidParam(`Invalid metadata: keys can be a maximum of 40 characters. (${metaKey})`, param);
      }
      if (value.length > 500) {
        throw invalidParam(`Invalid metadata: values can be a maximum of 500 characters. (${metaKey})`, param);
      }
      out[metaKey] = value === '' ? null : value;
    }
    return out;
  }
}

/** Applies a metadata update to the stored metadata (null clears all; null values remove keys). */
export function mergeMetadata(
  current: Readonly<Record<string, string>>,
  update: Record<string, string | null> | null | undefined,
  param = 'metadata',
): Record<string, string> {
  if (update === undefined) return { ...current };
  if (update === null) return {};
  const next: Record<string, string> = { ...current };
  for (const [key, value] of Object.entries(update)) {
    if (value === null) Reflect.deleteProperty(next, key);
    else next[key] = value;
  }
  if (Object.keys(next).length > 50) {
    throw invalidParam('Invalid metadata: metadata can have a maximum of 50 keys.', param);
  }
  return next;
}

/** `expand[]` is accepted everywhere and ignored (the simulated objects have nothing to expand). */
export const COMMON_PARAMS = ['expand'] as const;
