// Which process runs which connection's sync worker, when several worker processes share one
// PostgreSQL. A connection's worker is a singleton: it pushes marked records out, applies external
// changes in, polls the change feed, and keeps a record from being written both ways at once — so
// exactly one process runs it, the one holding the lease `connection:<id>`. Leases are spread: each
// worker process takes at most its fair share (active connections ÷ live worker processes, rounded
// up) and gives back what is beyond it, so a process that joins gets work within a lease round, and
// a process that dies has its connections taken over once their leases expire.
//
// Every round (a third of the lease) also compares the connections in the store with those seen
// before: a connection created, changed or deleted by another process is reloaded here too (and at
// once when that process signals it).
import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import { Leases } from './leases.ts';
import type { Signals } from './signals.ts';
import { isRunning, type ConnectionStatus } from '../sync/connections.ts';

/** What the sync engine asks: which connections this process runs, and how to reach the others. */
export interface ConnectionOwnership {
  /** Begins; the first round is done when it resolves (so the engine installs what it owns). */
  start(hooks: OwnershipHooks): Promise<void>;
  /** Whether this process runs the connection's worker now. */
  owns(connectionId: string): boolean;
  /** New work for a connection whose worker may run in another process. */
  wake(connectionId: string): void;
  /** A connection was changed here: the other processes reload it. */
  changed(connectionId: string): void;
  /** Gives every lease back and leaves. */
  stop(): Promise<void>;
}

export interface OwnershipHooks {
  /** Reload the connection: it changed, or this process took or lost its worker. */
  changed(connectionId: string): void;
  /** Another process has work for a connection this one may run. */
  wake(connectionId: string): void;
}

export interface ConnectionLeasesOptions {
  store: Store;
  owner: string;
  leaseMs: number;
  signals: Signals;
  logger: Logger;
}

const PREFIX = 'connection:';
export const WORKER_ROLE = 'worker';

