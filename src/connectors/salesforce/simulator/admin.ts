// Inspection and control of the simulated org: `sim.admin` in-process, `/_sim/…` over HTTP.
// Writes through the admin act like a person in the Salesforce UI: they change records (audit
// fields, change log) but are no API calls, so they use none of the daily allocation.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { ChangeDataCapture, ChangeEvent } from './cdc.ts';
import { SalesforceError } from './errors.ts';
import { faultSettingsSchema, type Faults, type FaultSettings } from './faults.ts';
import type { ApiAllocation } from './limits.ts';
import type { ConnectedAppInput, Identity, UserInput } from './oauth.ts';
import type { RestApi } from './rest.ts';
import { findSObject, type SObjectDef } from './schema.ts';
import { recordView, type RecordStore } from './store.ts';

export interface RequestStats {
  total: number;
  /** e.g. `PATCH sobjects/Account/:id`, `POST composite/sobjects`. */
  byRoute: Record<string, number>;
  byStatus: Record<string, number>;
  injectedErrors: number;
  hung: number;
  limitExceeded: number;
  invalidSession: number;
}

/** One committed change, in order: what CDC will publish. */
export interface ChangeEntry {
  seq: number;
  at: string;
  sobject: string;
  id: string;
  change: 'CREATE' | 'UPDATE' | 'DELETE';
  userId: string;
  /** The connected app whose session made the change; null for admin (UI) changes. */
  connectedApp: string | null;
  /** `client=` of the `Sforce-Call-Options` header, if sent. */
  callOptionsClient: string | null;
}

export type RecordView = Record<string, unknown>;

export interface SalesforceSimulatorAdmin {
  /** Records of one object, oldest first; deleted ones (Recycle Bin) included unless `includeDeleted: false`. */
  records(sobject: string, options?: { includeDeleted?: boolean }): RecordView[];
  record(sobject: string, id: string): RecordView | undefined;
  /** Changes as a user in the UI would make them (no API call is counted). */
  create(sobject: string, fields: Record<string, unknown>): RecordView;
  update(sobject: string, id: string, fields: Record<string, unknown>): RecordView;
  delete(sobject: string, id: string): void;
  /** Empties the Recycle Bin of rows deleted at least `olderThanMs` ago (default 15 days). */
  purgeRecycleBin(olderThanMs?: number): number;
  changes(sinceSeq?: number): ChangeEntry[];
  /** Change Data Capture events still retained (72 hours), oldest first. */
  changeEvents(): ChangeEvent[];
  /** CometD clients that handshook and have not disconnected. */
  cometdClients(): number;
  /** Ends every session: the next call of each client gets 401 INVALID_SESSION_ID. */
  expireSessions(): number;
  revokeRefreshTokens(): void;
  addConnectedApp(app: ConnectedAppInput): void;
  addUser(user: UserInput): { id: string; username: string };
  /** API calls counted in the last 24 hours, and the allocation. */
  apiUsage(): { used: number; limit: number };
  setDailyApiLimit(limit: number): void;
  /** Counts calls as if made now (to start a test near the limit). */
  spendApiCalls(calls: number): void;
  requests(): RequestStats;
  openQueryCursors(): number;
  setFaults(settings: FaultSettings): void;
  clearFaults(): void;
  faults(): FaultSettings;
  /** Forgets records, sessions, cursors, usage, faults and counts (apps and users stay). */
  reset(): void;
}

export interface AdminDeps {
  store: RecordStore;
  identity: Identity;
  allocation: ApiAllocation;
  faults: Faults;
  rest: RestApi;
  changes: ChangeEntry[];
  stats: () => RequestStats;
  cdc: ChangeDataCapture;
  clock: () => number;
  defaultUserId: string;
  runAsUi: <T>(fn: () => T) => T;
  reset: () => void;
}

function sobjectOrThrow(name: string): SObjectDef {
  const def = findSObject(name);
  if (def === undefined) throw new Error(`unknown sObject ${name} (the simulator has Account and Contact)`);
  return def;
}

const BASE = '/services/data/v66.0';

