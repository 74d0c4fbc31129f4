// The REST resources under /services/data/vXX.X: versions and resources, describe global and
// describe, sObject rows (create / retrieve / update / delete, by id and by external id, with
// conditional headers), query / queryAll with cursors, sObject Collections, the Composite resource
// (subrequests with `@{ref.path}` references, allOrNone), the `updated` and `deleted` replication
// resources, and limits.
import { createHash, randomBytes } from 'node:crypto';
import { SalesforceError, jsonParserError, malformedQuery, notFound } from './errors.ts';
import { to18 } from './ids.ts';
import type { ApiAllocation } from './limits.ts';
import { describe, describeGlobalEntry, findSObject, SOBJECTS, type FieldDef, type SObjectDef } from './schema.ts';
import { execute, parseSoql, projectRow, type ParentLookup } from './soql.ts';
import { RECYCLE_BIN_MS, recordView, type RecordStore, type JournalEntry, type StoredRecord, type WriteContext } from './store.ts';
import { formatDateTime, parseDateTime } from './time.ts';

export interface RestRequest {
  method: string;
  version: string;
  /** Path segments after `/services/data/vXX.X`, empty ones dropped. */
  segments: string[];
  query: URLSearchParams;
  /** Raw body text ('' when none). */
  body: string;
  header(name: string): string | undefined;
  userId: string;
  nowMs: number;
  /** Inside a Composite call with allOrNone: every change is journaled here (so the call can roll back). */
  journal?: JournalEntry[];
  /** Inside a Composite call with allOrNone: collections behave as allOrNone too. */
  forceAllOrNone?: boolean;
}

export interface RestResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface WriteEvent {
  type: string;
  id: string;
  change: 'CREATE' | 'UPDATE' | 'DELETE';
}

interface Cursor {
  rows: Record<string, unknown>[];
  userId: string;
  lastUsedMs: number;
  batchSize: number;
}

export const MAX_COLLECTION_RECORDS = 200;
/** Composite: subrequests per call, and how many of them may be sObject Collections or queries. */
export const MAX_COMPOSITE_SUBREQUESTS = 25;
export const MAX_COMPOSITE_COLLECTION_OR_QUERY = 5;
const REFERENCE = /@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}/g;
const REFERENCE_ID = /^[A-Za-z0-9][A-Za-z0-9_]*$/;
const PROCESSING_HALTED_ROLLBACK = 'The transaction was rolled back since another operation in the same transaction failed.';
const CURSOR_TTL_MS = 15 * 60 * 1000;
const DAY = 24 * 60 * 60 * 1000;
const REPLICATION_UPDATED_DAYS = 30;

export interface RestOptions {
  store: RecordStore;
  allocation: ApiAllocation;
  /** Default and largest rows per query batch (Salesforce: 2,000; `Sforce-Query-Options: batchSize=` lowers it, down to 200). */
  queryBatchSize: number;
  /** Open query cursors kept per user (Salesforce: 10; the oldest goes first). */
  maxOpenCursors: number;
  /** When the org began (the `deleted` resource never reaches back before it). */
  orgCreatedMs: number;
  /** Called after every committed write (for the change log). */
  onWrite?: (events: WriteEvent[]) => void;
}

function etag(record: StoredRecord): string {
  return `"${createHash('sha1').update(`${record.id}:${String(record.version)}`).digest('base64')}--gzip"`;
}

function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

export class RestApi {
  readonly #o: RestOptions;
  readonly #cursors = new Map<string, Cursor>();
  /** While a Composite call with allOrNone runs: its writes' events, published only when it commits. */
  #heldEvents: WriteEvent[][] | undefined;

  constructor(options: RestOptions) {
    this.#o = options;
  }

