// `npm run bench -- --suite foundation|sync|all`: which benchmarks bench/run.ts runs. foundation is
// its own (HTTP creates and reads, log delivery); sync is bench/sync.ts, run as a child process of
// its own under this Node; all (the default) runs both, foundation first.
//
//   npm run bench                                      both suites, full length
//   npm run bench -- --suite sync [sync options]       the sync suite only; every other argument goes
//                                                      to bench/sync.ts (e.g. --quick, --only latency)
//   npm run bench -- --sync-args '--quick' [options]   both suites; the other arguments go to the
//                                                      foundation suite, --no-fail and --profile to both
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const SUITES = ['foundation', 'sync', 'salesforce', 'scale-out', 'all'] as const;
export type Suite = (typeof SUITES)[number];

export const SUITE_USAGE = `
  --suite <name>         foundation (the figures above), sync (bench/sync.ts: Stripe sync latency
                         and throughput), salesforce (bench/salesforce.ts: bursts of changed
                         customers to Salesforce), scale-out (bench/scale-out.ts: embedded log vs
                         Kafka, latency on PostgreSQL + Kafka, one vs two worker processes; needs
                         KAFKA_BROKERS) or all (default: every suite, in that order; scale-out only
                         when KAFKA_BROKERS is set). With --suite sync, salesforce or scale-out every
                         other argument goes to that script
  --sync-args '<args>'   with --suite all: arguments for bench/sync.ts, e.g. '--quick'
`;

export interface SuiteChoice {
  suite: Suite;
  /** The arguments for bench/run.ts's own figures. */
  foundationArgs: string[];
  /** The arguments for bench/sync.ts. */
  syncArgs: string[];
}

function fail(message: string): never {
  process.stderr.write(`${message}\n${SUITE_USAGE}`);
  process.exit(2);
}

/** Takes --suite and --sync-args out of `argv` (the arguments after the script). */
export function chooseSuite(argv: readonly string[]): SuiteChoice {
  let suite: Suite = 'all';
  const syncExtra: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (name !== '--suite' && name !== '--sync-args') {
      rest.push(arg);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) fail(`${name} needs a value`);
    if (name === '--suite') {
      if (!SUITES.includes(value as Suite)) fail(`--suite: unknown ${value} (one of ${SUITES.join(', ')})`);
      suite = value as Suite;
    } else {
      syncExtra.push(...value.split(/\s+/).filter((s) => s !== ''));
    }
  }
  if (suite === 'sync' || suite === 'salesforce' || suite === 'scale-out') return { suite, foundationArgs: [], syncArgs: [...rest, ...syncExtra] };
  const shared = rest.filter((arg) => arg === '--no-fail' || arg === '--profile');
  return { suite, foundationArgs: rest, syncArgs: [...shared, ...syncExtra] };
}

/** Runs bench/sync.ts (or another suite's script) with `args` (its output goes to this process's); answers its exit code. */
export function runSyncSuite(args: readonly string[], script = 'sync.ts'): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', script), ...args], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (signal !== null) process.stderr.write(`bench/${script} was stopped by ${signal}\n`);
      resolve(code ?? 1);
    });
  });
}
