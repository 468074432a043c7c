import { and, count, eq, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client.ts';
import { claimDue, type Lease, type RetryInput, retryLater, updateHeld } from '../db/lease.ts';
import { type AnalysisEventStatus, recordingEvents } from '../db/schema.ts';

/**
 * The outbox of stored recordings, and the job table of the analysis steps that follow storing.
 * `recordStored` (src/recordings/store.ts) writes one `stored` event in the transaction that stores
 * a recording; the analysis runner (runner.ts) claims pending events and runs the registered steps
 * on each, in order. Only this module reads or writes `recording_events`.
 */

export type AnalysisEvent = {
  id: string;
  recordingId: string;
  kind: 'stored';
  stepsDone: string[];
  attempts: number;
};

/**
 * The `stored` event of a recording; call inside the transaction that stores it, so that the event
 * exists exactly when the recording's rows do.
 * @example await insertStoredEvent(tx, recordingId);
 */
export async function insertStoredEvent(tx: Db, recordingId: string): Promise<void> {
  await tx.insert(recordingEvents).values({ recordingId, kind: 'stored' });
}

/**
 * Claims up to `limit` due pending events for `owner` (the shared claim query over
 * `recording_events_claim_idx`).
 * @example const events = await claimEvents(db, { owner, limit: 4, leaseSeconds: 60 });
 */
export async function claimEvents(
  db: Db,
  input: {
    owner: string;
    limit: number;
    leaseSeconds: number;
    /** Only the events of these recordings (an `import` analysing what it stored). */
    recordingIds?: readonly string[];
  },
): Promise<AnalysisEvent[]> {
  const { recordingIds, ...claim } = input;
  const only = recordingIds ? sql` and recording_id = any(${sql.param([...recordingIds])}::uuid[])` : sql``;
  const rows = await claimDue<Record<string, unknown>>(db, recordingEvents, {
    ...claim,
    pending: sql`status = 'pending'${only}`,
    returning: sql`r.id, r.recording_id, r.kind, r.steps_done, r.attempts`,
  });
  return rows.map((r) => ({
    id: r.id as string,
    recordingId: r.recording_id as string,
    kind: r.kind as 'stored',
    // both drivers read text[] into an array
    stepsDone: r.steps_done as string[],
    attempts: Number(r.attempts),
  }));
}

/**
 * Records that `step` has run for the event, and renews the lease; call first in the transaction
 * that runs the step. Its row lock then keeps every other worker off the event (the claim skips
 * locked rows) until the step commits or rolls back, so a step's writes commit once: with the step,
 * or not at all. Throws LeaseLostError when another worker holds the event now, or the step is
 * already done.
 */
export async function markStepDone(tx: Db, lease: Lease, step: string, leaseSeconds: number): Promise<void> {
  await updateHeld(
    tx,
    recordingEvents,
    lease,
    {
      stepsDone: sql`array_append(${recordingEvents.stepsDone}, ${step}::text)`,
      leaseExpiresAt: sql`now() + make_interval(secs => ${leaseSeconds})`,
    },
    sql`not (${step}::text = any(${recordingEvents.stepsDone}))`,
  );
}

/** Every step has run: the event is `done`, its lease released. */
export async function markEventDone(db: Db, lease: Lease): Promise<void> {
  await updateHeld(db, recordingEvents, lease, {
    status: 'done',
    error: null,
    completedAt: sql`now()`,
    leaseOwner: null,
    leaseExpiresAt: null,
  });
}

/** A step failed: try the event again `delayMs` from now (steps already done stay done). */
export const scheduleEventRetry = (db: Db, lease: Lease, input: RetryInput) =>
  retryLater(db, recordingEvents, lease, input);

/** A step kept failing: the event is `dead` with the last error, out of the backlog until requeued. */
export async function markEventDead(db: Db, lease: Lease, input: { attempts: number; error: string }): Promise<void> {
  await updateHeld(db, recordingEvents, lease, {
    status: 'dead',
    attempts: input.attempts,
    error: input.error,
    completedAt: sql`now()`,
    leaseOwner: null,
    leaseExpiresAt: null,
  });
}

export type AnalysisBacklog = { pending: number; dead: number };

/**
 * Events still to analyse, and events given up on; both counted from their partial indexes.
 * @example const { pending } = await countAnalysisBacklog(db);
 */
export async function countAnalysisBacklog(db: Db): Promise<AnalysisBacklog> {
  const counts = (status: AnalysisEventStatus) =>
    db.select({ n: count() }).from(recordingEvents).where(eq(recordingEvents.status, status));
  const [[pending], [dead]] = await Promise.all([counts('pending'), counts('dead')]);
  return { pending: pending?.n ?? 0, dead: dead?.n ?? 0 };
}

/**
 * Where the pending events stand for a runner that holds its claims as `owner`: `due` it can claim
 * now or holds already (its lease free, expired or its own), `held` by another runner's live lease,
 * `retrying` until a failed step's retry comes due; `pending` is their sum. With `recordingIds`,
 * only those recordings' events count. Reads the pending partial index (`recording_events_claim_idx`).
 * @example const { due, held } = await pendingEventStates(db, { owner: runner.owner });
 */
export async function pendingEventStates(
  db: Db,
  input: { owner: string; recordingIds?: readonly string[] },
): Promise<PendingEventStates> {
  const only = input.recordingIds ? sql` and recording_id = any(${sql.param([...input.recordingIds])}::uuid[])` : sql``;
  const [row] = await queryRows<Record<string, unknown>>(
    db,
    sql`
      select
        count(*) filter (where lease_owner = ${input.owner}
          or ((lease_expires_at is null or lease_expires_at < now()) and next_attempt_at <= now()))::int as due,
        count(*) filter (where lease_owner <> ${input.owner} and lease_expires_at >= now())::int as held,
        count(*)::int as pending
      from ${recordingEvents}
      where status = 'pending'${only}`,
  );
  const due = Number(row?.due ?? 0);
  const held = Number(row?.held ?? 0);
  const pending = Number(row?.pending ?? 0);
  return { due, held, retrying: pending - due - held, pending };
}
export type PendingEventStates = { due: number; held: number; retrying: number; pending: number };

/**
 * The state of each recording's `stored` event: `pending`, `done` or `dead` with the error that
 * killed it; a recording without an event is absent from the map.
 * @example const states = await storedEventStates(db, outcomes.map((o) => o.recordingId));
 */
export async function storedEventStates(
  db: Db,
  recordingIds: readonly string[],
): Promise<Map<string, { status: AnalysisEventStatus; error: string | null }>> {
  if (recordingIds.length === 0) return new Map();
  const rows = await db
    .select({ recordingId: recordingEvents.recordingId, status: recordingEvents.status, error: recordingEvents.error })
    .from(recordingEvents)
    .where(
      and(
        sql`${recordingEvents.recordingId} = any(${sql.param([...recordingIds])}::uuid[])`,
        eq(recordingEvents.kind, 'stored'),
      ),
    );
  return new Map(rows.map((r) => [r.recordingId, { status: r.status, error: r.error }]));
}

/** The `stored` event of a recording, or null (what the worker and analysis tests look at). */
export async function findStoredEvent(db: Db, recordingId: string) {
  const [row] = await db
    .select()
    .from(recordingEvents)
    .where(and(eq(recordingEvents.recordingId, recordingId), eq(recordingEvents.kind, 'stored')));
  return row ?? null;
}
