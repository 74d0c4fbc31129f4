// The HTTP server of a process without the api role (TANDEM_ROLES=worker,relay…): only /healthz and
// /readyz, so an orchestrator can probe it like any other Tandem process. No API, no webhooks.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { registerErrorHandling } from '../http/errors.ts';
import { registerHealthRoutes, type Readiness } from '../http/routes/health.ts';

export function buildHealthApp(logger: Logger, readiness: Readiness): Promise<FastifyInstance> {
  const loggerInstance: FastifyBaseLogger = logger;
  const app = Fastify({ loggerInstance, return503OnClosing: true });
  registerErrorHandling(app);
  registerHealthRoutes(app, readiness);
  return Promise.resolve(app);
}
