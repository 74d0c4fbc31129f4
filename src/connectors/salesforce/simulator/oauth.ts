// The org's identity side: connected apps, users, sessions (access tokens that expire), refresh
// tokens, authorization codes, and the OAuth 2.0 token endpoint's grants: authorization_code,
// refresh_token, client_credentials, password, and the JWT bearer flow (RS256, verified with the
// app's certificate's public key).
import { createHmac, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { OAuthError } from './errors.ts';
import { IdSequence } from './ids.ts';

export interface ConnectedAppInput {
  clientId: string;
  clientSecret: string;
  /** Allowed redirect URIs for the web server flow; empty allows any. */
  redirectUris?: string[];
  /** The user the client credentials flow runs as (its username); unset disables that flow. */
  clientCredentialsUser?: string | undefined;
  /** PEM public key (or certificate) that verifies JWT bearer assertions; unset disables that flow. */
  jwtPublicKey?: string | undefined;
  /** Access token lifetime for this app, ms (default: the simulator's `sessionTimeoutMs`). */
  sessionTimeoutMs?: number;
}

export interface UserInput {
  username: string;
  password?: string;
  email?: string;
  name?: string;
}

export interface ConnectedApp {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  clientCredentialsUser: string | undefined;
  jwtKey: KeyObject | undefined;
  sessionTimeoutMs: number | undefined;
}

export interface User {
  id: string;
  username: string;
  password: string | undefined;
  email: string;
  name: string;
}

export interface Session {
  token: string;
  userId: string;
  clientId: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

interface RefreshGrant {
  userId: string;
  clientId: string;
}

interface AuthCode {
  clientId: string;
  redirectUri: string;
  userId: string;
  expiresAtMs: number;
  codeChallenge: string | undefined;
}

const CODE_TTL_MS = 15 * 60 * 1000;
/** How far in the future a JWT bearer assertion's `exp` may lie (Salesforce: 3 minutes, plus skew). */
const JWT_MAX_LIFETIME_MS = 5 * 60 * 1000;

function token(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

export class Identity {
  readonly orgId: string;
  readonly apps = new Map<string, ConnectedApp>();
  readonly users = new Map<string, User>();
  readonly sessions = new Map<string, Session>();
  readonly #refresh = new Map<string, RefreshGrant>();
  readonly #codes = new Map<string, AuthCode>();
  readonly #userIds = new IdSequence('005');
  readonly #sessionTimeoutMs: number;
  readonly #clock: () => number;
  stats = { tokensIssued: 0, refreshes: 0, expiredSessionsRejected: 0 };

  constructor(options: { orgId: string; sessionTimeoutMs: number; clock: () => number }) {
    this.orgId = options.orgId;
    this.#sessionTimeoutMs = options.sessionTimeoutMs;
    this.#clock = options.clock;
  }

  addApp(input: ConnectedAppInput): ConnectedApp {
    const app: ConnectedApp = {
      clientId: input.clientId,
      clientSecret: input.clientSecret,
      redirectUris: input.redirectUris ?? [],
      clientCredentialsUser: input.clientCredentialsUser,
      jwtKey: input.jwtPublicKey === undefined ? undefined : createPublicKey(input.jwtPublicKey),
      sessionTimeoutMs: input.sessionTimeoutMs,
    };
    this.apps.set(app.clientId, app);
    return app;
  }

  addUser(input: UserInput): User {
    const existing = this.userByName(input.username);
    const user: User = {
      id: existing?.id ?? this.#userIds.next(),
      username: input.username,
      password: input.password,
      email: input.email ?? input.username,
      name: input.name ?? input.username.split('@')[0] ?? input.username,
    };
    this.users.set(user.id, user);
    return user;
  }

  userByName(username: string): User | undefined {
    return [...this.users.values()].find((u) => u.username.toLowerCase() === username.toLowerCase());
  }

  /** The live session for a bearer token, or undefined (unknown, revoked or expired). */
  session(accessToken: string): Session | undefined {
    const s = this.sessions.get(accessToken);
    if (s === undefined) return undefined;
    if (this.#clock() >= s.expiresAtMs) {
      this.sessions.delete(accessToken);
      this.stats.expiredSessionsRejected += 1;
      return undefined;
    }
    return s;
  }

  /** Ends every session (each client's next call gets 401 INVALID_SESSION_ID); refresh tokens stay. */
  expireSessions(): number {
    const n = this.sessions.size;
    this.sessions.clear();
    return n;
  }

  revokeRefreshTokens(): void {
    this.#refresh.clear();
  }

  /** `GET /services/oauth2/authorize`: a code for the user (the default user, or `login_hint`), no login page. */
  authorize(params: URLSearchParams, defaultUser: User): { redirect: string } {
    const clientId = params.get('client_id') ?? '';
    const app = this.apps.get(clientId);
    const redirectUri = params.get('redirect_uri') ?? '';
    if (app === undefined) throw new OAuthError('invalid_client_id', 'client identifier invalid');
    if (params.get('response_type') !== 'code') throw new OAuthError('unsupported_response_type', 'response type not supported');
    if (redirectUri === '' || (app.redirectUris.length > 0 && !app.redirectUris.includes(redirectUri))) {
      throw new OAuthError('redirect_uri_mismatch', 'redirect_uri must match configuration');
    }
    const hint = params.get('login_hint');
    const user = hint === null ? defaultUser : this.userByName(hint);
    if (user === undefined) throw new OAuthError('invalid_request', 'unknown login_hint');
    const code = `aPrx${token(32)}`;
    this.#codes.set(code, { clientId, redirectUri, userId: user.id, expiresAtMs: this.#clock() + CODE_TTL_MS, codeChallenge: params.get('code_challenge') ?? undefined });
    const target = new URL(redirectUri);
    target.searchParams.set('code', code);
    const state = params.get('state');
    if (state !== null) target.searchParams.set('state', state);
    return { redirect: target.toString() };
  }

  #app(params: URLSearchParams, needSecret: boolean): ConnectedApp {
    const app = this.apps.get(params.get('client_id') ?? '');
    if (app === undefined) throw new OAuthError('invalid_client_id', 'client identifier invalid');
    const secret = params.get('client_secret');
    if ((needSecret || secret !== null) && secret !== app.clientSecret) throw new OAuthError('invalid_client', 'invalid client credentials');
    return app;
  }

  #issue(app: ConnectedApp, user: User, baseUrl: string, withRefresh: boolean): Record<string, string> {
    const now = this.#clock();
    const accessToken = `${this.orgId.slice(0, 15)}!${token(48)}`;
    this.sessions.set(accessToken, {
      token: accessToken,
      userId: user.id,
      clientId: app.clientId,
      issuedAtMs: now,
      expiresAtMs: now + (app.sessionTimeoutMs ?? this.#sessionTimeoutMs),
    });
    this.stats.tokensIssued += 1;
    const id = `${baseUrl}/id/${this.orgId}/${user.id}`;
    const issuedAt = String(now);
    const out: Record<string, string> = {
      access_token: accessToken,
      signature: createHmac('sha256', app.clientSecret).update(id + issuedAt).digest('base64'),
      scope: withRefresh ? 'refresh_token api' : 'api',
      instance_url: baseUrl,
      id,
      token_type: 'Bearer',
      issued_at: issuedAt,
    };
    if (withRefresh) {
      const refresh = `5Aep${token(48)}`;
      this.#refresh.set(refresh, { userId: user.id, clientId: app.clientId });
      out.refresh_token = refresh;
    }
    return out;
  }

  /** `POST /services/oauth2/token` (form parameters, client credentials in the body or basic auth). */
  token(params: URLSearchParams, baseUrl: string, audiences: string[]): Record<string, string> {
    const grant = params.get('grant_type');
    switch (grant) {
      case 'authorization_code': {
        const app = this.#app(params, true);
        const code = this.#codes.get(params.get('code') ?? '');
        if (code === undefined || code.clientId !== app.clientId || this.#clock() >= code.expiresAtMs) {
          throw new OAuthError('invalid_grant', 'invalid authorization code');
        }
        this.#codes.delete(params.get('code') ?? '');
        if ((params.get('redirect_uri') ?? '') !== code.redirectUri) throw new OAuthError('redirect_uri_mismatch', 'redirect_uri must match configuration');
        const user = this.users.get(code.userId);
        if (user === undefined) throw new OAuthError('invalid_grant', 'inactive user');
        return this.#issue(app, user, baseUrl, true);
      }
      case 'refresh_token': {
        const app = this.#app(params, false);
        const grantRecord = this.#refresh.get(params.get('refresh_token') ?? '');
        if (grantRecord === undefined || grantRecord.clientId !== app.clientId) throw new OAuthError('invalid_grant', 'expired access/refresh token');
        const user = this.users.get(grantRecord.userId);
        if (user === undefined) throw new OAuthError('invalid_grant', 'inactive user');
        this.stats.refreshes += 1;
        const out = this.#issue(app, user, baseUrl, false);
        out.scope = 'refresh_token api';
        return out;
      }
      case 'client_credentials': {
        const app = this.#app(params, true);
        const user = app.clientCredentialsUser === undefined ? undefined : this.userByName(app.clientCredentialsUser);
        if (user === undefined) throw new OAuthError('invalid_grant', 'no client credentials user enabled');
        return this.#issue(app, user, baseUrl, false);
      }
      case 'password': {
        const app = this.#app(params, true);
        const user = this.userByName(params.get('username') ?? '');
        if (user?.password === undefined || user.password !== params.get('password')) throw new OAuthError('invalid_grant', 'authentication failure');
        return this.#issue(app, user, baseUrl, false);
      }
      case 'urn:ietf:params:oauth:grant-type:jwt-bearer':
        return this.#jwtBearer(params.get('assertion') ?? '', baseUrl, audiences);
      default:
        throw new OAuthError('unsupported_grant_type', 'grant type not supported');
    }
  }

  #jwtBearer(assertion: string, baseUrl: string, audiences: string[]): Record<string, string> {
    const parts = assertion.split('.');
    const [h = '', p = '', s = ''] = parts;
    if (parts.length !== 3) throw new OAuthError('invalid_grant', 'invalid assertion');
    let header: { alg?: unknown };
    let claims: { iss?: unknown; sub?: unknown; aud?: unknown; exp?: unknown };
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      throw new OAuthError('invalid_grant', 'invalid assertion');
    }
    if (header.alg !== 'RS256') throw new OAuthError('invalid_grant', 'invalid assertion');
    const app = typeof claims.iss === 'string' ? this.apps.get(claims.iss) : undefined;
    if (app === undefined) throw new OAuthError('invalid_client_id', 'client identifier invalid');
    if (app.jwtKey === undefined) throw new OAuthError('invalid_grant', 'invalid assertion');
    if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), app.jwtKey, Buffer.from(s, 'base64url'))) {
      throw new OAuthError('invalid_grant', 'invalid assertion');
    }
    const aud = Array.isArray(claims.aud) ? (claims.aud as unknown[]) : [claims.aud];
    if (!aud.some((a) => typeof a === 'string' && audiences.includes(a.replace(/\/$/, '')))) throw new OAuthError('invalid_grant', 'audience is invalid');
    const now = this.#clock();
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) throw new OAuthError('invalid_grant', 'expired authorization code');
    if (claims.exp * 1000 > now + JWT_MAX_LIFETIME_MS) throw new OAuthError('invalid_grant', 'invalid assertion');
    const user = typeof claims.sub === 'string' ? this.userByName(claims.sub) : undefined;
    if (user === undefined) throw new OAuthError('invalid_grant', 'user hasn\'t approved this consumer');
    return this.#issue(app, user, baseUrl, false);
  }

  revoke(tokenValue: string): void {
    this.sessions.delete(tokenValue);
    this.#refresh.delete(tokenValue);
  }

  clear(): void {
    this.sessions.clear();
    this.#refresh.clear();
    this.#codes.clear();
  }
}
