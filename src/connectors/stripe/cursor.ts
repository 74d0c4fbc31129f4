// The poll cursor: where in Stripe's events feed (`GET /v1/events`, newest first, kept 30 days) the
// next poll starts. A short printable string, stored by the engine as it is:
//
// - `evt:<event id>:<created>` — after this event: the next poll lists `ending_before=<event id>`
//   (the events just newer than it). `created` (unix seconds) is kept so that, when Stripe no
//   longer knows the event (older than 30 days), the poll restarts from that time instead.
// - `ts:<unix seconds>` — from the events created at or after this second; nothing handed out yet
//   (a new connection whose account had no events, or a restart after a forgotten event).
// - `scan:<unix seconds>:<event id>` — on the way from a `ts:` cursor back to the oldest event
//   since that time (Stripe lists newest first, so finding the oldest of many takes pages): the next
//   poll continues with the events older than <event id>, still created at or after the time.
export type PollCursor =
  | { kind: 'event'; eventId: string; created: number }
  | { kind: 'time'; since: number }
  | { kind: 'scan'; since: number; olderThan: string };

const EVENT_ID = /^evt_[A-Za-z0-9_]+$/;
const SECONDS = /^\d{1,12}$/;

export function encodeCursor(cursor: PollCursor): string {
  switch (cursor.kind) {
    case 'event':
      return `evt:${cursor.eventId}:${cursor.created}`;
    case 'time':
      return `ts:${cursor.since}`;
    case 'scan':
      return `scan:${cursor.since}:${cursor.olderThan}`;
  }
}

/** Parses a cursor; undefined for anything that is not one (the poll then starts from now). */
export function decodeCursor(text: string): PollCursor | undefined {
  const parts = text.split(':');
  const [kind, a, b] = parts;
  if (kind === 'evt' && parts.length === 3 && a !== undefined && b !== undefined && EVENT_ID.test(a) && SECONDS.test(b)) {
    return { kind: 'event', eventId: a, created: Number(b) };
  }
  if (kind === 'ts' && parts.length === 2 && a !== undefined && SECONDS.test(a)) return { kind: 'time', since: Number(a) };
  if (kind === 'scan' && parts.length === 3 && a !== undefined && b !== undefined && SECONDS.test(a) && EVENT_ID.test(b)) {
    return { kind: 'scan', since: Number(a), olderThan: b };
  }
  return undefined;
}
