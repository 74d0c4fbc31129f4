// Signals between Tandem processes that share one PostgreSQL: "connection C has new work" (a mark
// made by another process's dispatcher, a webhook another process received) and "connection C
// changed" (created, edited, paused in another process). PostgreSQL LISTEN/NOTIFY on one channel;
// a process that is not listening at the moment (reconnecting) misses signals, which only delays
// work: workers look for due work on their own every poll interval, and connections are compared
// with the store every lease round. Without PostgreSQL there is one process, and nothing to signal.
import pg from 'pg';
import type { Logger } from 'pino';

export type SignalKind = 'wake' | 'changed';

export interface Signals {
  /** Tells every process (this one too); coalesced: a burst of the same signal goes out once. */
  publish(kind: SignalKind, connectionId: string): void;
  /** Called for every signal received, from any process. */
  subscribe(handler: (kind: SignalKind, connectionId: string) => void): void;
  close(): Promise<void>;
}

export const CHANNEL = 'tandem_signals';
const FLUSH_MS = 5;

export function noSignals(): Signals {
  return {
    publish: () => undefined,
    subscribe: () => undefined,
    close: () => Promise.resolve(),
  };
}

export function createPostgresSignals(connectionString: string, logger: Logger): Signals {
  const handlers: ((kind: SignalKind, connectionId: string) => void)[] = [];
  const pending = new Set<string>();
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client | undefined> | undefined;
  let closed = false;
  let flushTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  const connect = (): Promise<pg.Client | undefined> => {
    connecting ??= (async () => {
      const next = new pg.Client({ connectionString });
      next.on('notification', (message) => {
        const payload = message.payload ?? '';
        const colon = payload.indexOf(':');
        const kind = payload.slice(0, colon);
        if (kind !== 'wake' && kind !== 'changed') return;
        for (const handler of handlers) handler(kind, payload.slice(colon + 1));
      });
      next.on('error', (error) => {
        logger.warn({ err: error }, 'signals: the PostgreSQL connection failed; reconnecting');
        if (client === next) client = undefined;
        void next.end().catch(() => undefined);
        scheduleReconnect();
      });
      try {
        await next.connect();
        await next.query(`listen ${CHANNEL}`);
        if (closed) {
          await next.end();
          return undefined;
        }
        client = next;
        return next;
      } catch (error) {
        logger.warn({ err: error }, 'signals: cannot listen on PostgreSQL; retrying');
        void next.end().catch(() => undefined);
        scheduleReconnect();
        return undefined;
      } finally {
        connecting = undefined;
      }
    })();
    return connecting;
  };

  const scheduleReconnect = () => {
    if (closed || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, 1000);
    retryTimer.unref();
  };

  const flush = async () => {
    flushTimer = undefined;
    if (pending.size === 0) return;
    const payloads = [...pending];
    pending.clear();
    const target = client ?? (await connect());
    if (target === undefined) return;
    try {
      await target.query(`select pg_notify('${CHANNEL}', p) from unnest($1::text[]) as p`, [payloads]);
    } catch (error) {
      logger.warn({ err: error }, 'signals: notify failed');
    }
  };

  void connect();
  return {
    publish(kind, connectionId) {
      if (closed) return;
      pending.add(`${kind}:${connectionId}`);
      flushTimer ??= setTimeout(() => void flush(), FLUSH_MS);
    },
    subscribe(handler) {
      handlers.push(handler);
    },
    async close() {
      closed = true;
      clearTimeout(flushTimer);
      clearTimeout(retryTimer);
      await connecting;
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}
