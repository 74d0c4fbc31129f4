// What an entity type is: declaring one (a schema, an id prefix, its rules) is all it takes to get
// storage, the REST API, the OpenAPI entries and the change log for it.
import type { z } from 'zod';

export interface StoredRecord<F = Record<string, unknown>> {
  id: string;
  version: number;
  fields: F;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
}

/** Lets an entity's rules look at other records of the same workspace (e.g. references). */
export interface EntityContext {
  get(type: string, id: string): Promise<StoredRecord | undefined>;
}

export interface EntityFilter {
  /** The query parameter name in lists. */
  param: string;
  /** The top-level field it matches exactly. */
  field: string;
  schema: z.ZodType<string>;
}

export interface EntityDefinition<
  Fields extends Record<string, unknown> = Record<string, unknown>,
  Create extends z.ZodType = z.ZodType,
  Update extends z.ZodType = z.ZodType,
> {
  /** `customer` */
  readonly type: string;
  /** `customers`: the path segment under /api/v1. */
  readonly plural: string;
  /** `cus`: ids look like `cus_01J…`. */
  readonly prefix: string;
  /** Body of a create. */
  readonly createSchema: Create;
  /** Body of a partial update (JSON merge patch semantics for nested objects). */
  readonly updateSchema: Update;
  /** The stored and answered fields (without id, version, timestamps). */
  readonly fieldsSchema: z.ZodType<Fields>;
  readonly filters: readonly EntityFilter[];
  /**
   * The filter (its `param`) that names the same real-world thing in another system, used once: when
   * a new connection first meets an external object no record is linked to (customers: `email`).
   * Without it, every such object is imported as a new record.
   */
  readonly matchBy?: string;
  /** Builds the fields of a new record from a create body: defaults and derived values. */
  create(input: z.output<Create>, ctx: EntityContext): Promise<Fields>;
  /** Applies a patch to current fields: validation of transitions, derived values. */
  update(current: StoredRecord<Fields>, patch: z.output<Update>, ctx: EntityContext): Promise<Fields>;
  /** May this record be deleted? Throws a TandemError when not. */
  assertDeletable?(current: StoredRecord<Fields>): void;
}

/** Declares an entity type with full type inference. */
export function defineEntity<F extends Record<string, unknown>, C extends z.ZodType, U extends z.ZodType>(
  definition: EntityDefinition<F, C, U>,
): EntityDefinition<F, C, U> {
  return definition;
}
