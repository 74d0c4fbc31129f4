#!/usr/bin/env node
// A real single-node Apache Kafka broker (KRaft: broker and controller in one JVM) for development
// and CI, from Maven Central jars only: `node scripts/kafka.mjs start|stop|status` (npm run
// kafka:start / kafka:stop). Prerequisites: Java 17+ and Maven (`java`, `mvn` on PATH).
//
// - start: copies the jars named by tools/kafka/pom.xml into .kafka/libs (once; again when the pom
//   changes), writes .kafka/server.properties, formats a fresh .kafka/data, starts the broker
//   detached (pid in .kafka/kafka.pid, output in .kafka/kafka.log) and waits until it answers a
//   Metadata request with itself as a live broker. Starting a running broker changes nothing.
//   Prints `KAFKA_BROKERS=127.0.0.1:19092` (the last line of stdout) for `export "$(…)"`-style use.
// - stop: SIGTERM, then SIGKILL after 30 s. Stopping a stopped broker changes nothing.
// - restart: stop, then start on the same data (topics and offsets survive): for tests of a broker
//   that goes away in the middle of a run. `start --keep-data` does the same without the stop.
// - status: prints whether it runs and answers; exits 1 when it does not answer.
//
// Plain JavaScript with no dependencies, so it runs before `npm ci` and under any Node ≥ 18.
// Environment: TANDEM_KAFKA_DIR (default <repo>/.kafka), TANDEM_KAFKA_PORT (19092; the controller
// listens on the next port), TANDEM_KAFKA_HEAP (512m), TANDEM_KAFKA_START_TIMEOUT_MS (90000).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const pom = join(root, 'tools', 'kafka', 'pom.xml');
const dir = resolve(process.env.TANDEM_KAFKA_DIR ?? join(root, '.kafka'));
const libs = join(dir, 'libs');
const libsStamp = join(libs, '.pom-sha256');
const dataDir = join(dir, 'data');
const propertiesFile = join(dir, 'server.properties');
const pidFile = join(dir, 'kafka.pid');
const logFile = join(dir, 'kafka.log');
const host = '127.0.0.1';
const port = Number(process.env.TANDEM_KAFKA_PORT ?? 19092);
const controllerPort = port + 1;
const heap = process.env.TANDEM_KAFKA_HEAP ?? '512m';
const startTimeoutMs = Number(process.env.TANDEM_KAFKA_START_TIMEOUT_MS ?? 90_000);
const stopTimeoutMs = 30_000;
const brokers = `${host}:${port}`;

function say(message) {
  process.stderr.write(`kafka: ${message}\n`);
}

function fail(message) {
  say(message);
  process.exit(1);
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

// --- Prerequisites ---------------------------------------------------------------------------------

function javaMajor() {
  const result = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) return undefined;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(result.stderr);
  if (match === null) return undefined;
  const major = Number(match[1]);
  return major === 1 ? Number(match[2]) : major;
}

function checkJava() {
  const major = javaMajor();
  if (major === undefined) fail('`java` was not found on PATH: the Kafka broker needs Java 17 or later (e.g. apt-get install openjdk-17-jre-headless)');
  if (major < 17) fail(`Java ${major} found; the Kafka broker needs Java 17 or later`);
}

