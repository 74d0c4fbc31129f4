// The embedded log delivers every entry of a group to every process that consumes the group: two
// worker processes with the embedded log on one PostgreSQL database would both deliver each change.
// So a worker process with the embedded log on PostgreSQL holds the lease `embedded-log` while it
// consumes. A second one waits for the lease up to one lease time (the first may just have died, and
// its lease lapses) and then refuses to start, with an error that says what to do instead: the
// Kafka log for several workers, or TANDEM_ROLES=api for more API processes.
import type { Logger } from 'pino';
import type { Leases } from './leases.ts';

export const EMBEDDED_LOG_LEASE = 'embedded-log';

export class EmbeddedLogTaken extends Error {
  constructor(holder: string) {
    super(
      `Another Tandem process (${holder}) runs the embedded log's consumers on this database. With the embedded log, ` +
        'one process per database may have the worker role: start the others with TANDEM_ROLES=api, or set KAFKA_BROKERS ' +
        '(the Kafka log) to run several worker processes (docs/scale-out.md).',
    );
    this.name = 'EmbeddedLogTaken';
  }
}

export interface HeldLease {
  release(): Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Takes the embedded log's lease (waiting up to `leaseMs` for a lapsed holder) and keeps renewing it. */
export async function holdEmbeddedLogLease(options: { leases: Leases; leaseMs: number; logger: Logger; onLost: () => void }): Promise<HeldLease> {
  const { leases, leaseMs, logger } = options;
  const deadline = Date.now() + leaseMs + 1_000;
  let warned = false;
  while (!(await leases.acquire(EMBEDDED_LOG_LEASE, leaseMs))) {
    const holder = await leases.holder(EMBEDDED_LOG_LEASE);
    if (Date.now() > deadline) throw new EmbeddedLogTaken(holder?.owner ?? 'unknown');
    if (!warned) {
      logger.warn({ holder: holder?.owner }, 'another process holds the embedded log; waiting for its lease to lapse');
      warned = true;
    }
    await sleep(Math.min(500, leaseMs / 4));
  }
  let stopped = false;
  let lastRenewal = Date.now();
  const timer = setInterval(() => {
    void leases.renew(EMBEDDED_LOG_LEASE, leaseMs).then(
      (held) => {
        if (stopped) return;
        if (held) {
          lastRenewal = Date.now();
          return;
        }
        stopped = true;
        clearInterval(timer);
        logger.error('another process took the embedded log lease; this process stops consuming');
        options.onLost();
      },
      (error: unknown) => {
        logger.warn({ err: error }, 'renewing the embedded log lease failed');
        if (!stopped && Date.now() - lastRenewal >= leaseMs) {
          stopped = true;
          clearInterval(timer);
          logger.error('the embedded log lease lapsed (the store did not answer); this process stops consuming');
          options.onLost();
        }
      },
    );
  }, Math.floor(leaseMs / 3));
  timer.unref();
  return {
    release: async () => {
      stopped = true;
      clearInterval(timer);
      await leases.release([EMBEDDED_LOG_LEASE]).catch(() => undefined);
    },
  };
}
