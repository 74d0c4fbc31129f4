// An HTTP app over a fresh test store, driven with app.inject(): no port, no log consumers.
import type { FastifyInstance, HTTPMethods, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { Workspaces } from '../../src/auth/workspaces.ts';
import { Catalog } from '../../src/catalog/catalog.ts';
import { builtInEntities } from '../../src/catalog/entities/index.ts';
import { createIdFactory } from '../../src/catalog/ids.ts';
import { EntityRegistry } from '../../src/catalog/registry.ts';
import { buildApp } from '../../src/http/app.ts';
import { createOutbox } from '../../src/log/outbox.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestStore, type StoreKind } from './stores.ts';

export interface TestApi {
  app: FastifyInstance;
  store: Store;
  catalog: Catalog;
  workspaces: Workspaces;
  workspaceId: string;
  adminKey: string;
  /** Sends a request with the admin key (or `key`) and a JSON body. */
  call: (method: HTTPMethods, url: string, body?: unknown, headers?: Record<string, string>) => Promise<LightMyRequestResponse>;
  cleanup(): Promise<void>;
}

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef0123456789';

export async function createTestApi(kind: StoreKind, options: { bodyLimit?: number } = {}): Promise<TestApi> {
  const testStore = await createTestStore(kind);
  const { store } = testStore;
  const ids = createIdFactory();
  const catalog = new Catalog({ store, registry: new EntityRegistry(builtInEntities), outbox: createOutbox(4), ids });
  const workspaces = new Workspaces(store, ids);
  const { workspaceId } = await workspaces.bootstrap(TEST_ADMIN_KEY);
  const app = await buildApp({
    catalog,
    workspaces,
    logger: pino({ level: 'silent' }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    version: 'test',
    readiness: { ready: () => true, check: () => store.ping() },
  });
  await app.ready();
  return {
    app,
    store,
    catalog,
    workspaces,
    workspaceId,
    adminKey: TEST_ADMIN_KEY,
    call: (method, url, body, headers = {}) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...headers },
        ...(body === undefined ? {} : { payload: body as string | object }),
      }),
    cleanup: async () => {
      await app.close();
      await testStore.cleanup();
    },
  };
}
