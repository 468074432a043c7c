import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { and, eq, type SQL, sql } from 'drizzle-orm';
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core';
import { type Db, queryRows } from './client.ts';
import type { recordingEvents, recordings } from './schema.ts';

/**
 * Leased job rows. Two tables are queues whose rows are their own jobs: `recordings` (the
 * ingestion worker) and `recording_events` (the analysis steps after storing). Both carry
 * `lease_owner`, `lease_expires_at`, `next_attempt_at` and `updated_at`, and both are claimed by
 * the one query below; what their states mean is their repository's (src/recordings/transitions.ts,
 * src/analysis/outbox.ts). Every time here is the database's `now()`: workers on hosts whose
 * clocks disagree still agree on what is due and when a lease ends.
 */
export type LeasedTable = typeof recordings | typeof recordingEvents;

/**
 * A new lease owner: `<host>:<pid>:<random>`, unique per worker or runner, and telling an operator
 * (and the crash tests) which process holds a row.
 */
export function newLeaseOwner(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** A row held by one worker: every guarded change names both. */
export type Lease = { id: string; owner: string };

/** The row is no longer held by this worker (its lease expired and another took it): write nothing more. */
export class LeaseLostError extends Error {
  constructor(lease: Lease) {
    super(`the lease on ${lease.id} held by ${lease.owner} was lost`);
    this.name = 'LeaseLostError';
  }
}

/**
 * Claims up to `limit` due rows of `table` for `owner` until `leaseSeconds` from now, and answers
 * the `returning` columns of each.
 *
 * Why this shape (as graphile-worker and pg-boss do it): the CTE picks due rows in
 * `next_attempt_at` order with `FOR UPDATE SKIP LOCKED`, so concurrent workers never block on or
 * double-claim a row, and the outer UPDATE stamps the lease in the same statement, so a claim is
 * atomic. A lease that expired (its worker crashed or hung) makes the row due again: that is the
 * reclaim path, and it is what lets another worker finish a dead worker's job. A row locked by a
 * transaction still in progress (a step being committed) is skipped, expired or not.
 * `reclaimExpired: false` exists only for tests that show what breaks without it.
 *
 * `pending` must be the predicate of the table's partial claim index (schema.ts), so that the
 * claim reads only unfinished rows however many finished ones the table holds.
 * @example const rows = await claimDue(db, recordings, { pending: sql`status = 'queued'`, returning: sql`r.id`, owner, limit: 4, leaseSeconds: 60 });
 */
export async function claimDue<T extends Record<string, unknown>>(
  db: Db,
  table: LeasedTable,
  input: {
    pending: SQL;
    /** Columns of the claimed row, qualified with the alias `r`. */
    returning: SQL;
    owner: string;
    limit: number;
    leaseSeconds: number;
    reclaimExpired?: boolean;
  },
): Promise<T[]> {
  const leaseFree =
    input.reclaimExpired === false
      ? sql`lease_expires_at is null`
      : sql`(lease_expires_at is null or lease_expires_at < now())`;
  return queryRows<T>(
    db,
    sql`
      with due as (
        select id from ${table}
        where ${input.pending}
          and next_attempt_at <= now()
          and ${leaseFree}
        order by next_attempt_at
        limit ${input.limit}
        for update skip locked
      )
      update ${table} r
      set lease_owner = ${input.owner},
          lease_expires_at = now() + make_interval(secs => ${input.leaseSeconds}),
          updated_at = now()
      from due
      where r.id = due.id
      returning ${input.returning}`,
  );
}

function held(table: LeasedTable, lease: Lease): SQL {
  return and(eq(table.id, lease.id), eq(table.leaseOwner, lease.owner)) as SQL;
}

/**
 * Changes a row only while `lease` holds it (and `where`, when given), stamping `updated_at`.
 * Throws LeaseLostError when it no longer does.
 * @example await updateHeld(db, recordings, lease, { status: 'submitting' });
 */
export async function updateHeld<T extends LeasedTable>(
  db: Db,
  table: T,
  lease: Lease,
  values: PgUpdateSetSource<T>,
  where?: SQL,
): Promise<void> {
  // `values` is checked against `table`'s own columns above; both tables share the lease columns
  const rows = await db
    .update(table as typeof recordings)
    .set({ ...values, updatedAt: sql`now()` } as PgUpdateSetSource<typeof recordings>)
    .where(and(held(table, lease), where))
    .returning({ id: table.id });
  if (rows.length === 0) throw new LeaseLostError(lease);
}

export type RetryInput = { attempts: number; error: string; delayMs: number };

/**
 * A transient failure: the row is due again `delayMs` from now, with its attempt count and the
 * error, and the lease released; whatever else it holds stays as it is.
 * @example await retryLater(db, recordings, lease, { attempts: 2, error: 'upstream answered 503', delayMs: 1_500 });
 */
export async function retryLater(db: Db, table: LeasedTable, lease: Lease, input: RetryInput): Promise<void> {
  await updateHeld(db, table, lease, {
    attempts: input.attempts,
    error: input.error,
    nextAttemptAt: sql`now() + make_interval(secs => ${input.delayMs / 1000})`,
    leaseOwner: null,
    leaseExpiresAt: null,
  });
}

/** Pushes the lease's end `leaseSeconds` from now (the heartbeat of a long step); a lost lease is left alone. */
export async function renewLease(db: Db, table: LeasedTable, lease: Lease, leaseSeconds: number): Promise<void> {
  await db
    .update(table)
    .set({ leaseExpiresAt: sql`now() + make_interval(secs => ${leaseSeconds})` })
    .where(held(table, lease));
}

/** Lets the row go without changing anything else: it is due again at its `next_attempt_at`. */
export async function releaseLease(db: Db, table: LeasedTable, lease: Lease): Promise<void> {
  await db
    .update(table)
    .set({ leaseOwner: null, leaseExpiresAt: null, updatedAt: sql`now()` })
    .where(held(table, lease));
}

/** Lets go of every row `owner` still holds (a worker shutting down), so that others take over at once. */
export async function releaseAllLeases(db: Db, table: LeasedTable, owner: string): Promise<void> {
  await db
    .update(table)
    .set({ leaseOwner: null, leaseExpiresAt: null, updatedAt: sql`now()` })
    .where(eq(table.leaseOwner, owner));
}
