// Salesforce's REST error shape: the body is an array of `{message, errorCode, fields?}`. sObject
// Collections report per-record errors as `{statusCode, message, fields}` instead.

export interface ApiErrorItem {
  message: string;
  errorCode: string;
  fields?: string[];
}

/** One failure of a REST call, answered as `[{message, errorCode, fields}]` with its status. */
export class SalesforceError extends Error {
  readonly status: number;
  readonly errorCode: string;
  readonly fields: string[] | undefined;
  readonly headers: Record<string, string>;

  constructor(status: number, errorCode: string, message: string, fields?: string[], headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.errorCode = errorCode;
    this.fields = fields;
    this.headers = headers;
  }

  body(): ApiErrorItem[] {
    return [this.fields === undefined ? { message: this.message, errorCode: this.errorCode } : { message: this.message, errorCode: this.errorCode, fields: this.fields }];
  }

  /** The per-record shape of sObject Collections. */
  recordError(): { statusCode: string; message: string; fields: string[] } {
    return { statusCode: this.errorCode, message: this.message, fields: this.fields ?? [] };
  }
}

export const invalidSession = (): SalesforceError =>
  new SalesforceError(401, 'INVALID_SESSION_ID', 'Session expired or invalid', undefined, { 'WWW-Authenticate': 'Token' });

export const notFound = (): SalesforceError => new SalesforceError(404, 'NOT_FOUND', 'The requested resource does not exist');

export const entityDeleted = (): SalesforceError => new SalesforceError(404, 'ENTITY_IS_DELETED', 'entity is deleted', []);

export const requestLimitExceeded = (): SalesforceError => new SalesforceError(403, 'REQUEST_LIMIT_EXCEEDED', 'TotalRequests Limit exceeded.');

export const malformedQuery = (message: string): SalesforceError => new SalesforceError(400, 'MALFORMED_QUERY', message);

export const invalidField = (message: string, fields?: string[]): SalesforceError => new SalesforceError(400, 'INVALID_FIELD', message, fields);

export const jsonParserError = (message: string): SalesforceError => new SalesforceError(400, 'JSON_PARSER_ERROR', message);

export const unknownException = (): SalesforceError => {
  const errorId = `${Math.floor(Math.random() * 1e9)}-${Math.floor(Math.random() * 1e5)} (${Math.floor(Math.random() * 1e9)})`;
  return new SalesforceError(500, 'UNKNOWN_EXCEPTION', `An unexpected error occurred. Please include this ErrorId if you contact support: ${errorId}`);
};

/** OAuth endpoints answer `{error, error_description}` instead. */
export class OAuthError extends Error {
  readonly status: number;
  readonly error: string;

  constructor(error: string, description: string, status = 400) {
    super(description);
    this.error = error;
    this.status = status;
  }

  body(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.message };
  }
}