function fetchLibs() {
  const pomHash = createHash('sha256').update(readFileSync(pom)).digest('hex');
  if (existsSync(libsStamp) && readFileSync(libsStamp, 'utf8').trim() === pomHash) return;
  const mvn = spawnSync('mvn', ['-v'], { encoding: 'utf8' });
  if (mvn.error !== undefined || mvn.status !== 0) {
    fail('`mvn` was not found on PATH: fetching the Kafka jars needs Maven (e.g. apt-get install maven)');
  }
  say(`fetching the Kafka jars named in ${pom} into ${libs} (Maven)`);
  rmSync(libs, { recursive: true, force: true });
  const result = spawnSync(
    'mvn',
    ['-B', '-q', '-Dstyle.color=never', '-f', pom, 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${libs}`],
    // Maven's output goes to stderr: stdout carries only the KAFKA_BROKERS line (Maven may end its
    // output with colour codes and no newline, which would run into that line).
    { stdio: ['ignore', process.stderr, 'inherit'] },
  );
  if (result.status !== 0) fail(`mvn dependency:copy-dependencies failed (exit ${result.status ?? result.signal})`);
  writeFileSync(libsStamp, `${pomHash}\n`);
}

// --- The broker's process ---------------------------------------------------------------------------

function readPid() {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return error.code === 'EPERM';
  }
  // A pid file can outlive its broker, and the pid be reused: check it is our java.
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('kafka.Kafka') && cmdline.includes(propertiesFile);
  } catch {
    return true; // no /proc: trust the signal
  }
}

function serverProperties() {
  return [
    '# Written by scripts/kafka.mjs on every start: one node that is broker and controller (KRaft).',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${host}:${controllerPort}`,
    `listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${port}`,
    'inter.broker.listener.name=PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=8',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // Tests create and delete many short-lived topics and groups.
    'auto.create.topics.enable=false',
    'delete.topic.enable=true',
    'group.consumer.heartbeat.interval.ms=1000',
    'group.consumer.min.heartbeat.interval.ms=500',
    'group.consumer.session.timeout.ms=10000',
    'group.consumer.min.session.timeout.ms=5000',
    'group.classic.min.session.timeout.ms=1000',
    '',
  ].join('\n');
}

function java(args, options) {
  return spawnSync('java', ['-cp', join(libs, '*'), ...args], { encoding: 'utf8', ...options });
}

// --- Readiness: a real Metadata request --------------------------------------------------------------

/**
 * Sends Metadata v4 (all topics) and resolves the brokers the cluster reports, or rejects. Hand-made
 * so the script needs no client library: request header v1, response header v0, neither flexible.
 */
function metadata(timeoutMs = 2_000) {
  return new Promise((resolvePromise, reject) => {
    const clientId = Buffer.from('tandem-kafka-script');
    const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length + 4 + 1);
    let at = 0;
    at = body.writeInt16BE(3, at); // api key: Metadata
    at = body.writeInt16BE(4, at); // version 4
    at = body.writeInt32BE(1, at); // correlation id
    at = body.writeInt16BE(clientId.length, at);
    at += clientId.copy(body, at);
    at = body.writeInt32BE(-1, at); // topics: null = all
    body.writeInt8(0, at); // allow_auto_topic_creation: false
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);

    const socket = connect({ host, port });
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no Metadata answer in time'));
    }, timeoutMs);
    const finish = (error, value) => {
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolvePromise(value);
    };
    socket.on('connect', () => socket.write(Buffer.concat([size, body])));
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error('the connection closed before the Metadata answer')));
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      try {
        let p = 4;
        const correlationId = received.readInt32BE(p);
        p += 4;
        if (correlationId !== 1) throw new Error(`unexpected correlation id ${correlationId}`);
        p += 4; // throttle_time_ms
        const count = received.readInt32BE(p);
        p += 4;
        const list = [];
        for (let i = 0; i < count; i++) {
          const nodeId = received.readInt32BE(p);
          p += 4;
          const hostLength = received.readInt16BE(p);
          p += 2;
          const brokerHost = received.toString('utf8', p, p + hostLength);
          p += hostLength;
          const brokerPort = received.readInt32BE(p);
          p += 4;
          const rackLength = received.readInt16BE(p);
          p += 2 + Math.max(rackLength, 0);
          list.push({ nodeId, host: brokerHost, port: brokerPort });
        }
        finish(undefined, list);
      } catch (error) {
        finish(error);
      }
    });
  });
}

async function answers() {
  try {
    const list = await metadata();
    return list.some((b) => b.port === port);
  } catch {
    return false;
  }
}

