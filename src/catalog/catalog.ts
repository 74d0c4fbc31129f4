// The catalog: records of every registered entity type, versioned, tombstoned on delete, and every
// write committed together with its change in the outbox.
import { isDeepStrictEqual } from 'node:util';
import { TandemError } from '../errors/errors.ts';
import type { ChangeOp, Origin } from '../log/change.ts';
import type { Outbox } from '../log/outbox.ts';
import { ScopedRecords } from '../store/scoped-records.ts';
import type { RecordsTable } from '../store/schema.ts';
import { isUniqueViolation, type Store, type Tx } from '../store/store.ts';
import type { EntityContext, EntityDefinition, StoredRecord } from './entity.ts';
import type { IdFactory } from './ids.ts';
import { isId } from './ids.ts';
import type { EntityRegistry } from './registry.ts';

export type RecordView = Record<string, unknown> & { id: string; object: string; version: number };

export interface WriteOptions {
  origin: Origin;
  correlationId?: string | null | undefined;
  /** The version the writer expects the record to be at (If-Match). */
  expectedVersion?: number | undefined;
}

export interface CreateOptions extends WriteOptions {
  idempotency?: { key: string; fingerprint: string } | undefined;
}

export interface CreateResult {
  record: RecordView;
  /** True when an Idempotency-Key matched an earlier create: nothing was written. */
  replayed: boolean;
}

export interface ListOptions {
  limit: number;
  cursor?: string | undefined;
  filters?: Record<string, string | undefined>;
  updatedSince?: string | undefined;
  includeDeleted?: boolean | undefined;
}

export interface ListResult {
  data: RecordView[];
  next_cursor: string | null;
}

export interface CatalogDeps {
  store: Store;
  registry: EntityRegistry;
  outbox: Outbox;
  ids: IdFactory;
  clock?: () => Date;
  /** Called after a write commits, so in-process consumers can wake at once. */
  onCommit?: () => void;
}

/** How many times a write is retried when a concurrent writer changed the record under it. */
const MAX_WRITE_ATTEMPTS = 5;

export function toView(definition: EntityDefinition, row: RecordsTable): RecordView {
  return {
    id: row.id,
    object: definition.type,
    version: row.version,
    ...(JSON.parse(row.data) as Record<string, unknown>),
    created_at: row.created_at,
    updated_at: row.updated_at,
    deleted_at: row.deleted_at,
  };
}

function toStored(row: RecordsTable): StoredRecord {
  return {
    id: row.id,
    version: row.version,
    fields: JSON.parse(row.data) as Record<string, unknown>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
  };
}

function changedFields(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => !isDeepStrictEqual(before[k], after[k])).sort();
}

export function encodeCursor(id: string): string {
  return Buffer.from(`v1:${id}`).toString('base64url');
}

function decodeCursor(cursor: string, prefix: string): string {
  const decoded = Buffer.from(cursor, 'base64url').toString();
  const id = decoded.startsWith('v1:') ? decoded.slice(3) : '';
  if (!isId(prefix, id)) throw new TandemError('INVALID_CURSOR');
  return id;
}

export class Catalog {
  readonly #deps: CatalogDeps;
  readonly #clock: () => Date;

  constructor(deps: CatalogDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? (() => new Date());
  }

  get registry(): EntityRegistry {
    return this.#deps.registry;
  }

