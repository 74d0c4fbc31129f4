// Every /api call carries `Authorization: Bearer <key>`; routes declare the role they need.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal, Workspaces } from '../auth/workspaces.ts';
import { roleAllows, type Role } from '../auth/roles.ts';
import { TandemError } from '../errors/errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    correlationId: string;
  }
  interface FastifyContextConfig {
    /** The least role a key needs for this route; routes without it are public. */
    role?: Role;
  }
}

export function registerAuth(app: FastifyInstance, workspaces: Workspaces): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request, reply) => {
    const needs = request.routeOptions.config.role;
    if (needs === undefined) return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S{1,512})$/i.exec(header.trim()) : null;
    if (match?.[1] === undefined) {
      throw new TandemError('UNAUTHENTICATED', 'Send an API key as `Authorization: Bearer <key>`.');
    }
    const principal = await workspaces.authenticate(match[1]);
    if (principal === undefined) throw new TandemError('UNAUTHENTICATED', 'The API key is unknown or revoked.');
    if (!roleAllows(principal.role, needs)) {
      throw new TandemError('FORBIDDEN', `This needs the ${needs} role; the key has ${principal.role}.`, {
        needs,
        has: principal.role,
      });
    }
    request.principal = principal;
    request.log = request.log.child({ workspaceId: principal.workspaceId, keyId: principal.keyId });
    reply.log = request.log;
  });
}

/** The authenticated principal of a route that declared a role. */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new TandemError('UNAUTHENTICATED');
  return request.principal;
}
