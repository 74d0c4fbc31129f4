// Webhook delivery: every event goes to each enabled endpoint of its account that wants it, as a
// JSON POST signed like Stripe signs (`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
// "t.body")>`). A non-2xx answer, a network error or a timeout is retried on a schedule; the
// injected faults can drop, duplicate, delay and reorder deliveries. Everything is asynchronous
// (never on the API request's path) and stop() cancels what is left.
import { createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Account, EndpointRecord } from './account.ts';
import type { EffectiveFaults, FaultRegistry } from './faults.ts';
import type { StripeEvent } from './types.ts';

export interface DeliveryOptions {
  /** How long a receiver may take to answer before the attempt counts as failed. Default 10 s. */
  timeoutMs?: number;
  /**
   * Waits before each retry: the n-th entry is the wait after the n-th failed attempt, so there are
   * `length + 1` attempts at most. Default [100, 200, 400, 800, 1600, 3200] (real Stripe retries
   * for up to three days; this keeps tests short). Pass `[]` for a single attempt.
   */
  retryDelaysMs?: readonly number[];
  /** Deliveries sent at once (the rest wait their turn). Default 16. */
  maxConcurrent?: number;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'dropped' | 'cancelled';

export interface DeliveryAttempt {
  at: string;
  /** The receiver's status code, or null for a network error or timeout. */
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export interface Delivery {
  id: string;
  account: string;
  accountId: string;
  eventId: string;
  eventType: string;
  endpointId: string;
  url: string;
  status: DeliveryStatus;
  /** A second, independent delivery of the same event (the `duplicateRate` fault). */
  duplicate: boolean;
  attempts: DeliveryAttempt[];
  createdAt: string;
  deliveredAt: string | null;
}

export interface DeliveryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface Task {
  /** Creation order of the delivery. */
  order: number;
  delivery: Delivery;
  account: Account;
  event: StripeEvent;
  endpoint: EndpointRecord;
  faults: EffectiveFaults;
}

const DEFAULT_RETRY_DELAYS_MS = [100, 200, 400, 800, 1600, 3200] as const;
const DELIVERY_LOG_LIMIT = 50_000;

export function signPayload(payload: string, secret: string, timestamp: number): string {
  const signature = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${signature}`;
}

export class WebhookDeliverer {
  readonly #timeoutMs: number;
  readonly #retryDelaysMs: readonly number[];
  readonly #maxConcurrent: number;
  readonly #faults: FaultRegistry;
  readonly #clock: () => Date;
  readonly #logger: DeliveryLogger | undefined;
  readonly #deliveries: Delivery[] = [];
  /** `eventId endpointId` of every delivery that succeeded: pending_webhooks counts down once per pair. */
  readonly #delivered = new Set<string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #inFlight = new Set<AbortController>();
  readonly #queue: Task[] = [];
  readonly #idleWaiters = new Set<() => void>();
  /** Deliveries held for reordering, by window. */
  #window: { tasks: Task[]; faults: EffectiveFaults } | undefined;
  #pending = 0;
  #running = 0;
  #nextId = 0;
  #stopped = false;

  constructor(options: {
    delivery: DeliveryOptions;
    faults: FaultRegistry;
    clock: () => Date;
    logger: DeliveryLogger | undefined;
  }) {
    this.#timeoutMs = options.delivery.timeoutMs ?? 10_000;
    this.#retryDelaysMs = options.delivery.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.#maxConcurrent = options.delivery.maxConcurrent ?? 16;
    this.#faults = options.faults;
    this.#clock = options.clock;
    this.#logger = options.logger;
  }

  /** Schedules the deliveries of one event to the endpoints that want it. */
  enqueue(account: Account, event: StripeEvent, endpoints: readonly EndpointRecord[]): void {
    if (this.#stopped) return;
    const faults = this.#faults.for(account.key);
    for (const endpoint of endpoints) {
      if (faults.dropWebhook()) {
        this.#record(account, event, endpoint, false).status = 'dropped';
        continue;
      }
      const copies = faults.duplicateWebhook() ? 2 : 1;
      for (let copy = 0; copy < copies; copy += 1) {
        const delivery = this.#record(account, event, endpoint, copy > 0);
        this.#pending += 1;
        const task: Task = { order: this.#nextId, delivery, account, event, endpoint, faults };
        const delay = faults.webhookDelayMs();
        if (delay > 0) this.#after(delay, () => { this.#release(task); });
        else this.#release(task);
      }
    }
  }

  /** Every delivery made or planned, oldest first (one account's, with its key). */
  list(accountKey?: string): Delivery[] {
    return this.#deliveries.filter((d) => accountKey === undefined || d.account === accountKey).map((d) => structuredClone(d));
  }

  /** Resolves when no delivery is pending (delivered, failed, dropped or cancelled), or after `timeoutMs`. */
  async idle(timeoutMs = 30_000): Promise<boolean> {
    if (this.#pending === 0) return true;
    return new Promise<boolean>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#idleWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#idleWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.#idleWaiters.add(done);
    });
  }

  clear(): void {
    this.#deliveries.length = 0;
    this.#delivered.clear();
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const controller of this.#inFlight) controller.abort();
    for (const task of [...this.#queue, ...(this.#window?.tasks ?? [])]) this.#finish(task, 'cancelled');
    this.#queue.length = 0;
    this.#window = undefined;
  }

  #record(account: Account, event: StripeEvent, endpoint: EndpointRecord, duplicate: boolean): Delivery {
    this.#nextId += 1;
    const delivery: Delivery = {
      id: `dlv_${this.#nextId}`,
      account: account.key,
      accountId: account.id,
      eventId: event.id,
      eventType: event.type,
      endpointId: endpoint.endpoint.id,
      url: endpoint.endpoint.url,
      status: 'pending',
      duplicate,
      attempts: [],
      createdAt: this.#clock().toISOString(),
      deliveredAt: null,
    };
    this.#deliveries.push(delivery);
    if (this.#deliveries.length > DELIVERY_LOG_LIMIT) {
      const index = this.#deliveries.findIndex((d) => d.status !== 'pending');
      if (index >= 0) this.#deliveries.splice(index, 1);
    }
    return delivery;
  }

