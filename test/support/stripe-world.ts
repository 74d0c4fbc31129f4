// A Tandem (in process, its sync engine on, its API on a real port for webhooks) and a Stripe
// simulator, for sync tests that connect one account and drive both sides.
import assert from 'node:assert/strict';
import Stripe from 'stripe';
import { startStripeSimulator, type StripeSimulator } from '../../src/connectors/stripe/simulator/index.ts';
import { createTestApi, type TestApi, type TestApiOptions } from './api.ts';
import { freePort } from './process.ts';
import type { StoreKind } from './stores.ts';

export interface StripeWorld {
  sim: StripeSimulator;
  t: TestApi;
  /** The official SDK on the simulator, for the account of `secretKey`. */
  stripe(secretKey: string): Stripe;
  /** Connects the account through the API (asserting 201); answers the connection id. */
  connect(secretKey: string): Promise<string>;
  stop(): Promise<void>;
}

/** `options` go to the test API (e.g. the Kafka log, retry timings, another poll interval). */
export async function startStripeWorld(kind: StoreKind, options: TestApiOptions = {}): Promise<StripeWorld> {
  const sim = await startStripeSimulator({ rateLimitPerSecond: 0, delivery: { retryDelaysMs: [50, 100, 200] } });
  const port = await freePort();
  const t = await createTestApi(kind, { pollIntervalMs: 300, ...options, sync: true, publicUrl: `http://127.0.0.1:${String(port)}` });
  await t.app.listen({ port, host: '127.0.0.1' });
  const url = new URL(sim.url);
  return {
    sim,
    t,
    stripe: (secretKey) => new Stripe(secretKey, { host: url.hostname, port: Number(url.port), protocol: 'http', telemetry: false }),
    connect: async (secretKey) => {
      const res = await t.call('POST', '/api/v1/connections', { connector: 'stripe', name: 'Stripe', credentials: { secretKey }, settings: { apiBaseUrl: sim.url } });
      assert.equal(res.statusCode, 201, res.body);
      return res.json<{ id: string }>().id;
    },
    stop: async () => {
      await t.cleanup();
      await sim.stop();
    },
  };
}
