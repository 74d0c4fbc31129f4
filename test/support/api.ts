// An HTTP app over a fresh test store, driven with app.inject(): no port, no log consumers.
import type { FastifyInstance, HTTPMethods, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { assembleParts, type Parts } from '../../src/app/parts.ts';
import type { Workspaces } from '../../src/auth/workspaces.ts';
import type { Catalog } from '../../src/catalog/catalog.ts';
import { buildApp } from '../../src/http/app.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestStore, type StoreKind } from './stores.ts';

export interface TestApi {
  app: FastifyInstance;
  store: Store;
  catalog: Catalog;
  workspaces: Workspaces;
  parts: Parts;
  /** The data directory of the test's store (where SQLite keeps its file). */
  dataDir: string;
  workspaceId: string;
  adminKey: string;
  /** Sends a request with the admin key (or `key`) and a JSON body. */
  call: (method: HTTPMethods, url: string, body?: unknown, headers?: Record<string, string>) => Promise<LightMyRequestResponse>;
  cleanup(): Promise<void>;
}

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef0123456789';

export interface TestApiOptions {
  bodyLimit?: number;
  /** Start the sync engine (dispatcher and workers). Off by default: catalog tests need none. */
  sync?: boolean;
  publicUrl?: string;
  pollIntervalMs?: number;
  retry?: { maxAttempts: number; initialMs: number; maxMs: number };
  /** The Kafka log on these brokers and topics instead of the embedded log (test/support/stacks.ts). */
  kafka?: { brokers: string[]; topicPrefix: string } | undefined;
}

export async function createTestApi(kind: StoreKind, options: TestApiOptions = {}): Promise<TestApi> {
  const testStore = await createTestStore(kind);
  const { store } = testStore;
  const logger = pino({ level: process.env.TANDEM_TEST_LOG ?? 'silent' });
  const parts = assembleParts({
    store,
    logger,
    partitions: 4,
    logMaxAttempts: 5,
    secret: 'test-secret-test-secret-test-secret-0001',
    publicUrl: options.publicUrl ?? 'http://127.0.0.1:9',
    pollIntervalMs: options.pollIntervalMs ?? 60_000,
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    ...(options.kafka === undefined ? {} : { kafka: options.kafka }),
  });
  const { catalog, workspaces, connections, issues, engine, log } = parts;
  const { workspaceId } = await workspaces.bootstrap(TEST_ADMIN_KEY);
  const app = await buildApp({
    catalog,
    workspaces,
    logger,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    version: 'test',
    sync: { connections, issues, engine },
    readiness: { ready: () => true, check: () => store.ping() },
  });
  await app.ready();
  if (options.sync === true) await engine.start();
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
    parts,
    dataDir: testStore.env.DATA_DIR,
    cleanup: async () => {
      await app.close();
      await engine.stop();
      await log.close();
      await testStore.cleanup();
    },
  };
}
