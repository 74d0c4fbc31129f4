// How a connection signs in to Salesforce: three OAuth 2.0 flows, chosen by the shape of the
// credentials (a zod union, each member strict).
//
// - `{clientId, clientSecret}`: the client credentials flow (server to server; the connected app
//   runs as its "Run As" user).
// - `{clientId, clientSecret, refreshToken}`: tokens of the web server flow (a person approved the
//   app once; the refresh token gets new access tokens).
// - `{clientId, username, privateKey}`: the JWT bearer flow (RS256, signed here with node:crypto; the
//   connected app holds the certificate of the key).
//
// Every flow answers an access token and the org's instance URL. None of them puts a secret in a
// message: the token endpoint's refusals carry its own code and description only.
import { createPrivateKey, createSign } from 'node:crypto';
import type { OAuth2 } from 'jsforce';
import { z } from 'zod';

const clientId = z.string().min(1).max(255);
const secret = z.string().min(1).max(4096);

export const clientCredentialsSchema = z.object({ clientId, clientSecret: secret }).strict();
export const refreshTokenCredentialsSchema = z.object({ clientId, clientSecret: secret, refreshToken: secret }).strict();
export const jwtCredentialsSchema = z
  .object({
    clientId,
    username: z.string().min(1).max(255),
    privateKey: z
      .string()
      .max(16_384)
      .refine((pem) => {
        try {
          return createPrivateKey(pem).asymmetricKeyType === 'rsa';
        } catch {
          return false;
        }
      }, 'an RSA private key in PEM form (-----BEGIN PRIVATE KEY----- …)'),
  })
  .strict();

// The refresh token shape first: a strict {clientId, clientSecret} would refuse it anyway.
export const salesforceCredentialsSchema = z.union([refreshTokenCredentialsSchema, clientCredentialsSchema, jwtCredentialsSchema]);
export type SalesforceCredentials = z.output<typeof salesforceCredentialsSchema>;

export type AuthFlow = 'client_credentials' | 'refresh_token' | 'jwt_bearer';

export function flowOf(credentials: SalesforceCredentials): AuthFlow {
  if ('refreshToken' in credentials) return 'refresh_token';
  if ('privateKey' in credentials) return 'jwt_bearer';
  return 'client_credentials';
}

/** The secrets of the credentials: masked in every message. */
export function secretsOf(credentials: SalesforceCredentials): string[] {
  if ('refreshToken' in credentials) return [credentials.clientSecret, credentials.refreshToken];
  if ('privateKey' in credentials) return [credentials.privateKey];
  return [credentials.clientSecret];
}

function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString('base64url');
}

/**
 * A JWT bearer assertion (RS256): `iss` the connected app's client id, `sub` the username, `aud`
 * the login URL, valid for 3 minutes (Salesforce takes at most 5).
 */
export function jwtAssertion(credentials: { clientId: string; username: string; privateKey: string }, loginUrl: string, now: Date): string {
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const claims = base64url(
    JSON.stringify({
      iss: credentials.clientId,
      sub: credentials.username,
      aud: loginUrl.replace(/\/$/, ''),
      exp: Math.floor(now.getTime() / 1000) + 180,
    }),
  );
  const signer = createSign('RSA-SHA256');
  signer.update(`${header}.${claims}`);
  return `${header}.${claims}.${signer.sign(createPrivateKey(credentials.privateKey)).toString('base64url')}`;
}

export interface TokenAnswer {
  access_token: string;
  instance_url: string;
  id: string;
}

/** Asks the token endpoint for a new access token by the credentials' flow. */
export async function requestToken(oauth2: OAuth2, credentials: SalesforceCredentials, loginUrl: string, now: Date): Promise<TokenAnswer> {
  let answer: unknown;
  if ('refreshToken' in credentials) answer = await oauth2.refreshToken(credentials.refreshToken);
  else if ('privateKey' in credentials) {
    answer = await oauth2.requestToken({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: jwtAssertion(credentials, loginUrl, now),
    });
  } else answer = await oauth2.requestToken({ grant_type: 'client_credentials' });
  const token = answer as Partial<TokenAnswer> | undefined;
  if (typeof token?.access_token !== 'string' || typeof token.instance_url !== 'string') {
    const error = new Error('the token endpoint answered no access token or instance URL');
    error.name = 'ERROR_HTTP_502';
    throw error;
  }
  return { access_token: token.access_token, instance_url: token.instance_url, id: typeof token.id === 'string' ? token.id : '' };
}
