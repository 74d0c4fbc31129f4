// The simulators the standalone CLI can start, by name. Adding one (salesforce, quickbooks) is one
// more entry here: a name, a line of description, and how to start it.
import {
  DEFAULT_CLIENT_ID,
  DEFAULT_CLIENT_SECRET,
  DEFAULT_PASSWORD,
  DEFAULT_USERNAME,
  startSalesforceSimulator,
} from '../connectors/salesforce/simulator/index.ts';
import { startStripeSimulator, type SimulatorLogger } from '../connectors/stripe/simulator/index.ts';

export interface SimulatorStartOptions {
  port: number;
  host: string;
  /** Requests a second per account; undefined keeps the simulator's default, 0 turns it off. */
  rateLimitPerSecond: number | undefined;
  logger: SimulatorLogger;
  /** Salesforce: the default connected app and user (each undefined keeps the simulator's default). */
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Salesforce: API calls allowed in any 24 hours. */
  dailyApiLimit?: number | undefined;
  /** Salesforce: access token lifetime, seconds. */
  sessionTimeoutSeconds?: number | undefined;
}

export interface RunningSimulator {
  url: string;
  /** The line printed first, saying where it listens and how to use it. */
  banner: string;
  /** Further lines of help printed after the banner. */
  notes: string[];
  stop(): Promise<void>;
}

export interface SimulatorDefinition {
  name: string;
  description: string;
  defaultPort: number;
  start(options: SimulatorStartOptions): Promise<RunningSimulator>;
}

const stripe: SimulatorDefinition = {
  name: 'stripe',
  description: 'Stripe API: customers, webhook endpoints, events, signed webhooks (the `stripe` npm package works against it)',
  defaultPort: 12111,
  async start(options) {
    const sim = await startStripeSimulator({
      port: options.port,
      host: options.host,
      logger: options.logger,
      ...(options.rateLimitPerSecond === undefined ? {} : { rateLimitPerSecond: options.rateLimitPerSecond }),
    });
    return {
      url: sim.url,
      banner: `Stripe simulator listening on ${sim.url} — any sk_test_… key works`,
      notes: [
        `  SDK:    new Stripe('sk_test_…', { host: '${sim.host}', port: ${sim.port}, protocol: 'http' })`,
        `  admin:  GET ${sim.url}/_sim/accounts · /_sim/customers?account=<key> · /_sim/events?account=<key> · /_sim/requests · /_sim/deliveries`,
        `  faults: POST ${sim.url}/_sim/faults {"errorRate":0.2,"seed":1} · DELETE ${sim.url}/_sim/faults`,
      ],
      stop: () => sim.stop(),
    };
  },
};

const salesforce: SimulatorDefinition = {
  name: 'salesforce',
  description: 'Salesforce org: OAuth, Account/Contact REST, SOQL, sObject Collections, replication, limits (jsforce works against it)',
  defaultPort: 12112,
  async start(options) {
    const username = options.username ?? DEFAULT_USERNAME;
    const clientId = options.clientId ?? DEFAULT_CLIENT_ID;
    const clientSecret = options.clientSecret ?? DEFAULT_CLIENT_SECRET;
    const sim = await startSalesforceSimulator({
      port: options.port,
      host: options.host,
      logger: options.logger,
      users: [{ username, password: options.password ?? DEFAULT_PASSWORD, name: 'Tandem Simulator' }],
      connectedApps: [{ clientId, clientSecret, clientCredentialsUser: username }],
      ...(options.dailyApiLimit === undefined ? {} : { dailyApiLimit: options.dailyApiLimit }),
      ...(options.sessionTimeoutSeconds === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutSeconds * 1000 }),
    });
    return {
      url: sim.url,
      banner: `Salesforce simulator listening on ${sim.url} — connected app ${clientId} / ${clientSecret}, user ${username}`,
      notes: [
        `  jsforce: new Connection({ oauth2: new OAuth2({ loginUrl: '${sim.url}', clientId: '${clientId}', clientSecret: '…' }), version: '62.0' })`,
        `           then conn.authorize({ grant_type: 'client_credentials' })`,
        `  admin:   GET ${sim.url}/_sim/records?sobject=Account · /_sim/changes · /_sim/requests · /_sim/limits`,
        `  faults:  POST ${sim.url}/_sim/faults {"errorRate":0.2,"seed":1} · DELETE ${sim.url}/_sim/faults · POST ${sim.url}/_sim/expire-sessions`,
      ],
      stop: () => sim.stop(),
    };
  },
};

/** Every simulator the CLI knows, in the order `--help` lists them. */
export const SIMULATORS: readonly SimulatorDefinition[] = [stripe, salesforce];

export function findSimulator(name: string): SimulatorDefinition | undefined {
  return SIMULATORS.find((s) => s.name === name);
}
