// Tandem as the benchmark runs it: `node src/main.ts` in a child process of its own, on loopback,
// a free port, its own data (a temp DATA_DIR, or a fresh PostgreSQL database), a known admin key.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

/** Where one benchmark's data lives; reused by consecutive Tandem processes (a restart keeps it). */
export interface BenchData {
  store: 'sqlite' | 'postgres';
  dataDir: string;
  databaseUrl: string | undefined;
  adminKey: string;
  /**
   * PostgreSQL: ANALYZE the database, as autovacuum would on its own in time (the planner needs the
   * statistics to use the right index; see docs/benchmarks.md). Answers whether autovacuum is on.
   * SQLite: nothing to do (answers undefined).
   */
  analyze(): Promise<boolean | undefined>;
  /** Removes the data dir and drops the database. */
  cleanup(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function adminQuery(adminUrl: string, text: string): Promise<void> {
  // Database names cannot be parameters: they are made here of digits and underscores only.
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Fresh data: a temp dir, plus (for PostgreSQL) a new database on the server of `postgresAdminUrl`. */
export async function createBenchData(store: 'sqlite' | 'postgres', postgresAdminUrl: string): Promise<BenchData> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-bench-'));
  const adminKey = `bench_${randomBytes(24).toString('base64url')}`;
  if (store === 'sqlite') {
    return {
      store,
      dataDir,
      databaseUrl: undefined,
      adminKey,
      analyze: () => Promise.resolve(undefined),
      cleanup: () => {
        rmSync(dataDir, { recursive: true, force: true });
        return Promise.resolve();
      },
    };
  }
  const database = `tandem_bench_${process.pid}_${Date.now()}`;
  await adminQuery(postgresAdminUrl, `create database ${database}`);
  const databaseUrl = withDatabase(postgresAdminUrl, database);
  return {
    store,
    dataDir,
    databaseUrl,
    adminKey,
    analyze: async () => {
      const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        await client.query('analyze');
        const { rows } = await client.query<{ autovacuum: string }>('show autovacuum');
        return rows[0]?.autovacuum === 'on';
      } finally {
        await client.end();
      }
    },
    cleanup: async () => {
      await adminQuery(postgresAdminUrl, `drop database if exists ${database} with (force)`);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A free TCP port on loopback (asked from the kernel, then released for Tandem to take). */
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

export interface RunningTandem {
  readonly pid: number;
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** Tandem's stdout and stderr (its JSON log). */
  readonly logFile: string;
  /** False once the process exited. */
  running(): boolean;
  /** SIGTERM, then waits for the graceful exit; answers the exit code. */
  stop(): Promise<number | null>;
}

export interface StartTandemOptions {
  logLevel: string;
  /** Extra Node flags, e.g. --cpu-prof. */
  execArgv?: string[];
  /** A name for the log file. */
  name: string;
  /** The Tandem work tree to run (default this one), e.g. a copy with a change to compare. */
  root?: string;
}

/** Starts `node src/main.ts` on `data` and waits until GET /readyz answers 200. */
export async function startTandem(data: BenchData, options: StartTandemOptions): Promise<RunningTandem> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(data.dataDir, `${options.name}.log`);
  // Logs go to a file, as a production process's would go to its collector: a pipe read by this
  // process would cost this process's CPU (on a 2-core machine, the cores the measure competes for).
  const out = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...(options.execArgv ?? []), 'src/main.ts'], {
      cwd: options.root ?? repoRoot,
      stdio: ['ignore', out, out],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        HOST: '127.0.0.1',
        PORT: String(port),
        DATA_DIR: data.dataDir,
        LOG_LEVEL: options.logLevel,
        TANDEM_ADMIN_API_KEY: data.adminKey,
        // The demo (an in-process simulated Stripe, synced with every customer) is for a first look,
        // not for production: the figures are Tandem's own.
        TANDEM_DEMO: 'off',
        ...(data.databaseUrl === undefined ? {} : { DATABASE_URL: data.databaseUrl }),
      },
    });
  } finally {
    closeSync(out);
  }
  const exited = new Promise<number | null>((resolveExit) => {
    child.once('exit', (code) => {
      resolveExit(code);
    });
  });
  let exitCode: number | null | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  // Read through a call: TypeScript would otherwise keep its narrowing of exitCode across awaits.
  const hasExited = (): boolean => exitCode !== undefined;
  const pid = child.pid;
  if (pid === undefined) throw new Error('Tandem did not start');

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`Tandem exited with code ${exitCode ?? 'null'} while starting; see ${logFile}`);
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Tandem was not ready within 60 s; see ${logFile}`);
    }
    await delay(100);
  }

  // The port was free when asked for, but another process could have taken it since: make sure the
  // Tandem answering is this one (it knows this run's admin key).
  const whoami = await fetch(`${url}/api/v1/workspace`, { headers: { authorization: `Bearer ${data.adminKey}` } });
  if (whoami.status !== 200 || hasExited()) {
    child.kill('SIGKILL');
    throw new Error(`the server on ${url} is not the Tandem just started (GET /api/v1/workspace answered ${whoami.status})`);
  }

  return {
    pid,
    url,
    logFile,
    running: () => !hasExited(),
    stop: async () => {
      if (!hasExited()) child.kill('SIGTERM');
      const timeout = delay(30_000).then(() => 'timeout' as const);
      const outcome = await Promise.race([exited, timeout]);
      if (outcome === 'timeout') {
        child.kill('SIGKILL');
        throw new Error(`Tandem did not stop within 30 s of SIGTERM; see ${logFile}`);
      }
      return outcome;
    },
  };
}
