import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';

/** The little SQL the voices eval reads back (the product's own paths do the rest). */

/** A recording's voiceprint ids by speaker label. */
export async function voiceprintIdsByLabel(tx: Db, recordingId: string): Promise<Map<string, string>> {
  const rows = await queryRows<{ id: string; speakerLabel: string }>(
    tx,
    sql`select id, speaker_label as "speakerLabel" from voiceprints where recording_id = ${recordingId}`,
  );
  return new Map(rows.map((r) => [r.speakerLabel, r.id]));
}

/** Every voiceprint's identity (null when unassigned) and that identity's kind. */
export async function identityAssignments(
  db: Db,
): Promise<Map<string, { identityId: string | null; kind: string | null }>> {
  const rows = await queryRows<{ id: string; identityId: string | null; kind: string | null }>(
    db,
    sql`select v.id, v.identity_id as "identityId", i.kind
        from voiceprints v left join identities i on i.id = v.identity_id`,
  );
  return new Map(rows.map((r) => [r.id, { identityId: r.identityId, kind: r.kind }]));
}

/**
 * What autovacuum does for a running database, done at a fixed pace so that every run sees the
 * same: fresh planner statistics, and the identities' dead row versions (every membership change
 * rewrites a centroid) cleaned out of their table and its HNSW index.
 */
export async function maintainTables(db: Db): Promise<void> {
  await db.execute(sql`vacuum (analyze) identities`);
  await db.execute(sql`analyze voiceprints`);
}

export type AlertRow = {
  id: string;
  type: string;
  status: string;
  identityId: string | null;
  recordingIds: string[];
  accountRefs: string[];
  evidence: { voiceprintId?: string; recordingId: string; matchedVoiceprintId?: string }[];
};

/** The alerts of one type, whatever their status. */
export async function alertsOfType(db: Db, type: 'watchlist_hit' | 'voice_reuse'): Promise<AlertRow[]> {
  return queryRows<AlertRow>(
    db,
    sql`select id, type, status, identity_id as "identityId", recording_ids::text[] as "recordingIds",
               account_refs as "accountRefs", evidence
        from alerts where type = ${type} order by created_at, id`,
  );
}

export type ProposalRow = {
  identityId: string;
  status: 'proposed' | 'confirmed' | 'rejected';
  evidence: { accounts?: number; calls?: number };
};

/** The staff proposals, oldest first. */
export async function staffProposalRows(db: Db): Promise<ProposalRow[]> {
  return queryRows<ProposalRow>(
    db,
    sql`select identity_id as "identityId", status, evidence from staff_proposals order by proposed_at, identity_id`,
  );
}

/** Each merged identity's `merged_into`, to follow an alert's or a proposal's identity to where its voiceprints went. */
export async function mergedIdentities(db: Db): Promise<Map<string, string>> {
  const rows = await queryRows<{ id: string; mergedInto: string }>(
    db,
    sql`select id, merged_into as "mergedInto" from identities where merged_into is not null`,
  );
  return new Map(rows.map((r) => [r.id, r.mergedInto]));
}

/** The watchlist's entries, live or ended: the identity each now names and the voiceprint it was made from. */
export async function watchlistEntryRows(db: Db): Promise<{ identityId: string; voiceprintId: string | null }[]> {
  return queryRows(
    db,
    sql`select identity_id as "identityId", voiceprint_id as "voiceprintId" from watchlist_entries order by created_at, id`,
  );
}

export async function recordingCount(db: Db): Promise<number> {
  const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from recordings`);
  return row?.n ?? 0;
}
