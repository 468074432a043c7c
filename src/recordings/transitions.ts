import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { claimDue, type Lease, type RetryInput, retryLater, updateHeld } from '../db/lease.ts';
import { type RecordingStatus, recordings, type UpstreamApi } from '../db/schema.ts';
import { type RecordingSummary, recordingSummaryColumns, toRecordingSummary } from './queries.ts';

/**
 * The recording state machine, and the only code that changes a recording's status:
 *
 *   (upload) queued ─► submitting ─► submitted ─► complete
 *                          │             ├─► failed ─┐
 *                          └─────────────┴─► dead ───┴─► queued (requeue, by a person)
 *   (import) complete
 *
 * Each transition is one statement, guarded (by the lease a worker holds, or by the status it
 * leaves), and every time it writes is the database's `now()`, the clock the claim compares with.
 * The worker (src/ingest/worker.ts) only decides which transition comes next.
 */

/** The states a worker finds a claimed recording in. */
export type InFlightStatus = Extract<RecordingStatus, 'queued' | 'submitting' | 'submitted'>;
export const IN_FLIGHT_STATUSES = ['queued', 'submitting', 'submitted'] as const satisfies readonly InFlightStatus[];

/** Statuses a recording can be requeued from: the worker gave up on it, or the upstream refused it. */
export const REQUEUEABLE_STATUSES = ['failed', 'dead'] as const satisfies readonly RecordingStatus[];

export type ClaimedRecording = {
  id: string;
  status: InFlightStatus;
  spoolFile: string | null;
  upstreamPid: number | null;
  attempts: number;
  createdAt: Date;
};

/**
 * A new `queued` recording for audio already in the spool; null when a recording of the same
 * bytes exists (sha256 is unique: that one wins).
 * @example const summary = await insertQueuedRecording(db, { id, sha256, spoolFile, … });
 */
export async function insertQueuedRecording(
  db: Db,
  values: {
    id: string;
    sha256: string;
    upstreamApi: UpstreamApi;
    fileName: string | null;
    audioFormat: 'wav' | 'mp3';
    audioBytes: number;
    durationS: number;
    spoolFile: string;
    accountRef: string | null;
    channel: string | null;
    /** Null: now, by the database's clock. */
    callAt: Date | null;
    meta: Record<string, unknown>;
    enrolCustomer?: boolean;
  },
): Promise<RecordingSummary | null> {
  const [inserted] = await db
    .insert(recordings)
    .values({
      ...values,
      callAt: values.callAt ?? sql`now()`,
      source: 'upload',
      status: 'queued',
      nextAttemptAt: sql`now()`,
    })
    .onConflictDoNothing({ target: recordings.sha256 })
    .returning(recordingSummaryColumns);
  return inserted ? toRecordingSummary(inserted) : null;
}

/**
 * A recording that is `complete` from the start: an imported results document. Null when the same
 * document is stored already (same api, cid and pid; or the same bytes when it has no pid). Call
 * `recordStored` in the same transaction.
 * @example const id = await insertImportedRecording(tx, { documentSha256, api: 'deepfake', cid, pid, rawDocument, … });
 */
export async function insertImportedRecording(
  db: Db,
  values: {
    documentSha256: string;
    upstreamApi: UpstreamApi;
    upstreamCid: number | null;
    upstreamPid: number | null;
    rawDocument: unknown;
    accountRef: string | null;
    channel: string | null;
    /** The call's context from an import manifest (src/import/manifest.ts); none by default. */
    callAt?: Date | null;
    meta?: Record<string, unknown>;
  },
): Promise<string | null> {
  const [inserted] = await db
    .insert(recordings)
    .values({ ...values, source: 'import', status: 'complete', completedAt: sql`now()` })
    .onConflictDoNothing()
    .returning({ id: recordings.id });
  return inserted?.id ?? null;
}

/**
 * Claims up to `limit` due recordings for `owner` until `leaseSeconds` from now (the shared claim
 * query, src/db/lease.ts, over `recordings_claim_idx`).
 * @example const batch = await claimRecordings(db, { owner: 'host:123', limit: 4, leaseSeconds: 60 });
 */
export async function claimRecordings(
  db: Db,
  input: { owner: string; limit: number; leaseSeconds: number; reclaimExpired?: boolean },
): Promise<ClaimedRecording[]> {
  const rows = await claimDue<Record<string, unknown>>(db, recordings, {
    ...input,
    pending: sql`status in ('queued', 'submitting', 'submitted')`,
    returning: sql`r.id, r.status, r.spool_file, r.upstream_pid, r.attempts, r.created_at`,
  });
  return rows.map((r) => ({
    id: r.id as string,
    status: r.status as InFlightStatus,
    spoolFile: r.spool_file as string | null,
    upstreamPid: r.upstream_pid === null ? null : Number(r.upstream_pid),
    attempts: Number(r.attempts),
    createdAt: new Date(r.created_at as string),
  }));
}