export function createAdmin(deps: AdminDeps): SalesforceSimulatorAdmin {
  const ctx = (): { userId: string; nowMs: number } => ({ userId: deps.defaultUserId, nowMs: deps.clock() });
  const view = (def: SObjectDef, id: string): RecordView => {
    const record = deps.store.get(def.name, id);
    if (record === undefined) throw new Error(`no ${def.name} ${id}`);
    return recordView(def, record, BASE);
  };
  return {
    records: (sobject, options = {}) => {
      const def = sobjectOrThrow(sobject);
      return deps.store
        .all(def.name)
        .filter((r) => options.includeDeleted !== false || r.deletedAtMs === undefined)
        .map((r) => recordView(def, r, BASE));
    },
    record: (sobject, id) => {
      const def = sobjectOrThrow(sobject);
      const record = deps.store.get(def.name, id);
      return record === undefined ? undefined : recordView(def, record, BASE);
    },
    create: (sobject, fields) => {
      const def = sobjectOrThrow(sobject);
      return deps.runAsUi(() => {
        const record = deps.store.create(def, fields, ctx());
        deps.rest.noteWrites([{ type: def.name, id: record.id, change: 'CREATE' }]);
        return view(def, record.id);
      });
    },
    update: (sobject, id, fields) => {
      const def = sobjectOrThrow(sobject);
      return deps.runAsUi(() => {
        const record = deps.store.update(def, id, fields, ctx());
        deps.rest.noteWrites([{ type: def.name, id: record.id, change: 'UPDATE' }]);
        return view(def, record.id);
      });
    },
    delete: (sobject, id) => {
      const def = sobjectOrThrow(sobject);
      deps.runAsUi(() => {
        const journal: { type: string; id: string }[] = [];
        deps.store.delete(def, id, { ...ctx(), journal: journal as never });
        deps.rest.noteWrites(journal.map((e) => ({ type: e.type, id: e.id, change: 'DELETE' as const })).reverse());
      });
    },
    purgeRecycleBin: (olderThanMs) => deps.store.purge(deps.clock(), olderThanMs),
    changes: (sinceSeq = 0) => deps.changes.filter((c) => c.seq > sinceSeq).map((c) => ({ ...c })),
    changeEvents: () => structuredClone(deps.cdc.events),
    cometdClients: () => deps.cdc.clients(),
    expireSessions: () => deps.identity.expireSessions(),
    revokeRefreshTokens: () => { deps.identity.revokeRefreshTokens(); },
    addConnectedApp: (app) => { deps.identity.addApp(app); },
    addUser: (user) => {
      const u = deps.identity.addUser(user);
      return { id: u.id, username: u.username };
    },
    apiUsage: () => ({ used: deps.allocation.used(deps.clock()), limit: deps.allocation.limit }),
    setDailyApiLimit: (limit) => { deps.allocation.limit = limit; },
    spendApiCalls: (calls) => { deps.allocation.spend(deps.clock(), calls); },
    requests: () => structuredClone(deps.stats()),
    openQueryCursors: () => deps.rest.openCursors(),
    setFaults: (settings) => { deps.faults.set(faultSettingsSchema.parse(settings)); },
    clearFaults: () => { deps.faults.clear(); },
    faults: () => deps.faults.snapshot(),
    reset: deps.reset,
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const limitsSchema = z.strictObject({ dailyApiLimit: z.number().int().min(0).optional(), spend: z.number().int().min(0).optional() });

/**
 * The admin routes: `GET /_sim/records?sobject=Account[&include_deleted=false]`,
 * `POST /_sim/records?sobject=` (create), `PATCH|DELETE /_sim/records?sobject=&id=`,
 * `GET /_sim/changes[?since=N]`, `GET /_sim/requests`, `GET|POST|DELETE /_sim/faults`,
 * `GET|POST /_sim/limits` (`{dailyApiLimit, spend}`), `POST /_sim/expire-sessions`, `POST /_sim/reset`.
 */
export async function handleAdminRequest(
  admin: SalesforceSimulatorAdmin,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  readBody: (req: IncomingMessage, limit: number) => Promise<string | undefined>,
): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  const text = (await readBody(req, 1024 * 1024)) ?? '';
  const route = `${method} ${url.pathname.replace(/\/$/, '')}`;
  let body: unknown = {};
  try {
    body = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    json(res, 400, { error: 'The body must be JSON.' });
    return;
  }
  const sobject = url.searchParams.get('sobject') ?? 'Account';
  const id = url.searchParams.get('id') ?? '';
  try {
    switch (route) {
      case 'GET /_sim/records':
        json(res, 200, { data: admin.records(sobject, { includeDeleted: url.searchParams.get('include_deleted') !== 'false' }) });
        return;
      case 'POST /_sim/records':
        json(res, 201, admin.create(sobject, body as Record<string, unknown>));
        return;
      case 'PATCH /_sim/records':
        json(res, 200, admin.update(sobject, id, body as Record<string, unknown>));
        return;
      case 'DELETE /_sim/records':
        admin.delete(sobject, id);
        json(res, 200, { deleted: true });
        return;
      case 'GET /_sim/changes':
        json(res, 200, { data: admin.changes(Number(url.searchParams.get('since') ?? '0')) });
        return;
      case 'GET /_sim/change-events':
        json(res, 200, { data: admin.changeEvents() });
        return;
      case 'GET /_sim/requests':
        json(res, 200, { stats: admin.requests(), apiUsage: admin.apiUsage(), openQueryCursors: admin.openQueryCursors() });
        return;
      case 'GET /_sim/faults':
        json(res, 200, admin.faults());
        return;
      case 'POST /_sim/faults': {
        const parsed = faultSettingsSchema.safeParse(body);
        if (!parsed.success) {
          json(res, 400, { error: parsed.error.message });
          return;
        }
        admin.setFaults(parsed.data);
        json(res, 200, admin.faults());
        return;
      }
      case 'DELETE /_sim/faults':
        admin.clearFaults();
        json(res, 200, admin.faults());
        return;
      case 'GET /_sim/limits':
        json(res, 200, admin.apiUsage());
        return;
      case 'POST /_sim/limits': {
        const parsed = limitsSchema.safeParse(body);
        if (!parsed.success) {
          json(res, 400, { error: parsed.error.message });
          return;
        }
        if (parsed.data.dailyApiLimit !== undefined) admin.setDailyApiLimit(parsed.data.dailyApiLimit);
        if (parsed.data.spend !== undefined) admin.spendApiCalls(parsed.data.spend);
        json(res, 200, admin.apiUsage());
        return;
      }
      case 'POST /_sim/expire-sessions':
        json(res, 200, { expired: admin.expireSessions() });
        return;
      case 'POST /_sim/reset':
        admin.reset();
        json(res, 200, { reset: true });
        return;
      default:
        json(res, 404, { error: `No admin route ${route}.` });
    }
  } catch (error) {
    if (error instanceof SalesforceError) json(res, error.status, error.body());
    else json(res, 400, { error: error instanceof Error ? error.message : String(error) });
  }
}
