// HTTP load with wrk (a C load generator: a tenth of the CPU autocannon needs for the same rate, which
// matters on a two-core machine where the load generator and Tandem share the cores). A Lua script
// gives each request its path (rotating over existing ids) or a fresh body, and prints the summary
// as JSON when wrk is done. Falls back to autocannon (bench/lib/load.ts) where wrk is not installed.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadResult, LoadSpec } from './load.ts';

/** Whether `wrk` is on the PATH (Debian: `apt-get install wrk`). */
export function wrkAvailable(): boolean {
  return spawnSync('wrk', ['--version'], { encoding: 'utf8' }).error === undefined;
}

const luaString = (text: string): string => JSON.stringify(text);

function script(spec: LoadSpec): string {
  const headers = Object.entries(spec.headers)
    .map(([name, value]) => `wrk.headers[${luaString(name)}] = ${luaString(value)}`)
    .join('\n');
  const paths = spec.paths ?? [];
  const body = spec.body ?? '';
  const [before, after] = spec.idReplacement === true && body.includes('[<id>]') ? body.split('[<id>]', 2) : [body, undefined];
  return `
wrk.method = ${luaString(spec.method)}
${headers}
local paths = { ${paths.map(luaString).join(', ')} }
local before, after = ${luaString(before)}, ${after === undefined ? 'nil' : luaString(after)}
local n = 0
local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
end
request = function()
  n = n + 1
  local path = ${luaString(spec.path)}
  if #paths > 0 then path = paths[(n % #paths) + 1] end
  local body = nil
  if after ~= nil then body = before .. string.format("%d-%d", id or 0, n) .. after
  elseif #before > 0 then body = before end
  return wrk.format(nil, path, nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_RESULT {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"mean":%f,"p50":%f,"p90":%f,"p99":%f,"max":%f,"cpuSeconds":%f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, os.clock()))
end
`;
}

interface WrkSummary {
  requests: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** CPU time wrk used (os.clock(): every thread of the process), seconds. */
  cpuSeconds: number;
}

function run(spec: LoadSpec, scriptFile: string, seconds: number): Promise<WrkSummary> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${String(spec.connections)}`, `-d${String(seconds)}s`, '--timeout', '10s', '-s', scriptFile, spec.url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      const line = /^WRK_RESULT (.*)$/m.exec(out)?.[1];
      if (code !== 0 || line === undefined) {
        reject(new Error(`wrk exited with ${String(code)}:\n${out.slice(-2000)}`));
        return;
      }
      resolve(JSON.parse(line) as WrkSummary);
    });
  });
}

/** Runs wrk against `spec.url`: the warm-up, then onMeasuring, then the measured run. */
export async function runWrk(spec: LoadSpec, onMeasuring: () => void): Promise<LoadResult> {
  if (spec.pipelining !== 1) throw new Error('the wrk runner sends one request at a time per connection');
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-wrk-'));
  const file = join(dir, 'load.lua');
  writeFileSync(file, script(spec));
  try {
    if (spec.warmupSeconds > 0) await run(spec, file, spec.warmupSeconds);
    onMeasuring();
    const s = await run(spec, file, spec.durationSeconds);
    const seconds = s.durationUs / 1e6;
    const ok = s.requests - s.status;
    const ms = (us: number): number => us / 1000;
    return {
      requests: s.requests,
      ok,
      non2xx: s.status,
      errors: s.connect + s.read + s.write,
      timeouts: s.timeout,
      durationSeconds: seconds,
      perSecond: ok / seconds,
      latencyMs: { average: ms(s.mean), p50: ms(s.p50), p90: ms(s.p90), p99: ms(s.p99), max: ms(s.max) },
      // wrk counts answers that are not 2xx/3xx without their codes.
      statusCodes: s.status === 0 ? { '2xx': ok } : { '2xx': ok, other: s.status },
      loadCpuPercent: (s.cpuSeconds / seconds) * 100,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
