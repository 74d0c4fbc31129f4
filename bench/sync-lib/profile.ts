// Reads a V8 CPU profile (`node --cpu-prof`) of Tandem and tells where its time went: self time by
// component (a package under node_modules, a folder of src/, Node's runtime, GC) and by function,
// and the inclusive time of Tandem's own functions (src/).
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
}

export interface ProfileLine {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  file: string;
  busyMs: number;
  idleMs: number;
  components: ProfileLine[];
  functions: ProfileLine[];
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

function component(url: string, functionName: string, root: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const file = path(url, root);
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (modules?.[1] !== undefined) return modules[1];
  if (file.startsWith('node:')) return 'node: (runtime)';
  const src = /^src\/([^/]+)(\/[^/]+)?/.exec(file);
  if (src?.[1] !== undefined) return src[1].endsWith('.ts') ? 'src' : `src/${src[1]}`;
  return file;
}

function top(map: Map<string, number>, total: number, count: number): ProfileLine[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => ({ name, ms: us / 1000, percent: total > 0 ? (us / total) * 100 : 0 }));
}

export function summariseProfile(file: string, root: string, count = 20): ProfileSummary {
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
    const name = `${functionName || '(anonymous)'}${url === '' ? '' : ` ${path(url, root)}:${String(lineNumber + 1)}`}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    const part = component(url, functionName, root);
    components.set(part, (components.get(part) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = nodes.get(at)?.callFrame;
      if (frame === undefined) break;
      const where = path(frame.url, root);
      if (!where.startsWith('src/')) continue;
      const key = `${frame.functionName || '(anonymous)'} ${where}:${String(frame.lineNumber + 1)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  return {
    file,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    components: top(components, busy, count),
    functions: top(functions, busy, count),
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
