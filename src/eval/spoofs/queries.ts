import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';

/** The little SQL the spoofs eval reads back (the product's own steps do the rest). */

/** The cluster each of a recording's spoofed-labelled utterances is in now (null: noise). */
export async function spoofedPlacements(
  db: Db,
  recordingId: string,
): Promise<{ id: string; clusterId: string | null }[]> {
  return queryRows(
    db,
    sql`select id, spoof_cluster_id as "clusterId" from utterances
        where recording_id = ${recordingId} and deepfake_label = 'spoofed'`,
  );
}

export async function activeClusterIds(db: Db): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(db, sql`select id from spoof_clusters where status = 'active'`);
  return rows.map((r) => r.id);
}

/** Every utterance's cluster and near-miss cluster, by id (nulls left out). */
export async function clusterColumns(db: Db): Promise<{ cluster: Map<string, string>; nearMiss: Map<string, string> }> {
  const rows = await queryRows<{ id: string; clusterId: string | null; nearMissId: string | null }>(
    db,
    sql`select id, spoof_cluster_id as "clusterId", near_miss_cluster_id as "nearMissId" from utterances
        where spoof_cluster_id is not null or near_miss_cluster_id is not null`,
  );
  const cluster = new Map<string, string>();
  const nearMiss = new Map<string, string>();
  for (const r of rows) {
    if (r.clusterId) cluster.set(r.id, r.clusterId);
    if (r.nearMissId) nearMiss.set(r.id, r.nearMissId);
  }
  return { cluster, nearMiss };
}

/** The call verdicts the `spoofs.verdict` step stored, counted. */
export async function verdictCounts(db: Db): Promise<Record<string, number>> {
  const rows = await queryRows<{ verdict: string; n: number }>(
    db,
    sql`select verdict, count(*)::int as n from recording_spoof_verdicts group by 1 order by 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.verdict, r.n]));
}

export async function alertCounts(db: Db): Promise<Record<string, number>> {
  const rows = await queryRows<{ type: string; n: number }>(
    db,
    sql`select type, count(*)::int as n from alerts
        where type in ('new_spoof_campaign', 'spoof_cluster_growth') group by 1 order by 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.type, r.n]));
}

/**
 * What autovacuum does for a running database, at a fixed pace so that every run sees the same:
 * fresh planner statistics and index row counts (the kNN builder picks its plan from them), and
 * the clusters' dead row versions (every join rewrites a cluster's sum) cleaned out.
 */
export async function maintainSpoofTables(db: Db): Promise<void> {
  await db.execute(sql`analyze utterances`);
  await db.execute(sql`vacuum (analyze) spoof_clusters`);
}
