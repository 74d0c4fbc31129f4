// Tandem as the sync benchmark drives it: started by bench/lib/tandem.ts (a child process of its own,
// never this one, which holds the Stripe simulator and the load; loopback, a free port, a temp
// DATA_DIR, a known admin key, the demo off; its PUBLIC_URL defaults to its own address, where the
// simulator delivers webhooks), and reached through its REST API with the admin key.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * The load's HTTP client: node:http over kept-alive connections. The writers share this process
 * with the simulator, and `fetch` cost this process about twice the CPU per request (measured with
 * --cpu-prof): CPU the bench spent was CPU the simulator, on the same core, did not get.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const TIMEOUT_MS = 30_000;

function send(url: string, method: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`${method} ${url}: no answer in ${String(TIMEOUT_MS)} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The last lines of a Tandem's log file. */
export function tailOf(logFile: string, lines = 20): string {
  try {
    return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface Customer {
  id: string;
  name: string | null;
  version: number;
  updated_at: string;
}

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Tandem's REST API with the admin key; throws ApiError on an unexpected status. */
export class TandemApi {
  readonly url: string;
  readonly #headers: Record<string, string>;

  constructor(url: string, key: string) {
    this.url = url;
    this.#headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  }

  async call<T>(method: string, path: string, body?: unknown, expect: number[] = [200, 201]): Promise<T> {
    const headers = body === undefined ? { authorization: this.#headers.authorization ?? '' } : this.#headers;
    const { status, text } = await send(`${this.url}${path}`, method, headers, body === undefined ? undefined : JSON.stringify(body));
    if (!expect.includes(status)) throw new ApiError(status, `${method} ${path} answered ${String(status)}: ${text.slice(0, 300)}`);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  createCustomer(body: Record<string, unknown>): Promise<Customer> {
    return this.call<Customer>('POST', '/api/v1/customers', body);
  }

  updateCustomer(id: string, body: Record<string, unknown>): Promise<Customer> {
    return this.call<Customer>('PATCH', `/api/v1/customers/${id}`, body);
  }

  /** Every customer updated at or after `since` (ISO), following the cursor. */
  async customersUpdatedSince(since: string): Promise<Customer[]> {
    const all: Customer[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page += 1) {
      const query = new URLSearchParams({ limit: '100', updated_since: since, ...(cursor === null ? {} : { cursor }) });
      const result: { data: Customer[]; next_cursor: string | null } = await this.call('GET', `/api/v1/customers?${query.toString()}`);
      all.push(...result.data);
      cursor = result.next_cursor;
      if (cursor === null) break;
    }
    return all;
  }

  /** POST /api/v1/connections; answers the connection id once its worker runs. */
  async createConnection(input: ConnectionInput): Promise<string> {
    const created = await this.call<{ id: string }>('POST', '/api/v1/connections', input);
    await this.waitActive(created.id);
    return created.id;
  }

  /** The engine installs the worker just after answering: wait until the connection shows active. */
  async waitActive(connectionId: string): Promise<void> {
    for (let i = 0; i < 100; i += 1) {
      const view = await this.call<{ status: string }>('GET', `/api/v1/connections/${connectionId}`);
      if (view.status === 'active') break;
      await delay(50);
    }
    await delay(300);
  }

  async pause(connectionId: string): Promise<void> {
    await this.call('POST', `/api/v1/connections/${connectionId}/pause`);
  }

  async resume(connectionId: string): Promise<void> {
    await this.call('POST', `/api/v1/connections/${connectionId}/resume`);
  }

  async openIssues(): Promise<number> {
    const result = await this.call<{ data: unknown[] }>('GET', '/api/v1/sync-issues?status=open&limit=100');
    return result.data.length;
  }
}

export interface ConnectionInput {
  connector: string;
  name: string;
  credentials: Record<string, string>;
  settings: Record<string, unknown> & { pollIntervalMs: number; rateLimitPerSecond?: number };
}

export function stripeConnectionInput(secretKey: string, apiBaseUrl: string, rateLimitPerSecond: number | undefined, pollIntervalMs: number): ConnectionInput {
  return {
    connector: 'stripe',
    name: 'bench',
    credentials: { secretKey },
    settings: { apiBaseUrl, pollIntervalMs, ...(rateLimitPerSecond === undefined ? {} : { rateLimitPerSecond }) },
  };
}
