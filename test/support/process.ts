// Tandem as a real child process: `node src/main.ts` under the Node that runs the tests (Node 24),
// with an environment of the test's choosing and nothing inherited that could point it elsewhere.
// Every child is tracked, so a test's `after` hook can kill whatever is still running even when the
// test failed half-way (`killAllTandems()`).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
export const mainScript = join(repoRoot, 'src', 'main.ts');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TandemProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Everything the child wrote so far. */
  stdout(): string;
  stderr(): string;
  /** The JSON (pino) lines of stdout, parsed; other lines (the first-start banner) are left out. */
  logLines(): Record<string, unknown>[];
  /** Sends a signal (no-op once the child exited). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the child has exited (never rejects). */
  readonly exited: Promise<Exit>;
  /** The exit, or undefined while the child runs. */
  exit(): Exit | undefined;
  /** Waits for the exit at most `ms`; SIGKILLs the child and throws when it did not exit in time. */
  waitForExit(ms: number): Promise<Exit>;
  /** For assertion messages: the pid, the exit and the tail of both streams. */
  diagnostics(): string;
}

const live = new Set<TandemProcess>();
const everyOutput: { stdout: () => string; stderr: () => string }[] = [];

/** A TCP port nothing listens on right now (the OS picks it; it is released before returning). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port'));
        return;
      }
      server.close(() => {
        resolve(address.port);
      });
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `intervalMs` until it answers true; throws `message()` after `timeoutMs`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  message: () => string,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms: ${message()}`);
    await sleep(intervalMs);
  }
}

function tail(text: string, chars = 4000): string {
  return text.length <= chars ? text : `…${text.slice(-chars)}`;
}

export interface LaunchOptions {
  /**
   * Tandem's configuration; only these (plus PATH and HOME) reach the child. The demo (an in-process
   * Stripe simulator and its connection) is off unless the test sets TANDEM_DEMO itself.
   */
  env: Record<string, string | undefined>;
}

/** Starts `node src/main.ts` and returns at once (it may still be starting, or about to fail). */
export function launchTandem(options: LaunchOptions & { port?: number }): TandemProcess {
  const env: Record<string, string> = { TANDEM_DEMO: 'off' };
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(options.env)) if (value !== undefined) env[name] = value;
  const child = spawn(process.execPath, [mainScript], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error('could not start node src/main.ts');
  const pid = child.pid;
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    // 'close' (not 'exit'): the streams are drained too, so stdout()/stderr() are complete after it.
    child.once('close', (code, signal) => {
      exit = { code, signal };
      live.delete(proc);
      resolve(exit);
    });
  });
  const port = options.port ?? Number(env.PORT ?? 0);
  const proc: TandemProcess = {
    child,
    pid,
    port,
    url: `http://127.0.0.1:${port}`,
    stdout: () => out,
    stderr: () => err,
    logLines: () =>
      out
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
    kill: (signal) => {
      if (exit === undefined) child.kill(signal);
    },
    exited,
    exit: () => exit,
    waitForExit: async (ms) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => {
          resolve('timeout');
        }, ms);
      });
      const result = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (result === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`Tandem did not exit within ${ms}ms (killed it)\n${proc.diagnostics()}`);
      }
      return result;
    },
    diagnostics: () =>
      `pid ${pid}, port ${port}, exit ${JSON.stringify(exit ?? 'still running')}\n` +
      `--- stdout ---\n${tail(out)}\n--- stderr ---\n${tail(err)}`,
  };
  live.add(proc);
  everyOutput.push({ stdout: () => out, stderr: () => err });
  return proc;
}

export interface SpawnOptions extends LaunchOptions {
  /** The port to serve on (find one with freePort()); defaults to a fresh free port. */
  port?: number;
  /** How long start-up may take before the test fails. */
  readyTimeoutMs?: number;
}

/** Starts Tandem and waits until GET /readyz answers 200; throws (and kills it) if it does not in time. */
export async function spawnTandem(options: SpawnOptions): Promise<TandemProcess> {
  const port = options.port ?? (await freePort());
  const proc = launchTandem({ env: { HOST: '127.0.0.1', LOG_LEVEL: 'info', ...options.env, PORT: String(port) }, port });
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  try {
    await waitUntil(
      async () => {
        const exit = proc.exit();
        if (exit !== undefined) throw new Error(`Tandem exited while starting: ${JSON.stringify(exit)}`);
        try {
          const response = await fetch(`${proc.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
          await response.arrayBuffer();
          return response.status === 200;
        } catch {
          return false;
        }
      },
      timeoutMs,
      () => `/readyz never answered 200`,
      50,
    );
  } catch (error) {
    proc.kill('SIGKILL');
    await proc.exited;
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${proc.diagnostics()}`);
  }
  return proc;
}

/** Runs Tandem expecting it to exit by itself (bad configuration): its exit and output. */
export async function runTandemToExit(
  options: LaunchOptions & { timeoutMs?: number },
): Promise<Exit & { stdout: string; stderr: string }> {
  const proc = launchTandem({ env: { HOST: '127.0.0.1', LOG_LEVEL: 'info', ...options.env } });
  const exit = await proc.waitForExit(options.timeoutMs ?? 20_000);
  return { ...exit, stdout: proc.stdout(), stderr: proc.stderr() };
}

/** SIGKILLs every child still running and waits for each to be gone (for `after` hooks). */
export async function killAllTandems(): Promise<void> {
  const running = [...live];
  for (const proc of running) proc.kill('SIGKILL');
  await Promise.all(running.map((proc) => proc.exited));
}

/** The output of every child started in this test process so far (to look for leaked secrets). */
export function allOutput(): string {
  return everyOutput.map((o) => `${o.stdout()}\n${o.stderr()}`).join('\n');
}

// Last resort: never leave a child behind when the test process itself ends.
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});