  get #store(): RecordStore {
    return this.#o.store;
  }

  /** Reports writes made outside a REST call (the admin's UI-like changes). */
  noteWrites(events: WriteEvent[]): void {
    this.#o.onWrite?.(events);
  }

  /** Reports committed writes (held back while a Composite call with allOrNone may still roll back). */
  #emit(events: WriteEvent[]): void {
    if (events.length === 0) return;
    if (this.#heldEvents !== undefined) this.#heldEvents.push(events);
    else this.#o.onWrite?.(events);
  }

  clearCursors(): void {
    this.#cursors.clear();
  }

  openCursors(): number {
    return this.#cursors.size;
  }

  readonly #parentOf: ParentLookup = (type, id) => this.#store.get(type, id);

  handle(req: RestRequest): RestResponse {
    const s = req.segments;
    const m = req.method;
    const base = `/services/data/v${req.version}`;
    const [first, second, third, fourth] = s;
    if (s.length === 0 && m === 'GET') return { status: 200, body: this.#resources(base) };
    if (first === 'limits' && s.length === 1 && m === 'GET') return { status: 200, body: this.#limits(req.nowMs) };
    if (first === 'sobjects') {
      if (second === undefined) {
        if (m !== 'GET') return this.#methodNotAllowed(m);
        return { status: 200, body: { encoding: 'UTF-8', maxBatchSize: 200, sobjects: [...SOBJECTS.values()].map((d) => describeGlobalEntry(d, base)) } };
      }
      const def = findSObject(second);
      if (def === undefined) throw notFound();
      if (third === undefined) {
        if (m === 'GET') return { status: 200, body: { objectDescribe: describeGlobalEntry(def, base), recentItems: [] } };
        if (m === 'POST') return this.#create(def, req);
        return this.#methodNotAllowed(m);
      }
      if (fourth === undefined) {
        if (third === 'describe' && m === 'GET') return { status: 200, body: describe(def, base) };
        if (third === 'updated' && m === 'GET') return { status: 200, body: this.#updated(def, req) };
        if (third === 'deleted' && m === 'GET') return { status: 200, body: this.#deleted(def, req) };
        return this.#row(def, third, req, base);
      }
      if (s.length === 4) return this.#byExternalId(def, third, fourth, req, base);
      throw notFound();
    }
    if ((first === 'query' || first === 'queryAll') && m === 'GET') {
      if (second === undefined) return { status: 200, body: this.#query(req, first === 'queryAll', base) };
      if (s.length === 2) return { status: 200, body: this.#more(second, req, base) };
    }
    if (first === 'composite' && second === undefined) {
      if (m === 'POST') return this.#composite(req);
      if (m === 'GET') return { status: 200, body: { sobjects: `${base}/composite/sobjects` } };
      return this.#methodNotAllowed(m);
    }
    if (first === 'composite' && second === 'sobjects') {
      if (third === undefined) {
        if (m === 'POST') return this.#collection(req, 'create');
        if (m === 'PATCH') return this.#collection(req, 'update');
        if (m === 'DELETE') return this.#collectionDelete(req);
        return this.#methodNotAllowed(m);
      }
      const def = findSObject(third);
      if (def === undefined) throw notFound();
      if (fourth === undefined && m === 'POST') return this.#collectionRetrieve(def, req, base);
      if (fourth !== undefined && s.length === 4 && m === 'PATCH') return this.#collection(req, 'upsert', def, fourth);
      return this.#methodNotAllowed(m);
    }
    throw notFound();
  }

  #methodNotAllowed(method: string): RestResponse {
    throw new SalesforceError(405, 'METHOD_NOT_ALLOWED', `HTTP Method '${method}' not allowed. Allowed are GET,HEAD,PATCH,POST,DELETE`);
  }

  #resources(base: string): Record<string, string> {
    const names = ['sobjects', 'query', 'queryAll', 'composite', 'limits'];
    return Object.fromEntries(names.map((n) => [n, `${base}/${n}`]));
  }

  #limits(nowMs: number): Record<string, unknown> {
    const used = this.#o.allocation.used(nowMs);
    return { DailyApiRequests: { Max: this.#o.allocation.limit, Remaining: Math.max(0, this.#o.allocation.limit - used) } };
  }

  #json(req: RestRequest): unknown {
    if (req.body.trim() === '') throw jsonParserError('No content to map due to end-of-input');
    try {
      return JSON.parse(req.body) as unknown;
    } catch (error) {
      throw jsonParserError(`Unexpected character: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #object(req: RestRequest): Record<string, unknown> {
    const body = this.#json(req);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw jsonParserError('Cannot deserialize instance of SObject from a non-object value');
    }
    return body as Record<string, unknown>;
  }

  #ctx(req: RestRequest, journal?: JournalEntry[]): WriteContext {
    const j = journal ?? req.journal;
    return j === undefined ? { userId: req.userId, nowMs: req.nowMs } : { userId: req.userId, nowMs: req.nowMs, journal: j };
  }

  #create(def: SObjectDef, req: RestRequest): RestResponse {
    const record = this.#store.create(def, this.#object(req), this.#ctx(req));
    this.#emit([{ type: def.name, id: record.id, change: 'CREATE' }]);
    return { status: 201, body: { id: record.id, success: true, errors: [] } };
  }

  /** If-Match / If-None-Match (Account only, as in Salesforce) and If-Modified-Since / If-Unmodified-Since. */
  #preconditions(def: SObjectDef, record: StoredRecord, req: RestRequest): RestResponse | undefined {
    if (req.method === 'DELETE') return undefined; // Salesforce ignores conditional headers on DELETE
    const modified = record.values.SystemModstamp as number;
    const failed = (): RestResponse => {
      throw new SalesforceError(412, 'PRECONDITION_FAILED', 'The requested resource has been modified since the precondition was set.', undefined, def.name === 'Account' ? { ETag: etag(record) } : {});
    };
    const dateHeader = (name: string): number | undefined => {
      const value = req.header(name);
      if (value === undefined) return undefined;
      const ms = Date.parse(value);
      if (Number.isNaN(ms)) throw new SalesforceError(400, 'INVALID_HEADER_TYPE', `The ${name} header value is not a valid HTTP date: ${value}`);
      return ms;
    };
    if (def.name === 'Account') {
      const ifMatch = req.header('if-match');
      if (ifMatch !== undefined) {
        const tags = ifMatch.split(',').map((t) => t.trim());
        if (!tags.includes('*') && !tags.includes(etag(record))) return failed();
      }
      const ifNoneMatch = req.header('if-none-match');
      if (ifNoneMatch !== undefined) {
        const tags = ifNoneMatch.split(',').map((t) => t.trim());
        if (tags.includes('*') || tags.includes(etag(record))) {
          if (req.method === 'GET' || req.method === 'HEAD') return { status: 304, headers: { ETag: etag(record) } };
          return failed();
        }
      }
    }
    const unmodifiedSince = dateHeader('if-unmodified-since');
    if (unmodifiedSince !== undefined && modified > unmodifiedSince) return failed();
    const modifiedSince = req.method === 'GET' ? dateHeader('if-modified-since') : undefined;
    if (modifiedSince !== undefined && modified <= modifiedSince) return { status: 304, headers: { 'Last-Modified': httpDate(modified) } };
    return undefined;
  }

  #selectFields(def: SObjectDef, req: RestRequest): FieldDef[] | undefined {
    const list = req.query.get('fields');
    if (list === null || list.trim() === '') return undefined;
    return list.split(',').map((name) => {
      const f = def.byName.get(name.trim().toLowerCase());
      if (f === undefined) throw new SalesforceError(400, 'INVALID_FIELD', `No such column '${name.trim()}' on sobject of type ${def.name}`);
      return f;
    });
  }

  #recordHeaders(def: SObjectDef, record: StoredRecord): Record<string, string> {
    const headers: Record<string, string> = { 'Last-Modified': httpDate(record.values.SystemModstamp as number) };
    if (def.name === 'Account') headers.ETag = etag(record);
    return headers;
  }

  #row(def: SObjectDef, id: string, req: RestRequest, base: string): RestResponse {
    const record = this.#store.live(def, id);
    const pre = this.#preconditions(def, record, req);
    if (pre !== undefined) return pre;
    switch (req.method) {
      case 'GET':
        return { status: 200, body: recordView(def, record, base, this.#selectFields(def, req)), headers: this.#recordHeaders(def, record) };
      case 'PATCH': {
        this.#store.update(def, record.id, this.#object(req), this.#ctx(req));
        this.#emit([{ type: def.name, id: record.id, change: 'UPDATE' }]);
        return { status: 204 };
      }
      case 'DELETE': {
        this.#delete(def, record.id, this.#ctx(req));
        return { status: 204 };
      }
      default:
        return this.#methodNotAllowed(req.method);
    }
  }

  #delete(def: SObjectDef, id: string, ctx: WriteContext): void {
    const journal: JournalEntry[] = ctx.journal ?? [];
    const start = journal.length;
    this.#store.delete(def, id, { ...ctx, journal });
    const deleted = journal.slice(start).map((e) => ({ type: e.type, id: e.id, change: 'DELETE' as const }));
    this.#emit(deleted.reverse());
  }

  #externalField(def: SObjectDef, name: string): FieldDef {
    const f = def.byName.get(name.toLowerCase());
    if (f?.externalId !== true && f?.type !== 'id') {
      throw new SalesforceError(404, 'NOT_FOUND', `Provided external ID field does not exist or is not accessible: ${name}`);
    }
    return f;
  }

  #byExternalId(def: SObjectDef, fieldName: string, value: string, req: RestRequest, base: string): RestResponse {
    const f = this.#externalField(def, fieldName);
    if (f.type === 'id') return this.#row(def, value, req, base);
    const found = this.#store.byExternalId(def, f, value);
    if (req.method === 'PATCH') {
      const body = this.#object(req);
      const given = Object.entries(body).find(([k]) => k.toLowerCase() === f.name.toLowerCase());
      if (given !== undefined && given[1] !== value) {
        throw new SalesforceError(400, 'INVALID_FIELD', `The value of the field ${f.name} in the body (${String(given[1])}) doesn't match the value in the URL (${value})`, [f.name]);
      }
      const rest = Object.fromEntries(Object.entries(body).filter(([k]) => k.toLowerCase() !== f.name.toLowerCase()));
      const result = this.#upsertOne(def, f, value, rest, found, this.#ctx(req));
      return this.#upsertResponse(def, req, result);
    }
    if (found.length === 0) throw notFound();
    if (found.length > 1) return { status: 300, body: found.map((r) => `${base}/sobjects/${def.name}/${r.id}`) };
    const [record] = found;
    if (record === undefined) throw notFound();
    return this.#row(def, record.id, req, base);
  }

  #upsertOne(def: SObjectDef, f: FieldDef, value: string, fields: Record<string, unknown>, found: StoredRecord[], ctx: WriteContext): { id: string; created: boolean } {
    if (found.length > 1) {
      throw new SalesforceError(300, 'MULTIPLE_CHOICES', `Multiple records found for ${f.name} = ${value}`);
    }
    const [existing] = found;
    if (existing === undefined) {
      const record = this.#store.create(def, { ...fields, [f.name]: value }, ctx);
      return { id: record.id, created: true };
    }
    this.#store.update(def, existing.id, fields, ctx);
    return { id: existing.id, created: false };
  }

  #upsertResponse(def: SObjectDef, req: RestRequest, result: { id: string; created: boolean }): RestResponse {
    this.#emit([{ type: def.name, id: result.id, change: result.created ? 'CREATE' : 'UPDATE' }]);
    if (result.created) return { status: 201, body: { id: result.id, success: true, errors: [], created: true } };
    // Since API 46.0 an upsert that updates answers 200 with a body; before, 204.
    if (Number(req.version) < 46) return { status: 204 };
    return { status: 200, body: { id: result.id, success: true, errors: [], created: false } };
  }

  #replicationWindow(req: RestRequest, days: number): { start: number; end: number } {
    const startText = req.query.get('start');
    const endText = req.query.get('end');
    if (startText === null || endText === null) throw new SalesforceError(400, 'MISSING_ARGUMENT', 'start and end are required');
    const start = parseDateTime(startText);
    const end = parseDateTime(endText);
    if (start === undefined || end === undefined) throw new SalesforceError(400, 'INVALID_REPLICATION_DATE', 'start and end must be valid dateTime values');
    // Salesforce ignores the seconds: both ends are rounded down to the minute.
    const s = Math.floor(start / 60_000) * 60_000;
    const e = Math.floor(end / 60_000) * 60_000;
    if (e < s) throw new SalesforceError(400, 'INVALID_REPLICATION_DATE', 'end date must be after start date');
    if (req.nowMs - s > days * DAY) throw new SalesforceError(400, 'INVALID_REPLICATION_DATE', `startDate cannot be more than ${days} days ago`);
    return { start: s, end: e };
  }

  #updated(def: SObjectDef, req: RestRequest): { ids: string[]; latestDateCovered: string } {
    const { start, end } = this.#replicationWindow(req, REPLICATION_UPDATED_DAYS);
    const latest = Math.min(end, Math.floor(req.nowMs / 60_000) * 60_000);
    const ids = this.#store
      .all(def.name)
      .filter((r) => r.deletedAtMs === undefined)
      .filter((r) => (r.values.SystemModstamp as number) >= start && (r.values.SystemModstamp as number) < latest)
      .sort((a, b) => (a.values.SystemModstamp as number) - (b.values.SystemModstamp as number))
      .map((r) => r.id);
    return { ids, latestDateCovered: formatDateTime(latest) };
  }

  #deleted(def: SObjectDef, req: RestRequest): Record<string, unknown> {
    this.#store.purge(req.nowMs);
    const { start, end } = this.#replicationWindow(req, RECYCLE_BIN_MS / DAY);
    const latest = Math.min(end, Math.floor(req.nowMs / 60_000) * 60_000);
    const deletedRecords = this.#store
      .all(def.name)
      .filter((r) => r.deletedAtMs !== undefined && r.deletedAtMs >= start && r.deletedAtMs < latest)
      .sort((a, b) => (a.deletedAtMs ?? 0) - (b.deletedAtMs ?? 0))
      .map((r) => ({ id: r.id, deletedDate: formatDateTime(r.deletedAtMs ?? 0) }));
    // As in a real org: the delete log reaches back 15 days, or to the last purge of the Recycle Bin
    // (not to the org's creation: nothing was deleted before it, so nothing can have been missed).
    const earliest = this.#store.purgedBeforeMs;
    return { deletedRecords, earliestDateAvailable: formatDateTime(Math.floor(earliest / 60_000) * 60_000), latestDateCovered: formatDateTime(latest) };
  }

  #batchSize(req: RestRequest): number {
    const options = req.header('sforce-query-options') ?? '';
    const m = /batchSize\s*=\s*(\d+)/i.exec(options);
    const max = this.#o.queryBatchSize;
    if (m === null) return max;
    return Math.min(max, Math.max(Math.min(200, max), Number(m[1])));
  }

  #query(req: RestRequest, all: boolean, base: string): Record<string, unknown> {
    const soql = req.query.get('q');
    if (soql === null || soql.trim() === '') throw malformedQuery('A query string has to be specified');
    const q = parseSoql(soql, req.nowMs);
    const rows = execute(q, this.#store.all(q.sobject.name), all, this.#parentOf);
    if (q.count) return { totalSize: rows.length, done: true, records: [] };
    const projected = rows.map((r) => projectRow(q, r, base, this.#parentOf));
    return this.#page(projected, 0, this.#batchSize(req), req, base, undefined);
  }

  #page(rows: Record<string, unknown>[], from: number, batchSize: number, req: RestRequest, base: string, cursorId: string | undefined): Record<string, unknown> {
    const records = rows.slice(from, from + batchSize);
    const next = from + records.length;
    if (next >= rows.length) {
      if (cursorId !== undefined) this.#cursors.delete(cursorId);
      return { totalSize: rows.length, done: true, records };
    }
    let id = cursorId;
    if (id === undefined) {
      id = to18(`01g5g${randomBytes(8).toString('hex').slice(0, 10)}`);
      this.#cursors.set(id, { rows, userId: req.userId, lastUsedMs: req.nowMs, batchSize });
      const mine = [...this.#cursors].filter(([, c]) => c.userId === req.userId);
      while (mine.length > this.#o.maxOpenCursors) {
        const oldest = mine.shift();
        if (oldest !== undefined) this.#cursors.delete(oldest[0]);
      }
    }
    return { totalSize: rows.length, done: false, nextRecordsUrl: `${base}/query/${id}-${String(next)}`, records };
  }

  #more(locator: string, req: RestRequest, base: string): Record<string, unknown> {
    const m = /^([A-Za-z0-9]{18})-(\d+)$/.exec(locator);
    const invalid = (): SalesforceError => new SalesforceError(400, 'INVALID_QUERY_LOCATOR', 'invalid query locator');
    if (m === null) throw invalid();
    const id = m[1] ?? '';
    const cursor = this.#cursors.get(id);
    if (cursor === undefined || cursor.userId !== req.userId) throw invalid();
    if (req.nowMs - cursor.lastUsedMs > CURSOR_TTL_MS) {
      this.#cursors.delete(id);
      throw invalid();
    }
    const from = Number(m[2]);
    if (from > cursor.rows.length) throw invalid();
    cursor.lastUsedMs = req.nowMs;
    return this.#page(cursor.rows, from, cursor.batchSize, req, base, id);
  }

  #collectionBody(req: RestRequest): { allOrNone: boolean; records: Record<string, unknown>[] } {
    const body = this.#object(req);
    const records = body.records;
    if (!Array.isArray(records)) throw jsonParserError('records must be an array');
    if (records.length > MAX_COLLECTION_RECORDS) {
      throw new SalesforceError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${String(MAX_COLLECTION_RECORDS)} records into this call`);
    }
    return { allOrNone: body.allOrNone === true, records: records as Record<string, unknown>[] };
  }

  #typeOf(record: Record<string, unknown>, fallback?: SObjectDef): SObjectDef {
    const attributes = record.attributes as { type?: unknown } | undefined;
    const name = typeof attributes?.type === 'string' ? attributes.type : undefined;
    if (name === undefined) {
      if (fallback !== undefined) return fallback;
      throw new SalesforceError(400, 'INVALID_TYPE', 'Must send a concrete entity type.');
    }
    const def = findSObject(name);
    if (def === undefined) throw new SalesforceError(400, 'INVALID_TYPE', `sObject type '${name}' is not supported.`);
    return def;
  }

  /** Runs one write per record; with allOrNone, the first failure rolls back every change of the call. */
  #runBatch(req: RestRequest, requestedAllOrNone: boolean, items: unknown[], one: (item: unknown, ctx: WriteContext) => { result: Record<string, unknown>; events: WriteEvent[] }): RestResponse {
    // A Composite call with allOrNone makes each of its collections all-or-none too.
    const allOrNone = requestedAllOrNone || req.forceAllOrNone === true;
    const journal: JournalEntry[] = [];
    const ctx = this.#ctx(req, journal);
    const results: Record<string, unknown>[] = [];
    const events: WriteEvent[] = [];
    let failed = false;
    for (const item of items) {
      try {
        const done = one(item, ctx);
        results.push(done.result);
        events.push(...done.events);
      } catch (error) {
        if (!(error instanceof SalesforceError)) throw error;
        failed = true;
        const id = typeof (item as { id?: unknown } | null)?.id === 'string' ? (item as { id: string }).id : typeof item === 'string' ? item : undefined;
        results.push({ ...(id === undefined ? {} : { id }), success: false, errors: [error.recordError()] });
      }
    }
    if (allOrNone && failed) {
      this.#store.rollback(journal);
      const rolledBack = results.map((r) =>
        r.success === false
          ? r
          : {
              success: false,
              errors: [{ statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: 'Record rolled back because not all records were valid and the request was using AllOrNone header', fields: [] }],
            },
      );
      return { status: 200, body: rolledBack };
    }
    req.journal?.push(...journal);
    this.#emit(events);
    return { status: 200, body: results };
  }

  #collection(req: RestRequest, op: 'create' | 'update' | 'upsert', def?: SObjectDef, externalField?: string): RestResponse {
    const { allOrNone, records } = this.#collectionBody(req);
    const f = def === undefined || externalField === undefined ? undefined : this.#externalField(def, externalField);
    return this.#runBatch(req, allOrNone, records, (item, ctx) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw jsonParserError('each record must be an object');
      const record = item as Record<string, unknown>;
      const type = this.#typeOf(record, def);
      const { id: rawId, Id: rawCapId, ...fields } = record;
      const idValue = rawId ?? rawCapId;
      if (op === 'create') {
        if (idValue !== undefined) throw new SalesforceError(400, 'INVALID_FIELD', 'Id field should not be specified in the sobject data.', []);
        const created = this.#store.create(type, fields, ctx);
        return { result: { id: created.id, success: true, errors: [] }, events: [{ type: type.name, id: created.id, change: 'CREATE' }] };
      }
      if (op === 'update') {
        if (typeof idValue !== 'string') throw new SalesforceError(400, 'MISSING_ARGUMENT', 'Id not specified in an update call', []);
        const current = this.#store.get(type.name, idValue);
        const updated = this.#store.update(type, current?.id ?? idValue, fields, ctx);
        return { result: { id: updated.id, success: true, errors: [] }, events: [{ type: type.name, id: updated.id, change: 'UPDATE' }] };
      }
      if (f === undefined || def === undefined) throw notFound();
      if (type.name !== def.name) throw new SalesforceError(400, 'INVALID_TYPE', `All records must be of type ${def.name}`, []);
      const key = Object.keys(fields).find((k) => k.toLowerCase() === f.name.toLowerCase());
      const value = key === undefined ? undefined : fields[key];
      if (typeof value !== 'string' || value === '') throw new SalesforceError(400, 'MISSING_ARGUMENT', `${f.name} not specified`, []);
      const rest = Object.fromEntries(Object.entries(fields).filter(([k]) => k !== key));
      const result = this.#upsertOne(def, f, value, rest, this.#store.byExternalId(def, f, value), ctx);
      return { result: { id: result.id, success: true, errors: [], created: result.created }, events: [{ type: def.name, id: result.id, change: result.created ? 'CREATE' : 'UPDATE' }] };
    });
  }

  #collectionDelete(req: RestRequest): RestResponse {
    const ids = (req.query.get('ids') ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (ids.length === 0) throw new SalesforceError(400, 'MISSING_ARGUMENT', 'ids parameter is required');
    if (ids.length > MAX_COLLECTION_RECORDS) {
      throw new SalesforceError(400, 'EXCEEDED_ID_LIMIT', `record limit reached. cannot submit more than ${String(MAX_COLLECTION_RECORDS)} records into this call`);
    }
    const allOrNone = req.query.get('allOrNone') === 'true';
    return this.#runBatch(req, allOrNone, ids, (item, ctx) => {
      const id = String(item);
      const def = [...SOBJECTS.values()].find((d) => id.startsWith(d.keyPrefix));
      if (def === undefined) throw new SalesforceError(400, 'MALFORMED_ID', `malformed id ${id}`, []);
      const record = this.#store.live(def, id);
      const journal = ctx.journal ?? [];
      const start = journal.length;
      this.#store.delete(def, record.id, { ...ctx, journal });
      const events = journal.slice(start).map((e) => ({ type: e.type, id: e.id, change: 'DELETE' as const })).reverse();
      return { result: { id: record.id, success: true, errors: [] }, events };
    });
  }

  #collectionRetrieve(def: SObjectDef, req: RestRequest, base: string): RestResponse {
    const body = this.#object(req);
    const ids = body.ids;
    const fieldNames = body.fields;
    if (!Array.isArray(ids) || !Array.isArray(fieldNames)) throw jsonParserError('ids and fields are required');
    if (ids.length > 2000) throw new SalesforceError(400, 'EXCEEDED_ID_LIMIT', 'record limit reached. cannot submit more than 2000 records into this call');
    const fields = fieldNames.map((n) => {
      const f = def.byName.get(String(n).toLowerCase());
      if (f === undefined) throw new SalesforceError(400, 'INVALID_FIELD', `No such column '${String(n)}' on sobject of type ${def.name}`);
      return f;
    });
    return {
      status: 200,
      body: ids.map((id) => {
        const record = this.#store.get(def.name, String(id));
        return record === undefined || record.deletedAtMs !== undefined ? null : recordView(def, record, base, fields);
      }),
    };
  }

  // --- Composite --------------------------------------------------------------------------------

  /**
   * `POST /composite`: up to 25 subrequests run in order in one call (one API call counted, by the
   * caller), at most 5 of them sObject Collections or queries. `@{ref.path}` in a subrequest's url
   * or body takes a value from an earlier subrequest's answer (`.field`, `[index]`). allOrNone: the
   * first failed subrequest rolls back every change of the call, the others answer 400
   * PROCESSING_HALTED; otherwise a subrequest whose reference cannot be resolved (it refers to a
   * failed subrequest, or to no value) answers 400 PROCESSING_HALTED and the others run.
   */
  #composite(req: RestRequest): RestResponse {
    const body = this.#object(req);
    const list = body.compositeRequest;
    if (!Array.isArray(list)) throw jsonParserError("'compositeRequest' is a required field.");
    const subrequests = list.map((item: unknown) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw jsonParserError('Each composite subrequest must be an object.');
      const sub = item as Record<string, unknown>;
      for (const field of ['method', 'url', 'referenceId']) {
        if (typeof sub[field] !== 'string' || sub[field] === '') throw jsonParserError(`'${field}' is a required field.`);
      }
      const referenceId = sub.referenceId as string;
      if (!REFERENCE_ID.test(referenceId)) {
        throw new SalesforceError(400, 'INVALID_INPUT', `Provided referenceId ('${referenceId}') must start with a letter or a number, and it can contain only letters, numbers and underscores ('_').`);
      }
      const headers = sub.httpHeaders;
      if (headers !== undefined && (typeof headers !== 'object' || headers === null || Array.isArray(headers))) throw jsonParserError('httpHeaders must be an object.');
      const headerMap = Object.fromEntries(Object.entries((headers ?? {}) as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), String(v)]));
      for (const forbidden of ['accept', 'authorization', 'content-type']) {
        if (forbidden in headerMap) throw new SalesforceError(400, 'INVALID_INPUT', `The ${forbidden} header can't be set on a subrequest; it is inherited from the composite request.`);
      }
      return { method: sub.method as string, url: sub.url as string, referenceId, body: sub.body, headers: headerMap };
    });
    const seen = new Set<string>();
    for (const sub of subrequests) {
      if (seen.has(sub.referenceId)) throw new SalesforceError(400, 'INVALID_INPUT', `Duplicate referenceId provided in the request: ${sub.referenceId}`);
      seen.add(sub.referenceId);
    }
    if (subrequests.length > MAX_COMPOSITE_SUBREQUESTS) {
      throw new SalesforceError(400, 'LIMIT_EXCEEDED', `Limit Exceeded: a composite request takes at most ${String(MAX_COMPOSITE_SUBREQUESTS)} subrequests, got ${String(subrequests.length)}.`);
    }
    const heavy = subrequests.filter((sub) => /^\/services\/data\/v\d+\.\d\/(composite\/sobjects|query|queryAll)(\/|\?|$)/.test(sub.url)).length;
    if (heavy > MAX_COMPOSITE_COLLECTION_OR_QUERY) {
      throw new SalesforceError(400, 'LIMIT_EXCEEDED', `Limit Exceeded: a composite request takes at most ${String(MAX_COMPOSITE_COLLECTION_OR_QUERY)} sObject Collections or query subrequests, got ${String(heavy)}.`);
    }

    const allOrNone = body.allOrNone === true;
    const journal: JournalEntry[] | undefined = allOrNone ? [] : undefined;
    const held: WriteEvent[][] | undefined = allOrNone ? [] : undefined;
    const outer = this.#heldEvents;
    if (held !== undefined) this.#heldEvents = held;
    const answers = new Map<string, { status: number; body: unknown }>();
    const results: { body: unknown; httpHeaders: Record<string, string>; httpStatusCode: number; referenceId: string }[] = [];
    let failedAt: number | undefined;
    try {
      for (const [index, sub] of subrequests.entries()) {
        const answer = this.#subrequest(sub, answers, req, journal);
        answers.set(sub.referenceId, { status: answer.status, body: answer.body });
        results.push({ body: answer.body ?? null, httpHeaders: answer.headers ?? {}, httpStatusCode: answer.status, referenceId: sub.referenceId });
        if (allOrNone && this.#subrequestFailed(answer)) {
          failedAt = index;
          break;
        }
      }
    } finally {
      this.#heldEvents = outer;
    }
    if (failedAt !== undefined && journal !== undefined) {
      this.#store.rollback(journal);
      const halted = (referenceId: string): (typeof results)[number] => ({
        body: [{ errorCode: 'PROCESSING_HALTED', message: PROCESSING_HALTED_ROLLBACK }],
        httpHeaders: {},
        httpStatusCode: 400,
        referenceId,
      });
      const out = subrequests.map((sub, i) => (i === failedAt ? (results[i] ?? halted(sub.referenceId)) : halted(sub.referenceId)));
      return { status: 200, body: { compositeResponse: out } };
    }
    for (const events of held ?? []) this.#emit(events);
    return { status: 200, body: { compositeResponse: results } };
  }

  /** A subrequest failed: an error status, or (a collection) a record that failed. */
  #subrequestFailed(answer: RestResponse): boolean {
    if (answer.status >= 400) return true;
    return Array.isArray(answer.body) && answer.body.some((r) => typeof r === 'object' && r !== null && (r as { success?: unknown }).success === false);
  }

  #subrequest(
    sub: { method: string; url: string; referenceId: string; body: unknown; headers: Record<string, string> },
    answers: Map<string, { status: number; body: unknown }>,
    req: RestRequest,
    journal: JournalEntry[] | undefined,
  ): RestResponse {
    try {
      const url = this.#resolveText(sub.url, answers);
      const body = sub.body === undefined ? undefined : this.#resolveValue(sub.body, answers);
      const parsed = new URL(url, 'http://composite');
      const m = /^\/services\/data\/v(\d+\.\d)(\/.*)?$/.exec(parsed.pathname);
      if (m === null) throw notFound();
      const version = m[1] ?? req.version;
      const segments = (m[2] ?? '').split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
      const [first, second] = segments;
      if (first === 'composite' && second !== 'sobjects') {
        throw new SalesforceError(400, 'INVALID_INPUT', `The composite resource does not support this subrequest: ${sub.method} ${parsed.pathname}`);
      }
      if (first === 'composite' && Number(version) < 43) {
        throw new SalesforceError(400, 'INVALID_INPUT', 'sObject Collections subrequests need API version 43.0 or later.');
      }
      const inner: RestRequest = {
        method: sub.method,
        version,
        segments,
        query: parsed.searchParams,
        body: body === undefined ? '' : JSON.stringify(body),
        header: (name) => sub.headers[name.toLowerCase()] ?? (['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'].includes(name.toLowerCase()) ? undefined : req.header(name)),
        userId: req.userId,
        nowMs: req.nowMs,
        ...(journal === undefined ? {} : { journal, forceAllOrNone: true }),
      };
      return this.handle(inner);
    } catch (error) {
      if (!(error instanceof SalesforceError)) throw error;
      return { status: error.status, body: error.body() };
    }
  }

  /** The value at `@{ref.path}`; a PROCESSING_HALTED error when there is none. */
  #reference(name: string, path: string, answers: Map<string, { status: number; body: unknown }>): string | number | boolean {
    const halted = (): SalesforceError => new SalesforceError(400, 'PROCESSING_HALTED', `Invalid reference specified. No value for ${name}${path} found in ${name}.`);
    const answer = answers.get(name);
    if (answer === undefined || answer.status >= 400) throw halted();
    let current: unknown = answer.body;
    for (const step of path.match(/\.[A-Za-z0-9_]+|\[\d+\]/g) ?? []) {
      if (typeof current !== 'object' || current === null) throw halted();
      if (step.startsWith('[')) {
        if (!Array.isArray(current)) throw halted();
        current = current[Number(step.slice(1, -1))];
      } else {
        if (Array.isArray(current)) throw halted();
        current = (current as Record<string, unknown>)[step.slice(1)];
      }
    }
    if (typeof current !== 'string' && typeof current !== 'number' && typeof current !== 'boolean') throw halted();
    return current;
  }

  #resolveText(text: string, answers: Map<string, { status: number; body: unknown }>): string {
    return text.replace(REFERENCE, (_all, name: string, path: string) => String(this.#reference(name, path, answers)));
  }

  /** References in a body: a string that is one reference takes the value as it is; inside a longer string, its text. */
  #resolveValue(value: unknown, answers: Map<string, { status: number; body: unknown }>): unknown {
    if (typeof value === 'string') {
      const whole = /^@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}$/.exec(value);
      if (whole !== null) return this.#reference(whole[1] ?? '', whole[2] ?? '', answers);
      return this.#resolveText(value, answers);
    }
    if (Array.isArray(value)) return value.map((v) => this.#resolveValue(v, answers));
    if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.#resolveValue(v, answers)]));
    return value;
  }
}
