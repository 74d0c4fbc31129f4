import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { SyncEngine } from '../../sync/engine.ts';
import type { SyncIssues } from '../../sync/issues.ts';
import { principalOf } from '../auth.ts';
import { errorResponses } from './schemas.ts';

const issueSchema = z
  .object({
    id: z.string(),
    object: z.literal('sync_issue'),
    connection_id: z.string(),
    entity_type: z.string(),
    record_id: z.string().nullable(),
    external_id: z.string().nullable(),
    direction: z.enum(['outbound', 'inbound']),
    code: z.string(),
    message: z.string(),
    status: z.enum(['open', 'resolved']),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'sync_issue' });

export function registerSyncIssueRoutes(app: FastifyInstance, issues: SyncIssues, engine: SyncEngine): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['sync issues'];
  api.get(
    '/api/v1/sync-issues',
    {
      config: { role: 'viewer' },
      schema: {
        tags,
        summary: 'Records that failed to sync and need a person',
        querystring: z
          .object({
            status: z.enum(['open', 'resolved']).optional(),
            connection_id: z.string().max(64).optional(),
            limit: z.coerce.number().int().min(1).max(100).default(50),
          })
          .strict(),
        response: { 200: z.object({ data: z.array(issueSchema) }), ...errorResponses },
      },
    },
    async (request) => ({
      data: (await issues.list(principalOf(request).workspaceId, {
        status: request.query.status,
        connectionId: request.query.connection_id,
        limit: request.query.limit,
      })) as z.output<typeof issueSchema>[],
    }),
  );
  api.post(
    '/api/v1/sync-issues/:id/retry',
    {
      config: { role: 'editor' },
      schema: {
        tags,
        summary: 'Sync the record again now; the issue is resolved (a new one opens if it fails again)',
        params: z.object({ id: z.string().max(64) }).strict(),
        response: { 200: issueSchema, ...errorResponses },
      },
    },
    async (request) => {
      const { workspaceId } = principalOf(request);
      await engine.retryIssue(workspaceId, request.params.id);
      return (await issues.get(workspaceId, request.params.id)) as z.output<typeof issueSchema>;
    },
  );
}
