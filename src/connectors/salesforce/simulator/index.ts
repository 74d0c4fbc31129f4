// The Salesforce simulator: a stateful fake org (OAuth, REST sObjects, SOQL, sObject Collections,
// replication, limits, faults) that `jsforce` works against unchanged.
export {
  startSalesforceSimulator,
  DEFAULT_CLIENT_ID,
  DEFAULT_CLIENT_SECRET,
  DEFAULT_USERNAME,
  DEFAULT_PASSWORD,
  LATEST_API_VERSION,
} from './simulator.ts';
export type { SalesforceSimulator, SalesforceSimulatorOptions, SimulatorLogger } from './simulator.ts';
export type { SalesforceSimulatorAdmin, ChangeEntry, RequestStats, RecordView } from './admin.ts';
export type { FaultSettings } from './faults.ts';
export type { ConnectedAppInput, UserInput } from './oauth.ts';
export { idChecksum, normalizeId, to18 } from './ids.ts';
