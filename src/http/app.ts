// Builds the HTTP application (without listening), so tests drive it with app.inject().
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Workspaces } from '../auth/workspaces.ts';
import type { Catalog } from '../catalog/catalog.ts';
import type { Connections } from '../sync/connections.ts';
import type { SyncEngine } from '../sync/engine.ts';
import type { SyncIssues } from '../sync/issues.ts';
import { registerAuth } from './auth.ts';
import { registerErrorHandling } from './errors.ts';
import { correlationIdFrom } from './headers.ts';
import { RequestLogger, type ParentLogger } from './request-logger.ts';
import { registerHealthRoutes, type Readiness } from './routes/health.ts';
import { registerConnectionRoutes } from './routes/connections.ts';
import { registerRecordRoutes } from './routes/records.ts';
import { registerSyncIssueRoutes } from './routes/sync-issues.ts';
import { registerWebhookRoutes } from './routes/webhooks.ts';
import { registerWorkspaceRoutes } from './routes/workspaces.ts';

export interface AppDeps {
  catalog: Catalog;
  workspaces: Workspaces;
  readiness: Readiness;
  logger: Logger;
  bodyLimit: number;
  version: string;
  sync: { connections: Connections; issues: SyncIssues; engine: SyncEngine };
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const loggerInstance: FastifyBaseLogger = deps.logger;
  const app = Fastify({
    loggerInstance,
    bodyLimit: deps.bodyLimit,
    requestIdHeader: false,
    genReqId: () => `req_${crypto.randomUUID().replaceAll('-', '')}`,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 200 },
    // Request loggers make their pino child only when they write a line (see request-logger.ts).
    childLoggerFactory: (logger, bindings, options) => new RequestLogger(logger as ParentLogger, bindings, options),
  });
  app.setValidatorCompiler(validatorCompiler);
  // Responses are built by Tandem itself; their schemas document them (OpenAPI) without costing a
  // validation pass on every answer.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.decorateRequest('correlationId', '');
  app.addHook('onRequest', async (request, reply) => {
    request.correlationId = correlationIdFrom(request.headers['x-correlation-id'], request.id);
    request.log = request.log.child({ correlationId: request.correlationId });
    // Fastify logs the completed request through reply.log: it must carry the same bindings.
    reply.log = request.log;
    void reply.header('x-request-id', request.id);
    void reply.header('x-correlation-id', request.correlationId);
  });

  registerErrorHandling(app);
  registerAuth(app, deps.workspaces);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tandem API',
        version: deps.version,
        description:
          'Tandem keeps your catalogs in two-way sync with Stripe, Salesforce and QuickBooks Online. ' +
          'Every call needs `Authorization: Bearer <api key>`. Errors are `{"error":{"code","message","details"}}`.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } });

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, () => app.swagger());
  registerHealthRoutes(app, deps.readiness);
  registerRecordRoutes(app, deps.catalog);
  registerWorkspaceRoutes(app, deps.workspaces);
  registerConnectionRoutes(app, deps.sync.connections);
  registerSyncIssueRoutes(app, deps.sync.issues, deps.sync.engine);
  await registerWebhookRoutes(app, deps.sync.engine);
  return app;
}
