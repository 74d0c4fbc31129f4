// Write batching: a binding that can write many objects in one request (Salesforce's sObject
// Collections: 200 a call) is wrapped so the worker's lanes keep writing one record at a time, as
// they do for every connector, while their writes leave together. A write waits in the queue until
// every lane is either waiting there too or has nothing more to write, or the queue is full, or it
// has waited `maxWaitMs`; then the queue goes out in one writeMany. Each caller gets its own outcome
// (its object, or the ConnectorError of its own refusal); a failure of the whole request fails every
// write of it, as it would have failed each alone. The rate budget is taken per request, not per write.
import type { BatchOptions, BatchWrite, EntityBinding, ExternalObject, UpdateOptions, WriteOptions } from '../connectors/connector.ts';

type BatchingBinding = EntityBinding & Required<Pick<EntityBinding, 'writeMany' | 'maxBatch'>>;

export function canBatch(binding: EntityBinding): binding is BatchingBinding {
  return binding.writeMany !== undefined && binding.maxBatch !== undefined && binding.maxBatch > 1;
}

interface Queued {
  write: BatchWrite;
  resolve: (object: ExternalObject | undefined) => void;
  reject: (error: unknown) => void;
}

export interface BatcherOptions {
  /** Waits for the rate budget: called before every request a batch makes. */
  beforeRequest: (signal: AbortSignal | undefined) => Promise<void>;
  /** The longest a write waits for others to join it. */
  maxWaitMs?: number;
}

/** Counts of what went out, for tests and the benchmark. */
export interface BatcherStats {
  batches: number;
  writes: number;
}

export class WriteBatcher {
  readonly #binding: BatchingBinding;
  readonly #options: BatcherOptions;
  #queue: Queued[] = [];
  #busy = 0;
  #timer: NodeJS.Timeout | undefined;
  #scheduled = false;
  readonly stats: BatcherStats = { batches: 0, writes: 0 };

  constructor(binding: BatchingBinding, options: BatcherOptions) {
    this.#binding = binding;
    this.#options = options;
  }

  get maxBatch(): number {
    return this.#binding.maxBatch;
  }

  /**
   * Runs one lane's work on a record: while it runs and is not waiting in the queue, the queue waits
   * for its write (a batch leaves when no lane is still on its way to it).
   */
  async lane<T>(work: () => Promise<T>): Promise<T> {
    this.#busy += 1;
    try {
      return await work();
    } finally {
      this.#busy -= 1;
      this.#schedule();
    }
  }

  /** The binding whose create/update/delete go through the queue; reads pass straight through. */
  binding(): EntityBinding {
    const inner = this.#binding;
    return {
      fields: inner.fields,
      ...(inner.normalize === undefined ? {} : { normalize: (fields: Record<string, unknown>) => inner.normalize?.(fields) ?? fields }),
      get: (externalId, signal) => inner.get(externalId, signal),
      ...(inner.findByTandemId === undefined ? {} : { findByTandemId: (tandemId: string, signal?: AbortSignal) => inner.findByTandemId?.(tandemId, signal) ?? Promise.resolve(undefined) }),
      ...(inner.list === undefined ? {} : { list: inner.list.bind(inner) }),
      create: async (tandemId, fields, options: WriteOptions) => {
        const object = await this.#enqueue({ op: 'create', tandemId, fields, idempotencyKey: options.idempotencyKey }, options.signal);
        if (object === undefined) throw new Error('writeMany answered no object for a create');
        return object;
      },
      update: async (externalId, fields, options: UpdateOptions) => {
        const object = await this.#enqueue(
          { op: 'update', externalId, tandemId: options.tandemId ?? '', fields, previous: options.previous, idempotencyKey: options.idempotencyKey },
          options.signal,
        );
        if (object === undefined) throw new Error('writeMany answered no object for an update');
        return object;
      },
      delete: async (externalId, options: WriteOptions) => {
        await this.#enqueue({ op: 'delete', externalId, idempotencyKey: options.idempotencyKey }, options.signal);
      },
    };
  }

  #enqueue(write: BatchWrite, signal: AbortSignal | undefined): Promise<ExternalObject | undefined> {
    signal?.throwIfAborted();
    const done = new Promise<ExternalObject | undefined>((resolve, reject) => {
      this.#queue.push({ write, resolve, reject });
    });
    // The caller now waits in the queue, not on its way to it; it is busy again once answered.
    this.#busy -= 1;
    this.#timer ??= setTimeout(() => {
      this.#flush(signal);
    }, this.#options.maxWaitMs ?? 200);
    this.#schedule(signal);
    return done.finally(() => {
      this.#busy += 1;
    });
  }

  #schedule(signal?: AbortSignal): void {
    if (this.#queue.length === 0 || this.#scheduled) return;
    if (this.#queue.length < this.#binding.maxBatch && this.#busy > 0) return;
    // After the current turn: lanes answered in this turn may still join.
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#queue.length >= this.#binding.maxBatch || this.#busy <= 0) this.#flush(signal);
    });
  }

  #flush(signal: AbortSignal | undefined): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#binding.maxBatch);
      void this.#send(batch, signal);
    }
  }

  async #send(batch: Queued[], signal: AbortSignal | undefined): Promise<void> {
    this.stats.batches += 1;
    this.stats.writes += batch.length;
    const options: BatchOptions = { signal, beforeRequest: () => this.#options.beforeRequest(signal) };
    try {
      const outcomes = await this.#binding.writeMany(
        batch.map((q) => q.write),
        options,
      );
      if (outcomes.length !== batch.length) throw new Error(`writeMany answered ${String(outcomes.length)} outcomes for ${String(batch.length)} writes`);
      batch.forEach((queued, i) => {
        const outcome = outcomes[i];
        if (outcome === undefined) queued.reject(new Error('writeMany answered no outcome'));
        else if (outcome.ok) queued.resolve(outcome.object);
        else queued.reject(outcome.error);
      });
    } catch (error) {
      for (const queued of batch) queued.reject(error);
    }
  }
}
