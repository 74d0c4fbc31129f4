// Embedded log delivery: `node bench/log-delivery.ts '<json LogDeliverySpec>'`, started by bench/run.ts.
// Appends `changes` customer changes through the outbox (as catalog writes do, `appendBatch` per
// transaction), then subscribes a no-op handler with the embedded log and times how long until the
// group's lag is 0, i.e. every change was delivered and its offset committed. This process is the
// one that would be Tandem, so run.ts samples its memory and CPU during the delivery.
import { createIdFactory } from '../src/catalog/ids.ts';
import { createEmbeddedLog } from '../src/log/embedded/embedded-log.ts';
import type { Change } from '../src/log/change.ts';
import { createOutbox } from '../src/log/outbox.ts';
import { openStore } from '../src/store/open-store.ts';
import { sendToParent } from './lib/child.ts';

export interface LogDeliverySpec {
  dataDir: string;
  databaseUrl?: string | undefined;
  changes: number;
  appendBatch: number;
  partitions: number;
  /** Give up (and fail) after this long. */
  timeoutMs: number;
}

export interface LogDeliveryResult {
  changes: number;
  appendSeconds: number;
  appendPerSecond: number;
  /** From subscribe() to the first lag() answering 0. */
  deliverySeconds: number;
  perSecond: number;
  /** Handler calls (≥ changes: delivery is at-least-once). */
  handled: number;
  /** How long until the handler had seen every change (before the last commit); null if it never did. */
  handledSeconds: number | null;
}

const LAG_POLL_MS = 10;

const raw = process.argv[2];
if (raw === undefined) throw new Error("usage: node bench/log-delivery.ts '<json spec>'");
const spec = JSON.parse(raw) as LogDeliverySpec;

const store = await openStore({ dataDir: spec.dataDir, databaseUrl: spec.databaseUrl });
const ids = createIdFactory();
const outbox = createOutbox(spec.partitions);

function customerChange(n: number): Change {
  const now = new Date().toISOString();
  const recordId = ids('cus');
  return {
    id: ids('chg'),
    workspaceId: 'ws_bench',
    entityType: 'customer',
    recordId,
    version: 1,
    op: 'create',
    origin: 'api',
    changedFields: ['billing_address', 'company', 'currency', 'email', 'metadata', 'name', 'phone', 'tax_id'],
    record: {
      id: recordId,
      object: 'customer',
      version: 1,
      name: `Customer ${n}`,
      email: `customer-${n}@example.com`,
      phone: null,
      company: null,
      billing_address: { line1: null, line2: null, city: 'London', state: null, postal_code: null, country: 'GB' },
      currency: 'gbp',
      tax_id: null,
      metadata: { plan: 'pro' },
      created_at: now,
      updated_at: now,
      deleted_at: null,
    },
    correlationId: `req_${n}`,
    createdAt: now,
  };
}

try {
  const appendStart = performance.now();
  for (let done = 0; done < spec.changes; ) {
    const count = Math.min(spec.appendBatch, spec.changes - done);
    await store.transaction(async (trx) => {
      for (let i = 0; i < count; i++) await outbox.append(trx, customerChange(done + i));
    });
    done += count;
  }
  const appendSeconds = (performance.now() - appendStart) / 1000;

  const log = createEmbeddedLog({ store, partitions: spec.partitions, maxAttempts: 8 });
  const group = 'bench';
  let handled = 0;
  let handledAt = 0;
  await sendToParent<LogDeliveryResult>({ type: 'measuring' });
  const start = performance.now();
  log.subscribe({
    group,
    handler: () => {
      handled += 1;
      if (handled === spec.changes) handledAt = performance.now();
      return Promise.resolve();
    },
  });
  for (;;) {
    if ((await log.lag(group)) === 0) break;
    if (performance.now() - start > spec.timeoutMs) throw new Error(`lag was not 0 after ${spec.timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, LAG_POLL_MS));
  }
  const deliverySeconds = (performance.now() - start) / 1000;
  await log.close();
  await sendToParent<LogDeliveryResult>({
    type: 'result',
    result: {
      changes: spec.changes,
      appendSeconds,
      appendPerSecond: spec.changes / appendSeconds,
      deliverySeconds,
      perSecond: spec.changes / deliverySeconds,
      handled,
      handledSeconds: handledAt === 0 ? null : (handledAt - start) / 1000,
    },
  });
} finally {
  await store.close();
}
process.disconnect();
