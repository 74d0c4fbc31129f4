import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { RequestLogger, type ParentLogger } from './request-logger.ts';

function capture(level: string): { logger: ParentLogger; lines: Array<Record<string, unknown>>; children: () => number } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const root = pino({ level }, stream);
  let made = 0;
  // The root as RequestLogger sees it, counting the children made of it.
  const logger = {
    level: root.level,
    isLevelEnabled: (l: string) => root.isLevelEnabled(l),
    child: (...args: Parameters<pino.Logger['child']>) => {
      made += 1;
      return root.child(...args);
    },
  } as unknown as ParentLogger;
  return { logger, lines, children: () => made };
}

test('no pino child is made while nothing is written at an enabled level', () => {
  const { logger, lines, children } = capture('warn');
  const request = new RequestLogger(logger, { reqId: 'req_1' }).child({ correlationId: 'c' }).child({ workspaceId: 'ws' });
  request.info('not at warn');
  request.debug({ a: 1 }, 'nor this');
  assert.equal(children(), 0);
  assert.equal(lines.length, 0);
  assert.equal(request.level, 'warn');
});

test('the first enabled line makes one child carrying every binding', async () => {
  const { logger, lines, children } = capture('info');
  const request = new RequestLogger(logger, { reqId: 'req_1' }).child({ correlationId: 'c' }).child({ workspaceId: 'ws' });
  request.info({ code: 'X' }, 'refused');
  request.warn('again');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(children(), 1);
  assert.deepEqual(
    lines.map((l) => [l.reqId, l.correlationId, l.workspaceId, l.msg]),
    [
      ['req_1', 'c', 'ws', 'refused'],
      ['req_1', 'c', 'ws', 'again'],
    ],
  );
  assert.equal(lines[0]?.code, 'X');
  // A child of a logger that already wrote is a real pino child with the bindings on top.
  request.child({ extra: 1 }).error('late');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([lines[2]?.reqId, lines[2]?.workspaceId, lines[2]?.extra], ['req_1', 'ws', 1]);
});
