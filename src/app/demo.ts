// The demo (`npm start` unless TANDEM_DEMO=off): an in-process Stripe simulator and an in-process
// Salesforce simulator, and a connection of the default workspace to each, so a newcomer sees
// two-way sync between three systems with no credentials. The simulators keep their state in
// memory: each start begins with an empty simulated Stripe account and Salesforce org, so the demo
// connections are made anew on every start.
import type { Logger } from 'pino';
import { startSalesforceSimulator, type SalesforceSimulator } from '../connectors/salesforce/simulator/index.ts';
import { startStripeSimulator, type StripeSimulator } from '../connectors/stripe/simulator/index.ts';
import type { Connections } from '../sync/connections.ts';

export const DEMO_CONNECTION_NAME = 'Demo: Stripe simulator';
export const DEMO_SALESFORCE_CONNECTION_NAME = 'Demo: Salesforce simulator';
/** The simulator's default connected app (client credentials): it opens nothing outside this process. */
export const DEMO_SALESFORCE_CLIENT = { clientId: 'tandem-sim', clientSecret: 'tandem-sim-secret' } as const;
/** A key of the local simulator only: it opens nothing outside this process. */
export const DEMO_STRIPE_KEY = 'sk_test_tandem_demo';

export interface Demo {
  stripe: StripeSimulator;
  connectionId: string;
  salesforce: SalesforceSimulator;
  salesforceConnectionId: string;
  stop(): Promise<void>;
}

/** Starts a simulator on `port`, or on a free one when it is taken. */
async function listenPreferring<T>(name: string, port: number, logger: Logger, start: (port: number) => Promise<T>): Promise<T> {
  try {
    return await start(port);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE' || port === 0) throw error;
    logger.warn({ port }, `the demo ${name} simulator port is taken; using a free one`);
    return start(0);
  }
}

export async function startDemo(options: {
  connections: Connections;
  workspaceId: string;
  port: number;
  salesforcePort: number;
  logger: Logger;
}): Promise<Demo> {
  const { connections, workspaceId, logger } = options;
  const stripe = await listenPreferring('Stripe', options.port, logger, (port) => startStripeSimulator({ port, logger: logger.child({ simulator: 'stripe' }) }));
  let salesforce: SalesforceSimulator | undefined;
  try {
    salesforce = await listenPreferring('Salesforce', options.salesforcePort, logger, (port) =>
      startSalesforceSimulator({ port, logger: logger.child({ simulator: 'salesforce' }) }),
    );
    for (const old of await connections.list(workspaceId)) {
      if (old.name === DEMO_CONNECTION_NAME || old.name === DEMO_SALESFORCE_CONNECTION_NAME) await connections.delete(workspaceId, old.id);
    }
    const connection = await connections.create(workspaceId, {
      connector: 'stripe',
      name: DEMO_CONNECTION_NAME,
      credentials: { secretKey: DEMO_STRIPE_KEY },
      settings: { apiBaseUrl: stripe.url },
    });
    const salesforceConnection = await connections.create(workspaceId, {
      connector: 'salesforce',
      name: DEMO_SALESFORCE_CONNECTION_NAME,
      credentials: DEMO_SALESFORCE_CLIENT,
      settings: { loginUrl: salesforce.url },
    });
    const sf = salesforce;
    return {
      stripe,
      connectionId: connection.id,
      salesforce: sf,
      salesforceConnectionId: salesforceConnection.id,
      stop: async () => {
        await sf.stop();
        await stripe.stop();
      },
    };
  } catch (error) {
    await salesforce?.stop();
    await stripe.stop();
    throw error;
  }
}
