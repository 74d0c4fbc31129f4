// The test runner: `node scripts/run-tests.mjs unit|integration|all [filter…] [--node-test-flag…]`.
//
// Tiers are chosen by file name: `*.unit.test.ts` (fast, no database, beside the code) and
// `*.integration.test.ts` (PostgreSQL, a broker…; beside the code under src/, or under test/).
// Each tier runs in one `node --test` (process per file) with the spec reporter on stdout and the
// JUnit reporter in .test-results/<tier>.xml, which this script reads to count results. It ends with
// one plain line, e.g. `integration: 12 passed, 0 failed, 1 skipped`, and exits non-zero when a test
// failed. Under CI=true a skipped integration test is a failure too: CI must run every tier for real.
//
// Positional arguments after the tier keep only the test files whose path contains one of them;
// arguments starting with `--` go to `node --test` as they are (e.g. `--test-name-pattern=outbox`).
// TANDEM_TEST_CONCURRENCY overrides how many test files run at once.
import { spawn } from 'node:child_process';
import { globSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const resultsDir = join(root, '.test-results');
const inCi = process.env.CI === 'true' || process.env.CI === '1';
const extensions = '{ts,mjs}';
const searched = ['src', 'test', 'scripts', 'bench'];

/** The tiers, in the order `all` runs them. Timeouts: per test, and for the whole tier. */
const TIERS = {
  unit: {
    patterns: searched.map((dir) => `${dir}/**/*.unit.test.${extensions}`),
    testTimeoutMs: 30_000,
    tierTimeoutMs: 5 * 60_000,
    // A skipped unit test is a choice its author made; only skips in the tiers below fail CI.
    skipsFailInCi: false,
  },
  integration: {
    patterns: searched.map((dir) => `${dir}/**/*.integration.test.${extensions}`),
    testTimeoutMs: 120_000,
    tierTimeoutMs: 10 * 60_000,
    skipsFailInCi: true,
  },
};

function usage(message) {
  console.error(`${message}\nusage: node scripts/run-tests.mjs ${Object.keys(TIERS).join('|')}|all [file filter…] [--node-test-flag…]`);
  process.exit(2);
}

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  usage(
    `Tandem's tests need Node 24 and this is Node ${process.versions.node}. Run them through npm ` +
      '(`npm test`, `npm run test:unit`), which puts node_modules/.bin/node (Node 24) first on PATH.',
  );
}

const [which, ...rest] = process.argv.slice(2);
if (which === undefined || (which !== 'all' && !Object.hasOwn(TIERS, which))) usage(`Unknown tier: ${which ?? '(none)'}`);
const filters = rest.filter((a) => !a.startsWith('--'));
const passThrough = rest.filter((a) => a.startsWith('--'));
const tierNames = which === 'all' ? Object.keys(TIERS) : [which];

const concurrency = (() => {
  const wanted = Number(process.env.TANDEM_TEST_CONCURRENCY);
  if (Number.isInteger(wanted) && wanted > 0) return wanted;
  // One test file per core (2 on the CI machine); more only thrashes, since PostgreSQL shares the cores.
  return Math.max(1, Math.min(availableParallelism(), 4));
})();

function findFiles(patterns) {
  const exclude = (path) => path.split(/[\\/]/).includes('node_modules');
  return [...new Set(patterns.flatMap((p) => globSync(p, { cwd: root, exclude })))].sort();
}

/** Test files that match no tier would silently never run: refuse them. */
function unclassifiedTestFiles() {
  const all = findFiles(searched.map((dir) => `${dir}/**/*.test.${extensions}`));
  const tiered = new Set(Object.values(TIERS).flatMap((t) => findFiles(t.patterns)));
  return all.filter((f) => !tiered.has(f));
}

