// The org's records: create / update / delete / upsert with Salesforce's validation and errors,
// audit fields, the unique external-id index, the Recycle Bin (deleted rows stay, `IsDeleted`
// true, until purged after 15 days), and an undo journal so an `allOrNone` batch rolls back.
import { SalesforceError, entityDeleted, notFound } from './errors.ts';
import { IdSequence, normalizeId } from './ids.ts';
import { SOBJECTS, type FieldDef, type SObjectDef } from './schema.ts';
import { formatDateTime, parseDateTime, toSecond } from './time.ts';

export type Value = string | boolean | number | null;

export interface StoredRecord {
  type: string;
  id: string;
  /** Canonical field name → value; datetimes as epoch ms. */
  values: Record<string, Value>;
  /** Set while the record is in the Recycle Bin. */
  deletedAtMs: number | undefined;
  /** Bumped on every write (for ETags). */
  version: number;
}

export interface WriteContext {
  userId: string;
  nowMs: number;
  /** When set, every change is recorded here so it can be undone. */
  journal?: JournalEntry[];
}

export interface JournalEntry {
  type: string;
  id: string;
  before: StoredRecord | undefined;
}

export const RECYCLE_BIN_MS = 15 * 24 * 60 * 60 * 1000;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function clone(record: StoredRecord): StoredRecord {
  return { ...record, values: { ...record.values } };
}

export class RecordStore {
  readonly #records = new Map<string, Map<string, StoredRecord>>();
  /** type → field → lower-cased value → id (live records only). */
  readonly #unique = new Map<string, Map<string, Map<string, string>>>();
  readonly #ids = new Map<string, IdSequence>();
  /** Parent id → live children (`type:id`) that point at it through a reference field. */
  readonly #children = new Map<string, Set<string>>();
  /** Latest hard purge from the Recycle Bin (for `earliestDateAvailable`). */
  purgedBeforeMs = 0;

  constructor() {
    for (const def of SOBJECTS.values()) {
      this.#records.set(def.name, new Map());
      this.#unique.set(def.name, new Map(def.fields.filter((f) => f.unique).map((f) => [f.name, new Map<string, string>()])));
      this.#ids.set(def.name, new IdSequence(def.keyPrefix));
    }
  }

