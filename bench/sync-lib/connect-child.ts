// A fallback for creating a connection when POST /api/v1/connections fails over real HTTP (see
// docs/benchmarks-sync.md: the route aborts its own Stripe calls as soon as the request body has
// been read). Run as a child process while Tandem is stopped, on Tandem's DATA_DIR: it calls the
// same `Connections.create` the route calls (credentials checked with the simulator, webhook
// registered at PUBLIC_URL, credentials sealed with the data dir's secret key), without the HTTP
// route and without starting a sync engine. Tandem loads the connection when it starts again.
//
//   node bench/sync-lib/connect-child.ts <dataDir> <publicUrl> <pollMs> '<connection JSON>'
// prints {"id":"conn_…"} on success.
import { Workspaces } from '../../src/auth/workspaces.ts';
import { createIdFactory } from '../../src/catalog/ids.ts';
import { ConnectorRegistry, builtInConnectors } from '../../src/connectors/index.ts';
import { createSecretBox, loadSecretKey } from '../../src/security/secrets.ts';
import { openStore } from '../../src/store/open-store.ts';
import { Connections } from '../../src/sync/connections.ts';

const [dataDir, publicUrl, pollMs, input] = process.argv.slice(2);
if (dataDir === undefined || publicUrl === undefined || pollMs === undefined || input === undefined) {
  process.stderr.write('usage: connect-child.ts <dataDir> <publicUrl> <pollMs> <connection JSON>\n');
  process.exit(2);
}
const store = await openStore({ dataDir });
try {
  const ids = createIdFactory();
  const workspaceId = await new Workspaces(store, ids).defaultWorkspaceId();
  if (workspaceId === undefined) throw new Error('no default workspace: start Tandem on this data dir first');
  const connections = new Connections({
    store,
    connectors: new ConnectorRegistry(builtInConnectors),
    secrets: createSecretBox(loadSecretKey(undefined, dataDir)),
    ids,
    publicUrl,
    defaults: { pollIntervalMs: Number(pollMs) },
  });
  const view = await connections.create(workspaceId, JSON.parse(input) as Parameters<Connections['create']>[1]);
  process.stdout.write(`${JSON.stringify({ id: view.id })}\n`);
} finally {
  await store.close();
}
