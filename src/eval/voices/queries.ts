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
