// /v1/events: the account's change feed, newest first, filtered by `type` (with `*` wildcards such
// as `customer.*`), `types[]`, `created` and `delivery_success`.
import type { HandlerContext, HandlerResult, Route } from './context.ts';
import { invalidParam, noSuch } from './errors.ts';
import { createdFilter, LIST_PARAMS, paginate } from './list.ts';

/** `customer.*` matches `customer.created`; `*` matches everything. */
export function typeMatches(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

function list(ctx: HandlerContext): HandlerResult {
  ctx.params.allow([...LIST_PARAMS, 'type', 'types', 'created', 'delivery_success']);
  const type = ctx.params.string('type');
  const types = ctx.params.stringArray('types', { max: 20 });
  if (type != null && types !== undefined) {
    throw invalidParam('You may only specify one of these parameters: type, types.', 'types');
  }
  const patterns = type != null ? [type] : types;
  const created = createdFilter(ctx.params);
  const deliverySuccess = ctx.params.boolean('delivery_success');
  const items = ctx.account.eventOrder
    .filter(
      ({ event }) =>
        (patterns === undefined || patterns.some((p) => typeMatches(p, event.type))) &&
        created(event.created) &&
        (deliverySuccess === undefined || (event.pending_webhooks === 0) === deliverySuccess),
    )
    .map((r) => ({ seq: r.seq, item: r.event }))
    .reverse();
  return {
    body: paginate(items, ctx.params, {
      url: '/v1/events',
      kind: 'event',
      seqOf: (id) => ctx.account.events.get(id)?.seq,
    }),
  };
}

function retrieve(ctx: HandlerContext): HandlerResult {
  ctx.params.allow(['expand']);
  const id = ctx.path.id ?? '';
  const record = ctx.account.events.get(id);
  if (record === undefined) throw noSuch('event', id);
  return { body: record.event };
}

export const eventRoutes: Route[] = [
  { method: 'GET', pattern: '/v1/events', handler: list },
  { method: 'GET', pattern: '/v1/events/:id', handler: retrieve },
];
