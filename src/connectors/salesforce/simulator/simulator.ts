// The Salesforce simulator's HTTP server: OAuth (`/services/oauth2/*`, `/id/…`), the REST API
// (`/services/data/vXX.X/…`) and the `/_sim` admin routes. One REST call goes through:
// version → session (401 INVALID_SESSION_ID) → injected REQUEST_LIMIT_EXCEEDED burst → the rolling
// daily allocation (403) → injected hang / 500 (before) → latency → the resource → injected hang /
// 500 (after). Every REST answer carries `Sforce-Limit-Info: api-usage=used/limit`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChangeDataCapture } from './cdc.ts';
import { createAdmin, handleAdminRequest, type ChangeEntry, type RequestStats, type SalesforceSimulatorAdmin } from './admin.ts';
import { OAuthError, SalesforceError, invalidSession, notFound, requestLimitExceeded, unknownException } from './errors.ts';
import { Faults, type FaultSettings } from './faults.ts';
import { IdSequence } from './ids.ts';
import { ApiAllocation } from './limits.ts';
import { Identity, type ConnectedAppInput, type Session, type UserInput } from './oauth.ts';
import { RestApi, type RestResponse } from './rest.ts';
import { RecordStore } from './store.ts';

/** Subset of pino's logger the simulator uses. */
export interface SimulatorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const DEFAULT_CLIENT_ID = 'tandem-sim';
export const DEFAULT_CLIENT_SECRET = 'tandem-sim-secret';
export const DEFAULT_USERNAME = 'admin@tandem-sim.example';
export const DEFAULT_PASSWORD = 'tandem-sim-password';
export const LATEST_API_VERSION = '66.0';
const OLDEST_API_VERSION = 20;

export interface SalesforceSimulatorOptions {
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Simulated time: audit fields, session expiry, the rolling allocation, replication windows. */
  clock?: () => Date;
  logger?: SimulatorLogger;
  /** Users of the org; default one, `admin@tandem-sim.example` / `tandem-sim-password`. The first is the default user. */
  users?: UserInput[];
  /**
   * Connected apps; default one, `tandem-sim` / `tandem-sim-secret`, allowed the client
   * credentials flow as the default user. Given, these replace the default.
   */
  connectedApps?: ConnectedAppInput[];
  /** Access token lifetime, ms. Default 2 hours (Salesforce's default session timeout). */
  sessionTimeoutMs?: number;
  /** API calls allowed in any 24 hours. Default 100,000; 0 refuses every call. */
  dailyApiLimit?: number;
  /** Rows per query batch (and the largest `batchSize`). Default 2,000. */
  queryBatchSize?: number;
  /** Open query cursors per user. Default 10. */
  maxOpenCursors?: number;
  /** The newest API version served (`/services/data` lists 20.0 up to it). Default 66.0. */
  latestApiVersion?: string;
  faults?: FaultSettings;
  /** How long a CometD /meta/connect is held when no change event comes. Default 110 s (Salesforce's). */
  cometdPollTimeoutMs?: number;
  /** Largest request body, bytes. Default 8 MiB. */
  bodyLimit?: number;
}

