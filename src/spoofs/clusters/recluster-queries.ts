import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';
import { DEEPFAKE_DIMENSIONS } from '../../db/schema.ts';

/** The SQL of `recluster spoofs` (recluster.ts): its pool, its kNN graph, and the membership it writes. */

const DIMS = sql.raw(String(DEEPFAKE_DIMENSIONS));

/** A spoofed utterance recluster re-derives: in no cluster, or in one no analyst pinned. */
export type PoolPoint = { id: string; recordingId: string; clusterId: string | null };

/**
 * Every spoofed utterance with an embedding outside the clusters an analyst pinned (merged or
 * split: `analyst_edited_at`), in id order so that the result never depends on the scan.
 */
export async function reclusterPool(tx: Db): Promise<PoolPoint[]> {
  return queryRows<PoolPoint>(
    tx,
    sql`select u.id, u.recording_id as "recordingId", u.spoof_cluster_id as "clusterId"
        from utterances u
        left join spoof_clusters c on c.id = u.spoof_cluster_id
        where u.deepfake_label = 'spoofed' and u.deepfake_embedding is not null and c.analyst_edited_at is null
        order by u.id`,
  );
}

/** An edge of the kNN graph: `to` is among `from`'s nearest spoofed utterances of other recordings. */
export type SpoofEdge = {
  from: string;
  to: string;
  toRecordingId: string;
  toClusterId: string | null;
  similarity: number;
};

/**
 * The nearest spoofed utterances of each of `ids` (HNSW, `spoofed_utterances_embedding_hnsw`),
 * kept when of another recording and at ≥ minSimilarity. `k` counts before the own recording is
 * left out, so callers ask for a few more than they need.
 */
export async function nearestSpoofedOf(
  tx: Db,
  ids: readonly string[],
  input: { k: number; minSimilarity: number; efSearch: number },
): Promise<SpoofEdge[]> {
  if (ids.length === 0) return [];
  await tx.execute(
    sql`select set_config('hnsw.ef_search', ${String(Math.max(input.k, input.efSearch))}, true),
               set_config('hnsw.iterative_scan', 'off', true)`,
  );
  const rows = await queryRows<{
    from: string;
    to: string;
    toRecordingId: string;
    toClusterId: string | null;
    distance: number | string;
  }>(tx, nearestSpoofedStatement(ids, input));
  return rows.map((r) => ({
    from: r.from,
    to: r.to,
    toRecordingId: r.toRecordingId,
    toClusterId: r.toClusterId,
    similarity: 1 - Number(r.distance),
  }));
}

/** The statement of nearestSpoofedOf: a lateral index walk per utterance (what the EXPLAIN test pins). */
export function nearestSpoofedStatement(ids: readonly string[], input: { k: number; minSimilarity: number }): SQL {
  return sql`select q.id as "from", n.id as "to", n.recording_id as "toRecordingId", nu.spoof_cluster_id as "toClusterId",
                    n.distance
             from spoofed_utterances q
             cross join lateral (
               select c.id, c.recording_id, c.embedding <=> q.embedding as distance
               from spoofed_utterances c
               order by c.embedding <=> q.embedding
               limit ${input.k}
             ) n
             join utterances nu on nu.id = n.id
             where q.id = any(${sql.param([...ids])}::uuid[])
               and n.recording_id <> q.recording_id
               and n.distance <= ${1 - input.minSimilarity}`;
}

/** Puts utterances into a cluster (or none), whatever held them. */
export async function setMembership(tx: Db, clusterId: string | null, utteranceIds: readonly string[]): Promise<void> {
  if (utteranceIds.length === 0) return;
  await tx.execute(
    sql`update utterances set spoof_cluster_id = ${clusterId}
        where id = any(${sql.param([...utteranceIds])}::uuid[]) and spoof_cluster_id is distinct from ${clusterId}`,
  );
}

/** A new active cluster with no member yet (its members are set next, its sum from them). */
export async function insertEmptyCluster(tx: Db, origin: 'recluster' | 'analyst', label: string | null = null) {
  const [row] = await queryRows<{ id: string }>(
    tx,
    sql`insert into spoof_clusters (origin, label, centroid, member_sum, size, recording_count, account_count)
        values (${origin}, ${label}, array_fill(0, array[${DIMS}])::halfvec(${DIMS}),
                array_fill(0, array[${DIMS}])::vector(${DIMS}), 0, 0, 0)
        returning id`,
  );
  return (row as { id: string }).id;
}

/**
 * The sum and centroid of each cluster recomputed from its members (after membership moved in
 * bulk): the incremental sum of the online step holds only while members only arrive.
 */
