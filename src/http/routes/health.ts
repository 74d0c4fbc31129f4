import type { FastifyInstance } from 'fastify';
import { TandemError } from '../../errors/errors.ts';

export interface Readiness {
  /** False before start-up finished and once shutdown began. */
  ready(): boolean;
  /** Throws when a dependency (the store, the log) does not answer. */
  check(): Promise<void>;
}

export function registerHealthRoutes(app: FastifyInstance, readiness: Readiness): void {
  const hide = { hide: true };
  /** Liveness: the process serves HTTP. */
  app.get('/healthz', { schema: hide }, () => ({ status: 'ok' }));
  /** Readiness: started, not shutting down, and the store answers. */
  app.get('/readyz', { schema: hide }, async (request, reply) => {
    if (!readiness.ready()) throw new TandemError('NOT_READY', 'Tandem is starting or shutting down.');
    try {
      await readiness.check();
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed');
      throw new TandemError('NOT_READY', 'A dependency does not answer.');
    }
    return reply.send({ status: 'ready' });
  });
}