export class ConnectionLeases implements ConnectionOwnership {
  readonly #options: ConnectionLeasesOptions;
  readonly #leases: Leases;
  /** Connections whose worker runs here, with the expiry this process last wrote (ms). */
  readonly #held = new Map<string, number>();
  /** Connections seen in the store: id -> status and updated_at. */
  #seen: Map<string, string> | undefined;
  #hooks: OwnershipHooks | undefined;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: ConnectionLeasesOptions) {
    this.#options = options;
    this.#leases = new Leases(options.store, options.owner);
  }

  async start(hooks: OwnershipHooks): Promise<void> {
    this.#hooks = hooks;
    this.#options.signals.subscribe((kind, id) => {
      if (kind === 'wake') hooks.wake(id);
      else this.#soon();
    });
    await this.#runRound();
    this.#schedule();
  }

  owns(connectionId: string): boolean {
    const until = this.#held.get(connectionId);
    return until !== undefined && until > Date.now();
  }

  wake(connectionId: string): void {
    this.#options.signals.publish('wake', connectionId);
  }

  changed(connectionId: string): void {
    this.#options.signals.publish('changed', connectionId);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#round;
    const names = [...this.#held.keys()].map((id) => `${PREFIX}${id}`);
    this.#held.clear();
    await this.#leases.release(names).catch((error: unknown) => {
      this.#options.logger.warn({ err: error }, 'giving connection leases back failed; they expire');
    });
    await this.#leases.leave().catch(() => undefined);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.#runRound().finally(() => {
        this.#schedule();
      });
    }, Math.floor(this.#options.leaseMs / 3));
  }

  /** A round now (a connection changed elsewhere), without waiting for the timer. */
  #soon(): void {
    if (this.#stopped) return;
    void this.#runRound();
  }

  #runRound(): Promise<void> {
    this.#round = this.#round.then(() => this.#claim()).catch((error: unknown) => {
      this.#options.logger.warn({ err: error }, 'connection leases: a round failed; retrying');
    });
    return this.#round;
  }

  async #claim(): Promise<void> {
    if (this.#stopped) return;
    const hooks = this.#hooks;
    if (hooks === undefined) return;
    const { store, leaseMs, logger } = this.#options;
    const now = Date.now();
    const nowIso = new Date(now).toISOString();
    // Held leases whose expiry passed without a renewal (the store did not answer): not ours any more.
    for (const [id, until] of this.#held) {
      if (until <= now) {
        this.#held.delete(id);
        logger.warn({ connectionId: id }, 'connection lease expired before it could be renewed; stopping its worker');
        hooks.changed(id);
      }
    }
    await this.#leases.heartbeat([WORKER_ROLE], leaseMs, now);
    const first = this.#seen === undefined;
    const rows = await store.db.selectFrom('connections').select(['id', 'status', 'updated_at']).execute();
    // Waiting for the API allocation is running too: the worker's own report restarts nothing.
    const current = new Map(rows.map((r) => [r.id, `${isRunning(r.status as ConnectionStatus) ? 'running' : r.status}@${r.updated_at}`]));
    if (this.#seen !== undefined) {
      for (const [id, state] of current) if (this.#seen.get(id) !== state) hooks.changed(id);
      for (const id of this.#seen.keys()) if (!current.has(id)) hooks.changed(id);
    }
    this.#seen = current;

    const active = rows.filter((r) => isRunning(r.status as ConnectionStatus)).map((r) => r.id);
    const activeSet = new Set(active);
    const members = await this.#leases.members(WORKER_ROLE, now);
    const live = Math.max(1, new Set([...members, this.#leases.owner]).size);
    const share = Math.ceil(active.length / live);
    const leases = new Map((await this.#leases.list(PREFIX)).map((l) => [l.name.slice(PREFIX.length), l]));

    // Leases of connections that are gone or not active: given back.
    const idle = [...this.#held.keys()].filter((id) => !activeSet.has(id));
    // Renew what is ours; beyond the fair share (another process joined), give back the excess.
    const mine = [...this.#held.keys()].filter((id) => activeSet.has(id)).sort();
    const excess = live > 1 && mine.length > share ? mine.slice(share) : [];
    const giveBack = [...idle, ...excess];
    if (giveBack.length > 0) {
      await this.#leases.release(giveBack.map((id) => `${PREFIX}${id}`));
      for (const id of giveBack) {
        this.#held.delete(id);
        hooks.changed(id);
      }
    }
    for (const id of mine.filter((m) => !excess.includes(m))) {
      if (await this.#leases.renew(`${PREFIX}${id}`, leaseMs, now)) {
        this.#held.set(id, now + leaseMs);
      } else {
        this.#held.delete(id);
        logger.warn({ connectionId: id }, 'another process took over a connection lease; stopping its worker');
        hooks.changed(id);
      }
    }
    // Take free or expired leases up to the fair share. Free ones first, in a per-process order, so
    // processes starting together do not all go for the same rows.
    const free = active.filter((id) => {
      if (this.#held.has(id)) return false;
      const lease = leases.get(id);
      return lease === undefined || lease.owner === null || lease.lease_until <= nowIso;
    });
    const salt = this.#leases.owner;
    free.sort((a, b) => hash(`${salt}${a}`) - hash(`${salt}${b}`));
    for (const id of free) {
      if (this.#held.size >= share) break;
      if (await this.#leases.acquire(`${PREFIX}${id}`, leaseMs, now)) {
        this.#held.set(id, now + leaseMs);
        logger.info({ connectionId: id }, 'took the lease of a connection: its worker runs here');
        // On the first round the engine has not loaded any connection yet: it asks owns() then.
        if (!first) hooks.changed(id);
      }
    }
  }
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** A process without the worker role: runs no connection's worker, and passes work on to those that do. */
export function ownsNothing(signals: Signals): ConnectionOwnership {
  return {
    start: () => Promise.resolve(),
    owns: () => false,
    wake: (id) => {
      signals.publish('wake', id);
    },
    changed: (id) => {
      signals.publish('changed', id);
    },
    stop: () => Promise.resolve(),
  };
}
