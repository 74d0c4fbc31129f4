// Prepared queries: a Kysely query built and compiled once per dialect, then run with new values.
//
// Why: building and compiling a query with Kysely costs ~20 µs, more than SQLite takes to run it
// (measured: a record read by id 36 µs through the builder, 15 µs precompiled). The hot paths (a
// record by id, a record's insert and update, the outbox append) run on every request, so they are
// built once with placeholders and keep Kysely's typing, dialect and quoting.
//
//   const byId = prepared<[id: string], RecordsTable>((db, $) => db.selectFrom('records').selectAll().where('id', '=', $(0)));
//   const rows = (await byId(db, 'cus_…')).rows;
//
// A placeholder is a sentinel value that Kysely passes through as a parameter; the compiled
// parameters are mapped back to the call's arguments by position. A query that would inline a value
// instead of binding it is refused when first compiled.
import { CompiledQuery, type Compilable, type QueryResult } from 'kysely';
import type { Db, Tx } from './store.ts';

const SENTINEL = '\u0000tandem-prepared-param:';

/**
 * `$(i)`: the i-th argument of the prepared query. Typed `never` so it fits any column; the types of
 * the arguments are the ones the caller states for the prepared query.
 */
export type Placeholder = (index: number) => never;

const placeholder: Placeholder = (index) => `${SENTINEL}${String(index)}` as never;

interface Template {
  sql: string;
  /** For each compiled parameter: the argument index it takes, or the constant it keeps. */
  slots: Array<{ arg: number } | { value: unknown }>;
}

function templateOf(query: CompiledQuery): Template {
  if (query.sql.includes(SENTINEL)) throw new Error(`a prepared query inlined a placeholder instead of binding it: ${query.sql}`);
  return {
    sql: query.sql,
    slots: query.parameters.map((value) =>
      typeof value === 'string' && value.startsWith(SENTINEL) ? { arg: Number(value.slice(SENTINEL.length)) } : { value },
    ),
  };
}

export type PreparedQuery<Args extends readonly unknown[], Row> = (db: Db | Tx, ...args: Args) => Promise<QueryResult<Row>>;

/**
 * Prepares `build` (called with a placeholder factory) once per dialect adapter. The caller states
 * the argument types: `prepared<[string, number], Row>((db, $) => …)`.
 */
export function prepared<Args extends readonly unknown[], Row>(
  build: (db: Db, $: Placeholder) => Compilable<Row>,
): PreparedQuery<Args, Row> {
  // Keyed by the dialect's adapter: a transaction shares its database's adapter, so both use one template.
  const templates = new WeakMap<object, Template>();
  return async (db, ...args) => {
    const adapter = db.getExecutor().adapter;
    let template = templates.get(adapter);
    if (template === undefined) {
      template = templateOf(build(db, placeholder).compile());
      templates.set(adapter, template);
    }
    const parameters = template.slots.map((slot) => ('arg' in slot ? args[slot.arg] : slot.value));
    return await db.executeQuery<Row>(CompiledQuery.raw(template.sql, parameters));
  };
}
