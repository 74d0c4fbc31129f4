// The Stripe simulator: a stateful fake of the Stripe API (customers, webhook endpoints, events,
// signed webhook deliveries) that the official `stripe` package works against unchanged.
export { startStripeSimulator, DEFAULT_API_VERSION } from './simulator.ts';
export type { StripeSimulator, StripeSimulatorOptions, SimulatorLogger } from './simulator.ts';
export type { StripeSimulatorAdmin, AccountSummary, CustomerView } from './admin.ts';
export type { Delivery, DeliveryAttempt, DeliveryOptions, DeliveryStatus } from './delivery.ts';
export { signPayload } from './delivery.ts';
export type { FaultInput, FaultSettings, FaultSnapshot, ErrorPhase } from './faults.ts';
export type { RequestLogEntry, RequestStats } from './account.ts';
export type { Customer, StripeEvent, WebhookEndpoint, Address } from './types.ts';
