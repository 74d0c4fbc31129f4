// Tandem as the sync benchmark runs it: `node src/main.ts` in a child process of its own (never in
// this process, which holds the Stripe simulator and the load), on loopback, a free port, a temp
// DATA_DIR, a known admin key, the demo off. Its log goes to a file in the data dir.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

/** A TCP port nothing listens on right now (asked from the kernel, then released for Tandem). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** Where one Tandem's data lives and how it is reached; kept across a restart. */
export interface TandemSetup {
  dataDir: string;
  adminKey: string;
  port: number;
  /** http://127.0.0.1:<port>, also its PUBLIC_URL (webhooks come here). */
  url: string;
}

export async function prepareTandem(): Promise<TandemSetup> {
  const port = await freePort();
  return {
    dataDir: mkdtempSync(join(tmpdir(), 'tandem-sync-bench-')),
    adminKey: `bench_${randomBytes(24).toString('base64url')}`,
    port,
    url: `http://127.0.0.1:${String(port)}`,
  };
}

export interface TandemOptions {
  /** A name for the log file and the profile. */
  name: string;
  logLevel: string;
  /** TANDEM_SYNC_POLL_MS: the default poll interval of the change feed. */
  pollMs: number;
  /** Extra Node flags, e.g. --cpu-prof. */
  execArgv?: string[];
  /** The Tandem work tree to run (default this one), e.g. a copy with a change to compare. */
  root?: string;
}

export interface RunningTandem {
  readonly pid: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly adminKey: string;
  readonly dataDir: string;
  readonly logFile: string;
  running(): boolean;
  /** The last lines of its log. */
  tail(lines?: number): string;
  /** SIGTERM, then waits for the graceful exit (SIGKILL after 30 s); answers the exit code. */
  stop(): Promise<number | null>;
}

export async function startTandem(setup: TandemSetup, options: TandemOptions): Promise<RunningTandem> {
  const { dataDir, adminKey, port, url } = setup;
  const logFile = join(dataDir, `${options.name}.log`);
  // A file, not a pipe: reading Tandem's output here would cost this process's CPU.
  const out = openSync(logFile, 'a');
  const child = (() => {
    try {
      return spawn(process.execPath, [...(options.execArgv ?? []), 'src/main.ts'], {
        cwd: options.root ?? repoRoot,
        stdio: ['ignore', out, out],
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          HOST: '127.0.0.1',
          PORT: String(port),
          PUBLIC_URL: url,
          DATA_DIR: dataDir,
          LOG_LEVEL: options.logLevel,
          TANDEM_DEMO: 'off',
          TANDEM_ADMIN_API_KEY: adminKey,
          TANDEM_SYNC_POLL_MS: String(options.pollMs),
        },
      });
    } finally {
      closeSync(out);
    }
  })();
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolveExit) => {
    child.once('exit', (code) => {
      exitCode = code;
      resolveExit(code);
    });
  });
  const hasExited = (): boolean => exitCode !== undefined;
  const pid = child.pid;
  if (pid === undefined) throw new Error('Tandem did not start');
  const tail = (lines = 20): string => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (hasExited()) throw new Error(`Tandem exited with code ${String(exitCode)} while starting:\n${tail()}`);
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Tandem was not ready within 60 s:\n${tail()}`);
    }
    await delay(100);
  }
  // The port was free when asked for; make sure the server answering is this Tandem (it knows the key).
  const whoami = await fetch(`${url}/api/v1/workspace`, { headers: { authorization: `Bearer ${adminKey}` } });
  await whoami.arrayBuffer();
  if (whoami.status !== 200) {
    child.kill('SIGKILL');
    throw new Error(`the server on ${url} is not the Tandem just started (GET /api/v1/workspace answered ${String(whoami.status)})`);
  }
  return {
    pid,
    url,
    adminKey,
    dataDir,
    logFile,
    running: () => !hasExited(),
    tail,
    stop: async () => {
      if (!hasExited()) child.kill('SIGTERM');
      const outcome = await Promise.race([exited, delay(30_000).then(() => 'timeout' as const)]);
      if (outcome === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        throw new Error('Tandem did not stop within 30 s of SIGTERM');
      }
      return outcome;
    },
  };
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
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? { authorization: this.#headers.authorization ?? '' } : this.#headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (!expect.includes(response.status)) throw new ApiError(response.status, `${method} ${path} answered ${String(response.status)}: ${text.slice(0, 300)}`);
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
  connector: 'stripe';
  name: string;
  credentials: { secretKey: string };
  settings: { apiBaseUrl: string; pollIntervalMs: number; rateLimitPerSecond?: number };
}

export function stripeConnectionInput(secretKey: string, apiBaseUrl: string, rateLimitPerSecond: number | undefined, pollIntervalMs: number): ConnectionInput {
  return {
    connector: 'stripe',
    name: 'bench',
    credentials: { secretKey },
    settings: { apiBaseUrl, pollIntervalMs, ...(rateLimitPerSecond === undefined ? {} : { rateLimitPerSecond }) },
  };
}