function unescapeXml(s) {
  return s
    .replaceAll('&#10;', '\n')
    .replaceAll('&quot;', '"')
    .replaceAll('&apos;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

/** Reads the JUnit file node's reporter wrote: one entry per test case (and per skipped suite). */
function readJunit(file) {
  const xml = readFileSync(file, 'utf8');
  const cases = [];
  const element = /<testcase((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g;
  for (let match = element.exec(xml); match !== null; match = element.exec(xml)) {
    const attributes = Object.fromEntries([...match[1].matchAll(/([\w:-]+)="([^"]*)"/g)].map(([, k, v]) => [k, unescapeXml(v)]));
    let body = '';
    if (match[2] !== '/') {
      const end = xml.indexOf('</testcase>', element.lastIndex);
      body = xml.slice(element.lastIndex, end === -1 ? undefined : end);
    }
    const status = /<failure[\s>]/.test(body)
      ? 'failed'
      : /<skipped type="todo"/.test(body)
        ? 'todo'
        : /<skipped[\s>]/.test(body)
          ? 'skipped'
          : 'passed';
    const reason = /<skipped type="\w+" message="([^"]*)"/.exec(body)?.[1];
    const suite = attributes.classname !== undefined && attributes.classname !== 'test' ? `${attributes.classname} > ` : '';
    const where = attributes.file !== undefined ? `${relative(root, attributes.file)}: ` : '';
    cases.push({
      status,
      title: `${where}${suite}${attributes.name ?? '?'}`,
      reason: reason === undefined || reason === 'true' ? '' : unescapeXml(reason),
    });
  }
  return cases;
}

function runNodeTest(tier, files, junitFile) {
  const args = [
    '--test',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${tier.testTimeoutMs}`,
    // A test file that leaves a timer or socket open would otherwise keep its process (and CI) waiting
    // forever once its tests are done. Work that outlives its test is still reported, as a failure.
    '--test-force-exit',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=junit',
    `--test-reporter-destination=${junitFile}`,
    ...passThrough,
    ...files,
  ];
  return new Promise((resolve) => {
    // Its own process group, so a hung tier can be stopped with every test process under it.
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit', detached: true });
    let timedOut = false;
    const stopGroup = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const watchdog = setTimeout(() => {
      timedOut = true;
      console.error(`\nThe tier ran longer than ${tier.tierTimeoutMs / 1000}s (a test process left something open, or hangs); stopping it.`);
      stopGroup('SIGTERM');
      setTimeout(() => stopGroup('SIGKILL'), 5_000).unref();
    }, tier.tierTimeoutMs);
    const forward = (signal) => {
      stopGroup(signal);
      process.exitCode = 130;
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve({ code, signal, timedOut });
    });
  });
}

function closingLine(name, counts) {
  return `${name}: ${counts.passed} passed, ${counts.failed} failed${counts.skipped > 0 ? `, ${counts.skipped} skipped` : ''}`;
}

async function runTier(name) {
  const tier = TIERS[name];
  const counts = { passed: 0, failed: 0, skipped: 0 };
  let files = findFiles(tier.patterns);
  if (filters.length > 0) files = files.filter((f) => filters.some((filter) => f.includes(filter)));
  if (files.length === 0) {
    console.log(`\n${name}: no test files${filters.length > 0 ? ' match the filter' : ''} (${tier.patterns.join(', ')}); nothing to run.`);
    return { counts, problems: [] };
  }

  console.log(`\n=== ${name} tests: ${files.length} file(s), ${concurrency} at a time, ${tier.testTimeoutMs / 1000}s per test ===\n`);
  mkdirSync(resultsDir, { recursive: true });
  // Written under a name of this run's own (another run may share the work tree), then renamed.
  const junitFile = join(resultsDir, `${name}.xml`);
  const ownFile = join(resultsDir, `${name}.${process.pid}.xml`);
  const started = Date.now();
  const exit = await runNodeTest(tier, files, ownFile);
  const problems = [];

  let cases = [];
  try {
    cases = readJunit(ownFile);
    renameSync(ownFile, junitFile);
  } catch (error) {
    problems.push(`could not read the test results (${ownFile}): ${error instanceof Error ? error.message : String(error)}`);
    rmSync(ownFile, { force: true });
  }
  for (const c of cases) {
    if (c.status === 'failed') counts.failed++;
    else if (c.status === 'skipped' || c.status === 'todo') counts.skipped++;
    else counts.passed++;
  }
  if (exit.timedOut) problems.push(`the tier was stopped after ${tier.tierTimeoutMs / 1000}s`);
  if (exit.code !== 0 && counts.failed === 0) {
    problems.push(`node --test exited with ${exit.signal ?? `code ${exit.code}`} although no test case failed`);
  }
  // Anything wrong that no test case shows still counts, so the closing line never says "0 failed".
  if (problems.length > 0 && counts.failed === 0) counts.failed = 1;

  const skipped = cases.filter((c) => c.status === 'skipped');
  if (inCi && tier.skipsFailInCi && skipped.length > 0) {
    problems.push(
      `CI must run every ${name} test, but ${skipped.length} skipped:\n` +
        skipped.map((c) => `    - ${c.title}${c.reason !== '' ? ` (${c.reason})` : ''}`).join('\n'),
    );
  }
  console.log(`\n${name} took ${((Date.now() - started) / 1000).toFixed(1)}s; results in ${relative(root, junitFile)}`);
  return { counts, problems };
}

const unclassified = unclassifiedTestFiles();
const total = { passed: 0, failed: 0, skipped: 0 };
const problems = [];
if (unclassified.length > 0) {
  problems.push(
    'these test files match no tier and would never run; name them *.unit.test.ts or *.integration.test.ts:\n' +
      unclassified.map((f) => `    - ${f}`).join('\n'),
  );
}
const lines = [];
for (const name of tierNames) {
  const result = await runTier(name);
  for (const key of Object.keys(total)) total[key] += result.counts[key];
  problems.push(...result.problems.map((p) => `${name}: ${p}`));
  lines.push(closingLine(name, result.counts));
}

console.log('');
for (const problem of problems) console.error(`PROBLEM ${problem}`);
if (which === 'all') for (const line of lines) console.log(line);
console.log(closingLine(which, total));
process.exitCode = total.failed > 0 || problems.length > 0 ? 1 : (process.exitCode ?? 0);
