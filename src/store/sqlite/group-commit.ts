// Group commit for SQLite: transactions that arrive together share one database transaction, each in
// its own savepoint, and one COMMIT.
//
// Why: on SQLite the commit is the expensive part of a small write (the WAL append and its write
// syscalls cost ~10× the statements of a customer create on the machines we measured), and SQLite
// runs one write transaction at a time anyway. Sharing the commit keeps every guarantee of a
// transaction of its own:
//
// - All or nothing per caller: a caller's writes run in a savepoint; when its function throws, they
//   are rolled back to that savepoint and the caller gets the error. Its neighbours are untouched.
// - Durable before acknowledged: a caller's promise resolves only after the shared COMMIT returned.
//   When the COMMIT fails, every caller of the batch gets that error and nothing of the batch is kept.
// - Isolation as before: callers run one after the other on the one connection, each seeing the
//   writes of the callers before it (as it would had they committed just before it).
//
// Batching costs no waiting: a batch starts at the first `setImmediate` after its first caller, so it
// takes whoever arrived in the same turn of the event loop (requests parsed from the same poll).
// Callers that arrive while a batch runs form the next one.
import { sql } from 'kysely';
import type { Db, Tx } from '../store.ts';

export interface GroupCommitOptions {
  /** Callers per shared transaction at most; the rest wait for the next one. Default 256. */
  maxBatch?: number;
}

export interface GroupCommitStats {
  /** Database transactions committed or rolled back. */
  batches: number;
  /** Callers served. */
  jobs: number;
}

interface Job {
  fn: (trx: Tx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

const SAVEPOINT = sql.raw('tandem_group_job');

export class GroupCommit {
  readonly #db: Db;
  readonly #maxBatch: number;
  #queue: Job[] = [];
  #scheduled = false;
  #running = false;
  readonly #stats: GroupCommitStats = { batches: 0, jobs: 0 };

  constructor(db: Db, options: GroupCommitOptions = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 256;
  }

  get stats(): GroupCommitStats {
    return { ...this.#stats };
  }

  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#runBatch();
    });
  }

  async #runBatch(): Promise<void> {
    this.#running = true;
    const batch = this.#queue.splice(0, this.#maxBatch);
    const done: Array<{ job: Job; value: unknown }> = [];
    try {
      await this.#db.transaction().execute(async (trx) => {
        for (const job of batch) {
          await sql`savepoint ${SAVEPOINT}`.execute(trx);
          try {
            const value = await job.fn(trx);
            await sql`release ${SAVEPOINT}`.execute(trx);
            done.push({ job, value });
          } catch (error) {
            await sql`rollback to ${SAVEPOINT}`.execute(trx);
            await sql`release ${SAVEPOINT}`.execute(trx);
            job.reject(error);
          }
        }
      });
      for (const { job, value } of done) job.resolve(value);
    } catch (error) {
      // BEGIN, a savepoint statement or COMMIT failed: nothing of this batch is kept.
      // (A caller already rejected with its own error keeps that one: a promise settles once.)
      for (const job of batch) job.reject(error);
    } finally {
      this.#stats.batches += 1;
      this.#stats.jobs += batch.length;
      this.#running = false;
      this.#schedule();
    }
  }
}
