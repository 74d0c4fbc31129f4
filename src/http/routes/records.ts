// The REST API of every registered entity type, generated from its declaration:
// POST/GET /api/v1/<plural>, GET/PATCH/DELETE /api/v1/<plural>/:id.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Catalog, RecordView } from '../../catalog/catalog.ts';
import type { EntityDefinition } from '../../catalog/entity.ts';
import { principalOf } from '../auth.ts';
import { parseIdempotencyKey, parseIfMatch, requestFingerprint } from '../headers.ts';
import { errorResponses } from './schemas.ts';

/** The answered record: its declared fields plus id, object, version and timestamps (for the docs). */
function recordSchema(definition: EntityDefinition): z.ZodType<RecordView> {
  const schema = z
    .object({
      id: z.string().describe(`\`${definition.prefix}_…\`: prefixed, time-ordered`),
      object: z.literal(definition.type),
      version: z.number().int().describe('Starts at 1; +1 on every change'),
      created_at: z.iso.datetime(),
      updated_at: z.iso.datetime(),
      deleted_at: z.iso.datetime().nullable().describe('Set when the record was deleted (a tombstone)'),
    })
    .and(definition.fieldsSchema)
    .meta({ id: definition.type });
  return schema;
}

const idParams = z.object({ id: z.string().max(64) }).strict();

const writeHeaders = z.object({
  'if-match': z.string().max(64).optional().describe('The version the record must be at: `"3"`; 412 otherwise'),
});

export function registerRecordRoutes(app: FastifyInstance, catalog: Catalog): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  for (const definition of catalog.registry.all()) {
    const { type, plural } = definition;
    const tags = [plural];
    const record = recordSchema(definition);
    const base = `/api/v1/${plural}`;

    const filterShape = Object.fromEntries(
      definition.filters.map((f) => [f.param, f.schema.optional().describe(`Only ${plural} whose ${f.field} equals this`)]),
    );
    const listQuery = z
      .object({
        limit: z.coerce.number().int().min(1).max(100).default(10),
        cursor: z.string().max(200).optional().describe('`next_cursor` of the previous page'),
        updated_since: z.iso.datetime({ offset: true }).optional().describe('Only records updated at or after this time'),
        include_deleted: z.enum(['true', 'false']).optional().describe('Include tombstones of deleted records'),
        ...filterShape,
      })
      .strict();

    api.post(
      base,
      {
        config: { role: 'editor' },
        schema: {
          tags,
          summary: `Create a ${type}`,
          body: definition.createSchema,
          headers: z.object({
            'idempotency-key': z.string().optional().describe('A retried create with the same key returns the first result'),
          }),
          response: { 201: record, 200: record.describe('Replay of an earlier create with the same Idempotency-Key'), ...errorResponses },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const key = parseIdempotencyKey(request.headers['idempotency-key']);
        const result = await catalog.create(principal.workspaceId, type, request.body, {
          origin: 'api',
          correlationId: request.correlationId,
          idempotency:
            key === undefined ? undefined : { key, fingerprint: requestFingerprint('POST', base, request.body) },
        });
        if (result.replayed) void reply.header('idempotent-replayed', 'true');
        return reply
          .status(result.replayed ? 200 : 201)
          .header('etag', `"${result.record.version}"`)
          .header('location', `${base}/${result.record.id}`)
          .send(result.record);
      },
    );

    api.get(
      base,
      {
        config: { role: 'viewer' },
        schema: {
          tags,
          summary: `List ${plural}, newest first`,
          querystring: listQuery,
          response: {
            200: z.object({ data: z.array(record), next_cursor: z.string().nullable() }),
            ...errorResponses,
          },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const { limit, cursor, updated_since, include_deleted, ...filters } = request.query;
        return catalog.list(principal.workspaceId, type, {
          limit,
          cursor,
          updatedSince: updated_since === undefined ? undefined : new Date(updated_since).toISOString(),
          includeDeleted: include_deleted === 'true',
          filters,
        });
      },
    );

    api.get(
      `${base}/:id`,
      {
        config: { role: 'viewer' },
        schema: { tags, summary: `Get a ${type}`, params: idParams, response: { 200: record, ...errorResponses } },
      },
      async (request, reply) => {
        const view = await catalog.get(principalOf(request).workspaceId, type, request.params.id);
        return reply.header('etag', `"${view.version}"`).send(view);
      },
    );

    api.patch(
      `${base}/:id`,
      {
        config: { role: 'editor' },
        schema: {
          tags,
          summary: `Update a ${type} (fields not sent keep their value; null clears; metadata keys merge)`,
          params: idParams,
          headers: writeHeaders,
          body: definition.updateSchema,
          response: { 200: record, ...errorResponses },
        },
      },
      async (request, reply) => {
        const view = await catalog.update(principalOf(request).workspaceId, type, request.params.id, request.body, {
          origin: 'api',
          correlationId: request.correlationId,
          expectedVersion: parseIfMatch(request.headers['if-match']),
        });
        return reply.header('etag', `"${view.version}"`).send(view);
      },
    );

    api.delete(
      `${base}/:id`,
      {
        config: { role: 'editor' },
        schema: {
          tags,
          summary: `Delete a ${type} (it stays as a tombstone; deleting again changes nothing)`,
          params: idParams,
          headers: writeHeaders,
          response: { 200: record, ...errorResponses },
        },
      },
      async (request, reply) => {
        const view = await catalog.delete(principalOf(request).workspaceId, type, request.params.id, {
          origin: 'api',
          correlationId: request.correlationId,
          expectedVersion: parseIfMatch(request.headers['if-match']),
        });
        return reply.header('etag', `"${view.version}"`).send(view);
      },
    );
  }
}
