// The one place that reads the environment. Everything else receives a typed Config.
import { z } from 'zod';
import { resolve } from 'node:path';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A whole number written in decimal digits (so ' ' or '1e3' are errors, not 0 or 1000). */
const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^[0-9]+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const ROLES = ['api', 'worker', 'relay'] as const;
export type Role = (typeof ROLES)[number];

/** `api,worker,relay` (any non-empty subset, in any order) or `all`. */
const roles = z
  .string()
  .trim()
  .transform((v) => (v === 'all' ? [...ROLES] : v.split(',').map((r) => r.trim())))
  .refine(
    (list) => list.length > 0 && list.every((r) => (ROLES as readonly string[]).includes(r)) && new Set(list).size === list.length,
    'must be a comma-separated list of api, worker, relay, each at most once (or all)',
  )
  .transform((list) => list as Role[]);

const boolish = z
  .enum(['1', '0', 'true', 'false', 'on', 'off', 'yes', 'no'])
  .transform((v) => ['1', 'true', 'on', 'yes'].includes(v));

export const configSchema = z
  .object({
    PORT: integer(0, 65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATA_DIR: z.string().min(1).default('./data'),
    DATABASE_URL: z
      .string()
      .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL')
      .optional(),
    LOG_LEVEL: z.enum(logLevels).default('info'),
    TANDEM_ADMIN_API_KEY: z.string().min(32, 'must be at least 32 characters').max(256).optional(),
    TANDEM_LOG_PARTITIONS: integer(1, 256).default(16),
    TANDEM_LOG_MAX_ATTEMPTS: integer(1, 100).default(8),
    TANDEM_BODY_LIMIT: integer(1024, 64 * 1024 * 1024).default(1024 * 1024),
    TANDEM_SHUTDOWN_TIMEOUT_MS: integer(100, 600_000).default(10_000),
    TANDEM_DEMO: boolish.default(true),
    TANDEM_SECRET_KEY: z.string().min(32, 'must be at least 32 characters').max(1024).optional(),
    PUBLIC_URL: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .transform((u) => u.replace(/\/+$/, ''))
      .optional(),
    TANDEM_SYNC_POLL_MS: integer(100, 24 * 3600_000).default(5_000),
    TANDEM_DEMO_STRIPE_PORT: integer(0, 65535).default(12111),
    TANDEM_DEMO_SALESFORCE_PORT: integer(0, 65535).default(12112),
    KAFKA_BROKERS: z
      .string()
      .regex(/^\s*[^\s:/,]+:[0-9]{1,5}\s*(,\s*[^\s:/,]+:[0-9]{1,5}\s*)*$/, 'must be a comma-separated list of host:port')
      .transform((v) => v.split(',').map((b) => b.trim()))
      .optional(),
    TANDEM_KAFKA_TOPIC_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/, 'must be 1-100 letters, digits, dots, underscores or hyphens')
      .default('tandem.'),
    TANDEM_ROLES: roles.default([...ROLES]),
    TANDEM_LEASE_MS: integer(1_000, 600_000).default(10_000),
  })
  .transform((env) => ({
    port: env.PORT,
    host: env.HOST,
    dataDir: resolve(env.DATA_DIR),
    databaseUrl: env.DATABASE_URL,
    logLevel: env.LOG_LEVEL,
    adminApiKey: env.TANDEM_ADMIN_API_KEY,
    log: { partitions: env.TANDEM_LOG_PARTITIONS, maxAttempts: env.TANDEM_LOG_MAX_ATTEMPTS },
    /** Set: the event log is the Kafka log on these brokers. Unset: the embedded log. */
    kafka: env.KAFKA_BROKERS === undefined ? undefined : { brokers: env.KAFKA_BROKERS, topicPrefix: env.TANDEM_KAFKA_TOPIC_PREFIX },
    bodyLimit: env.TANDEM_BODY_LIMIT,
    shutdownTimeoutMs: env.TANDEM_SHUTDOWN_TIMEOUT_MS,
    demo: env.TANDEM_DEMO,
    demoStripePort: env.TANDEM_DEMO_STRIPE_PORT,
    demoSalesforcePort: env.TANDEM_DEMO_SALESFORCE_PORT,
    secretKey: env.TANDEM_SECRET_KEY,
    /** Where external systems reach this Tandem (webhooks); defaults to the local address. */
    publicUrl: env.PUBLIC_URL ?? `http://${env.HOST === '0.0.0.0' ? '127.0.0.1' : env.HOST}:${String(env.PORT)}`,
    sync: { pollMs: env.TANDEM_SYNC_POLL_MS },
    /** What this process does: serve the API, run the sync workers (log consumers), run the outbox relay. */
    roles: { api: env.TANDEM_ROLES.includes('api'), worker: env.TANDEM_ROLES.includes('worker'), relay: env.TANDEM_ROLES.includes('relay') },
    /** How long a lease (a connection's worker, the embedded log's consumers) lasts without renewal. */
    leaseMs: env.TANDEM_LEASE_MS,
  }));

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Parses an environment (normally process.env); throws ConfigError listing every bad value. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as a shell `FOO= npm start` intends.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = issue.path.join('.');
        const given = name in cleaned && !name.includes('KEY') && !name.includes('SECRET') && name !== 'DATABASE_URL' ? ` (got ${JSON.stringify(cleaned[name])})` : '';
        return `${name}: ${issue.message}${given}`;
      }),
    );
  }
  return parsed.data;
}
