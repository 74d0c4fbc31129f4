// Salesforce's wire formats for time: datetimes as `2026-11-30T12:34:56.000+0000` (UTC, whole
// seconds: Salesforce keeps audit fields to the second), dates as `2026-11-30`.

/** Truncates to the whole second, as Salesforce stores `SystemModstamp` and the other audit fields. */
export function toSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

export function formatDateTime(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

export function formatDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})$/;

/** Parses an ISO-8601 datetime as Salesforce accepts it (`Z`, `+0000` or `+00:00`); undefined if malformed. */
export function parseDateTime(text: string): number | undefined {
  const m = DATETIME.exec(text);
  if (m === null) return undefined;
  const zone = m[8] ?? 'Z';
  const normal = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${(m[7] ?? '0').padEnd(3, '0')}${zone === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`}`;
  const ms = Date.parse(normal);
  return Number.isNaN(ms) ? undefined : ms;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function parseDate(text: string): number | undefined {
  if (!DATE.test(text)) return undefined;
  const ms = Date.parse(`${text}T00:00:00.000Z`);
  return Number.isNaN(ms) ? undefined : ms;
}
