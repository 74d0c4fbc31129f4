// The load generator process: `node bench/load-worker.ts <spec.json>`, started by bench/run.ts over
// IPC so autocannon never shares a process (or an event loop) with Tandem. It warms up, tells its
// parent `{type:'measuring'}`, measures, and sends `{type:'result', result}`.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { sendToParent } from './lib/child.ts';
import type { LoadResult, LoadSpec } from './lib/load.ts';

function options(spec: LoadSpec, seconds: number): autocannon.Options {
  const { paths } = spec;
  let next = 0;
  return {
    url: spec.url,
    connections: spec.connections,
    pipelining: spec.pipelining,
    duration: seconds,
    timeout: 10,
    ...(spec.idReplacement === true ? { idReplacement: true } : {}),
    requests: [
      {
        method: spec.method,
        path: spec.path,
        headers: spec.headers,
        ...(spec.body === undefined ? {} : { body: spec.body }),
        // Rotate over the given paths (e.g. one per existing record), one per request.
        ...(paths === undefined || paths.length === 0
          ? {}
          : {
              setupRequest: (request: autocannon.Request) => {
                request.path = paths[next++ % paths.length] ?? spec.path;
                return request;
              },
            }),
      },
    ],
  };
}

function summarise(result: autocannon.Result, cpu: NodeJS.CpuUsage, seconds: number): LoadResult {
  const ok = result['2xx'];
  return {
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
    perSecond: ok / result.duration,
    latencyMs: {
      average: result.latency.average,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count])),
    loadCpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
  };
}

const specFile = process.argv[2];
if (specFile === undefined) throw new Error('usage: node bench/load-worker.ts <spec.json>');
const spec = JSON.parse(readFileSync(specFile, 'utf8')) as LoadSpec;

if (spec.warmupSeconds > 0) await autocannon(options(spec, spec.warmupSeconds));
await sendToParent<LoadResult>({ type: 'measuring' });
const cpuStart = process.cpuUsage();
const started = performance.now();
const result = await autocannon(options(spec, spec.durationSeconds));
const cpu = process.cpuUsage(cpuStart);
await sendToParent<LoadResult>({ type: 'result', result: summarise(result, cpu, (performance.now() - started) / 1000) });
process.disconnect();
