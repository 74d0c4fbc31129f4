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
// A namespace import, so an older Node reaches the version check below instead of failing to link.
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const resultsDir = join(root, '.test-results');
const inCi = process.env.CI === 'true' || process.env.CI === '1';
const extensions = '{ts,mjs}';
const searched = ['src', 'test', 'scripts', 'bench'];

/**
 * The tiers, in the order `all` runs them. Timeouts: per test (node's --test-timeout), for the whole
 * tier, and for silence (no test finished for that long: a file hangs after its tests).
 */
const TIERS = {
  unit: {
    patterns: searched.map((dir) => `${dir}/**/*.unit.test.${extensions}`),
    testTimeoutMs: 30_000,
    idleTimeoutMs: 60_000,
    tierTimeoutMs: 5 * 60_000,
    // A skipped unit test is a choice its author made; only skips in the tiers below fail CI.
    skipsFailInCi: false,
  },
  integration: {
    patterns: searched.map((dir) => `${dir}/**/*.integration.test.${extensions}`),
    testTimeoutMs: 120_000,
    // Files run two at a time but report in name order, so a long file before them keeps the
    // finished ones silent: the silence limit is longer than the longest file (the scale-out tests,
    // several minutes on a loaded machine), the tier's the backstop.
    idleTimeoutMs: 540_000,
    // Both stacks (SQLite + embedded log, PostgreSQL + Kafka) and the scale-out tests with real
    // processes and the real broker: 342 s and 540 s on the shared 2-core machine (load average
    // 1-6 and 6-12 from other work); one earlier run under heavier load went past 12 minutes.
    tierTimeoutMs: 14 * 60_000,
    skipsFailInCi: true,
    // Run after the others, one file at a time: they start several Tandem processes and restart
    // their own Kafka broker, and on two cores a file beside them starved them (CI saw a broker
    // restart not recovered within its 120 s while another file ran).
    serialPatterns: ['test/scale/**/*.integration.test.ts'],
  },
};

function die(message) {
  console.error(message);
  process.exit(2);
}

