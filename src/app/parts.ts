// Builds Tandem's long-lived parts over an open store and wires them together. The process
// (tandem.ts) and the tests assemble Tandem through this one function.
import type { Logger } from 'pino';
import { Workspaces } from '../auth/workspaces.ts';
import { Catalog } from '../catalog/catalog.ts';
import { builtInEntities } from '../catalog/entities/index.ts';
import { createIdFactory, type IdFactory } from '../catalog/ids.ts';
import { EntityRegistry } from '../catalog/registry.ts';
import { ConnectorRegistry, builtInConnectors } from '../connectors/index.ts';
import { createEmbeddedLog } from '../log/embedded/embedded-log.ts';
import { createKafkaLog } from '../log/kafka/kafka-log.ts';
import type { EventLog } from '../log/log.ts';
import { createOutbox } from '../log/outbox.ts';
import { createSecretBox } from '../security/secrets.ts';
import type { Store } from '../store/store.ts';
import type { ConnectionOwnership } from '../scale/connection-leases.ts';
import { Connections } from '../sync/connections.ts';
import { SyncEngine, type SyncEngineDeps } from '../sync/engine.ts';
import { SyncIssues } from '../sync/issues.ts';

export interface PartsOptions {
  store: Store;
  logger: Logger;
  partitions: number;
  logMaxAttempts: number;
  /**
   * Set: the Kafka log on these brokers, with the outbox relay unless `relay` is false (a process
   * without the relay role). Unset: the embedded log.
   */
  kafka?: { brokers: string[]; topicPrefix: string; relay?: boolean } | undefined;
  /**
   * Many processes on one store: which connections' workers run here, and the rate budgets shared
   * between processes. Unset: one process runs every worker, with budgets of its own.
   */
  scale?: { ownership: ConnectionOwnership; rateBudget: NonNullable<SyncEngineDeps['rateBudget']> } | undefined;
  /** The key credentials are sealed with. */
  secret: string;
  /** Where external systems reach this Tandem (webhook URLs). */
  publicUrl: string;
  pollIntervalMs: number;
  connectors?: ConnectorRegistry;
  retry?: SyncEngineDeps['retry'];
}

export interface Parts {
  ids: IdFactory;
  log: EventLog;
  registry: EntityRegistry;
  catalog: Catalog;
  workspaces: Workspaces;
  connections: Connections;
  issues: SyncIssues;
  engine: SyncEngine;
}

export function assembleParts(options: PartsOptions): Parts {
  const { store, logger } = options;
  const ids = createIdFactory();
  const logOptions = {
    store,
    partitions: options.partitions,
    maxAttempts: options.logMaxAttempts,
    logger: logger.child({ component: 'log' }),
  };
  // The Kafka log starts its relay now and stops it in close(), with the rest of the log.
  const log =
    options.kafka === undefined
      ? createEmbeddedLog(logOptions)
      : createKafkaLog({ ...logOptions, brokers: options.kafka.brokers, topicPrefix: options.kafka.topicPrefix, relay: options.kafka.relay ?? true });
  const registry = new EntityRegistry(builtInEntities);
  const catalog = new Catalog({
    store,
    registry,
    outbox: createOutbox(options.partitions),
    ids,
    onCommit: () => {
      log.notify();
    },
  });
  const workspaces = new Workspaces(store, ids);
  // The engine follows connection changes; it is made below, once everything it needs exists.
  const late: { engine?: SyncEngine } = {};
  const connections = new Connections({
    store,
    connectors: options.connectors ?? new ConnectorRegistry(builtInConnectors),
    secrets: createSecretBox(options.secret),
    ids,
    publicUrl: options.publicUrl,
    defaults: { pollIntervalMs: options.pollIntervalMs },
    onChange: (id) => {
      void late.engine?.connectionChanged(id);
      // The other processes reload it too.
      options.scale?.ownership.changed(id);
    },
  });
  const issues = new SyncIssues(store, ids);
  const engine = new SyncEngine({
    store,
    log,
    catalog,
    registry,
    connections,
    issues,
    logger: logger.child({ component: 'sync' }),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    ...(options.scale === undefined ? {} : { ownership: options.scale.ownership, rateBudget: options.scale.rateBudget }),
  });
  late.engine = engine;
  return { ids, log, registry, catalog, workspaces, connections, issues, engine };
}
