// The machine a sync benchmark ran on, and what its CPUs did while a figure was measured: Tandem's
// CPU, this process's (the Stripe simulator, the load and the probes all live here), and everything
// else on the machine (other engineers' builds and tests), so a slow figure can be told from a busy
// machine. Linux only (/proc).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function describeMachine(): Machine {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(read('/proc/cpuinfo'))?.[1]?.trim() ?? 'unknown';
  const osName = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(read('/etc/os-release'))?.[1] ?? process.platform;
  return {
    cpu,
    cores: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${osName}, Linux ${release()}`,
  };
}

/** 1, 5 and 15 minute load averages, rounded. */
export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = loadavg().map((n) => Math.round(n * 100) / 100);
  return [a, b, c];
}

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (every thread), in clock ticks; NaN once it is gone. */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return Number.NaN;
  }
}

/** Busy ticks of the whole machine (everything but idle and iowait). */
function machineTicks(): number {
  const line = read('/proc/stat').split('\n', 1)[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
}

function rssMiB(pid: number): number | undefined {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(read(`/proc/${String(pid)}/status`));
  return match?.[1] === undefined ? undefined : Number(match[1]) / 1024;
}

/** CPU over one measured period, in % of one core (the machine has `cores` × 100). */
export interface CpuUse {
  seconds: number;
  /** Tandem's process. */
  tandemPercent: number;
  /** CPU seconds Tandem used in the period. */
  tandemCpuSeconds: number;
  /** This process: the Stripe simulator, the writers and the probes. */
  benchPercent: number;
  /** Every other process of the machine together. */
  othersPercent: number;
  /** Load averages at the start of the period. */
  loadAverage: [number, number, number];
  /** Tandem's largest resident set seen, MiB. */
  tandemRssPeakMiB: number;
}

export interface CpuSampler {
  stop(): CpuUse;
}

export function sampleCpu(tandemPid: number): CpuSampler {
  const started = performance.now();
  const load = loadAverage();
  const tandem0 = processTicks(tandemPid);
  const self0 = processTicks(process.pid);
  const machine0 = machineTicks();
  let rssPeak = rssMiB(tandemPid) ?? 0;
  const timer = setInterval(() => {
    rssPeak = Math.max(rssPeak, rssMiB(tandemPid) ?? 0);
  }, 250);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      rssPeak = Math.max(rssPeak, rssMiB(tandemPid) ?? 0);
      const seconds = (performance.now() - started) / 1000;
      const percent = (ticks: number) => (seconds > 0 && Number.isFinite(ticks) ? (ticks / clockTicks / seconds) * 100 : 0);
      const tandemTicks = processTicks(tandemPid) - tandem0;
      const tandem = percent(tandemTicks);
      const bench = percent(processTicks(process.pid) - self0);
      return {
        seconds,
        tandemPercent: tandem,
        tandemCpuSeconds: Number.isFinite(tandemTicks) ? tandemTicks / clockTicks : 0,
        benchPercent: bench,
        othersPercent: Math.max(0, percent(machineTicks() - machine0) - tandem - bench),
        loadAverage: load,
        tandemRssPeakMiB: rssPeak,
      };
    },
  };
}

/**
 * Waits (at most maxSeconds) until the machine has been nearly idle for a whole second (below
 * `busyPercent` of one core, every process together). Answers the seconds waited and the last
 * second's load, so the report can say when a figure was taken on a busy machine anyway.
 */
export async function waitForQuiet(maxSeconds: number, busyPercent: number): Promise<{ waitedSeconds: number; busyPercent: number }> {
  const started = performance.now();
  for (;;) {
    const before = machineTicks();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const busy = ((machineTicks() - before) / clockTicks) * 100;
    const waitedSeconds = (performance.now() - started) / 1000;
    if (busy < busyPercent || waitedSeconds >= maxSeconds) return { waitedSeconds, busyPercent: busy };
  }
}
