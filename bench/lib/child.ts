// Child processes of the benchmark: started with an IPC channel, they send `{type:'measuring'}` when
// their measured part begins and `{type:'result', result}` at the end. The parent samples the
// process being measured (Tandem, or the log benchmark itself) between the two messages.
import { fork, type ChildProcess } from 'node:child_process';

export type ChildMessage<R> = { type: 'measuring' } | { type: 'result'; result: R };

export interface RunChildOptions {
  /** Called with the child's pid when it starts its measured part. */
  onMeasuring?: (pid: number) => void;
  /** Called when the result arrives, while the child still runs (it exits after sending it). */
  onResult?: () => void;
  /** The child is killed (and the run fails) after this long. */
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  execArgv?: string[];
}

/** Runs `node <script> ...args` under this Node (Node 24) and resolves with the result it sends. */
export function runChild<R>(script: string, args: string[], options: RunChildOptions): Promise<R> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = fork(script, args, {
      execPath: process.execPath,
      execArgv: options.execArgv ?? [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: options.env ?? process.env,
    });
    let result: { value: R } | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    child.on('message', (message: ChildMessage<R>) => {
      if (message.type === 'measuring') options.onMeasuring?.(child.pid ?? 0);
      else {
        options.onResult?.();
        result = { value: message.result };
      }
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (result !== undefined && code === 0) resolve(result.value);
      else reject(new Error(`${script} exited with ${signal ?? `code ${code ?? '?'}`} ${result === undefined ? 'without a result' : ''}`));
    });
  });
}

/** In a child: sends a message to the parent and waits until it is handed over. */
export function sendToParent<R>(message: ChildMessage<R>): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) {
      reject(new Error(`${process.argv[1] ?? 'this script'} must be started by bench/run.ts (it reports over IPC)`));
      return;
    }
    process.send(message, (error: Error | null) => {
      if (error === null) resolve();
      else reject(error);
    });
  });
}