function logTail(lines = 40) {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// --- Commands -----------------------------------------------------------------------------------------

async function start(keepData = process.argv.includes('--keep-data')) {
  const running = readPid();
  if (running !== undefined && alive(running)) {
    if (await waitReady(running)) {
      say(`already running (pid ${running}) at ${brokers}`);
      printBrokers();
      return;
    }
    fail(`a broker process (pid ${running}) runs but does not answer at ${brokers}; see ${logFile}, or stop it first`);
  }
  if (await answers()) {
    say(`a broker that this script did not start already answers at ${brokers}; using it`);
    printBrokers();
    return;
  }
  checkJava();
  mkdirSync(dir, { recursive: true });
  fetchLibs();

  // A fresh data directory on every start (tests expect an empty cluster), unless asked to keep it.
  writeFileSync(propertiesFile, serverProperties());
  if (!keepData || !existsSync(join(dataDir, 'meta.properties'))) {
    rmSync(dataDir, { recursive: true, force: true });
    // A Kafka Uuid in base64url. One that starts with '-' reads as an option to the storage tool's
    // argument parser ("--cluster-id: expected one argument"), so, like Kafka's Uuid.randomUuid, draw
    // again until it does not (1 start in 64 failed before this).
    let clusterId = randomBytes(16).toString('base64url');
    while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
    // controller.quorum.voters names the (static) quorum, so the format needs no --standalone.
    const format = java(['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propertiesFile], {});
    if (format.status !== 0) fail(`formatting ${dataDir} failed:\n${format.stdout}${format.stderr}`);
  }

  const out = openSync(logFile, 'w');
  const child = spawn(
    'java',
    [`-Xms256m`, `-Xmx${heap}`, '-XX:+UseG1GC', '-Djava.awt.headless=true', '-cp', join(libs, '*'), 'kafka.Kafka', propertiesFile],
    { cwd: dir, detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  writeFileSync(pidFile, `${child.pid}\n`);
  let exited;
  child.on('exit', (code, signal) => {
    exited = code ?? signal;
  });
  child.unref();
  say(`starting (pid ${child.pid}, heap ${heap}, log ${logFile})`);
  const started = Date.now();
  if (!(await waitReady(child.pid, () => exited))) {
    const why = exited !== undefined ? `exited (${exited})` : `did not answer within ${startTimeoutMs / 1000}s`;
    if (exited === undefined) await stopPid(child.pid);
    rmSync(pidFile, { force: true });
    fail(`the broker ${why}; the end of ${logFile}:\n${logTail()}`);
  }
  say(`ready at ${brokers} after ${((Date.now() - started) / 1000).toFixed(1)}s`);
  printBrokers();
}

async function waitReady(pid, exited = () => undefined) {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (exited() !== undefined || !alive(pid)) return false;
    if (await answers()) return true;
    await sleep(250);
  }
  return false;
}

async function stopPid(pid) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + stopTimeoutMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return;
    await sleep(200);
  }
  say(`pid ${pid} still runs ${stopTimeoutMs / 1000}s after SIGTERM; sending SIGKILL`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  while (alive(pid)) await sleep(100);
}

async function stop() {
  const pid = readPid();
  if (pid === undefined || !alive(pid)) {
    rmSync(pidFile, { force: true });
    say('not running');
    return;
  }
  say(`stopping pid ${pid}`);
  await stopPid(pid);
  rmSync(pidFile, { force: true });
  say('stopped');
}

async function status() {
  const pid = readPid();
  const running = pid !== undefined && alive(pid);
  const ready = await answers();
  say(`${running ? `process ${pid} runs` : 'no broker process of this script'}; ${ready ? `${brokers} answers` : `nothing answers at ${brokers}`}`);
  if (ready) printBrokers();
  process.exitCode = ready ? 0 : 1;
}

function printBrokers() {
  process.stdout.write(`KAFKA_BROKERS=${brokers}\n`);
}

async function restart() {
  await stop();
  await start(true);
}

const commands = { start: () => start(), stop, restart, status };
const command = commands[process.argv[2] ?? ''];
if (command === undefined) fail(`usage: node scripts/kafka.mjs ${Object.keys(commands).join('|')}`);
await command();
