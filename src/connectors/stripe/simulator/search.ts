// A subset of Stripe's Search Query Language for customers: clauses `field:value` (exact,
// case-insensitive), `field~value` (substring, 3+ characters), `created>…`/`<`/`>=`/`<=`, negation
// with `-`, joined by AND or OR (not both), on `email`, `name`, `phone`, `created` and
// `metadata['key']`. Results come as `{object:'search_result', data, has_more, next_page, url}`
// and page with the opaque `page` token.
import { invalidParam } from './errors.ts';

type Operator = ':' | '~' | '>' | '<' | '>=' | '<=';

interface Clause {
  negated: boolean;
  field: string;
  /** The metadata key for `metadata['key']`. */
  metadataKey: string | undefined;
  operator: Operator;
  value: string;
}

export interface SearchQuery {
  clauses: Clause[];
  join: 'AND' | 'OR';
}

const FIELDS = ['email', 'name', 'phone', 'created', 'metadata'] as const;

function fail(message: string): never {
  throw invalidParam(`Invalid query: ${message}`, 'query', 'search_query_invalid');
}

export function parseSearchQuery(text: string): SearchQuery {
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i] ?? '')) i += 1;
  };
  const readQuoted = (): string => {
    const quote = text[i];
    if (quote !== "'" && quote !== '"') fail(`expected a quoted value at position ${i}`);
    i += 1;
    let out = '';
    while (i < text.length && text[i] !== quote) {
      if (text[i] === '\\' && i + 1 < text.length) i += 1;
      out += text[i] ?? '';
      i += 1;
    }
    if (i >= text.length) fail('unterminated quoted value');
    i += 1;
    return out;
  };
  const clauses: Clause[] = [];
  const joins = new Set<'AND' | 'OR'>();
  skipSpace();
  if (i >= text.length) fail('the query is empty');
  for (;;) {
    skipSpace();
    const negated = text[i] === '-';
    if (negated) i += 1;
    const fieldMatch = /^[a-z_]+/.exec(text.slice(i));
    if (fieldMatch === null) fail(`expected a field at position ${i}`);
    const field = fieldMatch[0];
    i += field.length;
    if (!(FIELDS as readonly string[]).includes(field)) fail(`the field '${field}' is not supported for customers`);
    let metadataKey: string | undefined;
    if (field === 'metadata') {
      if (text[i] !== '[') fail("metadata needs a key: metadata['key']");
      i += 1;
      metadataKey = readQuoted();
      if (text[i] !== ']') fail("expected ']' after the metadata key");
      i += 1;
    }
    const opMatch = /^(>=|<=|:|~|>|<)/.exec(text.slice(i));
    if (opMatch === null) fail(`expected an operator at position ${i}`);
    const operator = opMatch[0] as Operator;
    i += operator.length;
    let value: string;
    if (text[i] === "'" || text[i] === '"') {
      value = readQuoted();
    } else {
      const bare = /^[^\s]+/.exec(text.slice(i));
      if (bare === null) fail(`expected a value at position ${i}`);
      value = bare[0];
      i += value.length;
      if (field !== 'created' && value !== 'null') fail(`string values must be quoted (${value})`);
    }
    if (field === 'created') {
      if (!/^\d+$/.test(value)) fail('created takes a unix timestamp');
      if (operator === '~') fail('created does not support ~');
    } else if (operator !== ':' && operator !== '~') {
      fail(`${field} supports only : and ~`);
    }
    if (operator === '~' && value.length < 3) fail('a substring (~) needs at least 3 characters');
    clauses.push({ negated, field, metadataKey, operator, value });
    skipSpace();
    if (i >= text.length) break;
    const joinMatch = /^(AND|OR)\s/.exec(text.slice(i));
    if (joinMatch === null) fail(`expected AND or OR at position ${i}`);
    joins.add(joinMatch[1] as 'AND' | 'OR');
    i += 3;
  }
  if (joins.size > 1) fail('AND and OR cannot be combined in one query');
  if (clauses.length > 10) fail('at most 10 clauses');
  return { clauses, join: joins.has('OR') ? 'OR' : 'AND' };
}

export interface Searchable {
  email: string | null;
  name: string | null;
  phone: string | null;
  created: number;
  metadata: Readonly<Record<string, string>>;
}

function clauseMatches(clause: Clause, item: Searchable): boolean {
  let actual: string | number | null;
  if (clause.field === 'metadata') actual = item.metadata[clause.metadataKey ?? ''] ?? null;
  else if (clause.field === 'created') actual = item.created;
  else actual = item[clause.field as 'email' | 'name' | 'phone'];
  let result: boolean;
  if (typeof actual === 'number') {
    const wanted = Number(clause.value);
    result =
      clause.operator === '>'
        ? actual > wanted
        : clause.operator === '<'
          ? actual < wanted
          : clause.operator === '>='
            ? actual >= wanted
            : clause.operator === '<='
              ? actual <= wanted
              : actual === wanted;
  } else if (clause.value === 'null' && clause.operator === ':') {
    result = actual === null;
  } else if (actual === null) {
    result = false;
  } else if (clause.operator === '~') {
    result = actual.toLowerCase().includes(clause.value.toLowerCase());
  } else {
    result = actual.toLowerCase() === clause.value.toLowerCase();
  }
  return clause.negated ? !result : result;
}

export function matches(query: SearchQuery, item: Searchable): boolean {
  return query.join === 'AND'
    ? query.clauses.every((c) => clauseMatches(c, item))
    : query.clauses.some((c) => clauseMatches(c, item));
}

/** The opaque `page` token: the offset of the next page, bound to the query it belongs to. */
export function encodePage(query: string, offset: number): string {
  return `page_${Buffer.from(JSON.stringify({ q: query, o: offset })).toString('base64url')}`;
}

export function decodePage(query: string, page: string): number {
  try {
    if (!page.startsWith('page_')) throw new Error('prefix');
    const parsed = JSON.parse(Buffer.from(page.slice(5), 'base64url').toString('utf8')) as { q?: unknown; o?: unknown };
    if (parsed.q !== query || typeof parsed.o !== 'number' || !Number.isInteger(parsed.o) || parsed.o < 0) {
      throw new Error('mismatch');
    }
    return parsed.o;
  } catch {
    throw invalidParam('Invalid page: the page token does not belong to this query.', 'page');
  }
}
