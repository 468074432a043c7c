import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client.ts';
import type { RecordingStatus } from '../db/schema.ts';

export type ClaimedRecording = {
  id: string;
  status: Extract<RecordingStatus, 'queued' | 'submitting' | 'submitted'>;
  sha256: string | null;
  spoolFile: string | null;
  fileName: string | null;
  upstreamApi: 'deepfake' | 'behavioral' | null;
  upstreamPid: number | null;
  attempts: number;
  createdAt: Date;
  submittedAt: Date | null;
};

/**
 * Claims up to `limit` due recordings for `owner` until `leaseSeconds` from now.
 *
 * Why this shape (as graphile-worker and pg-boss do it): the CTE picks due rows in
 * `next_attempt_at` order with `FOR UPDATE SKIP LOCKED`, so concurrent workers never block on or
 * double-claim a row, and the outer UPDATE stamps the lease in the same statement, so a claim is
 * atomic. A lease that expired (its worker crashed or hung) makes the row due again: that is the
 * reclaim path, and it is what lets another worker finish a dead worker's recording.
 * `reclaimExpired: false` exists only for tests that show what breaks without it.
 *
 * @example const batch = await claimRecordings(db, { owner: 'host:123', limit: 4, leaseSeconds: 60 });
 */
export async function claimRecordings(
  db: Db,
  input: { owner: string; limit: number; leaseSeconds: number; reclaimExpired?: boolean },
): Promise<ClaimedRecording[]> {
  const leaseFree =
    input.reclaimExpired === false
      ? sql`lease_expires_at is null`
      : sql`(lease_expires_at is null or lease_expires_at < now())`;
  const rows = await queryRows<Record<string, unknown>>(
    db,
    sql`
      with due as (
        select id from recordings
        where status in ('queued', 'submitting', 'submitted')
          and next_attempt_at <= now()
          and ${leaseFree}
        order by next_attempt_at
        limit ${input.limit}
        for update skip locked
      )
      update recordings r
      set lease_owner = ${input.owner},
          lease_expires_at = now() + make_interval(secs => ${input.leaseSeconds}),
          updated_at = now()
      from due
      where r.id = due.id
      returning r.id, r.status, r.sha256, r.spool_file, r.file_name, r.upstream_api, r.upstream_pid,
                r.attempts, r.created_at, r.submitted_at`,
  );
  return rows.map((r) => ({
    id: r.id as string,
    status: r.status as ClaimedRecording['status'],
    sha256: r.sha256 as string | null,
    spoolFile: r.spool_file as string | null,
    fileName: r.file_name as string | null,
    upstreamApi: r.upstream_api as ClaimedRecording['upstreamApi'],
    upstreamPid: r.upstream_pid === null ? null : Number(r.upstream_pid),
    attempts: Number(r.attempts),
    createdAt: new Date(r.created_at as string),
    submittedAt: r.submitted_at ? new Date(r.submitted_at as string) : null,
  }));
}
