// Named leases in the store, and the register of live Tandem processes. A lease is one row (owner +
// expiry): a process does a singleton's work only while it holds its lease, renews it well before it
// expires, and gives it back when it stops. A process that dies stops renewing; once its lease has
// expired another process takes it (takeover on death, after at most the lease time).
//
// Taking a lease is one conditional UPDATE (ours already, free, or expired), so two processes never
// both get it: PostgreSQL re-checks the condition on the row it locked, SQLite has one writer.
// Expiry times are wall-clock: the hosts' clocks must agree to within a small part of the lease (NTP).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Store } from '../store/store.ts';

export interface LeasesTable {
  name: string;
  owner: string | null;
  lease_until: string;
}

export interface MembersTable {
  owner: string;
  roles: string;
  seen_until: string;
}

export type ScaleTables = {
  leases: LeasesTable;
  tandem_members: MembersTable;
};

const EPOCH = new Date(0).toISOString();

/** A name for this process in lease rows: host, pid and a random part (unique across restarts). */
export function processOwnerId(): string {
  return `${hostname()}-${String(process.pid)}-${randomUUID().slice(0, 8)}`;
}

export class Leases {
  readonly owner: string;
  readonly #store: Store;

  constructor(store: Store, owner: string) {
    this.#store = store;
    this.owner = owner;
  }

  get #db() {
    return this.#store.db.$extendTables<ScaleTables>();
  }

  /**
   * Takes or renews the lease for `ttlMs` from now. True when this process holds it afterwards;
   * false when another process holds it and it has not expired.
   */
  async acquire(name: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    const nowIso = new Date(now).toISOString();
    const until = new Date(now + ttlMs).toISOString();
    await this.#db
      .insertInto('leases')
      .values({ name, owner: null, lease_until: EPOCH })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const result = await this.#db
      .updateTable('leases')
      .set({ owner: this.owner, lease_until: until })
      .where('name', '=', name)
      .where((eb) => eb.or([eb('owner', '=', this.owner), eb('owner', 'is', null), eb('lease_until', '<=', nowIso)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Renews a lease only if this process still holds it (never takes a free or expired one). */
  async renew(name: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    const result = await this.#db
      .updateTable('leases')
      .set({ lease_until: new Date(now + ttlMs).toISOString() })
      .where('name', '=', name)
      .where('owner', '=', this.owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Gives leases back at once (a clean stop), so another process need not wait for their expiry. */
  async release(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.#db
      .updateTable('leases')
      .set({ owner: null, lease_until: EPOCH })
      .where('owner', '=', this.owner)
      .where('name', 'in', [...names])
      .execute();
  }

  /** Every lease whose name starts with `prefix`, held or not. */
  async list(prefix: string): Promise<LeasesTable[]> {
    return this.#db.selectFrom('leases').selectAll().where('name', 'like', `${prefix}%`).execute();
  }

  async holder(name: string, now = Date.now()): Promise<{ owner: string; until: string } | undefined> {
    const row = await this.#db.selectFrom('leases').selectAll().where('name', '=', name).executeTakeFirst();
    if (row?.owner === null || row === undefined || row.lease_until <= new Date(now).toISOString()) return undefined;
    return { owner: row.owner, until: row.lease_until };
  }

  // The register of live processes.

  async heartbeat(roles: readonly string[], ttlMs: number, now = Date.now()): Promise<void> {
    const until = new Date(now + ttlMs).toISOString();
    await this.#db
      .insertInto('tandem_members')
      .values({ owner: this.owner, roles: roles.join(','), seen_until: until })
      .onConflict((oc) => oc.column('owner').doUpdateSet({ seen_until: until, roles: roles.join(',') }))
      .execute();
  }

  /** Owners of the live processes that have `role` (this one included, once it announced itself). */
  async members(role: string, now = Date.now()): Promise<string[]> {
    const nowIso = new Date(now).toISOString();
    const rows = await this.#db.selectFrom('tandem_members').select(['owner', 'roles']).where('seen_until', '>', nowIso).execute();
    // Long dead rows go, so the table stays small.
    await this.#db.deleteFrom('tandem_members').where('seen_until', '<', new Date(now - 3_600_000).toISOString()).execute();
    return rows.filter((r) => r.roles.split(',').includes(role)).map((r) => r.owner);
  }

  async leave(): Promise<void> {
    await this.#db.deleteFrom('tandem_members').where('owner', '=', this.owner).execute();
  }
}
