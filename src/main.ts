// `npm start`: reads the configuration, starts Tandem, and stops it gracefully on SIGTERM/SIGINT.
import { pino } from 'pino';
import { ConfigError, loadConfig, type Config } from './config/config.ts';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

const config = configOrExit();
const logger = pino({
  level: config.logLevel,
  redact: { paths: ['req.headers.authorization', '*.credentials', '*.secretKey', '*.key'], censor: '[redacted]' },
});

try {
  // Loaded once the configuration is known to be good: a bad one is reported at once, without first
  // loading the HTTP server, the database drivers and the Kafka client.
  const { startTandem } = await import('./app/tandem.ts');
  const tandem = await startTandem(config, logger);
  let signals = 0;
  const shutdown = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    tandem.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => { shutdown('SIGTERM'); });
  process.on('SIGINT', () => { shutdown('SIGINT'); });
} catch (error) {
  logger.fatal({ err: error }, 'Tandem failed to start');
  process.exit(1);
}
