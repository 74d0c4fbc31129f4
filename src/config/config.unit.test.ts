import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

const adminKey = 'tandem-admin-key-0123456789abcdef-XYZ';

/** Runs loadConfig and returns the ConfigError it must throw. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  test('an empty environment gives the documented defaults', () => {
    assert.deepEqual(loadConfig({}), {
      port: 3000,
      host: '127.0.0.1',
      dataDir: resolve('./data'),
      databaseUrl: undefined,
      logLevel: 'info',
      adminApiKey: undefined,
      log: { partitions: 16, maxAttempts: 8 },
      kafka: undefined,
      bodyLimit: 1024 * 1024,
      shutdownTimeoutMs: 10_000,
      demo: true,
      secretKey: undefined,
      publicUrl: 'http://127.0.0.1:3000',
      sync: { pollMs: 5_000 },
      demoStripePort: 12111,
      demoSalesforcePort: 12112,
      roles: { api: true, worker: true, relay: true },
      leaseMs: 10_000,
    });
  });

  test('reads and converts every variable', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      DATA_DIR: 'var/tandem',
      DATABASE_URL: 'postgresql://tandem@db.internal:5432/tandem',
      LOG_LEVEL: 'debug',
      TANDEM_ADMIN_API_KEY: adminKey,
      TANDEM_LOG_PARTITIONS: '32',
      TANDEM_LOG_MAX_ATTEMPTS: '3',
      TANDEM_BODY_LIMIT: '2048',
      TANDEM_SHUTDOWN_TIMEOUT_MS: '500',
      TANDEM_DEMO: 'off',
      TANDEM_SECRET_KEY: 's'.repeat(40),
      PUBLIC_URL: 'https://tandem.example.com/',
      TANDEM_SYNC_POLL_MS: '1000',
      TANDEM_DEMO_STRIPE_PORT: '0',
      TANDEM_DEMO_SALESFORCE_PORT: '0',
      KAFKA_BROKERS: 'kafka-1.internal:9092, 10.0.0.7:9093',
      TANDEM_KAFKA_TOPIC_PREFIX: 'acme.tandem.',
      TANDEM_ROLES: 'worker, relay',
      TANDEM_LEASE_MS: '3000',
    });
    assert.deepEqual(config, {
      port: 8080,
      host: '0.0.0.0',
      dataDir: resolve('var/tandem'),
      databaseUrl: 'postgresql://tandem@db.internal:5432/tandem',
      logLevel: 'debug',
      adminApiKey: adminKey,
      log: { partitions: 32, maxAttempts: 3 },
      kafka: { brokers: ['kafka-1.internal:9092', '10.0.0.7:9093'], topicPrefix: 'acme.tandem.' },
      bodyLimit: 2048,
      shutdownTimeoutMs: 500,
      demo: false,
      secretKey: 's'.repeat(40),
      publicUrl: 'https://tandem.example.com',
      sync: { pollMs: 1000 },
      demoStripePort: 0,
      demoSalesforcePort: 0,
      roles: { api: false, worker: true, relay: true },
      leaseMs: 3000,
    });
  });

  test('TANDEM_ROLES takes any set of api, worker, relay, or all', () => {
    assert.deepEqual(loadConfig({ TANDEM_ROLES: 'api' }).roles, { api: true, worker: false, relay: false });
    assert.deepEqual(loadConfig({ TANDEM_ROLES: 'relay,worker' }).roles, { api: false, worker: true, relay: true });
    assert.deepEqual(loadConfig({ TANDEM_ROLES: 'all' }).roles, { api: true, worker: true, relay: true });
  });

  test('accepts postgres:// as well as postgresql:// URLs', () => {
    assert.equal(loadConfig({ DATABASE_URL: 'postgres://u@h/db' }).databaseUrl, 'postgres://u@h/db');
  });

  test('TANDEM_DEMO takes the usual spellings of true and false', () => {
    for (const on of ['1', 'true', 'on', 'yes']) assert.equal(loadConfig({ TANDEM_DEMO: on }).demo, true, on);
    for (const off of ['0', 'false', 'off', 'no']) assert.equal(loadConfig({ TANDEM_DEMO: off }).demo, false, off);
  });

  test('ignores variables it does not know', () => {
    assert.deepEqual(loadConfig({ PATH: '/usr/bin', HOME: '/root', CI: 'true' }), loadConfig({}));
  });

  test('empty strings count as unset', () => {
    const config = loadConfig({
      PORT: '',
      HOST: '',
      DATA_DIR: '',
      DATABASE_URL: '',
      LOG_LEVEL: '',
      TANDEM_ADMIN_API_KEY: '',
      TANDEM_LOG_PARTITIONS: '',
      TANDEM_LOG_MAX_ATTEMPTS: '',
      TANDEM_BODY_LIMIT: '',
      TANDEM_SHUTDOWN_TIMEOUT_MS: '',
      TANDEM_DEMO: '',
    });
    assert.deepEqual(config, loadConfig({}));
  });

  const badValues: ReadonlyArray<readonly [string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['PORT', ' '],
    ['PORT', '1e3'],
    ['TANDEM_LOG_PARTITIONS', ' '],
    ['TANDEM_BODY_LIMIT', '0x1000'],
    ['DATABASE_URL', 'mysql://tandem@localhost/tandem'],
    ['TANDEM_SECRET_KEY', 'short'],
    ['PUBLIC_URL', 'ftp://files.example.com'],
    ['PUBLIC_URL', 'not a url'],
    ['TANDEM_SYNC_POLL_MS', '10'],
    ['DATABASE_URL', '/var/run/postgresql'],
    ['LOG_LEVEL', 'verbose'],
    ['LOG_LEVEL', 'INFO'],
    ['TANDEM_ADMIN_API_KEY', 'too-short'],
    ['TANDEM_ADMIN_API_KEY', 'k'.repeat(257)],
    ['TANDEM_LOG_PARTITIONS', '0'],
    ['TANDEM_LOG_PARTITIONS', '257'],
    ['TANDEM_LOG_PARTITIONS', 'many'],
    ['TANDEM_LOG_MAX_ATTEMPTS', '0'],
    ['TANDEM_LOG_MAX_ATTEMPTS', '101'],
    ['TANDEM_BODY_LIMIT', '1023'],
    ['TANDEM_BODY_LIMIT', String(64 * 1024 * 1024 + 1)],
    ['TANDEM_SHUTDOWN_TIMEOUT_MS', '99'],
    ['TANDEM_SHUTDOWN_TIMEOUT_MS', '600001'],
    ['TANDEM_DEMO', 'maybe'],
    ['KAFKA_BROKERS', 'localhost'],
    ['KAFKA_BROKERS', 'kafka://broker:9092'],
    ['KAFKA_BROKERS', ' , '],
    ['TANDEM_KAFKA_TOPIC_PREFIX', 'has space'],
    ['TANDEM_ROLES', 'api,web'],
    ['TANDEM_ROLES', 'api,api'],
    ['TANDEM_ROLES', ','],
    ['TANDEM_LEASE_MS', '999'],
  ];
  for (const [name, value] of badValues) {
    const shown = value.length > 40 ? `${value.slice(0, 10)}… (${value.length} chars)` : value;
    test(`${name}=${shown} is a ConfigError naming ${name}`, () => {
      const error = configError({ [name]: value });
      assert.equal(error.name, 'ConfigError');
      assert.equal(error.problems.length, 1, error.message);
      assert.ok(error.problems[0]?.startsWith(`${name}:`), error.message);
      assert.match(error.message, new RegExp(`\\b${name}\\b`));
    });
  }

  test('lists every bad variable at once', () => {
    const error = configError({ PORT: 'abc', LOG_LEVEL: 'loud', TANDEM_DEMO: 'maybe' });
    assert.deepEqual(error.problems.map((p) => p.split(':')[0]).sort(), ['LOG_LEVEL', 'PORT', 'TANDEM_DEMO']);
  });

  test('shows the bad value of an ordinary variable, to help fix it', () => {
    assert.match(configError({ LOG_LEVEL: 'loud' }).message, /"loud"/);
  });

  test('never shows the admin key, whether it is the bad value or not', () => {
    const tooShort = 'secret-but-short-key';
    const tooLong = `secret-${'x'.repeat(300)}`;
    for (const key of [tooShort, tooLong]) {
      const error = configError({ TANDEM_ADMIN_API_KEY: key });
      assert.match(error.message, /TANDEM_ADMIN_API_KEY/);
      assert.ok(!error.message.includes(key), error.message);
      assert.ok(!error.message.includes('secret-'), error.message);
      assert.ok(!error.problems.some((p) => p.includes('secret-')), error.message);
    }
    // A valid key next to another bad value stays out of the message as well.
    const error = configError({ TANDEM_ADMIN_API_KEY: adminKey, PORT: 'abc' });
    assert.ok(!error.message.includes(adminKey), error.message);
    assert.ok(!error.message.includes('0123456789abcdef'), error.message);
  });

  test('never shows a bad DATABASE_URL, which may hold a password', () => {
    const error = configError({ DATABASE_URL: 'postgresql+psycopg://tandem:hunter2@db/tandem' });
    assert.match(error.message, /DATABASE_URL/);
    assert.ok(!error.message.includes('hunter2'), error.message);
  });
});
