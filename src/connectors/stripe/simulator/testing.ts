// Helpers for tests that drive the simulator through the official SDK: a client pointed at it, a
// unique test key, and a local webhook receiver that keeps the raw bodies.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import type { StripeSimulator } from './simulator.ts';

export function testKey(): string {
  return `sk_test_${randomUUID().replaceAll('-', '')}`;
}

export function stripeClient(
  sim: StripeSimulator,
  key: string,
  options: { maxNetworkRetries?: number; timeout?: number } = {},
): Stripe {
  return new Stripe(key, {
    host: sim.host,
    port: sim.port,
    protocol: 'http',
    telemetry: false,
    maxNetworkRetries: options.maxNetworkRetries ?? 0,
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
  });
}

export interface ReceivedWebhook {
  body: string;
  headers: IncomingHttpHeaders;
  /** The status the receiver answered. */
  status: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Resolves once `count` webhooks were answered 2xx (or rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

/** A node:http receiver on port 0; `answer(n)` picks the status of the n-th request (0-based). */
export async function startReceiver(answer: (index: number) => number = () => 200): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const waiters: (() => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = answer(received.length);
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers, status });
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(status < 300 ? 'ok' : 'no');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const accepted = (): ReceivedWebhook[] => received.filter((r) => r.status >= 200 && r.status < 300);
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    received,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (accepted().length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${count} accepted webhooks, got ${accepted().length} (of ${received.length})`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 200));
          waiters.push(() => { clearTimeout(timer); resolve(); });
        });
      }
      return accepted();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => { resolve(); });
        server.closeAllConnections();
      }),
  };
}
