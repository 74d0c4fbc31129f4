// Workspaces and their API keys. A key is shown once, at creation; only its SHA-256 is stored. Keys
// are 192 random bits, so a fast hash is enough (no password-style stretching is needed), and it
// lets every request be authenticated by one indexed lookup.
import { createHash, randomBytes } from 'node:crypto';
import { TandemError } from '../errors/errors.ts';
import type { IdFactory } from '../catalog/ids.ts';
import type { Store } from '../store/store.ts';
import type { ApiKeysTable } from '../store/schema.ts';
import type { Role } from './roles.ts';

export interface Principal {
  workspaceId: string;
  keyId: string;
  role: Role;
}

export interface WorkspaceView {
  id: string;
  object: 'workspace';
  name: string;
  created_at: string;
}

export interface ApiKeyView {
  id: string;
  object: 'api_key';
  workspace_id: string;
  name: string;
  role: Role;
  /** The last characters of the key, to tell keys apart. */
  hint: string;
  created_at: string;
  revoked_at: string | null;
}

export const DEFAULT_WORKSPACE_META = 'default_workspace_id';

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function generateKey(): string {
  return `tdm_${randomBytes(24).toString('base64url')}`;
}

function keyView(row: ApiKeysTable): ApiKeyView {
  return {
    id: row.id,
    object: 'api_key',
    workspace_id: row.workspace_id,
    name: row.name,
    role: row.role as Role,
    hint: row.key_hint,
    created_at: row.created_at,
    revoked_at: row.revoked_at,
  };
}

/** How long a successful key lookup is cached in this process. Revocation here clears it at once. */
const CACHE_TTL_MS = 5_000;

export class Workspaces {
  readonly #store: Store;
  readonly #ids: IdFactory;
  readonly #cache = new Map<string, { principal: Principal; until: number }>();

  constructor(store: Store, ids: IdFactory) {
    this.#store = store;
    this.#ids = ids;
  }

  async create(name: string): Promise<WorkspaceView> {
    const row = { id: this.#ids('ws'), name, created_at: new Date().toISOString() };
    await this.#store.db.insertInto('workspaces').values(row).execute();
    return { object: 'workspace', ...row };
  }

  async get(id: string): Promise<WorkspaceView | undefined> {
    const row = await this.#store.db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : { object: 'workspace', ...row };
  }

  async list(): Promise<WorkspaceView[]> {
    const rows = await this.#store.db.selectFrom('workspaces').selectAll().orderBy('id').execute();
    return rows.map((row) => ({ object: 'workspace', ...row }));
  }

  async defaultWorkspaceId(): Promise<string | undefined> {
    const row = await this.#store.db
      .selectFrom('meta')
      .select('value')
      .where('key', '=', DEFAULT_WORKSPACE_META)
      .executeTakeFirst();
    return row?.value;
  }

  /**
   * First start: creates the default workspace and its admin key (the given one, or a new one).
   * Answers the key only when it was created now; undefined when the workspace already existed.
   */
  async bootstrap(adminKey: string | undefined): Promise<{ workspaceId: string; key: string | undefined }> {
    const existing = await this.defaultWorkspaceId();
    if (existing !== undefined) return { workspaceId: existing, key: undefined };
    const key = adminKey ?? generateKey();
    const workspaceId = this.#ids('ws');
    const now = new Date().toISOString();
    await this.#store.transaction(async (trx) => {
      await trx.insertInto('workspaces').values({ id: workspaceId, name: 'Default', created_at: now }).execute();
      await trx.insertInto('meta').values({ key: DEFAULT_WORKSPACE_META, value: workspaceId }).execute();
      await trx.insertInto('api_keys').values(this.#keyRow(workspaceId, 'Admin (first start)', 'admin', key, now)).execute();
    });
    return { workspaceId, key };
  }

  #keyRow(workspaceId: string, name: string, role: Role, key: string, now: string): ApiKeysTable {
    return {
      id: this.#ids('key'),
      workspace_id: workspaceId,
      name,
      role,
      key_hash: hashKey(key),
      key_hint: key.slice(-4),
      created_at: now,
      revoked_at: null,
    };
  }

  /** Creates a key; the answer is the only time the key itself is seen. */
  async createKey(workspaceId: string, name: string, role: Role): Promise<ApiKeyView & { key: string }> {
    const key = generateKey();
    const row = this.#keyRow(workspaceId, name, role, key, new Date().toISOString());
    await this.#store.db.insertInto('api_keys').values(row).execute();
    return { ...keyView(row), key };
  }

  async listKeys(workspaceId: string): Promise<ApiKeyView[]> {
    const rows = await this.#store.db
      .selectFrom('api_keys')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .orderBy('id')
      .execute();
    return rows.map(keyView);
  }

  async revokeKey(workspaceId: string, keyId: string): Promise<ApiKeyView> {
    const now = new Date().toISOString();
    await this.#store.db
      .updateTable('api_keys')
      .set({ revoked_at: now })
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', keyId)
      .where('revoked_at', 'is', null)
      .execute();
    const row = await this.#store.db
      .selectFrom('api_keys')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', keyId)
      .executeTakeFirst();
    if (row === undefined) throw new TandemError('NOT_FOUND', `No API key ${keyId.slice(0, 64)}.`);
    this.#cache.clear();
    return keyView(row);
  }

  /** The principal a presented key stands for, or undefined for an unknown or revoked key. */
  async authenticate(key: string): Promise<Principal | undefined> {
    const hash = hashKey(key);
    const cached = this.#cache.get(hash);
    const now = Date.now();
    if (cached !== undefined && cached.until > now) return cached.principal;
    const row = await this.#store.db
      .selectFrom('api_keys')
      .select(['id', 'workspace_id', 'role'])
      .where('key_hash', '=', hash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (row === undefined) {
      this.#cache.delete(hash);
      return undefined;
    }
    const principal: Principal = { workspaceId: row.workspace_id, keyId: row.id, role: row.role as Role };
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(hash, { principal, until: now + CACHE_TTL_MS });
    return principal;
  }
}
