// `npm run sim -- <name> [--port N] [--host H] [--rate-limit N] [salesforce flags]`: starts one simulator standalone,
// prints where it listens (first line), and stops cleanly on SIGINT / SIGTERM.
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { findSimulator, SIMULATORS, type SimulatorDefinition } from './registry.ts';

function usage(): string {
  const names = SIMULATORS.map((s) => `  ${s.name.padEnd(12)} ${s.description} (default port ${s.defaultPort})`).join('\n');
  return [
    'usage: npm run sim -- <simulator> [--port N] [--host HOST] [--rate-limit N] [salesforce options below]',
    '',
    'simulators:',
    names,
    '',
    'options:',
    '  --port N         port to listen on (default: the simulator\'s own; 0 picks a free one)',
    '  --host HOST      interface to listen on (default 127.0.0.1)',
    '  --rate-limit N   stripe: requests a second per account (0 turns the limit off)',
    '  --client-id ID, --client-secret S   salesforce: the connected app (default tandem-sim / tandem-sim-secret)',
    '  --username U, --password P          salesforce: the default user (client credentials run as it)',
    '  --daily-api-limit N                 salesforce: API calls allowed in any 24 hours (default 100000)',
    '  --session-timeout SECONDS           salesforce: access token lifetime (default 7200)',
  ].join('\n');
}

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${usage()}\n`);
  process.exit(2);
}

function wholeNumber(value: string, name: string, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) > max) fail(`--${name} must be a whole number from 0 to ${max} (got ${value})`);
  return Number(value);
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'rate-limit': { type: 'string' },
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        'daily-api-limit': { type: 'string' },
        'session-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  const [name, ...extra] = positionals;
  if (name === undefined) fail('Name the simulator to start.');
  if (extra.length > 0) fail(`Unexpected arguments: ${extra.join(' ')}`);
  const definition: SimulatorDefinition | undefined = findSimulator(name);
  if (definition === undefined) fail(`Unknown simulator: ${name}`);

  const logger = pino({ base: { simulator: definition.name } }, pino.destination(2));
  const port = values.port === undefined ? definition.defaultPort : wholeNumber(values.port, 'port', 65535);
  const host = values.host ?? '127.0.0.1';
  let running;
  try {
    running = await definition.start({
      port,
      host,
      rateLimitPerSecond: values['rate-limit'] === undefined ? undefined : wholeNumber(values['rate-limit'], 'rate-limit', 1_000_000),
      logger,
      clientId: values['client-id'],
      clientSecret: values['client-secret'],
      username: values.username,
      password: values.password,
      dailyApiLimit: values['daily-api-limit'] === undefined ? undefined : wholeNumber(values['daily-api-limit'], 'daily-api-limit', 1_000_000_000),
      sessionTimeoutSeconds: values['session-timeout'] === undefined ? undefined : wholeNumber(values['session-timeout'], 'session-timeout', 365 * 24 * 3600),
    });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason = code === 'EADDRINUSE' ? `port ${port} is in use (pick another with --port)` : String(error);
    process.stderr.write(`Cannot start the ${definition.name} simulator on ${host}:${port}: ${reason}\n`);
    process.exit(1);
  }
  process.stdout.write(`${running.banner}\n${running.notes.join('\n')}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: stopping the ${definition.name} simulator\n`);
    // If something holds the process open past a few seconds, leave anyway.
    setTimeout(() => process.exit(1), 5000).unref();
    running.stop().then(
      () => { process.exitCode = 0; },
      (error: unknown) => {
        process.stderr.write(`failed to stop cleanly: ${String(error)}\n`);
        process.exitCode = 1;
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

await main(process.argv.slice(2));
