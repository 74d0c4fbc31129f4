// HTTP load: the spec bench/run.ts hands to bench/load-worker.ts, and the summary it gets back.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChild } from './child.ts';

export interface LoadSpec {
  url: string;
  connections: number;
  pipelining: number;
  warmupSeconds: number;
  durationSeconds: number;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Replace `[<id>]` in the body with a fresh id per request. */
  idReplacement?: boolean;
  /** When given, request these paths in turn instead of `path`. */
  paths?: string[];
}

export interface LoadResult {
  /** Answers received in the measured period. */
  requests: number;
  /** 2xx answers. */
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationSeconds: number;
  /** 2xx answers per second over the measured period. */
  perSecond: number;
  latencyMs: { average: number; p50: number; p90: number; p99: number; max: number };
  statusCodes: Record<string, number>;
  /** CPU the load generator itself used while measuring, in % of one core. */
  loadCpuPercent: number;
}

const worker = join(import.meta.dirname, '..', 'load-worker.ts');

/** Runs autocannon in its own process against `spec.url`; onMeasuring fires after the warm-up. */
export async function runLoad(spec: LoadSpec, onMeasuring: () => void): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-load-'));
  const file = join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(spec));
  try {
    return await runChild<LoadResult>(worker, [file], {
      onMeasuring,
      timeoutMs: (spec.warmupSeconds + spec.durationSeconds + 60) * 1000,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
