// Stripe's error shape: `{error: {type, code, message, param, doc_url}}` with the real status codes.
// Handlers throw a StripeApiError; the server turns it into the response.

export type StripeErrorType = 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';

export interface StripeErrorBody {
  error: {
    type: StripeErrorType;
    message: string;
    code?: string;
    param?: string;
    doc_url?: string;
    request_log_url?: string;
  };
}

export interface StripeApiErrorOptions {
  code?: string | undefined;
  param?: string | undefined;
  /**
   * False for errors raised before the endpoint starts executing (bad parameters, a conflicting
   * request): Stripe saves no idempotent result for those, so a retry with the same key runs again.
   */
  storable?: boolean | undefined;
  headers?: Record<string, string> | undefined;
}

export class StripeApiError extends Error {
  readonly status: number;
  readonly type: StripeErrorType;
  readonly code: string | undefined;
  readonly param: string | undefined;
  readonly storable: boolean;
  readonly headers: Record<string, string>;

  constructor(status: number, type: StripeErrorType, message: string, options: StripeApiErrorOptions = {}) {
    super(message);
    this.name = 'StripeApiError';
    this.status = status;
    this.type = type;
    this.code = options.code;
    this.param = options.param;
    this.storable = options.storable ?? true;
    this.headers = options.headers ?? {};
  }

  body(requestId: string): StripeErrorBody {
    const error: StripeErrorBody['error'] = { type: this.type, message: this.message };
    if (this.code !== undefined) {
      error.code = this.code;
      error.doc_url = `https://stripe.com/docs/error-codes/${this.code.replaceAll('_', '-')}`;
    }
    if (this.param !== undefined) error.param = this.param;
    if (this.type === 'invalid_request_error' && this.status !== 401) {
      error.request_log_url = `https://dashboard.stripe.com/test/logs/${requestId}?t=${Math.floor(Date.now() / 1000)}`;
    }
    return { error };
  }
}

/** 400 for a malformed parameter (never stored for idempotency: the endpoint did not run). */
export function invalidParam(message: string, param: string, code?: string): StripeApiError {
  return new StripeApiError(400, 'invalid_request_error', message, { param, code, storable: false });
}

export function unknownParam(param: string): StripeApiError {
  return invalidParam(`Received unknown parameter: ${param}`, param, 'parameter_unknown');
}

export function missingParam(param: string): StripeApiError {
  return invalidParam(`Missing required param: ${param}.`, param, 'parameter_missing');
}

export function noSuch(kind: string, id: string, param = 'id'): StripeApiError {
  return new StripeApiError(404, 'invalid_request_error', `No such ${kind}: '${id}'`, { code: 'resource_missing', param });
}

export function unrecognizedUrl(method: string, path: string): StripeApiError {
  return new StripeApiError(
    404,
    'invalid_request_error',
    `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    { storable: false },
  );
}

export function apiError(): StripeApiError {
  return new StripeApiError(
    500,
    'api_error',
    'An unknown error occurred while processing your request. (Injected by the Stripe simulator.)',
  );
}

export function rateLimited(): StripeApiError {
  return new StripeApiError(
    429,
    'invalid_request_error',
    'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.',
    { code: 'rate_limit', storable: false },
  );
}