  #after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  /** First attempt: straight to the queue, or through the reorder window. */
  #release(task: Task): void {
    if (this.#stopped) return;
    const windowMs = task.faults.reorderWindowMs();
    if (windowMs === undefined) {
      this.#schedule(task);
      return;
    }
    if (this.#window === undefined) {
      const window = { tasks: [] as Task[], faults: task.faults };
      this.#window = window;
      this.#after(windowMs, () => {
        if (this.#window === window) this.#window = undefined;
        const tasks = window.tasks;
        for (let i = tasks.length - 1; i > 0; i -= 1) {
          const j = Math.floor(window.faults.random() * (i + 1));
          [tasks[i], tasks[j]] = [tasks[j] as Task, tasks[i] as Task];
        }
        // Reversed when the shuffle happens to keep the order, so a window of two always reorders.
        if (tasks.length > 1 && tasks.every((t, i) => i === 0 || (tasks[i - 1]?.order ?? 0) < t.order)) tasks.reverse();
        for (const t of tasks) this.#schedule(t);
      });
    }
    this.#window.tasks.push(task);
  }

  #schedule(task: Task): void {
    if (this.#stopped) return;
    this.#queue.push(task);
    this.#pump();
  }

  #pump(): void {
    while (!this.#stopped && this.#running < this.#maxConcurrent && this.#queue.length > 0) {
      const task = this.#queue.shift();
      if (task === undefined) break;
      this.#running += 1;
      void this.#attempt(task).finally(() => {
        this.#running -= 1;
        this.#pump();
      });
    }
  }

  async #attempt(task: Task): Promise<void> {
    const { delivery, account, event } = task;
    // The endpoint as it is now: deleted or disabled endpoints get nothing more.
    const endpoint = account.endpoints.get(delivery.endpointId);
    if (endpoint?.endpoint.status !== 'enabled') {
      this.#finish(task, 'cancelled');
      return;
    }
    const payload = JSON.stringify(event, null, 2);
    const timestamp = Math.floor(this.#clock().getTime() / 1000);
    const started = performance.now();
    const result = await this.#post(endpoint.endpoint.url, payload, signPayload(payload, endpoint.secret, timestamp));
    if (this.#stopped) {
      this.#finish(task, 'cancelled');
      return;
    }
    delivery.attempts.push({
      at: this.#clock().toISOString(),
      statusCode: result.statusCode,
      error: result.error,
      durationMs: Math.round(performance.now() - started),
    });
    if (result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300) {
      delivery.deliveredAt = this.#clock().toISOString();
      // pending_webhooks counts endpoints still owed a successful delivery.
      // (A set, not a scan of every delivery so far: that scan was the simulator's busiest code in a burst.)
      const pair = `${event.id} ${delivery.endpointId}`;
      if (!this.#delivered.has(pair) && event.pending_webhooks > 0) event.pending_webhooks -= 1;
      this.#delivered.add(pair);
      this.#finish(task, 'delivered');
      return;
    }
    const wait = this.#retryDelaysMs[delivery.attempts.length - 1];
    if (wait === undefined) {
      this.#logger?.warn({ eventId: event.id, url: delivery.url, attempts: delivery.attempts.length }, 'webhook delivery failed for good');
      this.#finish(task, 'failed');
      return;
    }
    this.#logger?.info(
      { eventId: event.id, url: delivery.url, attempt: delivery.attempts.length, statusCode: result.statusCode, error: result.error, retryInMs: wait },
      'webhook delivery failed, will retry',
    );
    this.#after(wait, () => { this.#schedule(task); });
  }

  #finish(task: Task, status: DeliveryStatus): void {
    if (task.delivery.status !== 'pending') return;
    task.delivery.status = status;
    this.#pending -= 1;
    if (this.#pending === 0) for (const waiter of [...this.#idleWaiters]) waiter();
  }

  #post(url: string, payload: string, signature: string): Promise<{ statusCode: number | null; error: string | null }> {
    return new Promise((resolve) => {
      const controller = new AbortController();
      this.#inFlight.add(controller);
      let settled = false;
      const settle = (value: { statusCode: number | null; error: string | null }): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#inFlight.delete(controller);
        resolve(value);
      };
      const timer = setTimeout(() => {
        controller.abort();
        settle({ statusCode: null, error: `timed out after ${this.#timeoutMs} ms` });
      }, this.#timeoutMs);
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        settle({ statusCode: null, error: `invalid URL ${url}` });
        return;
      }
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        target,
        {
          method: 'POST',
          agent: false,
          signal: controller.signal,
          headers: {
            'Content-Type': 'application/json; charset=utf-8',
            'Content-Length': Buffer.byteLength(payload),
            'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
            Accept: '*/*; q=0.5, application/xml',
            'Cache-Control': 'no-cache',
            'Stripe-Signature': signature,
          },
        },
        (res: IncomingMessage) => {
          res.resume();
          res.on('end', () => { settle({ statusCode: res.statusCode ?? null, error: null }); });
          res.on('error', (error) => { settle({ statusCode: null, error: error.message }); });
        },
      );
      req.on('error', (error) => { settle({ statusCode: null, error: error.message }); });
      req.end(payload);
    });
  }
}
