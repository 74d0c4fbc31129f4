// /v1/webhook_endpoints: the endpoints an account's events are delivered to. The secret
// (`whsec_…`) is shown once, in the create answer.
import type { EndpointRecord } from './account.ts';
import type { HandlerContext, HandlerResult, Route } from './context.ts';
import { invalidParam, missingParam, noSuch } from './errors.ts';
import { newId, newWebhookSecret } from './ids.ts';
import { LIST_PARAMS, paginate } from './list.ts';
import { mergeMetadata, type ParamReader } from './params.ts';
import { EVENT_TYPES, type WebhookEndpoint } from './types.ts';

function readUrl(params: ParamReader): string | undefined {
  const url = params.string('url', { max: 2048 });
  if (url === null) throw missingParam('url');
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidParam(`Invalid URL: ${url}`, 'url', 'url_invalid');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalidParam(`Invalid URL: ${url}. URLs must begin with http:// or https://`, 'url', 'url_invalid');
  }
  return url;
}

function readEnabledEvents(params: ParamReader): string[] | undefined {
  const events = params.stringArray('enabled_events');
  if (events === undefined) return undefined;
  if (events.length === 0) throw missingParam('enabled_events');
  events.forEach((type, index) => {
    if (type !== '*' && !(EVENT_TYPES as readonly string[]).includes(type)) {
      throw invalidParam(
        `Invalid enabled_events[${index}]: must be one of ${['*', ...EVENT_TYPES].join(', ')}`,
        `enabled_events[${index}]`,
      );
    }
  });
  return [...new Set(events)];
}

function find(ctx: HandlerContext): EndpointRecord {
  const id = ctx.path.id ?? '';
  const record = ctx.account.endpoints.get(id);
  if (record === undefined) throw noSuch('webhook endpoint', id);
  return record;
}

function create(ctx: HandlerContext): HandlerResult {
  ctx.params.allow(['url', 'enabled_events', 'description', 'metadata', 'api_version', 'connect', 'expand']);
  const url = readUrl(ctx.params);
  if (url === undefined) throw missingParam('url');
  const enabledEvents = readEnabledEvents(ctx.params);
  if (enabledEvents === undefined) throw missingParam('enabled_events');
  const description = ctx.params.string('description', { max: 5000 }) ?? null;
  const apiVersion = ctx.params.string('api_version') ?? null;
  if (ctx.params.boolean('connect') === true) {
    throw invalidParam('Connect endpoints are not supported by the simulator.', 'connect');
  }
  const metadata = mergeMetadata({}, ctx.params.metadata('metadata'));
  const secret = newWebhookSecret();
  const endpoint: WebhookEndpoint = {
    id: newId('we'),
    object: 'webhook_endpoint',
    api_version: apiVersion,
    application: null,
    created: ctx.nowSeconds(),
    description,
    enabled_events: enabledEvents,
    livemode: false,
    metadata,
    status: 'enabled',
    url,
  };
  const record: EndpointRecord = { seq: ctx.account.nextSeq(), endpoint, secret };
  ctx.account.endpoints.set(endpoint.id, record);
  ctx.account.endpointOrder.push(record);
  return { body: { ...endpoint, secret } };
}

function retrieve(ctx: HandlerContext): HandlerResult {
  ctx.params.allow(['expand']);
  return { body: find(ctx).endpoint };
}

function update(ctx: HandlerContext): HandlerResult {
  ctx.params.allow(['url', 'enabled_events', 'description', 'metadata', 'disabled', 'expand']);
  const record = find(ctx);
  const url = readUrl(ctx.params);
  const enabledEvents = readEnabledEvents(ctx.params);
  const description = ctx.params.string('description', { max: 5000 });
  const disabled = ctx.params.boolean('disabled');
  const metadata = ctx.params.metadata('metadata');
  const endpoint = { ...record.endpoint, metadata: mergeMetadata(record.endpoint.metadata, metadata) };
  if (url !== undefined) endpoint.url = url;
  if (enabledEvents !== undefined) endpoint.enabled_events = enabledEvents;
  if (description !== undefined) endpoint.description = description;
  if (disabled !== undefined) endpoint.status = disabled ? 'disabled' : 'enabled';
  record.endpoint = endpoint;
  return { body: endpoint };
}

function remove(ctx: HandlerContext): HandlerResult {
  ctx.params.allow([]);
  const record = find(ctx);
  ctx.account.endpoints.delete(record.endpoint.id);
  const index = ctx.account.endpointOrder.indexOf(record);
  if (index >= 0) ctx.account.endpointOrder.splice(index, 1);
  return { body: { id: record.endpoint.id, object: 'webhook_endpoint', deleted: true } };
}

function list(ctx: HandlerContext): HandlerResult {
  ctx.params.allow(LIST_PARAMS);
  const items = ctx.account.endpointOrder
    .map((r) => ({ seq: r.seq, item: r.endpoint }))
    .reverse();
  return {
    body: paginate(items, ctx.params, {
      url: '/v1/webhook_endpoints',
      kind: 'webhook endpoint',
      seqOf: (id) => ctx.account.endpoints.get(id)?.seq,
    }),
  };
}

export const webhookEndpointRoutes: Route[] = [
  { method: 'POST', pattern: '/v1/webhook_endpoints', handler: create },
  { method: 'GET', pattern: '/v1/webhook_endpoints', handler: list },
  { method: 'GET', pattern: '/v1/webhook_endpoints/:id', handler: retrieve },
  { method: 'POST', pattern: '/v1/webhook_endpoints/:id', handler: update },
  { method: 'DELETE', pattern: '/v1/webhook_endpoints/:id', handler: remove },
];

/** Whether an endpoint wants events of `type` (`*` wants all). */
export function endpointWants(endpoint: WebhookEndpoint, type: string): boolean {
  return endpoint.status === 'enabled' && (endpoint.enabled_events.includes('*') || endpoint.enabled_events.includes(type));
}
