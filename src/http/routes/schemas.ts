import { z } from 'zod';
import { errorCatalogue } from '../../errors/errors.ts';

export const errorSchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(errorCatalogue) as [keyof typeof errorCatalogue, ...(keyof typeof errorCatalogue)[]]),
      message: z.string(),
      details: z.unknown(),
    }),
  })
  .meta({ id: 'Error' });

/** The 4xx answers every API route may give, for the OpenAPI document. */
export const errorResponses = {
  400: errorSchema,
  401: errorSchema,
  403: errorSchema,
  404: errorSchema,
  409: errorSchema,
  412: errorSchema,
  413: errorSchema,
  415: errorSchema,
  422: errorSchema,
} as const;