/**
 * Recorded before the upload: a crash after the upstream took it leaves `submitting`, which the next
 * worker resolves by looking the process up by name instead of uploading twice.
 */
export async function markSubmitting(db: Db, lease: Lease): Promise<void> {
  await updateHeld(db, recordings, lease, { status: 'submitting' });
}

/** The upstream process exists: its pid is stored as soon as it is known. */
export async function markSubmitted(
  db: Db,
  lease: Lease,
  upstream: { api: UpstreamApi; pid: number; cid: number | null },
): Promise<void> {
  await updateHeld(db, recordings, lease, {
    status: 'submitted',
    upstreamApi: upstream.api,
    upstreamPid: upstream.pid,
    upstreamCid: upstream.cid,
    submittedAt: sql`now()`,
  });
}

/**
 * The results are stored: `complete` with the raw document, the lease released; only from
 * `submitted` and while `lease` holds it (LeaseLostError otherwise, and the caller's transaction
 * rolls back). Call inside the transaction that stores its rows (`recordStored`).
 * @example await completeRecording(tx, lease, { rawBody, keepAudio: false });
 */
export async function completeRecording(
  tx: Db,
  lease: Lease,
  input: { rawBody: string; keepAudio: boolean },
): Promise<void> {
  await updateHeld(
    tx,
    recordings,
    lease,
    {
      status: 'complete',
      // the body as received: the database parses it once, and nothing re-serialises ~200 KiB of JSON
      rawDocument: sql`${input.rawBody}::jsonb`,
      error: null,
      completedAt: sql`now()`,
      leaseOwner: null,
      leaseExpiresAt: null,
      ...(input.keepAudio ? {} : { spoolFile: null }),
    },
    eq(recordings.status, 'submitted'),
  );
}

/**
 * A final failure: `failed` (the upstream or its results refused this recording; the audio stays
 * for a requeue) or `dead` (transient errors past the attempt limit). Whatever the upstream sent is
 * kept: `rawBody` for a body that is not JSON, `rawDocument` for one the parser refused.
 */
export async function markFinalFailure(
  db: Db,
  lease: Lease,
  outcome: {
    status: 'failed' | 'dead';
    error: string;
    attempts?: number;
    rawBody?: string;
    rawDocument?: unknown;
  },
): Promise<void> {
  await updateHeld(db, recordings, lease, {
    status: outcome.status,
    error: outcome.error,
    ...(outcome.attempts !== undefined ? { attempts: outcome.attempts } : {}),
    ...(outcome.rawBody !== undefined ? { rawBody: outcome.rawBody } : {}),
    ...(outcome.rawDocument !== undefined ? { rawDocument: outcome.rawDocument } : {}),
    completedAt: sql`now()`,
    leaseOwner: null,
    leaseExpiresAt: null,
  });
}

/**
 * A transient failure: try again `delayMs` from now, the status as it is (a recording left
 * `submitting` is looked up by name on its next try, so a submission whose fate is unknown is never
 * simply repeated), the lease released.
 */
export const scheduleRetry = (db: Db, lease: Lease, input: RetryInput) => retryLater(db, recordings, lease, input);

/**
 * The upstream is still processing: look again later, with capped backoff (a quarter of the time
 * it has taken so far, 0.5–10 s), measured on the database's clock from `submitted_at`.
 */
export async function schedulePoll(db: Db, lease: Lease): Promise<void> {
  await updateHeld(db, recordings, lease, {
    nextAttemptAt: sql`now() + least(interval '10 seconds', greatest(interval '0.5 seconds',
      (now() - coalesce(${recordings.submittedAt}, now())) / 4))`,
    leaseOwner: null,
    leaseExpiresAt: null,
  });
}

/**
 * Queues a `failed` or `dead` recording again: attempts back to 0, error, lease, upstream pid and
 * the upstream's document/body cleared, due now. Null when its status is not one of those (a
 * concurrent requeue won, or it moved on).
 * @example const summary = await requeueRecording(db, id);
 */
export async function requeueRecording(db: Db, id: string): Promise<RecordingSummary | null> {
  const [updated] = await db
    .update(recordings)
    .set({
      status: 'queued',
      attempts: 0,
      error: null,
      nextAttemptAt: sql`now()`,
      leaseOwner: null,
      leaseExpiresAt: null,
      upstreamPid: null,
      submittedAt: null,
      rawDocument: null,
      rawBody: null,
      completedAt: null,
      updatedAt: sql`now()`,
    })
    // guarded by status: of two concurrent requeues, one queues it and the other gets null
    .where(and(eq(recordings.id, id), inArray(recordings.status, [...REQUEUEABLE_STATUSES])))
    .returning(recordingSummaryColumns);
  return updated ? toRecordingSummary(updated) : null;
}
