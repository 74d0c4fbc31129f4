// The composition root: builds every part from the configuration and wires them together. Nothing
// else constructs long-lived parts, so tests start a whole Tandem the same way production does.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import packageJson from '../../package.json' with { type: 'json' };
import type { Catalog } from '../catalog/catalog.ts';
import type { Workspaces } from '../auth/workspaces.ts';
import type { Connections } from '../sync/connections.ts';
import { DEMO_STRIPE_KEY, startDemo } from './demo.ts';
import { assembleParts } from './parts.ts';
import type { Config } from '../config/config.ts';
import { buildApp } from '../http/app.ts';
import type { EventLog } from '../log/log.ts';
import { loadSecretKey } from '../security/secrets.ts';
import { openStore } from '../store/open-store.ts';
import { ConnectionLeases, ownsNothing, type ConnectionOwnership } from '../scale/connection-leases.ts';
import { holdEmbeddedLogLease, type HeldLease } from '../scale/embedded-log-lease.ts';
import { Leases, processOwnerId } from '../scale/leases.ts';
import { createSharedRateBudget } from '../scale/shared-rate-budget.ts';
import { createPostgresSignals, noSignals } from '../scale/signals.ts';
import { createRateBudget } from '../sync/rate-budget.ts';
import { buildHealthApp } from './health-app.ts';
import type { SyncEngine } from '../sync/engine.ts';
import { isUniqueViolation, type Store } from '../store/store.ts';

export interface Tandem {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly log: EventLog;
  readonly catalog: Catalog;
  readonly workspaces: Workspaces;
  readonly connections: Connections;
  readonly engine: SyncEngine;
  /** Where the API listens, e.g. http://127.0.0.1:3000. */
  readonly url: string;
  readonly defaultWorkspaceId: string;
  /** Stops taking requests, drains those in flight, stops consumers, closes the store. */
  stop(): Promise<void>;
}

export const ADMIN_KEY_FILE = 'admin-api-key';
const PARTITIONS_META = 'log_partitions';

/** The partition count is fixed when a store is first used: changing it would reorder keys. */
async function logPartitions(store: Store, configured: number, logger: Logger): Promise<number> {
  const row = await store.db.selectFrom('meta').select('value').where('key', '=', PARTITIONS_META).executeTakeFirst();
  if (row !== undefined) {
    const stored = Number(row.value);
    if (stored !== configured) {
      logger.warn({ stored, configured }, 'TANDEM_LOG_PARTITIONS differs from the count this store was created with; keeping the stored count');
    }
    return stored;
  }
  await store.db
    .insertInto('meta')
    .values({ key: PARTITIONS_META, value: String(configured) })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  return configured;
}

function keepAdminKey(dataDir: string, key: string): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, ADMIN_KEY_FILE);
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

export interface StartOptions {
  /** Where to show the admin key on first start (never the logger). Defaults to stdout. */
  announce?: (text: string) => void;
}

