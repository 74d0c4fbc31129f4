// Stripe's cursor pagination: `{object:'list', url, has_more, data}`, newest first; `limit` 1..100
// (default 10); `starting_after` (older than that object) or `ending_before` (newer than it, the
// page nearest to it), never both.
import { invalidParam, noSuch } from './errors.ts';
import type { ParamReader } from './params.ts';

export interface ListPage<T> {
  object: 'list';
  url: string;
  has_more: boolean;
  data: T[];
}

export interface Sequenced<T> {
  seq: number;
  item: T;
}

export const LIST_PARAMS = ['limit', 'starting_after', 'ending_before', 'expand'] as const;

export function readLimit(params: ParamReader): number {
  return params.integer('limit', { min: 1, max: 100 }) ?? 10;
}

/**
 * One page of `items` (sorted newest first, i.e. by descending seq). `seqOf` finds a cursor's
 * position; the cursor may be an object the filters leave out, but it must exist.
 */
export function paginate<T>(
  items: readonly Sequenced<T>[],
  params: ParamReader,
  options: { url: string; kind: string; seqOf: (id: string) => number | undefined },
): ListPage<T> {
  const limit = readLimit(params);
  const startingAfter = params.string('starting_after');
  const endingBefore = params.string('ending_before');
  if (startingAfter != null && endingBefore != null) {
    throw invalidParam('You may only specify one of these parameters: ending_before, starting_after.', 'ending_before');
  }
  const cursorSeq = (id: string, param: string): number => {
    const seq = options.seqOf(id);
    if (seq === undefined) throw noSuch(options.kind, id, param);
    return seq;
  };
  if (endingBefore != null) {
    const before = cursorSeq(endingBefore, 'ending_before');
    const newer = items.filter((entry) => entry.seq > before);
    const page = newer.slice(Math.max(0, newer.length - limit));
    return { object: 'list', url: options.url, has_more: newer.length > limit, data: page.map((e) => e.item) };
  }
  const after = startingAfter != null ? cursorSeq(startingAfter, 'starting_after') : Number.POSITIVE_INFINITY;
  const older = items.filter((entry) => entry.seq < after);
  return {
    object: 'list',
    url: options.url,
    has_more: older.length > limit,
    data: older.slice(0, limit).map((e) => e.item),
  };
}

/** Reads `created` / `created[gt|gte|lt|lte]` (unix seconds) into a predicate. */
export function createdFilter(params: ParamReader): (created: number) => boolean {
  if (!params.has('created')) return () => true;
  const asObject = (() => {
    try {
      return params.object('created');
    } catch {
      return undefined;
    }
  })();
  if (asObject === undefined || asObject === null) {
    const exact = params.integer('created');
    return (created) => created === exact;
  }
  asObject.allow(['gt', 'gte', 'lt', 'lte']);
  const gt = asObject.integer('gt');
  const gte = asObject.integer('gte');
  const lt = asObject.integer('lt');
  const lte = asObject.integer('lte');
  return (created) =>
    (gt === undefined || created > gt) &&
    (gte === undefined || created >= gte) &&
    (lt === undefined || created < lt) &&
    (lte === undefined || created <= lte);
}