export interface SalesforceSimulator {
  /** Login and instance URL, e.g. `http://127.0.0.1:12112`. */
  url: string;
  host: string;
  port: number;
  /** The org id (18 characters). */
  orgId: string;
  admin: SalesforceSimulatorAdmin;
  /** Stops listening and drops every connection (hung requests too). */
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => { resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')); });
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function emptyStats(): RequestStats {
  return { total: 0, byRoute: {}, byStatus: {}, injectedErrors: 0, hung: 0, limitExceeded: 0, invalidSession: 0 };
}

/** `GET /services/data/vXX.X/sobjects/Account/001…` → `GET sobjects/:type/:id` (for the request counts). */
function routeName(method: string, segments: string[]): string {
  const [a, b, c, d] = segments;
  const named = (() => {
    if (a === 'sobjects') {
      if (b === undefined) return 'sobjects';
      if (c === undefined) return `sobjects/${b}`;
      if (['describe', 'updated', 'deleted'].includes(c) && d === undefined) return `sobjects/${b}/${c}`;
      return d === undefined ? `sobjects/${b}/:id` : `sobjects/${b}/${c}/:value`;
    }
    if (a === 'query' || a === 'queryAll') return b === undefined ? a : `${a}/:locator`;
    if (a === 'composite') return segments.join('/');
    return segments.join('/');
  })();
  return `${method} ${named}`;
}

export async function startSalesforceSimulator(options: SalesforceSimulatorOptions = {}): Promise<SalesforceSimulator> {
  const clock = options.clock ?? (() => new Date());
  const nowMs = (): number => clock().getTime();
  const bodyLimit = options.bodyLimit ?? 8 * 1024 * 1024;
  const latest = Number(options.latestApiVersion ?? LATEST_API_VERSION);
  const orgId = new IdSequence('00D').next();
  const orgCreatedMs = nowMs();
  const identity = new Identity({ orgId, sessionTimeoutMs: options.sessionTimeoutMs ?? 2 * 60 * 60 * 1000, clock: nowMs });
  const users = options.users ?? [{ username: DEFAULT_USERNAME, password: DEFAULT_PASSWORD, name: 'Tandem Simulator' }];
  if (users.length === 0) throw new Error('the simulated org needs at least one user');
  for (const u of users) identity.addUser(u);
  const firstUser = identity.userByName(users[0]?.username ?? '');
  if (firstUser === undefined) throw new Error('no default user');
  const defaultUser = firstUser;
  const apps = options.connectedApps ?? [{ clientId: DEFAULT_CLIENT_ID, clientSecret: DEFAULT_CLIENT_SECRET, clientCredentialsUser: defaultUser.username }];
  for (const app of apps) identity.addApp(app);

  const store = new RecordStore();
  const allocation = new ApiAllocation(options.dailyApiLimit ?? 100_000);
  const faults = new Faults();
  if (options.faults !== undefined) faults.set(options.faults);
  let stats = emptyStats();
  const changes: ChangeEntry[] = [];
  let changeSeq = 0;
  const MAX_CHANGES = 100_000;
  let currentCall: { clientId: string | undefined; callOptionsClient: string | undefined; userId: string; version: string | undefined } | undefined;
  const cdc = new ChangeDataCapture({ clock: nowMs, pollTimeoutMs: options.cometdPollTimeoutMs ?? 110_000 });

  const rest = new RestApi({
    store,
    allocation,
    queryBatchSize: options.queryBatchSize ?? 2000,
    maxOpenCursors: options.maxOpenCursors ?? 10,
    orgCreatedMs,
    onWrite: (events) => {
      const transactionKey = ChangeDataCapture.newTransactionKey();
      const version = currentCall?.version;
      const client = currentCall?.callOptionsClient;
      const origin = version === undefined ? '' : `com/salesforce/api/rest/${version}${client === undefined ? '' : `;client=${client}`}`;
      events.forEach((e, i) => {
        const record = store.get(e.type, e.id);
        if (record !== undefined) {
          cdc.publish({ record, change: e.change, transactionKey, sequenceNumber: i + 1, origin, userId: currentCall?.userId ?? defaultUser.id, gap: faults.cdcGap() });
        }
      });
      for (const e of events) {
        changeSeq += 1;
        changes.push({
          seq: changeSeq,
          at: new Date(nowMs()).toISOString(),
          sobject: e.type,
          id: e.id,
          change: e.change,
          userId: currentCall?.userId ?? defaultUser.id,
          connectedApp: currentCall?.clientId ?? null,
          callOptionsClient: currentCall?.callOptionsClient ?? null,
        });
      }
      if (changes.length > MAX_CHANGES) changes.splice(0, changes.length - MAX_CHANGES);
    },
  });

  /** Responses held open by the hang fault (closed on stop). */
  const hanging = new Set<ServerResponse>();
  let stopping = false;
  let baseUrl = '';

  const admin = createAdmin({
    store,
    identity,
    allocation,
    faults,
    rest,
    changes,
    stats: () => stats,
    cdc,
    clock: nowMs,
    defaultUserId: defaultUser.id,
    runAsUi: (fn) => {
      const previous = currentCall;
      currentCall = { clientId: undefined, callOptionsClient: undefined, userId: defaultUser.id, version: undefined };
      try {
        return fn();
      } finally {
        currentCall = previous;
      }
    },
    reset: () => {
      store.clear();
      identity.clear();
      allocation.reset();
      faults.clear();
      rest.clearCursors();
      changes.length = 0;
      cdc.clear();
      stats = emptyStats();
    },
  });

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    if (body === undefined || status === 204 || status === 304) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json;charset=UTF-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-cache,must-revalidate,max-age=0,no-store,private',
      ...headers,
    });
    res.end(text);
  }

  const limitHeader = (): Record<string, string> => ({ 'Sforce-Limit-Info': `api-usage=${String(allocation.used(nowMs()))}/${String(allocation.limit)}` });

  function count(route: string, status: number): void {
    stats.total += 1;
    stats.byRoute[route] = (stats.byRoute[route] ?? 0) + 1;
    stats.byStatus[String(status)] = (stats.byStatus[String(status)] ?? 0) + 1;
  }

  function bearer(req: IncomingMessage): Session | undefined {
    const header = req.headers.authorization ?? '';
    const m = /^(?:Bearer|OAuth)\s+(\S+)$/i.exec(header.trim());
    return m?.[1] === undefined ? undefined : identity.session(m[1]);
  }

  async function handleData(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const parts = url.pathname.split('/').filter((p) => p !== '').slice(2); // after services/data
    const [versionPart, ...segmentsRaw] = parts;
    const body = await readBody(req, bodyLimit);
    if (versionPart === undefined) {
      const versions = [];
      for (let v = OLDEST_API_VERSION; v <= latest; v += 1) versions.push({ label: `v${v.toFixed(1)}`, url: `/services/data/v${v.toFixed(1)}`, version: v.toFixed(1) });
      send(res, 200, versions);
      return;
    }
    const vm = /^v(\d+\.\d)$/.exec(versionPart);
    const version = vm?.[1];
    if (version === undefined || Number(version) < OLDEST_API_VERSION || Number(version) > latest) {
      send(res, 404, notFound().body());
      return;
    }
    let segments: string[];
    try {
      segments = segmentsRaw.map((s) => decodeURIComponent(s));
    } catch {
      send(res, 404, notFound().body());
      return;
    }
    const route = routeName(method, segments);
    const fail = (error: SalesforceError, extra: Record<string, string> = {}): void => {
      send(res, error.status, error.body(), { ...limitHeader(), ...error.headers, ...extra });
      count(route, error.status);
    };
    const session = bearer(req);
    if (session === undefined) {
      stats.invalidSession += 1;
      const e = invalidSession();
      send(res, e.status, e.body(), { ...limitHeader(), ...e.headers });
      count(route, e.status);
      return;
    }
    if (faults.takeRequestLimitBurst() || !allocation.take(nowMs())) {
      stats.limitExceeded += 1;
      fail(requestLimitExceeded());
      return;
    }
    const hang = (): void => {
      stats.hung += 1;
      count(route, 0);
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
    };
    const hangPhase = faults.hang();
    const errorPhase = faults.error();
    if (hangPhase === 'before') {
      hang();
      return;
    }
    if (errorPhase === 'before') {
      stats.injectedErrors += 1;
      fail(unknownException());
      return;
    }
    if (body === undefined) {
      fail(new SalesforceError(413, 'REQUEST_ENTITY_TOO_LARGE', `Request body too large (over ${String(bodyLimit)} bytes).`));
      return;
    }
    const latency = faults.latencyMs();
    if (latency > 0) await sleep(latency);
    if (stopping) return;

    const callOptions = req.headers['sforce-call-options'];
    const callClient = /(?:^|,)\s*client\s*=\s*([^,\s]+)/i.exec(Array.isArray(callOptions) ? callOptions.join(',') : (callOptions ?? ''))?.[1];
    let response: RestResponse;
    currentCall = { clientId: session.clientId, callOptionsClient: callClient, userId: session.userId, version };
    try {
      response = rest.handle({
        method,
        version,
        segments,
        query: url.searchParams,
        body,
        header: (name) => {
          const v = req.headers[name.toLowerCase()];
          return Array.isArray(v) ? v.join(', ') : v;
        },
        userId: session.userId,
        nowMs: nowMs(),
      });
    } catch (error) {
      if (!(error instanceof SalesforceError)) throw error;
      response = { status: error.status, body: error.body(), headers: error.headers };
    } finally {
      currentCall = undefined;
    }
    if (hangPhase === 'after') {
      hang();
      return;
    }
    if (errorPhase === 'after') {
      stats.injectedErrors += 1;
      fail(unknownException());
      return;
    }
    send(res, response.status, response.body, { ...limitHeader(), ...(response.headers ?? {}) });
    count(route, response.status);
  }

  async function handleOAuth(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const body = (await readBody(req, 64 * 1024)) ?? '';
    const path = url.pathname.replace(/\/$/, '');
    try {
      if (path === '/services/oauth2/token' && method === 'POST') {
        const params = new URLSearchParams(body);
        const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
        if (basic?.[1] !== undefined) {
          const [id = '', secret = ''] = Buffer.from(basic[1], 'base64').toString('utf8').split(':');
          if (!params.has('client_id')) params.set('client_id', decodeURIComponent(id));
          if (!params.has('client_secret')) params.set('client_secret', decodeURIComponent(secret));
        }
        const audiences = [baseUrl, 'https://login.salesforce.com', 'https://test.salesforce.com'];
        send(res, 200, identity.token(params, baseUrl, audiences));
        return;
      }
      if (path === '/services/oauth2/authorize' && method === 'GET') {
        const { redirect } = identity.authorize(url.searchParams, defaultUser);
        res.writeHead(302, { Location: redirect });
        res.end();
        return;
      }
      if (path === '/services/oauth2/revoke' && (method === 'POST' || method === 'GET')) {
        const tokenValue = method === 'POST' ? new URLSearchParams(body).get('token') : url.searchParams.get('token');
        identity.revoke(tokenValue ?? '');
        send(res, 200, undefined);
        return;
      }
      if ((path === '/services/oauth2/userinfo' && method === 'GET') || (path.startsWith('/id/') && method === 'GET')) {
        const session = bearer(req);
        if (session === undefined) {
          send(res, 403, 'Bad_OAuth_Token');
          return;
        }
        const user = identity.users.get(session.userId);
        send(res, 200, {
          id: `${baseUrl}/id/${orgId}/${session.userId}`,
          user_id: session.userId,
          organization_id: orgId,
          username: user?.username,
          display_name: user?.name,
          email: user?.email,
          active: true,
          urls: { rest: `${baseUrl}/services/data/v{version}/`, sobjects: `${baseUrl}/services/data/v{version}/sobjects/`, query: `${baseUrl}/services/data/v{version}/query/` },
        });
        return;
      }
      send(res, 404, notFound().body());
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      send(res, error.status, error.body());
    }
  }

  async function handleCometd(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = (await readBody(req, 1024 * 1024)) ?? '';
    let messages: unknown;
    try {
      messages = JSON.parse(body);
    } catch {
      send(res, 400, [{ successful: false, error: '400::Bad request: the body must be a JSON array of Bayeux messages' }]);
      return;
    }
    const list = (Array.isArray(messages) ? messages : [messages]).filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null);
    cdc.handle(list, res, bearer(req) !== undefined);
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname;
    const work = path === '/_sim' || path.startsWith('/_sim/')
      ? handleAdminRequest(admin, req, res, url, readBody)
      : path === '/services/data' || path.startsWith('/services/data/')
        ? handleData(req, res, url)
        : /^\/cometd\/\d+\.\d\/?$/.test(path) && req.method === 'POST'
          ? handleCometd(req, res)
          : handleOAuth(req, res, url);
    work.catch((error: unknown) => {
      options.logger?.warn({ err: error, path }, 'Salesforce simulator: request failed');
      if (res.headersSent) res.destroy();
      else send(res, 500, unknownException().body());
    });
  });
  server.keepAliveTimeout = 30_000;

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${String(port)}`;

  return {
    url: baseUrl,
    host,
    port,
    orgId,
    admin,
    async stop() {
      if (stopping) return;
      stopping = true;
      cdc.stop();
      for (const res of hanging) res.destroy();
      hanging.clear();
      const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
      server.closeAllConnections();
      await closed;
    },
  };
}
