// Reads a V8 CPU profile (`node --cpu-prof`) and tells where the time went: self time per function
// and per component (a package under node_modules, a folder of src/, Node's internals, GC).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileLine {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time, idle excluded. */
  busyMs: number;
  idleMs: number;
  functions: ProfileLine[];
  components: ProfileLine[];
  /** Inclusive time of functions of Tandem's own code (src/), heaviest first. */
  inclusive: ProfileLine[];
}

function path(url: string, root: string): string {
  if (url === '') return '';
  try {
    return url.startsWith('file:') ? relative(root, fileURLToPath(url)) : url;
  } catch {
    return url;
  }
}

/** What a frame belongs to: `fastify`, `src/http`, `node:internal`, `(garbage collector)`… */
function component(url: string, functionName: string, root: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const file = path(url, root);
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (modules?.[1] !== undefined) return modules[1];
  if (file.startsWith('node:')) return 'node: (runtime)';
  const src = /^(src|bench)\/([^/]+)/.exec(file);
  if (src !== null) return src[2]?.endsWith('.ts') === true ? src[1] ?? file : `${src[1] ?? ''}/${src[2] ?? ''}`;
  return file;
}

function top(map: Map<string, number>, total: number, count: number): ProfileLine[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => ({ name, ms: us / 1000, percent: total > 0 ? (us / total) * 100 : 0 }));
}

export function summariseProfile(file: string, root: string, count = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });

  const functions = new Map<string, number>();
  const components = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const node = nodes.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const where = url === '' ? '' : ` ${path(url, root)}:${lineNumber + 1}`;
    const name = `${functionName || '(anonymous)'}${where}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    const part = component(url, functionName, root);
    components.set(part, (components.get(part) ?? 0) + us);
    // Inclusive time of Tandem's functions: charge each src/ frame on the stack once.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = nodes.get(at)?.callFrame;
      if (frame === undefined) break;
      const file = path(frame.url, root);
      if (!file.startsWith('src/')) continue;
      const key = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  return {
    file,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    functions: top(functions, busy, count),
    components: top(components, busy, count),
    inclusive: top(inclusive, busy, count),
  };
}

export function formatProfile(summary: ProfileSummary): string {
  const lines = (title: string, rows: ProfileLine[]) => [
    title,
    ...rows.map((row) => `  ${row.percent.toFixed(1).padStart(5)}%  ${row.ms.toFixed(0).padStart(7)} ms  ${row.name}`),
  ];
  return [
    `${summary.file}: busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms`,
    ...lines('self time by component (% of busy):', summary.components),
    ...lines('self time by function (% of busy):', summary.functions),
    ...lines('inclusive time of src/ functions (% of busy):', summary.inclusive),
  ].join('\n');
}