export async function recomputeClusterSums(tx: Db, clusterIds: readonly string[]): Promise<void> {
  if (clusterIds.length === 0) return;
  await tx.execute(
    sql`update spoof_clusters c
        set member_sum = s.total, centroid = l2_normalize(s.total)::halfvec(${DIMS}), updated_at = now()
        from (select spoof_cluster_id as id, sum(deepfake_embedding::vector(${DIMS})) as total
              from utterances where spoof_cluster_id = any(${sql.param([...clusterIds])}::uuid[])
              group by spoof_cluster_id) s
        where c.id = s.id`,
  );
}

/** Marks a cluster merged into another (and any merged into it before), or retired, with the reason. */
export async function endCluster(
  tx: Db,
  clusterId: string,
  end: { status: 'merged'; into: string; reason: string } | { status: 'retired'; reason: string },
): Promise<void> {
  const into = end.status === 'merged' ? end.into : null;
  await tx.execute(
    sql`update spoof_clusters
        set status = ${end.status}, merged_into = ${into}, status_reason = ${end.reason}, size = 0,
            recording_count = 0, account_count = 0, updated_at = now()
        where id = ${clusterId}`,
  );
  if (into) {
    await tx.execute(sql`update spoof_clusters set merged_into = ${into} where merged_into = ${clusterId}`);
  }
}

/** Near misses inside clusters that ended: moved to the survivor of a merge, dropped for a retired one. Returns the recordings touched. */
export async function carryNearMisses(tx: Db): Promise<string[]> {
  const rows = await queryRows<{ recordingId: string }>(
    tx,
    sql`with moved as (
          update utterances u
          set near_miss_cluster_id = case when c.status = 'merged' then c.merged_into end
          from spoof_clusters c
          where c.id = u.near_miss_cluster_id and c.status <> 'active'
          returning u.recording_id
        )
        select distinct recording_id as "recordingId" from moved`,
  );
  return rows.map((r) => r.recordingId);
}

/** Labels and notes carried to a survivor that has none of its own. */
export async function carryLabel(tx: Db, fromId: string, intoId: string): Promise<void> {
  await tx.execute(
    sql`update spoof_clusters t
        set label = coalesce(t.label, f.label), notes = coalesce(t.notes, f.notes)
        from spoof_clusters f where t.id = ${intoId} and f.id = ${fromId}`,
  );
}

export async function activeClusterCount(tx: Db): Promise<number> {
  const [row] = await queryRows<{ n: number | string }>(
    tx,
    sql`select count(*) as n from spoof_clusters where status = 'active'`,
  );
  return Number(row?.n ?? 0);
}

/** The clusters named, locked for a change (`for update`), with their status. */
export async function lockClusterRows(
  tx: Db,
  clusterIds: readonly string[],
): Promise<{ id: string; status: string; mergedInto: string | null }[]> {
  return queryRows(
    tx,
    sql`select id, status, merged_into as "mergedInto" from spoof_clusters
        where id = any(${sql.param([...clusterIds])}::uuid[]) order by id for update`,
  );
}

/** The members of these clusters among `utteranceIds` (or all their members when not given). */
export async function membersOf(tx: Db, clusterIds: readonly string[]): Promise<{ id: string; clusterId: string }[]> {
  return queryRows(
    tx,
    sql`select id, spoof_cluster_id as "clusterId" from utterances
        where spoof_cluster_id = any(${sql.param([...clusterIds])}::uuid[]) order by id`,
  );
}

/** Near misses inside `fromIds` now sit inside `intoId`. */
export async function moveNearMisses(tx: Db, fromIds: readonly string[], intoId: string): Promise<void> {
  await tx.execute(
    sql`update utterances set near_miss_cluster_id = ${intoId}
        where near_miss_cluster_id = any(${sql.param([...fromIds])}::uuid[])`,
  );
}

/** Marks clusters as shaped by an analyst: recluster leaves their membership alone. */
export async function pinClusters(tx: Db, clusterIds: readonly string[]): Promise<void> {
  await tx.execute(
    sql`update spoof_clusters set analyst_edited_at = now(), updated_at = now()
        where id = any(${sql.param([...clusterIds])}::uuid[])`,
  );
}

export async function setLabelAndNotes(
  tx: Db,
  clusterId: string,
  change: { label?: string | null; notes?: string | null },
): Promise<void> {
  const label = change.label === undefined ? sql`label` : sql`${change.label}`;
  const notes = change.notes === undefined ? sql`notes` : sql`${change.notes}`;
  await tx.execute(
    sql`update spoof_clusters set label = ${label}, notes = ${notes}, updated_at = now() where id = ${clusterId}`,
  );
}

/**
 * Fresh planner statistics for utterances after a recluster rewrote most of `spoof_cluster_id`:
 * until autovacuum gets to it, the planner takes a cluster for a handful of rows when it holds
 * thousands, and the online step's member reads (the growth window, the figures) picked nested
 * loops over every member — 50 ms a call instead of 2 at 50,000 spoofed utterances.
 */
export async function refreshUtteranceStatistics(tx: Db): Promise<void> {
  await tx.execute(sql`analyze utterances`);
}
