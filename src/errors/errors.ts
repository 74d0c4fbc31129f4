// The error catalogue: every error Tandem reports has a stable code, an HTTP status and a retryable
// flag, declared here once. Codes are never reused or renamed; docs/errors.md lists them.

export const errorCatalogue = {
  MALFORMED_JSON: { status: 400, retryable: false, message: 'The request body is not valid JSON.' },
  VALIDATION_FAILED: { status: 400, retryable: false, message: 'The request does not match the schema.' },
  INVALID_CURSOR: { status: 400, retryable: false, message: 'The cursor is not one Tandem issued.' },
  INVALID_ID: { status: 400, retryable: false, message: 'The id is not a valid id for this resource.' },
  INVALID_REFERENCE: { status: 422, retryable: false, message: 'A referenced record does not exist.' },
  INVALID_STATE_TRANSITION: { status: 422, retryable: false, message: 'The status change is not allowed.' },
  IMMUTABLE_FIELD: { status: 422, retryable: false, message: 'The field can no longer change.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, message: 'Send the body as application/json.' },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, message: 'The request body is too large.' },
  UNAUTHENTICATED: { status: 401, retryable: false, message: 'A valid API key is required.' },
  FORBIDDEN: { status: 403, retryable: false, message: 'This API key may not do that.' },
  NOT_FOUND: { status: 404, retryable: false, message: 'No such resource.' },
  ROUTE_NOT_FOUND: { status: 404, retryable: false, message: 'No such route.' },
  METHOD_NOT_ALLOWED: { status: 405, retryable: false, message: 'Method not allowed.' },
  VERSION_MISMATCH: { status: 412, retryable: false, message: 'The record has moved on from the expected version.' },
  INVALID_IF_MATCH: { status: 400, retryable: false, message: 'If-Match must be a record version.' },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    retryable: false,
    message: 'This Idempotency-Key was used with a different request.',
  },
  IDEMPOTENCY_KEY_INVALID: { status: 400, retryable: false, message: 'Idempotency-Key must be 1-255 printable characters.' },
  CONFLICT: { status: 409, retryable: true, message: 'A concurrent request conflicted; retry.' },
  RECORD_DELETED: { status: 409, retryable: false, message: 'The record is deleted.' },
  CONNECTION_CREDENTIALS_REJECTED: {
    status: 422,
    retryable: false,
    message: 'The external system refused the credentials.',
  },
  CONNECTION_REJECTED: { status: 422, retryable: false, message: 'The external system refused the connection.' },
  CONNECTION_UNREACHABLE: { status: 422, retryable: false, message: 'The external system could not be reached.' },
  WEBHOOK_INVALID: { status: 400, retryable: false, message: 'The webhook delivery is not authentic or not readable.' },
  RATE_LIMITED: { status: 429, retryable: true, message: 'Too many requests.' },
  NOT_READY: { status: 503, retryable: true, message: 'Tandem is not ready.' },
  INTERNAL: { status: 500, retryable: true, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; retryable: boolean; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class TandemError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message?: string, details?: unknown) {
    const entry = errorCatalogue[code];
    super(message ?? entry.message);
    this.name = 'TandemError';
    this.code = code;
    this.status = entry.status;
    this.retryable = entry.retryable;
    this.details = details ?? null;
  }

  toJSON(): { error: { code: ErrorCode; message: string; details: unknown } } {
    return { error: { code: this.code, message: this.message, details: this.details } };
  }
}

export function isTandemError(error: unknown): error is TandemError {
  return error instanceof TandemError;
}