export async function startTandem(config: Config, logger: Logger, options: StartOptions = {}): Promise<Tandem> {
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  const { roles } = config;
  // Several processes can share a PostgreSQL store: they signal each other through it, lease the
  // singletons (connection workers, the embedded log's consumers) and share rate budgets in it.
  const multiProcess = store.capabilities.multiProcess;
  const signals = multiProcess && config.databaseUrl !== undefined ? createPostgresSignals(config.databaseUrl, logger.child({ component: 'signals' })) : noSignals();
  const owner = processOwnerId();
  const leases = new Leases(store, owner);
  let ownership: ConnectionOwnership | undefined;
  if (!roles.worker) ownership = ownsNothing(signals);
  else if (multiProcess) ownership = new ConnectionLeases({ store, owner, leaseMs: config.leaseMs, signals, logger: logger.child({ component: 'leases' }) });
  let ready = false;
  let started: EventLog | undefined;
  let embeddedLease: HeldLease | undefined;
  try {
    const partitions = await logPartitions(store, config.log.partitions, logger);
    const { log, catalog, workspaces, connections, issues, engine } = assembleParts({
      store,
      logger,
      partitions,
      logMaxAttempts: config.log.maxAttempts,
      kafka: config.kafka === undefined ? undefined : { ...config.kafka, relay: roles.relay },
      secret: loadSecretKey(config.secretKey, config.dataDir),
      publicUrl: config.publicUrl,
      pollIntervalMs: config.sync.pollMs,
      scale:
        ownership === undefined
          ? undefined
          : {
              ownership,
              rateBudget: multiProcess ? (id, rate) => createSharedRateBudget(store, id, rate) : (_id, rate) => createRateBudget(rate),
            },
    });
    started = log;

    const announce = options.announce ?? ((text: string) => process.stdout.write(text));
    // Processes starting together on a new database: one creates the default workspace, the others
    // (refused by its unique key) find it.
    const boot = await workspaces.bootstrap(config.adminApiKey).catch((error: unknown) => {
      if (!isUniqueViolation(error)) throw error;
      return workspaces.bootstrap(config.adminApiKey);
    });
    if (boot.key !== undefined) {
      const file = keepAdminKey(config.dataDir, boot.key);
      announce(
        config.adminApiKey === undefined
          ? `\n  Tandem created the default workspace and its admin API key (shown once; also kept in ${file}):\n\n    ${boot.key}\n\n`
          : `\n  Tandem created the default workspace; its admin API key is TANDEM_ADMIN_API_KEY (kept in ${file}).\n\n`,
      );
    }

    if (roles.worker && config.kafka === undefined && multiProcess) {
      // The embedded log would deliver every change to each worker process: one per database.
      embeddedLease = await holdEmbeddedLogLease({
        leases,
        leaseMs: config.leaseMs,
        logger,
        onLost: () => void engine.stop(),
      });
    }
    const readiness = {
      ready: () => ready,
      check: () => store.ping(),
    };
    const app = !roles.api
      ? await buildHealthApp(logger, readiness)
      : await buildApp({
          catalog,
          workspaces,
          logger,
          bodyLimit: config.bodyLimit,
          version: packageJson.version,
          sync: { connections, issues, engine },
          readiness,
        });
    // Fastify's close() waits for every connection to end, but a request already in flight when it
    // began is answered `Connection: keep-alive`: a client (or proxy) that keeps that connection open
    // would hold the shutdown until TANDEM_SHUTDOWN_TIMEOUT_MS and exit 1. While stopping, answers
    // close their connection, so the drain ends with the last request in flight.
    let draining = false;
    app.addHook('onSend', async (_request, reply, payload) => {
      if (draining) void reply.header('connection', 'close');
      return payload;
    });
    const address = await app.listen({ port: config.port, host: config.host });
    if (roles.worker) await engine.start();
    const demo = config.demo && roles.api
      ? await startDemo({ connections, workspaceId: boot.workspaceId, port: config.demoStripePort, salesforcePort: config.demoSalesforcePort, logger })
      : undefined;
    if (demo !== undefined) {
      announce(
        `  Demo: a Stripe simulator runs at ${demo.stripe.url} (secret key ${DEMO_STRIPE_KEY})\n` +
          `  and a Salesforce simulator at ${demo.salesforce.url} (its records: ${demo.salesforce.url}/_sim/records?sobject=Account);\n` +
          `  connections ${demo.connectionId} and ${demo.salesforceConnectionId} sync the default workspace's customers with both, both ways.\n` +
          '  Turn it off with TANDEM_DEMO=off.\n\n',
      );
    }
    ready = true;
    const roleNames = Object.entries(roles).filter(([, on]) => on).map(([name]) => name);
    logger.info({ url: address, store: store.kind, log: config.kafka === undefined ? 'embedded' : 'kafka', partitions, roles: roleNames, owner }, 'Tandem is listening');

    let stopping: Promise<void> | undefined;
    return {
      app,
      store,
      log,
      catalog,
      workspaces,
      connections,
      engine,
      url: address,
      defaultWorkspaceId: boot.workspaceId,
      stop: () => {
        stopping ??= (async () => {
          ready = false;
          draining = true;
          await app.close();
          if (roles.worker) await engine.stop();
          await embeddedLease?.release();
          await demo?.stop();
          await log.close();
          await signals.close();
          await store.close();
          logger.info('Tandem stopped');
        })();
        return stopping;
      },
    };
  } catch (error) {
    // The Kafka log's relay runs from the start: stop it before the store goes.
    await started?.close();
    await embeddedLease?.release();
    await ownership?.stop().catch(() => undefined);
    await signals.close();
    await store.close();
    throw error;
  }
}
