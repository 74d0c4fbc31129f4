// The SOQL subset the simulator answers: SELECT field list (parent fields such as `Account.Name`
// and `COUNT()` too) FROM one object, WHERE with = != <> < <= > >= LIKE IN / NOT IN, AND / OR /
// NOT and parentheses, string / number / boolean / null / datetime literals and the date literals
// TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n; ORDER BY (ASC/DESC, NULLS FIRST/LAST),
// LIMIT and OFFSET. Keywords, field and object names are case-insensitive; text compares
// case-insensitively, as in Salesforce.
import { SalesforceError, malformedQuery } from './errors.ts';
import { findSObject, type FieldDef, type SObjectDef } from './schema.ts';
import { fieldValue, type StoredRecord, type Value } from './store.ts';
import { parseDateTime } from './time.ts';

type Literal =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'null' }
  | { kind: 'datetime'; ms: number }
  | { kind: 'date'; text: string }
  | { kind: 'range'; name: string; startMs: number; endMs: number };

export type Condition =
  | { kind: 'and' | 'or'; items: Condition[] }
  | { kind: 'not'; item: Condition }
  | { kind: 'compare'; path: FieldPath; op: '=' | '!=' | '<' | '<=' | '>' | '>='; value: Literal }
  | { kind: 'in'; path: FieldPath; negated: boolean; values: Literal[] }
  | { kind: 'like'; path: FieldPath; pattern: RegExp };

/** A field of the queried object, or of its parent through a relationship (`Account.Name`). */
export interface FieldPath {
  text: string;
  relationship: { name: string; field: FieldDef; parent: SObjectDef } | undefined;
  field: FieldDef;
}

export interface ParsedQuery {
  sobject: SObjectDef;
  count: boolean;
  fields: FieldPath[];
  where: Condition | undefined;
  orderBy: { path: FieldPath; descending: boolean; nullsFirst: boolean }[];
  limit: number | undefined;
  offset: number;
}

interface Token {
  kind: 'word' | 'string' | 'number' | 'op' | 'punct' | 'datetime' | 'date';
  text: string;
  pos: number;
}

const TOKEN = /\s*(?:('(?:[^'\\]|\\.)*')|(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))|(\d{4}-\d{2}-\d{2})(?![\d:T])|(-?\d+(?:\.\d+)?)(?![\w-])|(!=|<>|<=|>=|=|<|>)|([(),:])|([A-Za-z_][\w.]*))/y;

