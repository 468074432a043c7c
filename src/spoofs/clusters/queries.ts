import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';
import { DEEPFAKE_DIMENSIONS } from '../../db/schema.ts';
import { NEAR_MISS_RADIUS_FACTOR } from './rules.ts';

/** The SQL of spoof clusters: their members, figures and the lock their writers share. */

/** Serialises the writers of cluster membership: two calls must not seed one campaign twice. */
export const SPOOF_CLUSTER_LOCK = 0x766f_7363; // 'vosc'

export async function lockSpoofClusters(tx: Db): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${SPOOF_CLUSTER_LOCK})`);
}

const DIMS = sql.raw(String(DEEPFAKE_DIMENSIONS));

/** A spoofed utterance with an embedding, not yet in a cluster: what the step places. */
export type UnplacedUtterance = { id: string; embedding: number[] };

/**
 * What the online step has to do for a recording, in one read: its spoofed utterances in no
 * cluster yet (in call order), whether it has bonafide-labelled utterances not yet flagged as near
 * misses (with an embedding: else there is nothing to compare), and when it happened (its call
 * time, else when it was stored: the growth window ends there). A recording gone meanwhile (its
 * event outlived it) has nothing to do.
 */
export async function placementWork(
  tx: Db,
  recordingId: string,
): Promise<{ seenAt: Date | null; unplaced: UnplacedUtterance[]; bonafideToCheck: boolean }> {
  const rows = await queryRows<{
    seenAt: Date | string;
    id: string | null;
    label: string | null;
    embedding: string | null;
  }>(
    tx,
    sql`select coalesce(r.call_at, r.created_at) as "seenAt", u.id, u.deepfake_label as label,
               case when u.deepfake_label = 'spoofed' then u.deepfake_embedding::text end as embedding
        from recordings r
        left join utterances u on u.recording_id = r.id and u.deepfake_embedding is not null
          and ((u.deepfake_label = 'spoofed' and u.spoof_cluster_id is null)
               or (u.deepfake_label = 'bonafide' and u.near_miss_cluster_id is null))
        where r.id = ${recordingId}
        order by u.start_s nulls last, u.upstream_id`,
  );
  const [first] = rows;
  if (!first) return { seenAt: null, unplaced: [], bonafideToCheck: false };
  return {
    seenAt: new Date(first.seenAt),
    unplaced: rows.flatMap((r) =>
      r.id && r.label === 'spoofed' ? [{ id: r.id, embedding: JSON.parse(r.embedding as string) as number[] }] : [],
    ),
    bonafideToCheck: rows.some((r) => r.label === 'bonafide'),
  };
}

/** An active cluster's centroid similarity to a unit embedding, and the cluster's radius; null when not active. */
export async function centroidReach(
  tx: Db,
  clusterId: string,
  embedding: ArrayLike<number>,
): Promise<{ similarity: number; radius: number } | null> {
  const [row] = await queryRows<{ similarity: number | string; radius: number | string }>(
    tx,
    sql`select 1 - (centroid <=> ${JSON.stringify(Array.from(embedding))}::halfvec(${DIMS})) as similarity, radius
        from spoof_clusters where id = ${clusterId} and status = 'active'`,
  );
  return row ? { similarity: Number(row.similarity), radius: Number(row.radius) } : null;
}

/** A new cluster of these utterances (those in no cluster yet), its sum and centroid from their embeddings. */
export async function insertCluster(
  tx: Db,
  utteranceIds: readonly string[],
  origin: 'online' | 'recluster',
): Promise<string> {
  const ids = sql.param([...utteranceIds]);
  const [row] = await queryRows<{ id: string }>(
    tx,
    sql`insert into spoof_clusters (origin, centroid, member_sum, size, recording_count, account_count)
        select ${origin}, l2_normalize(s.total)::halfvec(${DIMS}), s.total, 0, 0, 0
        from (select sum(deepfake_embedding::vector(${DIMS})) as total from utterances
              where id = any(${ids}::uuid[]) and spoof_cluster_id is null) s
        returning id`,
  );
  const clusterId = (row as { id: string }).id;
  await tx.execute(
    sql`update utterances set spoof_cluster_id = ${clusterId} where id = any(${ids}::uuid[]) and spoof_cluster_id is null`,
  );
  return clusterId;
}

/**
 * Adds one utterance that is in no cluster yet to an active cluster when its stored embedding is
 * within `minSimilarity` of the centroid — the check and the join in one statement, as the online
 * step and the noise it absorbs need them. Whether it joined.
 */
export async function joinIfClose(
  tx: Db,
  clusterId: string,
  utteranceId: string,
  minSimilarity: number,
): Promise<boolean> {
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`with member as (
          select u.id, u.deepfake_embedding::vector(${DIMS}) as added from utterances u, spoof_clusters c
          where u.id = ${utteranceId} and u.spoof_cluster_id is null and c.id = ${clusterId} and c.status = 'active'
            and 1 - (u.deepfake_embedding <=> c.centroid) >= ${minSimilarity}
        ), grown as (
          update spoof_clusters c
          set member_sum = c.member_sum + m.added, centroid = l2_normalize(c.member_sum + m.added)::halfvec(${DIMS}),
              updated_at = now()
          from member m where c.id = ${clusterId}
          returning c.id
        )
        update utterances u set spoof_cluster_id = (select id from grown)
        from member m where u.id = m.id and exists (select 1 from grown)
        returning u.id`,
  );
  return rows.length > 0;
}

/**
 * Recomputes the figures of `clusterIds` from their members (`utterances_spoof_cluster_idx`):
 * size, recordings, accounts, channels, first and last seen (the call's time, else when it was
 * stored), mean pSpoofed, radius (the largest cosine distance to the centroid) and medoid (the
 * member nearest the centroid).
 */
export async function refreshClusterFigures(tx: Db, clusterIds: readonly string[]): Promise<void> {
  if (clusterIds.length === 0) return;
  await tx.execute(
    sql`with members as (
          select u.spoof_cluster_id as cluster_id, u.id, u.recording_id, u.p_spoofed, r.account_ref, r.channel,
                 coalesce(r.call_at, r.created_at) as seen_at, u.deepfake_embedding <=> c.centroid as distance
          from utterances u
          join spoof_clusters c on c.id = u.spoof_cluster_id
          join recordings r on r.id = u.recording_id
          where u.spoof_cluster_id = any(${sql.param([...clusterIds])}::uuid[])
        ), figures as (
          select cluster_id, count(*)::int as size, count(distinct recording_id)::int as recordings,
                 count(distinct account_ref)::int as accounts,
                 coalesce(array_agg(distinct channel order by channel) filter (where channel is not null), '{}') as channels,
                 min(seen_at) as first_seen, max(seen_at) as last_seen, avg(p_spoofed) as mean_p, max(distance) as radius,
                 (array_agg(id order by distance, id))[1] as medoid
          from members group by cluster_id
        )
        update spoof_clusters c
        set size = f.size, recording_count = f.recordings, account_count = f.accounts, channels = f.channels,
            first_seen_at = f.first_seen, last_seen_at = f.last_seen, mean_p_spoofed = f.mean_p,
            radius = f.radius, medoid_utterance_id = f.medoid, updated_at = now()
        from figures f where c.id = f.cluster_id`,
  );
}

/**
 * Grows a cluster's figures by members it just gained (already in it), reading only them and the
 * index entries that say whether their recording or account is new to it: O(new members), where
 * refreshClusterFigures is O(size). Size, recordings, accounts, channels, first/last seen and mean
 * pSpoofed come out exact; the radius becomes the larger of the old one and the new members'
 * distance to the moved centroid, and the medoid stays — both exact again at the next refresh
 * (the cluster's next look-back, when it has doubled; a recluster). Says whether the cluster, still
 * active, has now grown `lookBackGrowth` times over since its last look-back: that look-back is due.
 */
export async function growClusterFigures(
  tx: Db,
  clusterId: string,
  utteranceIds: readonly string[],
  lookBackGrowth: number,
): Promise<{ lookBackDue: boolean }> {
  if (utteranceIds.length === 0) return { lookBackDue: false };
  const ids = sql.param([...utteranceIds]);
  const rows = await queryRows<{ lookBackDue: boolean }>(
    tx,
    sql`with added as (
          select u.recording_id, u.p_spoofed, r.account_ref, r.channel, coalesce(r.call_at, r.created_at) as seen_at,
                 u.deepfake_embedding <=> c.centroid as distance
          from utterances u
          join recordings r on r.id = u.recording_id
          join spoof_clusters c on c.id = u.spoof_cluster_id
          where u.id = any(${ids}::uuid[]) and u.spoof_cluster_id = ${clusterId}
        ), new_recordings as (
          select count(distinct a.recording_id)::int as n from added a
          where not exists (select 1 from utterances o
                            where o.spoof_cluster_id = ${clusterId} and o.recording_id = a.recording_id
                              and o.id <> all(${ids}::uuid[]))
        ), new_accounts as (
          select count(distinct a.account_ref)::int as n from added a
          where a.account_ref is not null
            and not exists (select 1 from recordings r2 join utterances o on o.recording_id = r2.id
                            where r2.account_ref = a.account_ref and o.spoof_cluster_id = ${clusterId}
                              and o.id <> all(${ids}::uuid[]))
        ), f as (
          select count(*)::int as n, coalesce(sum(p_spoofed), 0) as p_sum, count(p_spoofed)::int as p_n,
                 min(seen_at) as first_seen, max(seen_at) as last_seen, max(distance) as farthest,
                 coalesce(array_agg(distinct channel) filter (where channel is not null), '{}') as channels
          from added
        )
        update spoof_clusters c
        set size = c.size + f.n,
            recording_count = c.recording_count + (select n from new_recordings),
            account_count = c.account_count + (select n from new_accounts),
            channels = (select coalesce(array_agg(distinct x order by x), '{}') from unnest(c.channels || f.channels) x),
            first_seen_at = least(c.first_seen_at, f.first_seen), last_seen_at = greatest(c.last_seen_at, f.last_seen),
            mean_p_spoofed = case when f.p_n = 0 then c.mean_p_spoofed
                                  else (coalesce(c.mean_p_spoofed, 0) * c.size + f.p_sum) / (c.size + f.p_n) end,
            radius = greatest(c.radius, coalesce(f.farthest, 0)), updated_at = now()
        from f where c.id = ${clusterId} and f.n > 0
        returning c.status = 'active' and c.size >= c.looked_back_size * ${lookBackGrowth} as "lookBackDue"`,
  );
  return { lookBackDue: rows[0]?.lookBackDue === true };
}

/** A cluster's members as alert evidence: each with its similarity to the centroid. */
export async function clusterEvidence(
  tx: Db,
  clusterId: string,
  which: { since?: Date; until?: Date } = {},
): Promise<{ utteranceId: string; recordingId: string; accountRef: string | null; similarity: number }[]> {
  const rows = await queryRows<{
    utteranceId: string;
    recordingId: string;
    accountRef: string | null;
    similarity: number | string;
  }>(tx, clusterEvidenceStatement(clusterId, which));
  return rows.map((r) => ({ ...r, similarity: Number(r.similarity) }));
}

/**
 * The statement of clusterEvidence. With a window (the growth alert's 24 hours, checked on every
 * call a cluster gains) the planner can start from the window's recordings (recordings_seen_at_idx)
 * or from the cluster's members (utterances_spoof_cluster_idx), whichever holds fewer: without the
 * first, every check read all recordings (what the EXPLAIN test pins).
 */
export function clusterEvidenceStatement(clusterId: string, which: { since?: Date; until?: Date } = {}): SQL {
  const since = which.since
    ? sql`and coalesce(r.call_at, r.created_at) > ${which.since.toISOString()}::timestamptz`
    : sql``;
  const until = which.until
    ? sql`and coalesce(r.call_at, r.created_at) <= ${which.until.toISOString()}::timestamptz`
    : sql``;
  return sql`select u.id as "utteranceId", u.recording_id as "recordingId", r.account_ref as "accountRef",
               1 - (u.deepfake_embedding <=> c.centroid) as similarity
        from utterances u join spoof_clusters c on c.id = u.spoof_cluster_id join recordings r on r.id = u.recording_id
        where u.spoof_cluster_id = ${clusterId} ${since} ${until}
        order by u.recording_id, u.id`;
}

/** A bonafide-labelled utterance of a recording inside an active cluster's reach (rules.ts) of its centroid. */
export type NearMissCandidate = { utteranceId: string; embedding: number[]; clusterIds: string[] };

/**
 * The recording's bonafide-labelled utterances with an embedding that sit within an active
 * cluster's reach of its centroid (NEAR_MISS_RADIUS_FACTOR × its radius), with those clusters nearest first: every centroid is compared
 * (they are few next to the utterances), no index.
 */
export async function nearMissCandidates(tx: Db, recordingId: string): Promise<NearMissCandidate[]> {
  const rows = await queryRows<{ utteranceId: string; embedding: string; clusterIds: string[] }>(
    tx,
    sql`select u.id as "utteranceId", u.deepfake_embedding::text as embedding,
               array_agg(c.id::text order by u.deepfake_embedding <=> c.centroid, c.id) as "clusterIds"
        from utterances u
        join spoof_clusters c on c.status = 'active' and (u.deepfake_embedding <=> c.centroid) <= c.radius * ${NEAR_MISS_RADIUS_FACTOR}
        where u.recording_id = ${recordingId} and u.deepfake_label = 'bonafide'
          and u.deepfake_embedding is not null and u.near_miss_cluster_id is null
        group by u.id
        order by u.id`,
  );
  return rows.map((r) => ({ ...r, embedding: JSON.parse(r.embedding) as number[] }));
}

/** A stored bonafide-labelled utterance inside a cluster's reach, found by a look-back. */
export type LookBackCandidate = NearMissCandidate & { recordingId: string };

/**
 * Stored bonafide-labelled utterances, in no near miss yet, within reach of these active clusters'
 * centroids (or of every active cluster), nearest cluster first. Bonafide speech is not in the
 * HNSW index (it is most of the speech, and searched only here), so this reads every bonafide
 * utterance once and compares it with each cluster: a scan whose cost bench/spoof-steps.ts measures
 * and rules.ts (LOOK_BACK_GROWTH) bounds by how often it runs.
 */
export async function lookBackCandidates(tx: Db, clusterIds: readonly string[] | 'all'): Promise<LookBackCandidate[]> {
  const which = clusterIds === 'all' ? sql`` : sql`and c.id = any(${sql.param([...clusterIds])}::uuid[])`;
  const rows = await queryRows<{ utteranceId: string; recordingId: string; embedding: string; clusterIds: string[] }>(
    tx,
    sql`select u.id as "utteranceId", u.recording_id as "recordingId", u.deepfake_embedding::text as embedding,
               array_agg(c.id::text order by u.deepfake_embedding <=> c.centroid, c.id) as "clusterIds"
        from utterances u
        join spoof_clusters c on c.status = 'active' ${which}
          and (u.deepfake_embedding <=> c.centroid) <= c.radius * ${NEAR_MISS_RADIUS_FACTOR}
        where u.deepfake_label = 'bonafide' and u.deepfake_embedding is not null and u.near_miss_cluster_id is null
        group by u.id
        order by u.id`,
  );
  return rows.map((r) => ({ ...r, embedding: JSON.parse(r.embedding) as number[] }));
}

/** Notes that these clusters were looked back over at their present size. */
export async function markLookedBack(tx: Db, clusterIds: readonly string[] | 'all'): Promise<void> {
  const which = clusterIds === 'all' ? sql`` : sql`and id = any(${sql.param([...clusterIds])}::uuid[])`;
  await tx.execute(sql`update spoof_clusters set looked_back_size = size where status = 'active' ${which}`);
}

export async function markNearMiss(tx: Db, utteranceId: string, clusterId: string): Promise<void> {
  await tx.execute(sql`update utterances set near_miss_cluster_id = ${clusterId} where id = ${utteranceId}`);
}

/** One utterance's embedding and recording, for the noise a cluster absorbs. */
export async function utteranceEmbedding(
  tx: Db,
  utteranceId: string,
): Promise<{ embedding: number[]; recordingId: string } | null> {
  const [row] = await queryRows<{ embedding: string | null; recordingId: string }>(
    tx,
    sql`select deepfake_embedding::text as embedding, recording_id as "recordingId" from utterances where id = ${utteranceId}`,
  );
  return row?.embedding ? { embedding: JSON.parse(row.embedding) as number[], recordingId: row.recordingId } : null;
}
