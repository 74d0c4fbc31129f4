// Workspaces and API keys. Keys are managed by a workspace's admins; new workspaces are created by
// admins of the default workspace (the operator's), and come with their first admin key.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { roles } from '../../auth/roles.ts';
import type { Workspaces } from '../../auth/workspaces.ts';
import { TandemError } from '../../errors/errors.ts';
import { principalOf } from '../auth.ts';
import { errorResponses } from './schemas.ts';

const workspaceSchema = z
  .object({ id: z.string(), object: z.literal('workspace'), name: z.string(), created_at: z.iso.datetime() })
  .meta({ id: 'workspace' });

const apiKeySchema = z
  .object({
    id: z.string(),
    object: z.literal('api_key'),
    workspace_id: z.string(),
    name: z.string(),
    role: z.enum(roles),
    hint: z.string().describe('The last four characters of the key'),
    created_at: z.iso.datetime(),
    revoked_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'api_key' });

const newApiKeySchema = apiKeySchema.extend({ key: z.string().describe('The key itself: shown this once, never again') });

const keyBody = z.object({ name: z.string().min(1).max(100), role: z.enum(roles) }).strict();

export function registerWorkspaceRoutes(app: FastifyInstance, workspaces: Workspaces): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['workspaces'];

  api.get(
    '/api/v1/workspace',
    { config: { role: 'viewer' }, schema: { tags, summary: 'The workspace of this API key', response: { 200: workspaceSchema, ...errorResponses } } },
    async (request) => {
      const workspace = await workspaces.get(principalOf(request).workspaceId);
      if (workspace === undefined) throw new TandemError('NOT_FOUND');
      return workspace;
    },
  );

  api.post(
    '/api/v1/workspaces',
    {
      config: { role: 'admin' },
      schema: {
        tags,
        summary: 'Create a workspace with its first admin key (admins of the default workspace only)',
        body: z.object({ name: z.string().min(1).max(100) }).strict(),
        response: { 201: z.object({ workspace: workspaceSchema, api_key: newApiKeySchema }), ...errorResponses },
      },
    },
    async (request, reply) => {
      if (principalOf(request).workspaceId !== (await workspaces.defaultWorkspaceId())) {
        throw new TandemError('FORBIDDEN', 'Only admins of the default workspace create workspaces.');
      }
      const workspace = await workspaces.create(request.body.name);
      const apiKey = await workspaces.createKey(workspace.id, 'Admin', 'admin');
      return reply.status(201).send({ workspace, api_key: apiKey });
    },
  );

  api.get(
    '/api/v1/api-keys',
    { config: { role: 'admin' }, schema: { tags, summary: "This workspace's API keys", response: { 200: z.object({ data: z.array(apiKeySchema) }), ...errorResponses } } },
    async (request) => ({ data: await workspaces.listKeys(principalOf(request).workspaceId) }),
  );

  api.post(
    '/api/v1/api-keys',
    {
      config: { role: 'admin' },
      schema: { tags, summary: 'Create an API key in this workspace', body: keyBody, response: { 201: newApiKeySchema, ...errorResponses } },
    },
    async (request, reply) =>
      reply.status(201).send(await workspaces.createKey(principalOf(request).workspaceId, request.body.name, request.body.role)),
  );

  api.delete(
    '/api/v1/api-keys/:id',
    {
      config: { role: 'admin' },
      schema: { tags, summary: 'Revoke an API key', params: z.object({ id: z.string().max(64) }).strict(), response: { 200: apiKeySchema, ...errorResponses } },
    },
    async (request) => workspaces.revokeKey(principalOf(request).workspaceId, request.params.id),
  );
}
