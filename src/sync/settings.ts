// A connection's settings: what Tandem itself needs (which entity types, in which direction, the
// rate budget, the poll interval) plus the connector's own settings (e.g. Stripe's apiBaseUrl), in
// one flat object as the API takes it.
import { z } from 'zod';
import type { ConnectorDefinition, Direction } from '../connectors/connector.ts';
import { TandemError } from '../errors/errors.ts';

export const directions = ['both', 'outbound', 'inbound', 'off'] as const;
export type EntityDirection = Direction | 'off';

export interface ConnectionSettings {
  entities: Record<string, { direction: EntityDirection }>;
  /** Requests per second Tandem allows itself against this account (default: the connector's). */
  rateLimitPerSecond: number;
  /** How often the change feed is polled as a safety net for lost webhooks. */
  pollIntervalMs: number;
  /** The connector's own settings. */
  connector: Record<string, unknown>;
}

const engineKeys = {
  entities: z.record(z.string(), z.object({ direction: z.enum(directions) }).strict()).optional(),
  rateLimitPerSecond: z.number().positive().max(10_000).optional(),
  pollIntervalMs: z.number().int().min(100).max(24 * 3600_000).optional(),
};

const enginePart = z.looseObject(engineKeys);

function fail(message: string, details: unknown): never {
  throw new TandemError('VALIDATION_FAILED', message, details);
}

/**
 * Parses settings for a connector. `current` is the stored settings on an update: entities merge,
 * other keys given replace the current ones.
 */
export function parseSettings(
  connector: ConnectorDefinition,
  input: unknown,
  defaults: { pollIntervalMs: number },
  current?: ConnectionSettings,
): ConnectionSettings {
  const parsed = enginePart.safeParse(input ?? {});
  if (!parsed.success) fail('Invalid settings.', { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
  const { entities, rateLimitPerSecond, pollIntervalMs, ...rest } = parsed.data;
  const connectorInput = { ...(current?.connector ?? {}), ...rest };
  const connectorSettings = connector.settingsSchema.safeParse(connectorInput);
  if (!connectorSettings.success) {
    fail(`Invalid ${connector.id} settings.`, {
      issues: connectorSettings.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  const merged: ConnectionSettings['entities'] = {
    ...(current?.entities ??
      Object.fromEntries(Object.keys(connector.entities).map((type) => [type, { direction: 'both' }]))),
    ...(entities ?? {}),
  };
  for (const [type, { direction }] of Object.entries(merged)) {
    const supported = connector.entities[type];
    if (supported === undefined) fail(`${connector.id} does not sync ${type}.`, { entity: type, supported: Object.keys(connector.entities) });
    if (direction !== 'off' && !supported.directions.includes(direction)) {
      fail(`${connector.id} cannot sync ${type} ${direction}.`, { entity: type, direction, supported: supported.directions });
    }
  }
  return {
    entities: merged,
    rateLimitPerSecond: Math.min(rateLimitPerSecond ?? current?.rateLimitPerSecond ?? connector.rateLimit.requestsPerSecond, 10_000),
    pollIntervalMs: pollIntervalMs ?? current?.pollIntervalMs ?? defaults.pollIntervalMs,
    connector: connectorSettings.data as Record<string, unknown>,
  };
}

/** The settings as the API answers them: flat, like they were given. */
export function settingsView(settings: ConnectionSettings): Record<string, unknown> {
  return {
    ...settings.connector,
    entities: settings.entities,
    rateLimitPerSecond: settings.rateLimitPerSecond,
    pollIntervalMs: settings.pollIntervalMs,
  };
}

export function wantsOutbound(settings: ConnectionSettings, entityType: string): boolean {
  const direction = settings.entities[entityType]?.direction;
  return direction === 'both' || direction === 'outbound';
}

export function wantsInbound(settings: ConnectionSettings, entityType: string): boolean {
  const direction = settings.entities[entityType]?.direction;
  return direction === 'both' || direction === 'inbound';
}
