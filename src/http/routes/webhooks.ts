// /webhooks/<connection id>: deliveries from external systems. The body is kept raw (signatures
// are computed over its bytes), verified, stored, and answered at once; the worker does the rest.
import type { FastifyInstance } from 'fastify';
import { TandemError } from '../../errors/errors.ts';
import type { SyncEngine } from '../../sync/engine.ts';

export async function registerWebhookRoutes(app: FastifyInstance, engine: SyncEngine): Promise<void> {
  await app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_request, body, next) => {
      next(null, body);
    });
    scope.post<{ Params: { connectionId: string } }>('/webhooks/:connectionId', { schema: { hide: true } }, async (request) => {
      if (!Buffer.isBuffer(request.body)) throw new TandemError('WEBHOOK_INVALID', 'The delivery has no body.');
      const result = await engine.acceptWebhook(request.params.connectionId.slice(0, 64), {
        rawBody: request.body,
        headers: request.headers,
      });
      return { received: result.received, new: result.new };
    });
    done();
  });
}
