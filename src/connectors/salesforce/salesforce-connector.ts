// The Salesforce connector: customers as Accounts with their primary Contacts, through jsforce 3.
// See README.md beside this file (credentials, settings, mapping, change feeds, limits).
//
// jsforce's transport is replaced by one that never retries (retries, backoff and the rate budget
// are the engine's) and ends every request after `timeoutMs`. Every request carries
// `Sforce-Call-Options: client=tandem-<connection id>`, so the change feed can tell Tandem's own
// writes apart. The session is made lazily by the credentials' flow; on 401 INVALID_SESSION_ID
// jsforce calls our refreshFn, which signs in again by the same flow, and repeats the call once.
// jsforce takes no AbortSignal: a signal is checked before every call and, when it fires, the
// pending call is abandoned (the caller gets the signal's reason at once).
import { Connection, OAuth2 } from 'jsforce';
import { Transport } from 'jsforce/lib/transport.js';
import type { HttpRequest, HttpRequestOptions, HttpResponse } from 'jsforce/lib/types/common.js';
import type { StreamPromise } from 'jsforce/lib/util/promise.js';
import { z } from 'zod';
import {
  ConnectorError,
  type BatchOutcome,
  type BatchWrite,
  type ConnectorClient,
  type ConnectorDefinition,
  type EntityBinding,
  type ExternalNotification,
  type ExternalObject,
  type PollResult,
  type StreamBatch,
  type UpdateOptions,
  type WriteOptions,
} from '../connector.ts';
import { abortable, isServiceBaseUrl } from '../canonical-values.ts';
import { flowOf, requestToken, salesforceCredentialsSchema, secretsOf, type SalesforceCredentials } from './auth.ts';
import { streamChanges } from './cdc-stream.ts';
import { classifySalesforceError, errorFromCode, isMissing, maskSecrets } from './errors.ts';
import {
  TANDEM_ID_FIELD,
  completeCustomerFields,
  contactNeeded,
  customerFromSalesforce,
  customerMappingSchema,
  normalizeCustomerFields,
  resolveMapping,
  salesforceValues,
  splitName,
  NO_NAME,
  type CustomerMapping,
  type SalesforceRow,
} from './mapping.ts';

export const SALESFORCE_LOGIN_URL = 'https://login.salesforce.com';
export const DEFAULT_API_VERSION = '62.0';
/** sObject Collections take at most 200 records a call. */
export const MAX_BATCH = 200;
/** A Composite request takes at most 25 subrequests, at most 5 of them sObject Collections or queries. */
const MAX_COMPOSITE_COLLECTIONS = 5;


export { salesforceCredentialsSchema, type SalesforceCredentials };

export const salesforceSettingsSchema = z
  .object({
    loginUrl: z
      .string()
      .max(2048)
      .refine(isServiceBaseUrl, 'an https:// URL with no path (https://login.salesforce.com, https://test.salesforce.com, My Domain), or http:// to this machine (a simulator)')
      .default(SALESFORCE_LOGIN_URL),
    apiVersion: z
      .string()
      .regex(/^\d{2,3}\.0$/, "a REST API version such as '62.0'")
      .refine((v) => Number(v) >= 46, 'API version 46.0 or later (upserts answer a body from 46.0)')
      .default(DEFAULT_API_VERSION),
    customerMapping: customerMappingSchema.default(customerMappingSchema.parse({})),
  })
  .strict();
export type SalesforceSettings = z.output<typeof salesforceSettingsSchema>;
export type SalesforceSettingsInput = z.input<typeof salesforceSettingsSchema>;