function tokenize(soql: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < soql.length) {
    if (/^\s*$/.test(soql.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(soql);
    if (m === null) throw malformedQuery(`unexpected token: '${soql.slice(pos).trim().split(/\s+/)[0] ?? ''}'`);
    const start = pos + (m[0].length - m[0].trimStart().length);
    if (m[1] !== undefined) tokens.push({ kind: 'string', text: m[1], pos: start });
    else if (m[2] !== undefined) tokens.push({ kind: 'datetime', text: m[2], pos: start });
    else if (m[3] !== undefined) tokens.push({ kind: 'date', text: m[3], pos: start });
    else if (m[4] !== undefined) tokens.push({ kind: 'number', text: m[4], pos: start });
    else if (m[5] !== undefined) tokens.push({ kind: 'op', text: m[5], pos: start });
    else if (m[6] !== undefined) tokens.push({ kind: 'punct', text: m[6], pos: start });
    else if (m[7] !== undefined) tokens.push({ kind: 'word', text: m[7], pos: start });
    pos = TOKEN.lastIndex;
  }
  return tokens;
}

function unescape(quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', b: '\b', f: '\f' })[c] ?? c);
}

const DAY = 24 * 60 * 60 * 1000;

function dateRange(name: string, n: number | undefined, nowMs: number): Literal | undefined {
  const today = Math.floor(nowMs / DAY) * DAY;
  switch (name) {
    case 'TODAY': return { kind: 'range', name, startMs: today, endMs: today + DAY };
    case 'YESTERDAY': return { kind: 'range', name, startMs: today - DAY, endMs: today };
    case 'TOMORROW': return { kind: 'range', name, startMs: today + DAY, endMs: today + 2 * DAY };
    case 'LAST_N_DAYS': return n === undefined ? undefined : { kind: 'range', name, startMs: today - n * DAY, endMs: today + DAY };
    case 'NEXT_N_DAYS': return n === undefined ? undefined : { kind: 'range', name, startMs: today + DAY, endMs: today + (n + 1) * DAY };
    default: return undefined;
  }
}

class Parser {
  readonly #tokens: Token[];
  readonly #nowMs: number;
  #i = 0;
  sobject: SObjectDef | undefined;

  constructor(soql: string, nowMs: number) {
    this.#tokens = tokenize(soql);
    this.#nowMs = nowMs;
  }

  peek(): Token | undefined {
    return this.#tokens[this.#i];
  }

  next(): Token {
    const t = this.#tokens[this.#i];
    if (t === undefined) throw malformedQuery('unexpected end of query');
    this.#i += 1;
    return t;
  }

  isWord(word: string, offset = 0): boolean {
    const t = this.#tokens[this.#i + offset];
    return t?.kind === 'word' && t.text.toUpperCase() === word;
  }

  expectWord(word: string): void {
    const t = this.peek();
    if (!this.isWord(word)) throw malformedQuery(t === undefined ? `expecting '${word}', found end of query` : `unexpected token: '${t.text}'`);
    this.#i += 1;
  }

  expectPunct(p: string): void {
    const t = this.next();
    if (t.kind !== 'punct' || t.text !== p) throw malformedQuery(`unexpected token: '${t.text}'`);
  }

  done(): boolean {
    return this.#i >= this.#tokens.length;
  }

  /** Resolves a field name (`Name`, `Account.Name`) against the queried object. */
  path(text: string): FieldPath {
    const def = this.sobject;
    if (def === undefined) throw malformedQuery('no object');
    const parts = text.split('.');
    const noColumn = (): SalesforceError =>
      new SalesforceError(400, 'INVALID_FIELD', `No such column '${text}' on entity '${def.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.`);
    if (parts.length === 1) {
      const f = def.byName.get(text.toLowerCase());
      if (f === undefined) throw noColumn();
      return { text: f.name, relationship: undefined, field: f };
    }
    if (parts.length === 2) {
      const [rel = '', name = ''] = parts;
      const ref = def.fields.find((f) => f.relationshipName?.toLowerCase() === rel.toLowerCase());
      const parent = ref?.referenceTo[0] === undefined ? undefined : findSObject(ref.referenceTo[0]);
      const f = parent?.byName.get(name.toLowerCase());
      if (ref === undefined || parent === undefined || f === undefined || ref.relationshipName === null) {
        throw new SalesforceError(400, 'INVALID_FIELD', `Didn't understand relationship '${rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.`);
      }
      return { text: `${ref.relationshipName}.${f.name}`, relationship: { name: ref.relationshipName, field: ref, parent }, field: f };
    }
    throw noColumn();
  }

  literal(): Literal {
    const t = this.next();
    switch (t.kind) {
      case 'string': return { kind: 'string', value: unescape(t.text) };
      case 'number': return { kind: 'number', value: Number(t.text) };
      case 'datetime': {
        const ms = parseDateTime(t.text);
        if (ms === undefined) throw malformedQuery(`line 1:${t.pos} no viable alternative at character '${t.text}'`);
        return { kind: 'datetime', ms };
      }
      case 'date': return { kind: 'date', text: t.text };
      case 'word': {
        const upper = t.text.toUpperCase();
        if (upper === 'NULL') return { kind: 'null' };
        if (upper === 'TRUE' || upper === 'FALSE') return { kind: 'boolean', value: upper === 'TRUE' };
        let n: number | undefined;
        if (this.peek()?.text === ':') {
          this.next();
          const num = this.next();
          if (num.kind !== 'number' || !/^\d+$/.test(num.text)) throw malformedQuery(`unexpected token: '${num.text}'`);
          n = Number(num.text);
        }
        const range = dateRange(upper, n, this.#nowMs);
        if (range === undefined) throw malformedQuery(`unexpected token: '${t.text}'`);
        return range;
      }
      default:
        throw malformedQuery(`unexpected token: '${t.text}'`);
    }
  }

  condition(): Condition {
    const items = [this.conjunction()];
    while (this.isWord('OR')) {
      this.next();
      items.push(this.conjunction());
    }
    return items.length === 1 && items[0] !== undefined ? items[0] : { kind: 'or', items };
  }

  conjunction(): Condition {
    const items = [this.unary()];
    while (this.isWord('AND')) {
      this.next();
      items.push(this.unary());
    }
    return items.length === 1 && items[0] !== undefined ? items[0] : { kind: 'and', items };
  }

  unary(): Condition {
    if (this.isWord('NOT')) {
      this.next();
      return { kind: 'not', item: this.unary() };
    }
    if (this.peek()?.text === '(') {
      this.next();
      const inner = this.condition();
      this.expectPunct(')');
      return inner;
    }
    const t = this.next();
    if (t.kind !== 'word') throw malformedQuery(`unexpected token: '${t.text}'`);
    const path = this.path(t.text);
    if (this.isWord('LIKE')) {
      this.next();
      const value = this.literal();
      if (value.kind !== 'string') throw malformedQuery('LIKE takes a quoted string');
      if (!['string', 'textarea', 'phone', 'url', 'email', 'picklist', 'id', 'reference'].includes(path.field.type)) {
        throw new SalesforceError(400, 'INVALID_FIELD', `invalid operator on ${path.field.type} field: ${path.text}`);
      }
      const source = value.value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '[\\s\\S]*').replace(/_/g, '[\\s\\S]');
      return { kind: 'like', path, pattern: new RegExp(`^${source}$`, 'i') };
    }
    const negated = this.isWord('NOT') && this.isWord('IN', 1);
    if (negated) this.next();
    if (this.isWord('IN')) {
      this.next();
      this.expectPunct('(');
      const values = [this.literal()];
      while (this.peek()?.text === ',') {
        this.next();
        values.push(this.literal());
      }
      this.expectPunct(')');
      for (const v of values) checkLiteral(path, v);
      return { kind: 'in', path, negated, values };
    }
    const op = this.next();
    if (op.kind !== 'op') throw malformedQuery(`unexpected token: '${op.text}'`);
    const value = this.literal();
    checkLiteral(path, value);
    return { kind: 'compare', path, op: op.text === '<>' ? '!=' : (op.text as '=' | '!=' | '<' | '<=' | '>' | '>='), value };
  }
}

function checkLiteral(path: FieldPath, value: Literal): void {
  if (value.kind === 'null') return;
  const type = path.field.type;
  const bad = (want: string, quoted: boolean): SalesforceError =>
    new SalesforceError(400, 'INVALID_FIELD', `value of filter criterion for field '${path.text}' must be of type ${want} and should ${quoted ? '' : 'not '}be enclosed in quotes`);
  if (type === 'datetime' && value.kind !== 'datetime' && value.kind !== 'range') throw bad('dateTime', false);
  if (type === 'boolean' && value.kind !== 'boolean') throw bad('boolean', false);
  if (type !== 'datetime' && type !== 'boolean' && value.kind !== 'string') throw bad('string', true);
}

/** Parses SOQL; throws MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE as Salesforce does. */
export function parseSoql(soql: string, nowMs: number): ParsedQuery {
  const p = new Parser(soql, nowMs);
  p.expectWord('SELECT');
  const rawFields: string[] = [];
  let count = false;
  if (p.isWord('COUNT') && p.peek()?.kind === 'word') {
    p.next();
    p.expectPunct('(');
    p.expectPunct(')');
    count = true;
  } else {
    for (;;) {
      const t = p.next();
      if (t.kind !== 'word' || t.text.toUpperCase() === 'FROM') throw malformedQuery(`unexpected token: '${t.text}'`);
      rawFields.push(t.text);
      if (p.peek()?.text !== ',') break;
      p.next();
    }
  }
  p.expectWord('FROM');
  const from = p.next();
  const sobject = from.kind === 'word' ? findSObject(from.text) : undefined;
  if (sobject === undefined) {
    throw new SalesforceError(400, 'INVALID_TYPE', `\n${soql.slice(0, 200)}\n${' '.repeat(Math.max(0, from.pos))}^\nERROR at Row:1:Column:${from.pos + 1}\nsObject type '${from.text}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.`);
  }
  p.sobject = sobject;
  const fields: FieldPath[] = [];
  for (const raw of rawFields) {
    const path = p.path(raw);
    if (fields.some((f) => f.text.toLowerCase() === path.text.toLowerCase())) throw malformedQuery(`duplicate field selected: ${path.text}`);
    fields.push(path);
  }
  let where: Condition | undefined;
  if (p.isWord('WHERE')) {
    p.next();
    where = p.condition();
  }
  const orderBy: ParsedQuery['orderBy'] = [];
  if (p.isWord('ORDER')) {
    p.next();
    p.expectWord('BY');
    for (;;) {
      const t = p.next();
      if (t.kind !== 'word') throw malformedQuery(`unexpected token: '${t.text}'`);
      const path = p.path(t.text);
      let descending = false;
      if (p.isWord('ASC') || p.isWord('DESC')) descending = p.next().text.toUpperCase() === 'DESC';
      let nullsFirst = !descending;
      if (p.isWord('NULLS')) {
        p.next();
        const which = p.next().text.toUpperCase();
        if (which !== 'FIRST' && which !== 'LAST') throw malformedQuery(`unexpected token: '${which}'`);
        nullsFirst = which === 'FIRST';
      }
      orderBy.push({ path, descending, nullsFirst });
      if (p.peek()?.text !== ',') break;
      p.next();
    }
  }
  let limit: number | undefined;
  let offset = 0;
  for (;;) {
    if (p.isWord('LIMIT') && limit === undefined) {
      p.next();
      const n = p.next();
      if (n.kind !== 'number' || !/^\d+$/.test(n.text)) throw malformedQuery(`unexpected token: '${n.text}'`);
      limit = Number(n.text);
    } else if (p.isWord('OFFSET')) {
      p.next();
      const n = p.next();
      if (n.kind !== 'number' || !/^\d+$/.test(n.text)) throw malformedQuery(`unexpected token: '${n.text}'`);
      offset = Number(n.text);
      if (offset > 2000) throw new SalesforceError(400, 'NUMBER_OUTSIDE_VALID_RANGE', `Maximum SOQL offset allowed is 2000`);
    } else break;
  }
  if (!p.done()) throw malformedQuery(`unexpected token: '${p.peek()?.text ?? ''}'`);
  return { sobject, count, fields, where, orderBy, limit, offset };
}

/** Looks up a parent record (for `Account.Name`), or undefined. */
export type ParentLookup = (type: string, id: string) => StoredRecord | undefined;

function valueAt(record: StoredRecord, path: FieldPath, parentOf: ParentLookup): Value {
  if (path.relationship === undefined) return record.values[path.field.name] ?? null;
  const parentId = record.values[path.relationship.field.name];
  if (typeof parentId !== 'string') return null;
  const parent = parentOf(path.relationship.parent.name, parentId);
  return parent?.values[path.field.name] ?? null;
}

function compareValues(a: Value, b: Value): number {
  if (typeof a === 'string' && typeof b === 'string') {
    const x = a.toLowerCase();
    const y = b.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return String(a).localeCompare(String(b));
}

function literalValue(l: Literal): Value {
  switch (l.kind) {
    case 'string': return l.value;
    case 'number': return l.value;
    case 'boolean': return l.value;
    case 'datetime': return l.ms;
    case 'null': return null;
    default: return null;
  }
}

function compare(actual: Value, op: string, l: Literal): boolean {
  if (l.kind === 'null') return op === '=' ? actual === null : op === '!=' ? actual !== null : false;
  if (l.kind === 'range') {
    if (typeof actual !== 'number') return op === '!=';
    switch (op) {
      case '=': return actual >= l.startMs && actual < l.endMs;
      case '!=': return actual < l.startMs || actual >= l.endMs;
      case '<': return actual < l.startMs;
      case '<=': return actual < l.endMs;
      case '>': return actual >= l.endMs;
      default: return actual >= l.startMs;
    }
  }
  const expected = literalValue(l);
  if (actual === null) return op === '!=';
  const c = compareValues(actual, expected);
  switch (op) {
    case '=': return c === 0;
    case '!=': return c !== 0;
    case '<': return c < 0;
    case '<=': return c <= 0;
    case '>': return c > 0;
    default: return c >= 0;
  }
}

/**
 * An `IN` list of string literals as a set of their lower-case forms (string comparison ignores
 * case), made once per parsed condition: a lookup of 200 ids in 10,000 rows is then 10,000 set probes,
 * not two million comparisons. Null when the list holds anything but strings.
 */
const stringSets = new WeakMap<Literal[], Set<string> | null>();
function stringSetOf(values: Literal[]): Set<string> | null {
  let set = stringSets.get(values);
  if (set === undefined) {
    set = values.every((v) => v.kind === 'string') ? new Set(values.map((v) => v.value.toLowerCase())) : null;
    stringSets.set(values, set);
  }
  return set;
}

export function matches(cond: Condition, record: StoredRecord, parentOf: ParentLookup): boolean {
  switch (cond.kind) {
    case 'and': return cond.items.every((c) => matches(c, record, parentOf));
    case 'or': return cond.items.some((c) => matches(c, record, parentOf));
    case 'not': return !matches(cond.item, record, parentOf);
    case 'compare': return compare(valueAt(record, cond.path, parentOf), cond.op, cond.value);
    case 'in': {
      const actual = valueAt(record, cond.path, parentOf);
      const strings = typeof actual === 'string' ? stringSetOf(cond.values) : null;
      const found = strings === null ? cond.values.some((v) => compare(actual, '=', v)) : strings.has(String(actual).toLowerCase());
      return cond.negated ? !found : found;
    }
    case 'like': {
      const actual = valueAt(record, cond.path, parentOf);
      return typeof actual === 'string' && cond.pattern.test(actual);
    }
  }
}

/** Runs a parsed query over the object's records (deleted ones only when `includeDeleted`). */
export function execute(q: ParsedQuery, records: StoredRecord[], includeDeleted: boolean, parentOf: ParentLookup): StoredRecord[] {
  let rows = records.filter((r) => (includeDeleted || r.deletedAtMs === undefined) && (q.where === undefined || matches(q.where, r, parentOf)));
  if (q.orderBy.length > 0) {
    rows = [...rows].sort((a, b) => {
      for (const o of q.orderBy) {
        const x = valueAt(a, o.path, parentOf);
        const y = valueAt(b, o.path, parentOf);
        if (x === null && y === null) continue;
        if (x === null) return o.nullsFirst ? -1 : 1;
        if (y === null) return o.nullsFirst ? 1 : -1;
        const c = compareValues(x, y);
        if (c !== 0) return o.descending ? -c : c;
      }
      return 0;
    });
  }
  const end = q.limit === undefined ? undefined : q.offset + q.limit;
  return rows.slice(q.offset, end);
}

/** A row as the query resource shows it: selected fields in order, parent fields nested. */
export function projectRow(q: ParsedQuery, record: StoredRecord, base: string, parentOf: ParentLookup): Record<string, unknown> {
  const out: Record<string, unknown> = { attributes: { type: q.sobject.name, url: `${base}/sobjects/${q.sobject.name}/${record.id}` } };
  for (const path of q.fields) {
    if (path.relationship === undefined) {
      out[path.field.name] = fieldValue(path.field, record.values[path.field.name]);
      continue;
    }
    const rel = path.relationship;
    const parentId = record.values[rel.field.name];
    const parent = typeof parentId === 'string' ? parentOf(rel.parent.name, parentId) : undefined;
    if (parent === undefined) {
      out[rel.name] = null;
      continue;
    }
    const nested = (out[rel.name] ?? { attributes: { type: rel.parent.name, url: `${base}/sobjects/${rel.parent.name}/${parent.id}` } }) as Record<string, unknown>;
    nested[path.field.name] = fieldValue(path.field, parent.values[path.field.name]);
    out[rel.name] = nested;
  }
  return out;
}