  #definition(type: string): EntityDefinition {
    return this.#deps.registry.get(type);
  }

  #context(records: ScopedRecords): EntityContext {
    return {
      get: async (type, id) => {
        const row = await records.get(type, id);
        return row === undefined ? undefined : toStored(row);
      },
    };
  }

  #records(db: Store['db'] | Tx, workspaceId: string): ScopedRecords {
    return new ScopedRecords(db, this.#deps.store.capabilities, workspaceId);
  }

  #assertId(definition: EntityDefinition, id: string): void {
    if (!isId(definition.prefix, id)) {
      throw new TandemError('NOT_FOUND', `No ${definition.type} ${id.slice(0, 64)}.`, { id: id.slice(0, 64) });
    }
  }

  async get(workspaceId: string, type: string, id: string): Promise<RecordView> {
    const definition = this.#definition(type);
    this.#assertId(definition, id);
    const row = await this.#records(this.#deps.store.db, workspaceId).get(type, id);
    if (row === undefined) throw new TandemError('NOT_FOUND', `No ${type} ${id}.`, { id });
    return toView(definition, row);
  }

  async list(workspaceId: string, type: string, options: ListOptions): Promise<ListResult> {
    const definition = this.#definition(type);
    const equals = definition.filters.flatMap((f) => {
      const value = options.filters?.[f.param];
      return value === undefined ? [] : [{ field: f.field, value }];
    });
    const rows = await this.#records(this.#deps.store.db, workspaceId).list({
      entityType: type,
      limit: options.limit + 1,
      beforeId: options.cursor === undefined ? undefined : decodeCursor(options.cursor, definition.prefix),
      equals,
      updatedSince: options.updatedSince,
      includeDeleted: options.includeDeleted ?? false,
    });
    const page = rows.slice(0, options.limit);
    const last = page.at(-1);
    return {
      data: page.map((row) => toView(definition, row)),
      next_cursor: rows.length > options.limit && last !== undefined ? encodeCursor(last.id) : null,
    };
  }

  async create(workspaceId: string, type: string, input: unknown, options: CreateOptions): Promise<CreateResult> {
    const definition = this.#definition(type);
    const { idempotency } = options;
    if (idempotency !== undefined) {
      const earlier = await this.#replay(workspaceId, idempotency);
      if (earlier !== undefined) return { record: earlier, replayed: true };
    }
    try {
      const record = await this.#deps.store.transaction(async (trx) => {
        const records = this.#records(trx, workspaceId);
        const fields = await definition.create(input, this.#context(records));
        const now = this.#clock().toISOString();
        const row: RecordsTable = {
          workspace_id: workspaceId,
          entity_type: type,
          id: this.#deps.ids(definition.prefix),
          version: 1,
          data: JSON.stringify(fields),
          created_at: now,
          updated_at: now,
          deleted_at: null,
        };
        await records.insert(row);
        const view = toView(definition, row);
        await this.#appendChange(trx, workspaceId, definition, view, 'create', Object.keys(fields).sort(), options);
        if (idempotency !== undefined) {
          await records.insertIdempotencyKey({
            key: idempotency.key,
            fingerprint: idempotency.fingerprint,
            status_code: 201,
            response: JSON.stringify(view),
            created_at: now,
          });
        }
        return view;
      });
      this.#deps.onCommit?.();
      return { record, replayed: false };
    } catch (error) {
      // A concurrent request with the same key committed first: answer as it did.
      if (idempotency !== undefined && isUniqueViolation(error)) {
        const earlier = await this.#replay(workspaceId, idempotency);
        if (earlier !== undefined) return { record: earlier, replayed: true };
      }
      throw error;
    }
  }

  /** The record a create with this idempotency key made (as it answered then), or undefined. */
  async createdWith(workspaceId: string, idempotencyKey: string): Promise<RecordView | undefined> {
    const row = await this.#records(this.#deps.store.db, workspaceId).findIdempotencyKey(idempotencyKey);
    return row === undefined ? undefined : (JSON.parse(row.response) as RecordView);
  }

  async #replay(workspaceId: string, idempotency: { key: string; fingerprint: string }): Promise<RecordView | undefined> {
    const row = await this.#records(this.#deps.store.db, workspaceId).findIdempotencyKey(idempotency.key);
    if (row === undefined) return undefined;
    if (row.fingerprint !== idempotency.fingerprint) {
      throw new TandemError('IDEMPOTENCY_KEY_REUSED', undefined, { idempotency_key: idempotency.key });
    }
    return JSON.parse(row.response) as RecordView;
  }

  async update(workspaceId: string, type: string, id: string, patch: unknown, options: WriteOptions): Promise<RecordView> {
    const definition = this.#definition(type);
    this.#assertId(definition, id);
    return this.#write(workspaceId, definition, id, options, async (current, records) => {
      if (current.deletedAt !== null) throw new TandemError('RECORD_DELETED', `${type} ${id} is deleted.`, { id });
      const fields = await definition.update(current, patch, this.#context(records));
      const changed = changedFields(current.fields, fields);
      return changed.length === 0 ? undefined : { fields, deletedAt: null, op: 'update', changed };
    });
  }

  async delete(workspaceId: string, type: string, id: string, options: WriteOptions): Promise<RecordView> {
    const definition = this.#definition(type);
    this.#assertId(definition, id);
    return this.#write(workspaceId, definition, id, options, (current) => {
      if (current.deletedAt !== null) return Promise.resolve(undefined);
      definition.assertDeletable?.(current);
      return Promise.resolve({
        fields: current.fields,
        deletedAt: this.#clock().toISOString(),
        op: 'delete',
        changed: ['deleted_at'],
      });
    });
  }

  /**
   * Read, compute, write-if-unchanged, in one transaction; retried when a concurrent writer won.
   * `compute` answers undefined when nothing changes: then no version and no change are written.
   */
  async #write(
    workspaceId: string,
    definition: EntityDefinition,
    id: string,
    options: WriteOptions,
    compute: (
      current: StoredRecord,
      records: ScopedRecords,
    ) => Promise<{ fields: Record<string, unknown>; deletedAt: string | null; op: ChangeOp; changed: string[] } | undefined>,
  ): Promise<RecordView> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#deps.store.transaction(async (trx) => {
        const records = this.#records(trx, workspaceId);
        const row = await records.get(definition.type, id);
        if (row === undefined) throw new TandemError('NOT_FOUND', `No ${definition.type} ${id}.`, { id });
        if (options.expectedVersion !== undefined && options.expectedVersion !== row.version) {
          throw new TandemError('VERSION_MISMATCH', `${definition.type} ${id} is at version ${row.version}.`, {
            expected_version: options.expectedVersion,
            current_version: row.version,
          });
        }
        const next = await compute(toStored(row), records);
        if (next === undefined) return { view: toView(definition, row), wrote: false };
        const written: RecordsTable = {
          ...row,
          version: row.version + 1,
          data: JSON.stringify(next.fields),
          updated_at: this.#clock().toISOString(),
          deleted_at: next.deletedAt,
        };
        if (!(await records.update(definition.type, id, row.version, written))) return undefined;
        const view = toView(definition, written);
        await this.#appendChange(trx, workspaceId, definition, view, next.op, next.changed, options);
        return { view, wrote: true };
      });
      if (outcome !== undefined) {
        if (outcome.wrote) this.#deps.onCommit?.();
        return outcome.view;
      }
      if (attempt >= MAX_WRITE_ATTEMPTS) throw new TandemError('CONFLICT');
    }
  }

  async #appendChange(
    trx: Tx,
    workspaceId: string,
    definition: EntityDefinition,
    view: RecordView,
    op: ChangeOp,
    changed: string[],
    options: WriteOptions,
  ): Promise<void> {
    await this.#deps.outbox.append(trx, {
      id: this.#deps.ids('chg'),
      workspaceId,
      entityType: definition.type,
      recordId: view.id,
      version: view.version,
      op,
      origin: options.origin,
      changedFields: changed,
      record: view,
      correlationId: options.correlationId ?? null,
      createdAt: typeof view.updated_at === 'string' ? view.updated_at : this.#clock().toISOString(),
    });
  }
}
