// The demo (`npm start` unless TANDEM_DEMO=off): an in-process Stripe simulator and a connection of
// the default workspace to it, so a newcomer sees two-way sync with no credentials. The simulator
// keeps its state in memory: each start begins with an empty simulated Stripe account, so the demo
// connection is made anew on every start.
import type { Logger } from 'pino';
import { startStripeSimulator, type StripeSimulator } from '../connectors/stripe/simulator/index.ts';
import type { Connections } from '../sync/connections.ts';

export const DEMO_CONNECTION_NAME = 'Demo: Stripe simulator';
/** A key of the local simulator only: it opens nothing outside this process. */
export const DEMO_STRIPE_KEY = 'sk_test_tandem_demo';

export interface Demo {
  stripe: StripeSimulator;
  connectionId: string;
  stop(): Promise<void>;
}

async function listenPreferring(port: number, logger: Logger): Promise<StripeSimulator> {
  try {
    return await startStripeSimulator({ port, logger: logger.child({ simulator: 'stripe' }) });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE' || port === 0) throw error;
    logger.warn({ port }, 'the demo Stripe simulator port is taken; using a free one');
    return startStripeSimulator({ port: 0, logger: logger.child({ simulator: 'stripe' }) });
  }
}

export async function startDemo(options: {
  connections: Connections;
  workspaceId: string;
  port: number;
  logger: Logger;
}): Promise<Demo> {
  const { connections, workspaceId, logger } = options;
  const stripe = await listenPreferring(options.port, logger);
  try {
    for (const old of await connections.list(workspaceId)) {
      if (old.name === DEMO_CONNECTION_NAME) await connections.delete(workspaceId, old.id);
    }
    const connection = await connections.create(workspaceId, {
      connector: 'stripe',
      name: DEMO_CONNECTION_NAME,
      credentials: { secretKey: DEMO_STRIPE_KEY },
      settings: { apiBaseUrl: stripe.url },
    });
    return { stripe, connectionId: connection.id, stop: () => stripe.stop() };
  } catch (error) {
    await stripe.stop();
    throw error;
  }
}