function usage(message) {
  console.error(`${message}\nusage: node scripts/run-tests.mjs ${Object.keys(TIERS).join('|')}|all [file filter…] [--node-test-flag…]`);
  process.exit(2);
}

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  die(
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
  return [...new Set(patterns.flatMap((p) => fs.globSync(p, { cwd: root, exclude })))].sort();
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

/**
 * Reads the JUnit file node's reporter wrote: its closing totals (`<!-- pass 12 -->`…, absent when the
 * run was cut short) and one entry per test case. A test with subtests is a <testsuite> there, not
 * a case; a skipped suite is a case (node's own "skipped" total leaves skipped suites out).
 */
function readJunit(file) {
  const xml = fs.readFileSync(file, 'utf8');
  const totals = Object.fromEntries([...xml.matchAll(/<!-- (\w+) (\d+(?:\.\d+)?) -->/g)].map(([, k, v]) => [k, Number(v)]));
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
  return { totals, cases };
}

function runNodeTest(tier, files, junitFile, fileConcurrency = concurrency) {
  const args = [
    '--test',
    `--test-concurrency=${fileConcurrency}`,
    `--test-timeout=${tier.testTimeoutMs}`,
    // Not --test-force-exit: it drops tests that a file registers after a top-level await (as
    // `skip: await skipUnless(kind)` does) once an earlier one fails. Hung files meet the watchdog below.
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=junit',
    `--test-reporter-destination=${junitFile}`,
    ...passThrough,
    ...files,
  ];
  const colour = process.stdout.isTTY && process.env.NO_COLOR === undefined ? { FORCE_COLOR: '1' } : {};
  return new Promise((resolve) => {
    // Its own process group, so a hung tier can be stopped with every test process under it.
    const child = spawn(process.execPath, args, {
      cwd: root,
      stdio: ['inherit', 'pipe', 'inherit'],
      detached: true,
      env: { ...process.env, ...colour },
    });
    const started = Date.now();
    let lastOutput = started;
    child.stdout.on('data', (chunk) => {
      lastOutput = Date.now();
      process.stdout.write(chunk);
    });
    let stopped;
    const stopGroup = (signal) => {
      try {
        process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const stop = (reason) => {
      if (stopped !== undefined) return;
      stopped = reason;
      console.error(`\n${reason}; stopping the tier (node lists the test files it interrupts).`);
      // SIGTERM to node --test alone first: it then reports which files were still running.
      child.kill('SIGTERM');
      setTimeout(() => stopGroup('SIGKILL'), 10_000).unref();
    };
    const watchdog = setInterval(() => {
      const now = Date.now();
      if (now - started > tier.tierTimeoutMs) stop(`The tier ran longer than ${tier.tierTimeoutMs / 1000}s`);
      else if (now - lastOutput > tier.idleTimeoutMs) {
        stop(
          `No test finished for ${tier.idleTimeoutMs / 1000}s (longer than the per-test timeout): a test file ` +
            'hangs, or left a timer, socket or child process open after its tests',
        );
      }
    }, 1_000);
    const forward = (signal) => {
      stopGroup(signal);
      process.exitCode = 130;
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    // Whatever the tests started and left behind in the group goes with node --test (and lets go of
    // its stdout, so 'close' follows).
    child.on('exit', () => stopGroup('SIGKILL'));
    child.on('close', (code, signal) => {
      clearInterval(watchdog);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve({ code, signal, stopped });
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

  const serial = new Set(findFiles(tier.serialPatterns ?? []));
  const groups = [
    { files: files.filter((f) => !serial.has(f)), concurrency, suffix: '' },
    { files: files.filter((f) => serial.has(f)), concurrency: 1, suffix: '-serial' },
  ].filter((g) => g.files.length > 0);
  const started = Date.now();
  const problems = [];
  let allCases = [];
  let junitFiles = [];
  for (const group of groups) {
    console.log(`\n=== ${name} tests: ${group.files.length} file(s), ${group.concurrency} at a time, ${tier.testTimeoutMs / 1000}s per test ===\n`);
    const result = await runGroup(name + group.suffix, tier, group.files, group.concurrency);
    for (const key of Object.keys(counts)) counts[key] += result.counts[key];
    problems.push(...result.problems);
    allCases = [...allCases, ...result.cases];
    junitFiles = [...junitFiles, result.junitFile];
  }
  const skipped = allCases.filter((c) => c.status === 'skipped');
  if (inCi && tier.skipsFailInCi && skipped.length > 0) {
    problems.push(
      `CI must run every ${name} test, but ${skipped.length} skipped:\n` +
        skipped.map((c) => `    - ${c.title}${c.reason !== '' ? ` (${c.reason})` : ''}`).join('\n'),
    );
  }
  if (problems.length > 0 && counts.failed === 0) counts.failed = 1;
  console.log(`\n${name} took ${((Date.now() - started) / 1000).toFixed(1)}s; results in ${junitFiles.map((f) => relative(root, f)).join(', ')}`);
  return { counts, problems };
}

/** Runs one group of a tier's files through node --test; answers its counts, problems and cases. */
async function runGroup(name, tier, files, fileConcurrency) {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  fs.mkdirSync(resultsDir, { recursive: true });
  // Written under a name of this run's own (another run may share the work tree), then renamed.
  const junitFile = join(resultsDir, `${name}.xml`);
  const ownFile = join(resultsDir, `${name}.${process.pid}.xml`);
  const exit = await runNodeTest(tier, files, ownFile, fileConcurrency);
  const problems = [];

  let cases = [];
  let totals = {};
  try {
    ({ totals, cases } = readJunit(ownFile));
    fs.renameSync(ownFile, junitFile);
  } catch (error) {
    problems.push(`could not read the test results (${ownFile}): ${error instanceof Error ? error.message : String(error)}`);
    fs.rmSync(ownFile, { force: true });
  }
  for (const c of cases) {
    if (c.status === 'failed') counts.failed++;
    else if (c.status === 'skipped' || c.status === 'todo') counts.skipped++;
    else counts.passed++;
  }
  // Passes and failures as node counts them (a test with subtests counts too), when it got to say.
  if (totals.pass !== undefined && totals.fail !== undefined) {
    counts.passed = totals.pass;
    counts.failed = totals.fail + (totals.cancelled ?? 0);
  }
  if (exit.stopped !== undefined) problems.push(`stopped by the watchdog: ${exit.stopped}`);
  else if (exit.code !== 0 && counts.failed === 0) {
    problems.push(`node --test exited with ${exit.signal ?? `code ${exit.code}`} although no test case failed`);
  }
  // Anything wrong that no test case shows still counts, so the closing line never says "0 failed".
  if (problems.length > 0 && counts.failed === 0) counts.failed = 1;
  return { counts, problems, cases, junitFile };
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
