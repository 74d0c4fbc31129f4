// What the CPUs did while a sync figure was measured: Tandem's CPU, this process's (the Stripe
// simulator, the load and the probes all live here), and everything else on the machine (other
// engineers' builds and tests), so a slow figure can be told from a busy machine. Built on the
// samplers of bench/lib (Linux only, /proc).
import { loadavg } from 'node:os';
import { sampleProcess } from '../lib/process-stats.ts';

/** 1, 5 and 15 minute load averages, rounded. */
export function loadAverage(): [number, number, number] {
  const [a = 0, b = 0, c = 0] = loadavg().map((n) => Math.round(n * 100) / 100);
  return [a, b, c];
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

/** Samples Tandem (`tandemPid`) and this process together until stop(). */
export function sampleCpu(tandemPid: number): CpuSampler {
  const load = loadAverage();
  const tandem = sampleProcess(tandemPid, undefined, 250);
  const self = sampleProcess(process.pid, undefined, 1000);
  return {
    stop: () => {
      const t = tandem.stop();
      const s = self.stop();
      const finite = (n: number) => (Number.isFinite(n) ? n : 0);
      return {
        seconds: t.seconds,
        tandemPercent: finite(t.cpuPercent),
        tandemCpuSeconds: finite(t.cpuSeconds),
        benchPercent: finite(s.cpuPercent),
        othersPercent: Math.max(0, finite(t.machineCpuPercent) - finite(t.cpuPercent) - finite(s.cpuPercent)),
        loadAverage: load,
        tandemRssPeakMiB: t.rssPeakMiB,
      };
    },
  };
}
