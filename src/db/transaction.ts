import { PgTransaction } from 'drizzle-orm/pg-core';
import type { Db } from './client.ts';

/**
 * Runs `fn` in a transaction, joining the caller's when `db` already is one (as openstatus does):
 * a service that needs atomicity calls this, and a caller that composes several services in one
 * transaction (the worker's store step, import, tests) passes its own `tx` and gets one commit.
 * Joining rather than nesting (a savepoint) keeps one rule: the outermost caller decides.
 * @example await withTransaction(db, async (tx) => { await completeRecording(tx, lease, …); await recordStored(tx, …); });
 */
export async function withTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  // drizzle types a transaction apart from the database it came from; it has the same query API
  if (db instanceof PgTransaction) return fn(db as unknown as Db);
  return db.transaction((tx) => fn(tx as unknown as Db));
}
