// Error classification on its own: each Salesforce (or network) failure gets the kind the engine
// must obey, with Salesforce's code, and no secret in the message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectorError } from '../connector.ts';
import { classifySalesforceError, errorFromCode, isMissing, kindOfCode, maskSecrets } from './errors.ts';

function apiError(errorCode: string, message = 'boom'): Error {
  const error = new Error(message) as Error & { errorCode: string };
  error.name = errorCode;
  error.errorCode = errorCode;
  return error;
}

test('codes map to kinds', () => {
  assert.equal(kindOfCode('REQUEST_LIMIT_EXCEEDED'), 'quota');
  assert.equal(kindOfCode('UNKNOWN_EXCEPTION'), 'retry');
  assert.equal(kindOfCode('ERROR_HTTP_503'), 'retry');
  assert.equal(kindOfCode('ERROR_HTTP_429'), 'retry_after');
  assert.equal(kindOfCode('INVALID_SESSION_ID'), 'auth');
  assert.equal(kindOfCode('invalid_grant'), 'auth');
  assert.equal(kindOfCode('invalid_client_id'), 'auth');
  for (const code of ['REQUIRED_FIELD_MISSING', 'INVALID_EMAIL_ADDRESS', 'STRING_TOO_LONG', 'NOT_FOUND', 'ENTITY_IS_DELETED', 'DUPLICATE_VALUE']) {
    assert.equal(kindOfCode(code), 'fatal', code);
  }
});

test('jsforce errors, OAuth refusals, timeouts and network failures are classified', () => {
  const quota = classifySalesforceError(apiError('REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.'), 'get');
  assert.equal(quota.kind, 'quota');
  assert.equal(quota.retryAfterMs, 60_000);
  const fatal = classifySalesforceError(apiError('REQUIRED_FIELD_MISSING'), 'create');
  assert.equal(fatal.kind, 'fatal');
  assert.equal(fatal.externalCode, 'REQUIRED_FIELD_MISSING');
  const oauth = new Error('authentication failure');
  oauth.name = 'invalid_grant';
  assert.equal(classifySalesforceError(oauth, 'sign-in').kind, 'auth');
  const timeout = new DOMException('aborted', 'AbortError');
  const timedOut = classifySalesforceError(timeout, 'get', [], 1500);
  assert.equal(timedOut.kind, 'retry');
  assert.match(timedOut.message, /1500 ms/);
  const network = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  assert.equal(classifySalesforceError(network, 'get').kind, 'retry');
  assert.equal(classifySalesforceError(new Error('weird'), 'get').kind, 'retry');
  const same = new ConnectorError('auth', 'x');
  assert.equal(classifySalesforceError(same, 'get'), same);
});

test('secrets never reach a message or the error', () => {
  const secret = 'super-secret-value-123';
  const error = classifySalesforceError(apiError('UNKNOWN_EXCEPTION', `failed for ${secret} and 00D5g000004CbqK!AQ4AQFakeToken.value`), 'get', [secret]);
  assert.ok(!error.message.includes(secret));
  assert.ok(!error.message.includes('AQ4AQFakeToken'));
  assert.ok(!JSON.stringify(error).includes(secret));
  assert.ok(!String((error.cause as Error | undefined)?.message).includes(secret));
  assert.equal(maskSecrets('key -----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY----- end'), 'key [redacted key] end');
});

test('a missing record is NOT_FOUND or ENTITY_IS_DELETED', () => {
  assert.ok(isMissing(errorFromCode('ENTITY_IS_DELETED', 'deleted', 'update')));
  assert.ok(isMissing(errorFromCode('NOT_FOUND', 'gone', 'update')));
  assert.ok(!isMissing(errorFromCode('STRING_TOO_LONG', 'long', 'update')));
});
