// A proxy between a Tandem child process and an external system's simulator that kills Tandem at
// the worst moment: the system has done the write, Tandem has not heard the answer.
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface KillingProxy {
  url: string;
  /**
   * Arms the proxy: the next request of Tandem's that matches is passed to Stripe, and when Stripe
   * has answered, Tandem is killed before the answer reaches it. Resolves true then, or false after
   * `timeoutMs` without such a request (Tandem is killed all the same).
   */
  killOn(method: string, path: RegExp, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Tandem's way to an external system: passes every request through, and kills Tandem on the armed
 * one. `rewrite` may change an answer's body before it is passed on (e.g. to put the proxy's own
 * address where the system names itself, as Salesforce's token answer names its instance URL).
 */
export async function startKillingProxy(target: string, kill: () => void, rewrite?: (body: Buffer, path: string) => Buffer): Promise<KillingProxy> {
  const upstream = new URL(target);
  let armed: { method: string; path: RegExp; fire: () => void } | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const out = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            const path = new URL(req.url ?? '/', 'http://proxy').pathname;
            if (armed !== undefined && req.method === armed.method && armed.path.test(path) && (answer.statusCode ?? 0) < 300) {
              const { fire } = armed;
              armed = undefined;
              kill();
              res.destroy();
              fire();
              return;
            }
            const body = rewrite === undefined ? Buffer.concat(parts) : rewrite(Buffer.concat(parts), path);
            const headers = { ...answer.headers };
            if (rewrite !== undefined) {
              delete headers['transfer-encoding'];
              headers['content-length'] = String(body.length);
            }
            res.writeHead(answer.statusCode ?? 502, headers);
            res.end(body);
          });
        },
      );
      out.on('error', () => res.destroy());
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${String(port)}`,
    killOn: (method, path, timeoutMs) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          armed = undefined;
          kill();
          resolve(false);
        }, timeoutMs);
        armed = {
          method,
          path,
          fire: () => {
            clearTimeout(timer);
            resolve(true);
          },
        };
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
