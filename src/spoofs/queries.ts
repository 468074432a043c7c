import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client.ts';
import type { CallVerdict } from '../db/schema.ts';
import type { CallSpoofEvidence } from './verdict.ts';

/** The SQL of a call's spoof evidence: its utterances' verdicts, and the stored call verdict. */

/** One utterance of a recording that carries a deepfake verdict or embedding, in time order. */
export type SpoofTimelineItem = {
  utteranceId: string;
  speakerLabel: string | null;
  start: number | null;
  end: number | null;
  pSpoofed: number | null;
  label: string | null;
  /** the spoof cluster it belongs to, or for a near miss the one it sits inside */
  clusterId: string | null;
  nearMiss: boolean;
};

/** The recording's utterances with a deepfake verdict or embedding (`utterances_recording_upstream_key`). */
export async function spoofTimeline(db: Db, recordingId: string): Promise<SpoofTimelineItem[]> {
  const rows = await queryRows<SpoofTimelineItem & { pSpoofed: number | string | null }>(
    db,
    sql`select u.id as "utteranceId", u.speaker_label as "speakerLabel", u.start_s as start, u.end_s as "end", u.p_spoofed as "pSpoofed",
               u.deepfake_label as label, coalesce(u.spoof_cluster_id, u.near_miss_cluster_id) as "clusterId",
               u.near_miss_cluster_id is not null as "nearMiss"
        from utterances u
        where u.recording_id = ${recordingId}
          and (u.deepfake_label is not null or u.deepfake_embedding is not null)
        order by u.start_s nulls last, u.upstream_id`,
  );
  return rows.map((r) => ({
    ...r,
    start: r.start === null ? null : Number(r.start),
    end: r.end === null ? null : Number(r.end),
    pSpoofed: r.pSpoofed === null ? null : Number(r.pSpoofed),
  }));
}

/** Stores (or replaces) a recording's call verdict. */
export async function storeCallVerdict(tx: Db, recordingId: string, evidence: CallSpoofEvidence): Promise<void> {
  await tx.execute(
    sql`insert into recording_spoof_verdicts
          (recording_id, verdict, spoofed_share, peak_p_spoofed, judged_utterances, judged_seconds, spoofed_seconds, near_misses)
        values (${recordingId}, ${evidence.verdict}, ${evidence.spoofedShare}, ${evidence.peakPSpoofed},
                ${evidence.judgedUtterances}, ${evidence.judgedSeconds}, ${evidence.spoofedSeconds}, ${evidence.nearMisses})
        on conflict (recording_id) do update set
          verdict = excluded.verdict, spoofed_share = excluded.spoofed_share, peak_p_spoofed = excluded.peak_p_spoofed,
          judged_utterances = excluded.judged_utterances, judged_seconds = excluded.judged_seconds,
          spoofed_seconds = excluded.spoofed_seconds, near_misses = excluded.near_misses, decided_at = now()`,
  );
}

export type StoredCallVerdict = { verdict: CallVerdict; spoofedShare: number | null; peakPSpoofed: number | null };

/** A recording's stored call verdict; null until the step has run on it. */
export async function storedCallVerdict(db: Db, recordingId: string): Promise<StoredCallVerdict | null> {
  const [row] = await queryRows<{
    verdict: CallVerdict;
    spoofedShare: number | string | null;
    peakPSpoofed: number | string | null;
  }>(
    db,
    sql`select verdict, spoofed_share as "spoofedShare", peak_p_spoofed as "peakPSpoofed"
        from recording_spoof_verdicts where recording_id = ${recordingId}`,
  );
  if (!row) return null;
  const num = (v: number | string | null) => (v === null ? null : Number(v));
  return { verdict: row.verdict, spoofedShare: num(row.spoofedShare), peakPSpoofed: num(row.peakPSpoofed) };
}

/** Those of `recordingIds` that have a stored call verdict. */
export async function analysedRecordings(db: Db, recordingIds: readonly string[]): Promise<string[]> {
  if (recordingIds.length === 0) return [];
  const rows = await queryRows<{ id: string }>(
    db,
    sql`select recording_id as id from recording_spoof_verdicts
        where recording_id = any(${sql.param([...recordingIds])}::uuid[]) order by recording_id`,
  );
  return rows.map((r) => r.id);
}