/** The `client=` tag of Sforce-Call-Options for a connection: how its own writes are recognised. */
export function ownClientTag(connectionId: string): string {
  return `tandem-${connectionId}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 100);
}

/** Tuning a test (or the engine) may change; the defaults suit the real Salesforce. */
export interface SalesforceClientOptions {
  /** Per request, in ms. Default 30 s. */
  timeoutMs?: number;
  /** Accounts per `list` page (1..2000). Default 200. */
  listPageSize?: number;
  /** The longest window one poll reads (ms, at least a minute). Default 1 day. */
  pollMaxWindowMs?: number;
  /** The clock, for tests (the poll windows and JWT expiry). */
  now?: () => Date;
}

/** jsforce's fetch transport, with no retries of its own and a timeout on every request. */
class TimedTransport extends Transport {
  readonly #timeoutMs: number;

  constructor(timeoutMs: number) {
    super();
    this.#timeoutMs = timeoutMs;
  }

  override httpRequest(req: HttpRequest, options: HttpRequestOptions = {}): StreamPromise<HttpResponse> {
    return super.httpRequest(req, { ...options, timeout: this.#timeoutMs, retry: { maxRetries: 0 } });
  }
}

/** A SOQL string literal. */
export function soqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const ID_PATTERN = /^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$/;

function isAccountId(id: string): boolean {
  return ID_PATTERN.test(id) && id.startsWith('001');
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function sfDateMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  return Number.isNaN(ms) ? undefined : ms;
}

function floorMinute(ms: number): number {
  return Math.floor(ms / 60_000) * 60_000;
}

interface QueryAnswer {
  records: SalesforceRow[];
  done: boolean;
  nextRecordsUrl?: string;
}

interface CollectionResult {
  id?: string;
  success: boolean;
  created?: boolean;
  errors: { statusCode?: string; message?: string; fields?: string[] }[];
}

interface Customer {
  account: SalesforceRow;
  contact: SalesforceRow | undefined;
}

/** One subrequest of a write call (a collection call; several go in one Composite request). */
interface Part {
  what: string;
  method: 'PATCH' | 'POST' | 'DELETE';
  /** Below the version root: `/composite/sobjects…`. */
  url: string;
  referenceId: string;
  body?: unknown;
}

type PartAnswer = { ok: true; body: unknown } | { ok: false; error: ConnectorError; code: string | undefined };

/** Subrequests that go in the same call (later ones may refer to earlier ones) and what their answers do. */
interface Unit {
  parts: Part[];
  done: (answers: PartAnswer[]) => Promise<void>;
}

interface CompositeSubresult {
  body: unknown;
  httpStatusCode: number;
  referenceId: string;
}

/** One record sent in a collection call, and the write it serves. */
interface PendingRecord {
  write: number;
  record: Record<string, unknown>;
  /** For Contacts: the Account it belongs to (its cache entry). */
  accountId?: string;
}

export class SalesforceConnectorClient implements ConnectorClient {
  readonly #credentials: SalesforceCredentials;
  readonly #loginUrl: string;
  readonly #secrets: string[];
  readonly #tag: string;
  readonly #mapping: CustomerMapping;
  readonly #timeoutMs: number;
  readonly #listPageSize: number;
  readonly #pollMaxWindowMs: number;
  readonly #now: () => Date;
  readonly #conn: Connection;
  readonly #oauth2: OAuth2;
  readonly #customers: EntityBinding;
  /** Account Id → its primary Contact Id, learned from every read and write. */
  readonly #primaryContact = new Map<string, string>();
  #signingIn: Promise<void> | undefined;
  #orgId: string | undefined;
  #identityUrl: string | undefined;
  #lastRefreshError: ConnectorError | undefined;
  #refreshedAt = 0;
  #accessTokenSlot = -1;
  /** The `earliestDateAvailable` (ms) a resync was last asked for. */
  #resyncedFor: number | undefined;

  constructor(credentials: SalesforceCredentials, settings: Partial<SalesforceSettings>, context: { connectionId: string }, options: SalesforceClientOptions = {}) {
    const parsed = salesforceSettingsSchema.parse(settings);
    this.#credentials = credentials;
    this.#loginUrl = parsed.loginUrl.replace(/\/$/, '');
    this.#secrets = secretsOf(credentials);
    this.#tag = ownClientTag(context.connectionId);
    this.#mapping = resolveMapping(parsed.customerMapping);
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#listPageSize = Math.min(Math.max(options.listPageSize ?? 200, 1), 2000);
    this.#pollMaxWindowMs = Math.max(options.pollMaxWindowMs ?? 86_400_000, 60_000);
    this.#now = options.now ?? (() => new Date());
    const transport = new TimedTransport(this.#timeoutMs);
    this.#oauth2 = new OAuth2({
      loginUrl: this.#loginUrl,
      clientId: credentials.clientId,
      ...('clientSecret' in credentials ? { clientSecret: credentials.clientSecret } : {}),
    });
    this.#oauth2._transport = transport;
    this.#conn = new Connection({
      oauth2: this.#oauth2,
      loginUrl: this.#loginUrl,
      version: parsed.apiVersion,
      callOptions: { client: this.#tag },
      refreshFn: (_conn, callback) => {
        this.#refresh().then(
          (token) => {
            callback(undefined, token);
          },
          (error: unknown) => {
            callback(error instanceof Error ? error : new Error(String(error)));
          },
        );
      },
    });
    this.#conn._transport = transport;
    this.#customers = this.#customerBinding();
  }

  /** The jsforce connection (for the change stream); signs in first. */
  async connection(signal?: AbortSignal): Promise<Connection> {
    await this.#ensureSession(signal);
    return this.#conn;
  }

  get ownClient(): string {
    return this.#tag;
  }

  // --- session -------------------------------------------------------------------------------

  async #signIn(): Promise<string> {
    let token;
    try {
      token = await requestToken(this.#oauth2, this.#credentials, this.#loginUrl, this.#now());
    } catch (error) {
      throw classifySalesforceError(error, `sign-in (${flowOf(this.#credentials)})`, this.#secrets, this.#timeoutMs);
    }
    this.#conn.accessToken = token.access_token;
    this.#conn.instanceUrl = token.instance_url.replace(/\/$/, '');
    this.#identityUrl = token.id;
    const m = /\/id\/([^/]+)\/([^/]+)\/?$/.exec(token.id);
    if (m !== null) this.#orgId = m[1];
    // The session's token is masked too (only the newest: the list must not grow with every refresh).
    if (this.#accessTokenSlot < 0) this.#accessTokenSlot = this.#secrets.push(token.access_token) - 1;
    else this.#secrets[this.#accessTokenSlot] = token.access_token;
    return token.access_token;
  }

  async #ensureSession(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (typeof this.#conn.accessToken === 'string' && this.#conn.accessToken !== '') return;
    this.#signingIn ??= this.#signIn().then(
      () => {
        this.#signingIn = undefined;
      },
      (error: unknown) => {
        this.#signingIn = undefined;
        throw error;
      },
    );
    await abortable(this.#signingIn, signal);
  }

  /** jsforce's refreshFn: a new session by the same flow; refused when the last one was refused at once. */
  async #refresh(): Promise<string> {
    const now = Date.now();
    if (now - this.#refreshedAt < 2_000) {
      this.#lastRefreshError = new ConnectorError('auth', 'Salesforce refused a session it had just issued (INVALID_SESSION_ID): the user or the connected app lost API access', {
        externalCode: 'INVALID_SESSION_ID',
        status: 401,
      });
      throw this.#lastRefreshError;
    }
    try {
      const token = await this.#signIn();
      this.#refreshedAt = Date.now();
      this.#lastRefreshError = undefined;
      return token;
    } catch (error) {
      this.#lastRefreshError = classifySalesforceError(error, 'session refresh', this.#secrets, this.#timeoutMs);
      throw this.#lastRefreshError;
    }
  }

  /** A new access token into the connection (for the change stream's 401s). */
  async reauthorize(): Promise<void> {
    await this.#signIn();
  }

  /** Runs one jsforce call: signs in first, honours the signal, classifies what it throws. */
  async #call<T>(what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    await this.#ensureSession(signal);
    try {
      return await abortable(fn(), signal);
    } catch (error) {
      if (signal?.aborted === true) throw error;
      if (error instanceof Error && error.message.startsWith('Unable to refresh session') && this.#lastRefreshError !== undefined) {
        throw this.#lastRefreshError;
      }
      throw classifySalesforceError(error, what, this.#secrets, this.#timeoutMs);
    }
  }

  #request<T>(what: string, signal: AbortSignal | undefined, method: HttpRequest['method'], url: string, body?: unknown): Promise<T> {
    return this.#call(what, signal, () =>
      this.#conn.request<T>({
        method,
        url,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      }),
    );
  }

  /** Every row of a SOQL query (queryAll: deleted rows too), following nextRecordsUrl. */
  async #query(soql: string, signal: AbortSignal | undefined, options: { all?: boolean; beforeRequest?: () => Promise<void> } = {}): Promise<SalesforceRow[]> {
    const rows: SalesforceRow[] = [];
    let url: string | undefined = `/${options.all === true ? 'queryAll' : 'query'}?q=${encodeURIComponent(soql)}`;
    while (url !== undefined) {
      await options.beforeRequest?.();
      const page: QueryAnswer = await this.#request<QueryAnswer>('query', signal, 'GET', url);
      rows.push(...page.records);
      url = page.done ? undefined : page.nextRecordsUrl;
    }
    return rows;
  }

  // --- reads ---------------------------------------------------------------------------------

  #fields(object: 'Account' | 'Contact'): string {
    return [...new Set(this.#mapping.select[object])].join(', ');
  }

  /** The primary Contact of each Account (by Tandem id, else the oldest); live Contacts only. */
  async #primaryContacts(
    accounts: { id: string; tandemId: string | undefined }[],
    signal: AbortSignal | undefined,
    beforeRequest?: () => Promise<void>,
  ): Promise<Map<string, SalesforceRow>> {
    const out = new Map<string, SalesforceRow>();
    for (const part of chunks(accounts, MAX_BATCH)) {
      if (part.length === 0) continue;
      const rows = await this.#query(
        `SELECT ${this.#fields('Contact')} FROM Contact WHERE AccountId IN (${part.map((a) => soqlString(a.id)).join(', ')}) ORDER BY CreatedDate ASC, Id ASC`,
        signal,
        beforeRequest === undefined ? {} : { beforeRequest },
      );
      for (const account of part) {
        const mine = rows.filter((r) => r['AccountId'] === account.id);
        const wanted = account.tandemId?.toLowerCase();
        const primary = mine.find((r) => typeof r[TANDEM_ID_FIELD] === 'string' && r[TANDEM_ID_FIELD].toLowerCase() === wanted) ?? mine[0];
        if (primary !== undefined) {
          out.set(account.id, primary);
          this.#primaryContact.set(account.id, String(primary['Id']));
        } else this.#primaryContact.delete(account.id);
      }
    }
    return out;
  }

  /** Accounts (deleted ones too, with `all`) with their primary Contacts. */
  async #readCustomers(where: string, signal: AbortSignal | undefined, options: { all?: boolean; suffix?: string; beforeRequest?: () => Promise<void> } = {}): Promise<Customer[]> {
    const accounts = await this.#query(`SELECT ${this.#fields('Account')} FROM Account WHERE ${where}${options.suffix ?? ''}`, signal, {
      ...(options.all === undefined ? {} : { all: options.all }),
      ...(options.beforeRequest === undefined ? {} : { beforeRequest: options.beforeRequest }),
    });
    const live = accounts.filter((a) => a['IsDeleted'] !== true);
    const contacts = await this.#primaryContacts(
      live.map((a) => ({ id: String(a['Id']), tandemId: typeof a[TANDEM_ID_FIELD] === 'string' ? a[TANDEM_ID_FIELD] : undefined })),
      signal,
      options.beforeRequest,
    );
    return accounts.map((account) => ({ account, contact: contacts.get(String(account['Id'])) }));
  }

  #object(customer: Customer): ExternalObject {
    return customerFromSalesforce(this.#mapping, customer.account, customer.account['IsDeleted'] === true ? undefined : customer.contact);
  }

  async #get(externalId: string, signal?: AbortSignal): Promise<ExternalObject | undefined> {
    await this.#ensureSession(signal);
    if (!isAccountId(externalId)) return undefined;
    const [found] = await this.#readCustomers(`Id = ${soqlString(externalId)}`, signal, { all: true });
    return found === undefined ? undefined : this.#object(found);
  }

  // --- writes --------------------------------------------------------------------------------

  async #collection(what: string, method: 'PATCH' | 'POST', url: string, records: Record<string, unknown>[], signal: AbortSignal | undefined, beforeRequest: () => Promise<void>): Promise<CollectionResult[]> {
    const results: CollectionResult[] = [];
    for (const part of chunks(records, MAX_BATCH)) {
      await beforeRequest();
      const answer = await this.#request<CollectionResult[]>(what, signal, method, url, { allOrNone: false, records: part });
      results.push(...this.#results(answer, part.length, what));
    }
    return results;
  }

  /** A collection's answer, checked: one result per record sent. */
  #results(answer: unknown, expected: number, what: string): CollectionResult[] {
    if (!Array.isArray(answer) || answer.length !== expected) {
      throw new ConnectorError('retry', `Salesforce ${what} answered ${Array.isArray(answer) ? String(answer.length) : 'no'} results for ${String(expected)} records`);
    }
    return answer as CollectionResult[];
  }

  #recordError(result: CollectionResult, what: string): ConnectorError {
    const first = result.errors[0];
    const fields = first?.fields !== undefined && first.fields.length > 0 ? ` [${first.fields.join(', ')}]` : '';
    return errorFromCode(first?.statusCode ?? 'UNKNOWN_EXCEPTION', `${first?.message ?? 'no message'}${fields}`, what, this.#secrets);
  }

  /**
   * Sends subrequests in ONE call: a single one as itself, several as a Composite request
   * (`allOrNone: false`, in order; one API call whatever it holds). A failure of the whole call
   * throws; a failed subrequest is its answer (`ok: false`, kind by its errorCode).
   */
  async #send(parts: readonly Part[], signal: AbortSignal | undefined, beforeRequest: () => Promise<void>): Promise<PartAnswer[]> {
    await beforeRequest();
    if (parts.length === 1 && parts[0] !== undefined) {
      const part = parts[0];
      return [{ ok: true, body: await this.#request<unknown>(part.what, signal, part.method, part.url, part.body) }];
    }
    const root = `/services/data/v${this.#conn.version}`;
    const answer = await this.#request<{ compositeResponse?: CompositeSubresult[] }>(`composite (${parts.map((p) => p.what).join(', ')})`, signal, 'POST', '/composite', {
      allOrNone: false,
      collateSubrequests: false,
      compositeRequest: parts.map((p) => ({ method: p.method, url: `${root}${p.url}`, referenceId: p.referenceId, ...(p.body === undefined ? {} : { body: p.body }) })),
    });
    const results = answer.compositeResponse;
    if (!Array.isArray(results) || results.length !== parts.length) {
      throw new ConnectorError('retry', `Salesforce composite answered ${Array.isArray(results) ? String(results.length) : 'no'} results for ${String(parts.length)} subrequests`);
    }
    return parts.map((part, k): PartAnswer => {
      const result = results[k];
      if (result === undefined) return { ok: false, error: new ConnectorError('retry', `Salesforce ${part.what}: no subrequest result`), code: undefined };
      if (result.httpStatusCode < 300) return { ok: true, body: result.body };
      const first = Array.isArray(result.body) ? (result.body[0] as { errorCode?: unknown; message?: unknown } | undefined) : undefined;
      const code = typeof first?.errorCode === 'string' ? first.errorCode : `ERROR_HTTP_${String(result.httpStatusCode)}`;
      const message = typeof first?.message === 'string' ? first.message : `HTTP ${String(result.httpStatusCode)}`;
      // A subrequest halted by another's failure says nothing about its own records: try again.
      const error = code === 'PROCESSING_HALTED' ? new ConnectorError('retry', maskSecrets(`Salesforce ${part.what} was not run: ${message} (${code})`, this.#secrets), { externalCode: code }) : errorFromCode(code, message, part.what, this.#secrets);
      return { ok: false, error, code };
    });
  }

  /**
   * The writes of one batch (at most MAX_BATCH) in as few calls as they allow: the creates (Accounts
   * upsert + Contacts upsert referring to them), the updates (collection PATCHes, Contacts to make)
   * and the deletes (one collection DELETE) go as subrequests of one Composite call (at most 5
   * collections a call). A cold Contact cache adds one query before; a refused Account among
   * creates adds one call after (its Contact subrequest halts; the other Contacts are sent again).
   */
  async #writeMany(writes: readonly BatchWrite[], beforeRequest: () => Promise<void>, signal: AbortSignal | undefined): Promise<BatchOutcome[]> {
    if (writes.length > MAX_BATCH) throw new ConnectorError('fatal', `writeMany takes at most ${String(MAX_BATCH)} writes, got ${String(writes.length)}`);
    signal?.throwIfAborted();
    await this.#ensureSession(signal);
    const outcomes: (BatchOutcome | undefined)[] = writes.map(() => undefined);
    const fail = (i: number, error: ConnectorError): void => {
      if (outcomes[i] === undefined || outcomes[i].ok) outcomes[i] = { ok: false, error };
    };
    const units = [
      this.#creates(writes, outcomes, fail, beforeRequest, signal),
      await this.#updates(writes, outcomes, fail, beforeRequest, signal),
      this.#deletes(writes, outcomes, fail),
    ].filter((u): u is Unit => u !== undefined);
    // Units whole into calls of at most MAX_COMPOSITE_COLLECTIONS subrequests (a unit's references stay within its call).
    const calls: Unit[][] = [];
    for (const unit of units) {
      const last = calls.at(-1);
      if (last !== undefined && last.reduce((n, u) => n + u.parts.length, 0) + unit.parts.length <= MAX_COMPOSITE_COLLECTIONS) last.push(unit);
      else calls.push([unit]);
    }
    for (const call of calls) {
      const answers = await this.#send(call.flatMap((u) => u.parts), signal, beforeRequest);
      let k = 0;
      for (const unit of call) {
        await unit.done(answers.slice(k, k + unit.parts.length));
        k += unit.parts.length;
      }
    }
    return outcomes.map((o, i) => o ?? { ok: false, error: new ConnectorError('retry', `write ${String(i)} of the batch got no outcome`) });
  }

  #creates(
    writes: readonly BatchWrite[],
    outcomes: (BatchOutcome | undefined)[],
    fail: (i: number, error: ConnectorError) => void,
    beforeRequest: () => Promise<void>,
    signal: AbortSignal | undefined,
  ): Unit | undefined {
    const creates = writes.flatMap((w, i) => (w.op === 'create' ? [{ i, w }] : []));
    if (creates.length === 0) return undefined;
    const prepared = creates.map(({ i, w }, k) => {
      const canonical = completeCustomerFields(this.#mapping, w.fields);
      return { i, k, tandemId: w.tandemId, canonical, values: salesforceValues(this.#mapping, canonical) };
    });
    const contactRecord = (p: (typeof prepared)[number], accountId: string): Record<string, unknown> => ({
      attributes: { type: 'Contact' },
      [TANDEM_ID_FIELD]: p.tandemId,
      AccountId: accountId,
      ...p.values.contact,
    });
    const withContact = prepared.filter((p) => contactNeeded(p.values.contact));
    // Upserts by Tandem_Id__c: a retry (or a crash and a new try) finds what the first one made.
    // The Contacts' AccountIds refer to the Accounts upsert's results (`@{accounts[k].id}`).
    const parts: Part[] = [
      {
        what: 'account upsert',
        method: 'PATCH',
        url: `/composite/sobjects/Account/${TANDEM_ID_FIELD}`,
        referenceId: 'accounts',
        body: { allOrNone: false, records: prepared.map((p) => ({ attributes: { type: 'Account' }, [TANDEM_ID_FIELD]: p.tandemId, ...p.values.account })) },
      },
    ];
    if (withContact.length > 0) {
      parts.push({
        what: 'contact upsert',
        method: 'PATCH',
        url: `/composite/sobjects/Contact/${TANDEM_ID_FIELD}`,
        referenceId: 'contacts',
        body: { allOrNone: false, records: withContact.map((p) => contactRecord(p, `@{accounts[${String(p.k)}].id}`)) },
      });
    }
    return {
      parts,
      done: async ([accountsAnswer, contactsAnswer]) => {
        if (accountsAnswer === undefined || !accountsAnswer.ok) {
          const error = accountsAnswer?.ok === false ? accountsAnswer.error : new ConnectorError('retry', 'no answer to the account upsert');
          for (const p of prepared) fail(p.i, error);
          return;
        }
        const accounts = this.#results(accountsAnswer.body, prepared.length, 'account upsert');
        const accountIds = new Map<number, string>();
        for (const p of prepared) {
          const result = accounts[p.k];
          if (result === undefined || !result.success || result.id === undefined) {
            fail(p.i, result === undefined ? new ConnectorError('retry', 'no result') : this.#recordError(result, 'account upsert'));
            continue;
          }
          accountIds.set(p.k, result.id);
          outcomes[p.i] = { ok: true, object: { id: result.id, fields: p.canonical, deleted: false, tandemId: p.tandemId, version: undefined } };
        }
        if (withContact.length === 0) return;
        let sent = withContact;
        let results: CollectionResult[];
        if (contactsAnswer?.ok === true) {
          results = this.#results(contactsAnswer.body, withContact.length, 'contact upsert');
        } else if (contactsAnswer?.ok === false && contactsAnswer.code === 'PROCESSING_HALTED') {
          // An Account was refused, so its reference had no value and no Contact was written: the
          // Contacts of the Accounts made go in one more call, with their ids.
          sent = withContact.filter((p) => accountIds.has(p.k));
          if (sent.length === 0) return;
          results = await this.#collection(
            'contact upsert',
            'PATCH',
            `/composite/sobjects/Contact/${TANDEM_ID_FIELD}`,
            sent.map((p) => contactRecord(p, accountIds.get(p.k) ?? '')),
            signal,
            beforeRequest,
          );
        } else {
          const error = contactsAnswer?.ok === false ? contactsAnswer.error : new ConnectorError('retry', 'no answer to the contact upsert');
          for (const p of withContact) fail(p.i, error);
          return;
        }
        sent.forEach((p, k) => {
          const result = results[k];
          const accountId = accountIds.get(p.k);
          if (result?.success === true && result.id !== undefined && accountId !== undefined) this.#primaryContact.set(accountId, result.id);
          else if (result !== undefined && result.success) fail(p.i, new ConnectorError('retry', 'the contact upsert answered no id'));
          else fail(p.i, result === undefined ? new ConnectorError('retry', 'no result') : this.#recordError(result, 'contact upsert'));
        });
      },
    };
  }

  async #updates(
    writes: readonly BatchWrite[],
    outcomes: (BatchOutcome | undefined)[],
    fail: (i: number, error: ConnectorError) => void,
    beforeRequest: () => Promise<void>,
    signal: AbortSignal | undefined,
  ): Promise<Unit | undefined> {
    const updates = writes.flatMap((w, i) => (w.op === 'update' ? [{ i, w }] : []));
    if (updates.length === 0) return undefined;
    // What each object holds before the write: the engine's base, else read (one query for all).
    const previous = new Map<number, Record<string, unknown>>();
    const unknown = updates.filter(({ w }) => w.previous === undefined);
    if (unknown.length > 0) {
      const ids = [...new Set(unknown.map(({ w }) => w.externalId).filter(isAccountId))];
      const found = ids.length === 0 ? [] : await this.#readCustomers(`Id IN (${ids.map(soqlString).join(', ')})`, signal, { all: true, beforeRequest });
      const byId = new Map(found.map((c) => [String(c.account['Id']), c]));
      for (const { i, w } of unknown) {
        const customer = byId.get(w.externalId);
        if (customer === undefined || customer.account['IsDeleted'] === true) {
          const code = customer === undefined ? 'NOT_FOUND' : 'ENTITY_IS_DELETED';
          fail(i, new ConnectorError('fatal', `Salesforce Account ${w.externalId} ${customer === undefined ? 'does not exist' : 'is deleted'} (${code})`, { externalCode: code, status: 404 }));
          continue;
        }
        previous.set(i, this.#object(customer).fields);
      }
    }
    for (const { i, w } of updates) if (w.previous !== undefined) previous.set(i, completeCustomerFields(this.#mapping, w.previous));

    const planned = updates
      .filter(({ i }) => outcomes[i] === undefined)
      .map(({ i, w }) => {
        const before = previous.get(i) ?? {};
        const context = { name: (before['name'] as string | null | undefined) ?? null, company: (before['company'] as string | null | undefined) ?? null };
        return { i, w, before, values: salesforceValues(this.#mapping, w.fields, context) };
      });
    if (planned.length === 0) return undefined;
    // Contact ids: from the cache, else one query for every missing one. (Not a subrequest of the
    // write's call: the PATCH needs each Contact's id, and a query's rows cannot be told apart by index.)
    const missing = planned.filter((p) => Object.keys(p.values.contact).length > 0 && !this.#primaryContact.has(p.w.externalId) && isAccountId(p.w.externalId));
    if (missing.length > 0) {
      await this.#primaryContacts(
        [...new Map(missing.map((p) => [p.w.externalId, { id: p.w.externalId, tandemId: p.w.tandemId }])).values()],
        signal,
        beforeRequest,
      );
    }
    const records: PendingRecord[] = [];
    const newContacts: PendingRecord[] = [];
    for (const p of planned) {
      if (Object.keys(p.values.account).length > 0 || Object.keys(p.values.contact).length === 0) {
        // An update with nothing for either object still touches the Account: a missing one fails.
        records.push({ write: p.i, record: { attributes: { type: 'Account' }, Id: p.w.externalId, ...p.values.account } });
      }
      if (Object.keys(p.values.contact).length === 0) continue;
      const contactId = this.#primaryContact.get(p.w.externalId);
      if (contactId !== undefined) {
        records.push({ write: p.i, accountId: p.w.externalId, record: { attributes: { type: 'Contact' }, Id: contactId, ...p.values.contact } });
      } else if (contactNeeded(p.values.contact)) {
        // The Account has no Contact yet: make its primary one, with the name it has.
        const { first, last } = splitName((p.before['name'] as string | null | undefined) ?? null);
        newContacts.push({
          write: p.i,
          accountId: p.w.externalId,
          record: { attributes: { type: 'Contact' }, [TANDEM_ID_FIELD]: p.w.tandemId, AccountId: p.w.externalId, FirstName: first, LastName: last ?? NO_NAME, ...p.values.contact },
        });
      }
    }
    // The mixed PATCH (Accounts and Contacts, 200 records a subrequest) and the Contacts to make.
    const patches = chunks(records, MAX_BATCH);
    const parts: Part[] = patches.map((part, k) => ({
      what: 'update',
      method: 'PATCH',
      url: '/composite/sobjects',
      referenceId: `updates${String(k)}`,
      body: { allOrNone: false, records: part.map((r) => r.record) },
    }));
    if (newContacts.length > 0) {
      parts.push({
        what: 'contact upsert',
        method: 'PATCH',
        url: `/composite/sobjects/Contact/${TANDEM_ID_FIELD}`,
        referenceId: 'newContacts',
        body: { allOrNone: false, records: newContacts.map((r) => r.record) },
      });
    }
    const finish = (): void => {
      for (const p of planned) {
        if (outcomes[p.i] !== undefined) continue;
        const fields = { ...p.before, ...normalizeCustomerFields(this.#mapping, p.w.fields) };
        outcomes[p.i] = { ok: true, object: { id: p.w.externalId, fields: completeCustomerFields(this.#mapping, fields), deleted: false, tandemId: p.w.tandemId, version: undefined } };
      }
    };
    if (parts.length === 0) {
      finish();
      return undefined;
    }
    return {
      parts,
      done: (answers) => {
        patches.forEach((part, k) => {
          const answer = answers[k];
          if (answer?.ok !== true) {
            const error = answer?.ok === false ? answer.error : new ConnectorError('retry', 'no answer to the update');
            for (const r of part) fail(r.write, error);
            return;
          }
          const results = this.#results(answer.body, part.length, 'update');
          part.forEach((r, n) => {
            const result = results[n];
            if (result?.success === true) return;
            const error = result === undefined ? new ConnectorError('retry', 'no result') : this.#recordError(result, `${r.accountId === undefined ? 'account' : 'contact'} update`);
            if (r.accountId !== undefined && isMissing(error)) {
              // The cached primary Contact is gone (deleted outside): find or make another on the retry.
              this.#primaryContact.delete(r.accountId);
              fail(r.write, new ConnectorError('retry', `the primary Contact of Account ${r.accountId} was deleted meanwhile (${error.externalCode ?? ''}); the retry finds or makes another`));
              return;
            }
            fail(r.write, error);
          });
        });
        if (newContacts.length > 0) {
          const answer = answers[patches.length];
          if (answer?.ok !== true) {
            const error = answer?.ok === false ? answer.error : new ConnectorError('retry', 'no answer to the contact upsert');
            for (const r of newContacts) fail(r.write, error);
          } else {
            const results = this.#results(answer.body, newContacts.length, 'contact create');
            newContacts.forEach((r, k) => {
              const result = results[k];
              if (result?.success === true && result.id !== undefined && r.accountId !== undefined) this.#primaryContact.set(r.accountId, result.id);
              else fail(r.write, result === undefined ? new ConnectorError('retry', 'no result') : this.#recordError(result, 'contact create'));
            });
          }
        }
        finish();
        return Promise.resolve();
      },
    };
  }

  #deletes(writes: readonly BatchWrite[], outcomes: (BatchOutcome | undefined)[], fail: (i: number, error: ConnectorError) => void): Unit | undefined {
    const deletes = writes.flatMap((w, i) => (w.op === 'delete' ? [{ i, w }] : []));
    if (deletes.length === 0) return undefined;
    const valid = deletes.filter(({ i, w }) => {
      if (isAccountId(w.externalId)) return true;
      outcomes[i] = { ok: true, object: undefined }; // no such Account can exist: gone either way
      return false;
    });
    if (valid.length === 0) return undefined;
    const ids = valid.map(({ w }) => w.externalId).join(',');
    return {
      parts: [{ what: 'delete', method: 'DELETE', url: `/composite/sobjects?ids=${ids}&allOrNone=false`, referenceId: 'deletes' }],
      done: ([answer]) => {
        if (answer?.ok !== true) {
          const error = answer?.ok === false ? answer.error : new ConnectorError('retry', 'no answer to the delete');
          for (const { i } of valid) fail(i, error);
          return Promise.resolve();
        }
        const results = this.#results(answer.body, valid.length, 'delete');
        valid.forEach(({ i, w }, k) => {
          const result = results[k];
          this.#primaryContact.delete(w.externalId);
          if (result?.success === true) {
            outcomes[i] = { ok: true, object: undefined };
            return;
          }
          const error = result === undefined ? new ConnectorError('retry', 'no result') : this.#recordError(result, `Account ${w.externalId} delete`);
          if (isMissing(error)) outcomes[i] = { ok: true, object: undefined }; // already deleted, or never there
          else fail(i, error);
        });
        return Promise.resolve();
      },
    };
  }

  async #one(write: BatchWrite, signal: AbortSignal | undefined): Promise<ExternalObject | undefined> {
    const [outcome] = await this.#writeMany([write], () => Promise.resolve(), signal);
    if (outcome === undefined) throw new ConnectorError('retry', 'the write got no outcome');
    if (!outcome.ok) throw outcome.error;
    return outcome.object;
  }

  #customerBinding(): EntityBinding {
    const mapping = this.#mapping;
    return {
      fields: mapping.fields,
      maxBatch: MAX_BATCH,
      normalize: (fields) => normalizeCustomerFields(mapping, fields),
      create: async (tandemId: string, fields: Record<string, unknown>, options: WriteOptions) => {
        const object = await this.#one({ op: 'create', tandemId, fields, idempotencyKey: options.idempotencyKey }, options.signal);
        if (object === undefined) throw new ConnectorError('retry', 'the create answered no object');
        return object;
      },
      update: async (externalId: string, fields: Record<string, unknown>, options: UpdateOptions) => {
        await this.#one(
          { op: 'update', externalId, tandemId: options.tandemId ?? '', fields, previous: options.previous, idempotencyKey: options.idempotencyKey },
          options.signal,
        );
        // The object as Salesforce now holds it, with its new SystemModstamp.
        const after = await this.#get(externalId, options.signal);
        if (after === undefined || after.deleted) {
          throw new ConnectorError('fatal', `Salesforce Account ${externalId} is gone after the update`, { externalCode: 'ENTITY_IS_DELETED', status: 404 });
        }
        return after;
      },
      delete: async (externalId: string, options: WriteOptions) => {
        await this.#one({ op: 'delete', externalId, idempotencyKey: options.idempotencyKey }, options.signal);
      },
      get: (externalId: string, signal?: AbortSignal) => this.#get(externalId, signal),
      writeMany: (writes, options) => this.#writeMany(writes, options.beforeRequest, options.signal),
      findByTandemId: async (tandemId: string, signal?: AbortSignal) => {
        const [found] = await this.#readCustomers(`${TANDEM_ID_FIELD} = ${soqlString(tandemId)}`, signal, { suffix: ' ORDER BY CreatedDate ASC LIMIT 1' });
        return found === undefined ? undefined : this.#object(found);
      },
      list: async (cursor: string | undefined, signal?: AbortSignal) => {
        await this.#ensureSession(signal);
        const where = cursor === undefined ? 'IsDeleted = false' : `Id > ${soqlString(cursor)}`;
        const page = await this.#readCustomers(where, signal, { suffix: ` ORDER BY Id ASC LIMIT ${String(this.#listPageSize)}` });
        const last = page.at(-1);
        return {
          objects: page.map((c) => this.#object(c)),
          next: page.length === this.#listPageSize && last !== undefined ? String(last.account['Id']) : undefined,
        };
      },
    };
  }

  // --- the client ----------------------------------------------------------------------------

  binding(entityType: string): EntityBinding | undefined {
    return entityType === 'customer' ? this.#customers : undefined;
  }

  /**
   * Signs in (the org id comes with the token), reads the identity (not counted against the daily
   * allocation) and describes Account and Contact to check the mapping's fields exist.
   */
  async validate(signal?: AbortSignal): Promise<{ accountId: string; accountName?: string | undefined }> {
    await this.#ensureSession(signal);
    let accountName: string | undefined;
    if (this.#identityUrl !== undefined && this.#identityUrl !== '') {
      const identity = await this.#request<{ username?: string; organization_id?: string }>('identity read', signal, 'GET', this.#identityUrl);
      accountName = identity.username;
      this.#orgId ??= identity.organization_id;
    }
    await this.#checkMapping(signal);
    return { accountId: this.#orgId ?? 'unknown', accountName };
  }

  async #checkMapping(signal: AbortSignal | undefined): Promise<void> {
    const problems: string[] = [];
    for (const object of ['Account', 'Contact'] as const) {
      const describe = await this.#request<{ fields: { name: string; type: string; createable: boolean; updateable: boolean; externalId?: boolean }[] }>(
        `${object} describe`,
        signal,
        'GET',
        `/sobjects/${object}/describe`,
      );
      const byName = new Map(describe.fields.map((f) => [f.name.toLowerCase(), f]));
      const tandem = byName.get(TANDEM_ID_FIELD.toLowerCase());
      if (tandem?.externalId !== true) problems.push(`${object}.${TANDEM_ID_FIELD} must exist as a unique External ID text field`);
      for (const name of this.#mapping.select[object]) {
        const field = byName.get(name.toLowerCase());
        if (field === undefined) problems.push(`${object}.${name} does not exist`);
        else if (!['Id', 'IsDeleted', 'CreatedDate', 'SystemModstamp', TANDEM_ID_FIELD, 'AccountId', 'Name'].includes(name) && !(field.createable && field.updateable)) {
          problems.push(`${object}.${name} is not writable`);
        }
      }
    }
    if (problems.length > 0) {
      throw new ConnectorError('fatal', `The Salesforce org does not fit the customer mapping: ${problems.join('; ')}`, { externalCode: 'tandem_invalid_mapping' });
    }
  }

  /**
   * The safety net: the replication resources `sobjects/{Account,Contact}/{updated,deleted}` over
   * whole minutes [cursor, now). The cursor is the `latestDateCovered` reached. A poll before a
   * whole new minute has passed makes no call. Contact changes are reported as their Account's.
   */
  async poll(cursor: string | undefined, signal?: AbortSignal): Promise<PollResult> {
    signal?.throwIfAborted();
    const nowMs = this.#now().getTime();
    // A new feed starts a minute back: the replication windows are whole minutes, and a clock a
    // little ahead of Salesforce's must not skip a change (a replayed one is only re-read).
    if (cursor === undefined) return { notifications: [], cursor: new Date(floorMinute(nowMs) - 60_000).toISOString(), more: false };
    const start = sfDateMs(cursor);
    if (start === undefined) {
      throw new ConnectorError('fatal', `Not a Salesforce poll cursor: ${JSON.stringify(cursor.slice(0, 100))}`, { externalCode: 'tandem_invalid_cursor' });
    }
    const limit = floorMinute(nowMs);
    if (limit <= start) return { notifications: [], cursor, more: false };
    const end = Math.min(limit, start + this.#pollMaxWindowMs);
    try {
      return await this.#pollWindow(start, end, end < limit, signal);
    } catch (error) {
      if (error instanceof ConnectorError && error.externalCode === 'INVALID_REPLICATION_DATE') {
        return { notifications: [], cursor: new Date(limit).toISOString(), more: false, resync: true };
      }
      throw error;
    }
  }

  async #pollWindow(start: number, end: number, more: boolean, signal: AbortSignal | undefined): Promise<PollResult> {
    const window = (s: number, e: number): string => `start=${encodeURIComponent(new Date(s).toISOString())}&end=${encodeURIComponent(new Date(e).toISOString())}`;
    type Deleted = { deletedRecords: { id: string; deletedDate: string }[]; earliestDateAvailable: string; latestDateCovered: string };
    const accountDeletes = await this.#request<Deleted>('deleted Accounts read', signal, 'GET', `/sobjects/Account/deleted/?${window(start, end)}`);
    const covered = sfDateMs(accountDeletes.latestDateCovered) ?? start;
    const earliest = sfDateMs(accountDeletes.earliestDateAvailable);
    // The Recycle Bin was emptied past the cursor (or within its minute: the stamp is to the minute),
    // so deletes may have been missed. A purge already answered with a resync is not asked again.
    if (earliest !== undefined && (earliest > start || (earliest === start && this.#resyncedFor !== earliest))) {
      this.#resyncedFor = earliest;
      return { notifications: [], cursor: new Date(Math.max(covered, start)).toISOString(), more: false, resync: true };
    }
    if (covered <= start) return { notifications: [], cursor: new Date(start).toISOString(), more: false };
    const span = window(start, covered);
    const accountUpdates = await this.#request<{ ids: string[] }>('updated Accounts read', signal, 'GET', `/sobjects/Account/updated/?${span}`);
    const contactUpdates = await this.#request<{ ids: string[] }>('updated Contacts read', signal, 'GET', `/sobjects/Contact/updated/?${span}`);
    const contactDeletes = await this.#request<Deleted>('deleted Contacts read', signal, 'GET', `/sobjects/Contact/deleted/?${span}`);

    const notifications: ExternalNotification[] = [];
    const deletedAccounts = new Set<string>();
    for (const d of accountDeletes.deletedRecords) {
      deletedAccounts.add(d.id);
      this.#primaryContact.delete(d.id);
      const at = sfDateMs(d.deletedDate) ?? covered;
      notifications.push({ eventId: `poll:${d.id}:deleted:${String(at)}`, entityType: 'customer', externalId: d.id, op: 'delete', occurredAt: new Date(at).toISOString() });
    }
    // Contact changes → their Accounts, with the latest change time of each.
    const touched = new Map<string, number>();
    /** Accounts one of whose Contacts changed after its creation (or was deleted): not a mere create. */
    const contactChanged = new Set<string>();
    const contactIds = [...new Set([...contactUpdates.ids, ...contactDeletes.deletedRecords.map((d) => d.id)])];
    for (const part of chunks(contactIds, MAX_BATCH)) {
      const rows = await this.#query(`SELECT Id, AccountId, IsDeleted, CreatedDate, SystemModstamp FROM Contact WHERE Id IN (${part.map(soqlString).join(', ')})`, signal, { all: true });
      for (const row of rows) {
        const accountId = typeof row['AccountId'] === 'string' ? row['AccountId'] : undefined;
        if (accountId === undefined || deletedAccounts.has(accountId)) continue;
        const modstamp = sfDateMs(row['SystemModstamp']) ?? covered;
        touched.set(accountId, Math.max(touched.get(accountId) ?? 0, modstamp));
        if (row['IsDeleted'] === true || modstamp !== sfDateMs(row['CreatedDate'])) contactChanged.add(accountId);
      }
    }
    const accountIds = [...new Set([...accountUpdates.ids, ...touched.keys()])].filter((id) => !deletedAccounts.has(id));
    const changes: ExternalNotification[] = [];
    for (const part of chunks(accountIds, MAX_BATCH)) {
      const rows = await this.#query(`SELECT Id, CreatedDate, SystemModstamp FROM Account WHERE Id IN (${part.map(soqlString).join(', ')})`, signal, { all: true });
      for (const row of rows) {
        const id = String(row['Id']);
        const created = sfDateMs(row['CreatedDate']) ?? 0;
        const modstamp = sfDateMs(row['SystemModstamp']) ?? covered;
        const at = Math.max(modstamp, touched.get(id) ?? 0);
        // Made in this window, and neither it nor its Contacts changed since (to the second, as
        // Salesforce stamps): a create.
        const op = created >= start && modstamp === created && !contactChanged.has(id) ? 'create' : 'update';
        changes.push({ eventId: `poll:${id}:${String(at)}`, entityType: 'customer', externalId: id, op, occurredAt: new Date(at).toISOString() });
      }
    }
    notifications.push(...changes);
    notifications.sort((a, b) => Date.parse(a.occurredAt) - Date.parse(b.occurredAt) || (a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0));
    return { notifications, cursor: new Date(covered).toISOString(), more };
  }

  /** Change Data Capture over CometD (./cdc-stream.ts); Tandem's own writes are dropped there. */
  async stream(cursor: string | undefined, onBatch: (batch: StreamBatch) => Promise<void>, signal: AbortSignal): Promise<void> {
    await this.#ensureSession(signal);
    await streamChanges({
      connection: this.#conn,
      reauthorize: () => this.reauthorize(),
      ownClient: this.#tag,
      entityType: 'customer',
      cursor,
      onBatch,
      signal,
    });
  }
}

export const salesforceConnector: ConnectorDefinition<SalesforceCredentials, SalesforceSettings> = {
  id: 'salesforce',
  displayName: 'Salesforce',
  credentialsSchema: salesforceCredentialsSchema,
  settingsSchema: salesforceSettingsSchema,
  entities: { customer: { directions: ['both', 'outbound', 'inbound'] } },
  // Salesforce has no per-second limit: it counts a daily allocation (100,000+ calls per 24 h,
  // handled as 'quota') and refuses more than 25 concurrent long-running (≥ 20 s) calls. 20/s with
  // a burst of 20 keeps a connection far from the concurrency limit (calls take 0.1–0.5 s, so a
  // handful in flight) while a burst of writes still goes out fast: with sObject Collections 10,000
  // changed customers are about 50 calls (Composite calls carry several collections).
  rateLimit: { requestsPerSecond: 20, burst: 20 },
  changeFeeds: { webhooks: false, polling: true, streaming: true },
  createClient: (credentials, settings, context) => new SalesforceConnectorClient(credentials, settings, context),
};