  #table(type: string): Map<string, StoredRecord> {
    const table = this.#records.get(type);
    if (table === undefined) throw new Error(`unknown sObject ${type}`);
    return table;
  }

  all(type: string): StoredRecord[] {
    return [...this.#table(type).values()];
  }

  count(type: string): { live: number; deleted: number } {
    let live = 0;
    let deleted = 0;
    for (const r of this.#table(type).values()) {
      if (r.deletedAtMs === undefined) live += 1;
      else deleted += 1;
    }
    return { live, deleted };
  }

  /** The record with this id (15 or 18 characters), deleted ones included. */
  get(type: string, id: string): StoredRecord | undefined {
    const canonical = normalizeId(id);
    return canonical === undefined ? undefined : this.#table(type).get(canonical);
  }

  /** A live record, or the REST errors for a malformed, unknown or deleted id. */
  live(def: SObjectDef, id: string): StoredRecord {
    const canonical = normalizeId(id);
    if (canonical === undefined || !canonical.startsWith(def.keyPrefix)) {
      throw new SalesforceError(404, 'NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${id}`);
    }
    const record = this.#table(def.name).get(canonical);
    if (record === undefined) throw notFound();
    if (record.deletedAtMs !== undefined) throw entityDeleted();
    return record;
  }

  /** Live records whose external-id field equals the value (case-insensitive). */
  byExternalId(def: SObjectDef, field: FieldDef, value: string): StoredRecord[] {
    const index = this.#unique.get(def.name)?.get(field.name);
    if (index !== undefined) {
      const id = index.get(value.toLowerCase());
      const record = id === undefined ? undefined : this.#table(def.name).get(id);
      return record === undefined ? [] : [record];
    }
    const wanted = value.toLowerCase();
    return this.all(def.name).filter((r) => r.deletedAtMs === undefined && typeof r.values[field.name] === 'string' && (r.values[field.name] as string).toLowerCase() === wanted);
  }

  #put(record: StoredRecord, ctx: WriteContext): void {
    const table = this.#table(record.type);
    const before = table.get(record.id);
    ctx.journal?.push({ type: record.type, id: record.id, before: before === undefined ? undefined : clone(before) });
    if (before !== undefined) this.#unindex(before);
    table.set(record.id, record);
    this.#index(record);
  }

  #references(record: StoredRecord): string[] {
    const def = SOBJECTS.get(record.type.toLowerCase());
    const out: string[] = [];
    for (const f of def?.fields ?? []) {
      const value = record.values[f.name];
      if (f.type === 'reference' && f.referenceTo[0] !== 'User' && typeof value === 'string') out.push(value);
    }
    return out;
  }

  #index(record: StoredRecord): void {
    if (record.deletedAtMs !== undefined) return;
    for (const parent of this.#references(record)) {
      let set = this.#children.get(parent);
      if (set === undefined) {
        set = new Set();
        this.#children.set(parent, set);
      }
      set.add(`${record.type}:${record.id}`);
    }
    for (const [field, index] of this.#unique.get(record.type) ?? []) {
      const value = record.values[field];
      if (typeof value === 'string') index.set(value.toLowerCase(), record.id);
    }
  }

  #unindex(record: StoredRecord): void {
    for (const parent of this.#references(record)) {
      const set = this.#children.get(parent);
      set?.delete(`${record.type}:${record.id}`);
      if (set?.size === 0) this.#children.delete(parent);
    }
    for (const [field, index] of this.#unique.get(record.type) ?? []) {
      const value = record.values[field];
      if (typeof value === 'string' && index.get(value.toLowerCase()) === record.id) index.delete(value.toLowerCase());
    }
  }

  /** Undoes journaled changes, newest first. */
  rollback(journal: JournalEntry[]): void {
    for (const entry of [...journal].reverse()) {
      const table = this.#table(entry.type);
      const current = table.get(entry.id);
      if (current !== undefined) this.#unindex(current);
      if (entry.before === undefined) table.delete(entry.id);
      else {
        table.set(entry.id, entry.before);
        this.#index(entry.before);
      }
    }
  }

  /**
   * Validates a write's fields (names case-insensitive) into canonical names and stored values.
   * Throws Salesforce's errors: INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE, STRING_TOO_LONG,
   * INVALID_EMAIL_ADDRESS, MALFORMED_ID, INVALID_TYPE_ON_FIELD_IN_RECORD, INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST.
   */
  #fields(def: SObjectDef, input: Record<string, unknown>, mode: 'create' | 'update'): Record<string, Value> {
    const out: Record<string, Value> = {};
    const readOnly: string[] = [];
    for (const [key, raw] of Object.entries(input)) {
      if (key === 'attributes') continue;
      const f = def.byName.get(key.toLowerCase());
      if (f === undefined) throw new SalesforceError(400, 'INVALID_FIELD', `No such column '${key}' on sobject of type ${def.name}`);
      if (f.type === 'id' && mode === 'update') continue; // the record's own Id in an update body
      if (mode === 'create' ? !f.createable : !f.updateable) {
        readOnly.push(f.name);
        continue;
      }
      out[f.name] = this.#value(def, f, raw);
    }
    if (readOnly.length > 0) {
      throw new SalesforceError(
        400,
        'INVALID_FIELD_FOR_INSERT_UPDATE',
        `Unable to create/update fields: ${readOnly.join(', ')}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
        readOnly,
      );
    }
    return out;
  }

  #value(def: SObjectDef, f: FieldDef, raw: unknown): Value {
    if (raw === null || raw === undefined) return null;
    const wrongType = (): SalesforceError =>
      new SalesforceError(400, 'JSON_PARSER_ERROR', `Cannot deserialize instance of ${f.type === 'boolean' ? 'boolean' : 'string'} from ${typeof raw === 'object' ? 'START_OBJECT' : 'VALUE_' + typeof raw} value ${JSON.stringify(raw)} or request may be missing a required field at [line:1, column:1]`);
    if (f.type === 'boolean') {
      if (typeof raw !== 'boolean') throw wrongType();
      return raw;
    }
    if (f.type === 'datetime') {
      const ms = typeof raw === 'string' ? parseDateTime(raw) : undefined;
      if (ms === undefined) throw new SalesforceError(400, 'JSON_PARSER_ERROR', `Cannot deserialize value of type \`java.util.Date\` from String ${JSON.stringify(raw)}`);
      return toSecond(ms);
    }
    let text: string;
    if (typeof raw === 'string') text = raw;
    else if (typeof raw === 'number' || typeof raw === 'boolean') text = String(raw); // Salesforce coerces scalars into text fields
    else throw wrongType();
    if (text === '') return null; // an empty string clears a text field
    if (f.type === 'reference') {
      const id = normalizeId(text);
      const target = f.referenceTo[0];
      const targetDef = target === undefined ? undefined : SOBJECTS.get(target.toLowerCase());
      if (id === undefined || (targetDef !== undefined && !id.startsWith(targetDef.keyPrefix))) {
        throw new SalesforceError(400, 'MALFORMED_ID', `${f.label}: id value of incorrect type: ${text}`, [f.name]);
      }
      if (targetDef !== undefined) {
        const parent = this.#table(targetDef.name).get(id);
        if (parent === undefined) throw new SalesforceError(400, 'INVALID_CROSS_REFERENCE_KEY', `invalid cross reference id`, []);
        if (parent.deletedAtMs !== undefined) throw new SalesforceError(400, 'ENTITY_IS_DELETED', 'entity is deleted', []);
      }
      return id;
    }
    if (text.length > f.length) {
      throw new SalesforceError(400, 'STRING_TOO_LONG', `${f.label}: data value too large: ${text.length > 80 ? `${text.slice(0, 80)}...` : text} (max length=${f.length})`, [f.name]);
    }
    if (f.type === 'email' && !EMAIL.test(text)) {
      throw new SalesforceError(400, 'INVALID_EMAIL_ADDRESS', `${f.label}: invalid email address: ${text}`, [f.name]);
    }
    return text;
  }

  #checkRequired(def: SObjectDef, values: Record<string, Value>): void {
    const missing = def.fields.filter((f) => f.required && (values[f.name] === null || values[f.name] === undefined)).map((f) => f.name);
    if (missing.length > 0) throw new SalesforceError(400, 'REQUIRED_FIELD_MISSING', `Required fields are missing: [${missing.join(', ')}]`, missing);
  }

  #checkUnique(def: SObjectDef, values: Record<string, Value>, selfId: string | undefined): void {
    for (const [field, index] of this.#unique.get(def.name) ?? []) {
      const value = values[field];
      if (typeof value !== 'string') continue;
      const holder = index.get(value.toLowerCase());
      if (holder !== undefined && holder !== selfId) {
        throw new SalesforceError(400, 'DUPLICATE_VALUE', `duplicate value found: ${field} duplicates value on record with id: ${holder}`, []);
      }
    }
  }

  #derive(def: SObjectDef, values: Record<string, Value>): void {
    if (def.name === 'Contact') {
      values.Name = [values.FirstName, values.LastName].filter((v) => typeof v === 'string' && v !== '').join(' ');
    }
  }

  create(def: SObjectDef, input: Record<string, unknown>, ctx: WriteContext): StoredRecord {
    const given = this.#fields(def, input, 'create');
    const values: Record<string, Value> = {};
    for (const f of def.fields) values[f.name] = f.type === 'boolean' ? false : null;
    Object.assign(values, given);
    const now = toSecond(ctx.nowMs);
    const id = this.#ids.get(def.name)?.next() ?? '';
    Object.assign(values, {
      Id: id,
      IsDeleted: false,
      OwnerId: values.OwnerId ?? ctx.userId,
      CreatedDate: now,
      CreatedById: ctx.userId,
      LastModifiedDate: now,
      LastModifiedById: ctx.userId,
      SystemModstamp: now,
    });
    this.#derive(def, values);
    this.#checkRequired(def, values);
    this.#checkUnique(def, values, undefined);
    const record: StoredRecord = { type: def.name, id, values, deletedAtMs: undefined, version: 1 };
    this.#put(record, ctx);
    return record;
  }

  update(def: SObjectDef, id: string, input: Record<string, unknown>, ctx: WriteContext): StoredRecord {
    const current = this.live(def, id);
    const given = this.#fields(def, input, 'update');
    const values = { ...current.values, ...given };
    const now = toSecond(ctx.nowMs);
    Object.assign(values, { LastModifiedDate: now, LastModifiedById: ctx.userId, SystemModstamp: now });
    this.#derive(def, values);
    this.#checkRequired(def, values);
    this.#checkUnique(def, values, current.id);
    const record: StoredRecord = { ...current, values, version: current.version + 1 };
    this.#put(record, ctx);
    return record;
  }

  /** Moves the record (and, for an Account, its Contacts) to the Recycle Bin. */
  delete(def: SObjectDef, id: string, ctx: WriteContext): StoredRecord {
    const current = this.live(def, id);
    const now = toSecond(ctx.nowMs);
    for (const child of def.children) {
      if (!child.cascadeDelete) continue;
      const childDef = SOBJECTS.get(child.childSObject.toLowerCase());
      if (childDef === undefined) continue;
      for (const key of [...(this.#children.get(current.id) ?? [])]) {
        const [type = '', id = ''] = key.split(':');
        const r = type === childDef.name ? this.#table(type).get(id) : undefined;
        if (r !== undefined && r.deletedAtMs === undefined && r.values[child.field] === current.id) this.#softDelete(r, now, ctx);
      }
    }
    return this.#softDelete(current, now, ctx);
  }

  #softDelete(current: StoredRecord, now: number, ctx: WriteContext): StoredRecord {
    const record: StoredRecord = {
      ...current,
      values: { ...current.values, IsDeleted: true, LastModifiedDate: now, LastModifiedById: ctx.userId, SystemModstamp: now },
      deletedAtMs: now,
      version: current.version + 1,
    };
    this.#put(record, ctx);
    return record;
  }

  /** Removes records deleted more than 15 days ago for good. */
  purge(nowMs: number, olderThanMs = RECYCLE_BIN_MS): number {
    let purged = 0;
    for (const table of this.#records.values()) {
      for (const [id, r] of table) {
        if (r.deletedAtMs !== undefined && nowMs - r.deletedAtMs >= olderThanMs) {
          table.delete(id);
          purged += 1;
        }
      }
    }
    this.purgedBeforeMs = Math.max(this.purgedBeforeMs, nowMs - olderThanMs);
    return purged;
  }

  clear(): void {
    for (const table of this.#records.values()) table.clear();
    this.#children.clear();
    for (const indexes of this.#unique.values()) for (const index of indexes.values()) index.clear();
    this.purgedBeforeMs = 0;
  }
}

/** A record as the REST API shows it: `attributes`, then the fields (all, or the chosen ones). */
export function recordView(def: SObjectDef, record: StoredRecord, base: string, fields?: readonly FieldDef[]): Record<string, unknown> {
  const out: Record<string, unknown> = { attributes: { type: def.name, url: `${base}/sobjects/${def.name}/${record.id}` } };
  for (const f of fields ?? def.fields) out[f.name] = fieldValue(f, record.values[f.name]);
  return out;
}

export function fieldValue(f: FieldDef, value: Value | undefined): unknown {
  if (value === undefined || value === null) return null;
  if (f.type === 'datetime' && typeof value === 'number') return formatDateTime(value);
  return value;
}
