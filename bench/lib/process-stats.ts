// Samples a process from /proc while it is measured: its resident memory (peak and last), the CPU
// it used, and the CPU the rest of the machine used meanwhile (other engineers' builds, the load
// generator…), so a reader can tell a slow figure from a busy machine. Linux only.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessStats {
  /** Highest resident set size seen while sampling, MiB. */
  rssPeakMiB: number;
  /** Resident set size at the last sample, MiB. */
  rssEndMiB: number;
  /** CPU time the process used (user + system, every thread), seconds. */
  cpuSeconds: number;
  /** cpuSeconds over wall time, in % of one core (may exceed 100: GC, I/O threads). */
  cpuPercent: number;
  /** CPU used by every process of the machine together, in % of one core (all cores: cores × 100). */
  machineCpuPercent: number;
  /** CPU used by the database server's processes (PostgreSQL), in % of one core; 0 when none. */
  serverCpuPercent: number;
  seconds: number;
}

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function rssMiB(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? undefined : Number(match[1]) / 1024;
  } catch {
    return undefined;
  }
}

/** utime + stime of the process, in clock ticks. */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may contain spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return Number.NaN;
  }
}

/** utime + stime of every process whose command name is `comm` (e.g. PostgreSQL's backends), by pid. */
function ticksByComm(comm: string): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
    } catch {
      continue;
    }
    const pid = Number(entry);
    const value = processTicks(pid);
    if (!Number.isNaN(value)) ticks.set(pid, value);
  }
  return ticks;
}

/** Busy ticks of the whole machine (everything but idle and iowait). */
function machineTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
}

export const NO_STATS: ProcessStats = { rssPeakMiB: 0, rssEndMiB: 0, cpuSeconds: 0, cpuPercent: 0, machineCpuPercent: 0, serverCpuPercent: 0, seconds: 0 };

export interface Sampler {
  stop(): ProcessStats;
}

/**
 * Starts sampling `pid` every intervalMs; stop() answers what was seen. `serverComm` names the
 * processes of a database server the work also runs on (`postgres`), counted apart from the others.
 */
export function sampleProcess(pid: number, serverComm?: string, intervalMs = 200): Sampler {
  const started = performance.now();
  const ticks0 = processTicks(pid);
  const machine0 = machineTicks();
  const server0 = serverComm === undefined ? new Map<number, number>() : ticksByComm(serverComm);
  let peak = rssMiB(pid) ?? 0;
  let last = peak;
  const timer = setInterval(() => {
    const rss = rssMiB(pid);
    if (rss === undefined) return;
    last = rss;
    peak = Math.max(peak, rss);
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      const rss = rssMiB(pid);
      if (rss !== undefined) {
        last = rss;
        peak = Math.max(peak, rss);
      }
      const percent = (ticks: number) => (seconds > 0 ? (ticks / clockTicks / seconds) * 100 : 0);
      const ticks = processTicks(pid) - ticks0;
      let serverTicks = 0;
      if (serverComm !== undefined) {
        // Processes that lived through the whole period (the pool's backends do).
        for (const [serverPid, now] of ticksByComm(serverComm)) serverTicks += now - (server0.get(serverPid) ?? now);
      }
      return {
        rssPeakMiB: peak,
        rssEndMiB: last,
        cpuSeconds: ticks / clockTicks,
        cpuPercent: percent(ticks),
        machineCpuPercent: percent(machineTicks() - machine0),
        serverCpuPercent: percent(serverTicks),
        seconds,
      };
    },
  };
}

/**
 * Waits (at most maxSeconds) until the machine has been nearly idle for a whole second: below
 * `busyPercent` of one core, all processes together. On a shared machine this keeps a measure from
 * starting in the middle of someone's build. Answers the seconds waited and the last second's load.
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
