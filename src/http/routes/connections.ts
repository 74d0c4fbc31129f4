// /api/v1/connections: connect, configure, pause, resume and remove integrations. Credentials go in
// and never come out.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Connections } from '../../sync/connections.ts';
import { principalOf } from '../auth.ts';
import { errorResponses } from './schemas.ts';

const connectionSchema = z
  .object({
    id: z.string().describe('`conn_…`'),
    object: z.literal('connection'),
    connector: z.string(),
    name: z.string(),
    status: z
      .enum(['active', 'waiting', 'paused', 'error'])
      .describe('active: syncing; waiting: the external API allocation is used up, it resumes by itself; paused: by a person; error: credentials refused'),
    status_reason: z.string().nullable().describe('Why the connection is waiting, paused or failing'),
    account_id: z.string().nullable().describe("The external account's id"),
    settings: z.record(z.string(), z.unknown()),
    webhook_url: z.string().nullable().describe('Where the external system sends its webhooks'),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'connection' });

const settingsDoc = z
  .record(z.string(), z.unknown())
  .describe(
    'Connector settings (e.g. `apiBaseUrl` for Stripe) and Tandem settings: `entities` ({"customer":{"direction":"both|outbound|inbound|off"}}), `rateLimitPerSecond`, `pollIntervalMs`',
  );

const idParams = z.object({ id: z.string().max(64) }).strict();

export function registerConnectionRoutes(app: FastifyInstance, connections: Connections): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['connections'];
  const base = '/api/v1/connections';

  api.post(
    base,
    {
      config: { role: 'admin' },
      schema: {
        tags,
        summary: 'Connect an external account (credentials are checked, then encrypted; Tandem registers its webhook)',
        body: z
          .object({
            connector: z.string().min(1).max(64),
            name: z.string().min(1).max(100),
            credentials: z.record(z.string(), z.unknown()).describe('e.g. {"secretKey":"sk_…"} for Stripe; never answered'),
            settings: settingsDoc.optional(),
          })
          .strict(),
        response: { 201: connectionSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { workspaceId } = principalOf(request);
      const abort = new AbortController();
      // The client went away before the answer (not merely finished sending its body).
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      return reply.status(201).send(await connections.create(workspaceId, request.body, abort.signal));
    },
  );

  api.get(
    base,
    { config: { role: 'viewer' }, schema: { tags, summary: 'List connections', response: { 200: z.object({ data: z.array(connectionSchema) }), ...errorResponses } } },
    async (request) => ({ data: await connections.list(principalOf(request).workspaceId) }),
  );

  api.get(
    `${base}/:id`,
    { config: { role: 'viewer' }, schema: { tags, summary: 'Get a connection', params: idParams, response: { 200: connectionSchema, ...errorResponses } } },
    async (request) => connections.get(principalOf(request).workspaceId, request.params.id),
  );

  api.patch(
    `${base}/:id`,
    {
      config: { role: 'admin' },
      schema: {
        tags,
        summary: 'Rename or change settings (entities merge; other keys given replace)',
        params: idParams,
        body: z.object({ name: z.string().min(1).max(100).optional(), settings: settingsDoc.optional() }).strict(),
        response: { 200: connectionSchema, ...errorResponses },
      },
    },
    async (request) => connections.update(principalOf(request).workspaceId, request.params.id, request.body),
  );

  for (const action of ['pause', 'resume'] as const) {
    api.post(
      `${base}/:id/${action}`,
      {
        config: { role: 'admin' },
        schema: { tags, summary: `${action === 'pause' ? 'Pause' : 'Resume'} syncing`, params: idParams, response: { 200: connectionSchema, ...errorResponses } },
      },
      async (request) => connections[action](principalOf(request).workspaceId, request.params.id),
    );
  }

  api.delete(
    `${base}/:id`,
    {
      config: { role: 'admin' },
      schema: {
        tags,
        summary: 'Delete a connection (its links and pending work go; records stay)',
        params: idParams,
        response: { 200: z.object({ id: z.string(), object: z.literal('connection'), deleted: z.literal(true) }), ...errorResponses },
      },
    },
    async (request) => connections.delete(principalOf(request).workspaceId, request.params.id),
  );
}
