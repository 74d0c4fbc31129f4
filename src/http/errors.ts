// Every error leaves Tandem as {"error":{"code","message","details"}} with a code from the catalogue.
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { TandemError, isTandemError, type ErrorCode } from '../errors/errors.ts';

const frameworkCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_BAD_URL: 'ROUTE_NOT_FOUND',
};

export function toTandemError(error: FastifyError | Error): TandemError {
  if (isTandemError(error)) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    return new TandemError(
      'VALIDATION_FAILED',
      `Invalid ${error.validationContext ?? 'request'}: ${error.validation.map((v) => `${v.instancePath || '/'} ${v.message ?? ''}`).join('; ')}`.slice(0, 1000),
      {
        location: error.validationContext,
        issues: error.validation.map((v) => ({ path: v.instancePath, message: v.message })),
      },
    );
  }
  const code = (error as FastifyError).code;
  const mapped = frameworkCodes[code];
  if (mapped !== undefined) return new TandemError(mapped);
  // JSON the parser refused for safety (e.g. __proto__ keys) is malformed input too.
  if (error instanceof SyntaxError || (error as FastifyError).statusCode === 400) return new TandemError('MALFORMED_JSON');
  const status = (error as FastifyError).statusCode;
  if (status === 413) return new TandemError('PAYLOAD_TOO_LARGE');
  if (status === 415) return new TandemError('UNSUPPORTED_MEDIA_TYPE');
  return new TandemError('INTERNAL');
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const tandem = toTandemError(error);
    if (tandem.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: tandem.code }, 'request refused');
    return reply.status(tandem.status).send(tandem.toJSON());
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send(new TandemError('ROUTE_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0] ?? ''}.`).toJSON()),
  );
}
