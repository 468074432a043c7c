import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';
import type { SpoofClusterStatus } from '../../db/schema.ts';
import { LIST_LIMIT_DEFAULT } from '../../http/limits.ts';
import { encodeListCursor, type ListPosition, type Page } from '../../recordings/queries.ts';
import { GROWTH_WINDOW_MS } from './rules.ts';

/** The SQL of the cluster views: the list, one cluster, its members, its timeline and its graph. */

export type ClusterSort = 'size' | 'growth' | 'recent';

export type ClusterSummary = {
  id: string;
  label: string | null;
  notes: string | null;
  status: SpoofClusterStatus;
  size: number;
  recordingCount: number;
  accountCount: number;
  channels: string[];
  firstSeenAt: string | null;
  lastSeenAt: string | null;
  meanPSpoofed: number | null;
  medoidUtteranceId: string | null;
  /** recordings it gained within the 24 hours before now (`spoof_cluster_growth` counts the same) */
  growth: number;
  radius: number;
  origin: string;
  mergedInto: string | null;
  statusReason: string | null;
  analystEditedAt: string | null;
  createdAt: string;
  updatedAt: string;
};

type Row = Omit<
  ClusterSummary,
  'firstSeenAt' | 'lastSeenAt' | 'analystEditedAt' | 'createdAt' | 'updatedAt' | 'meanPSpoofed' | 'radius' | 'growth'
> & {
  firstSeenAt: Date | string | null;
  lastSeenAt: Date | string | null;
  analystEditedAt: Date | string | null;
  createdAt: Date | string;
  updatedAt: Date | string;
  meanPSpoofed: number | string | null;
  radius: number | string;
  growth: number | string;
  sortKey: string;
};

const iso = (v: Date | string | null) => (v === null ? null : new Date(v).toISOString());
const toSummary = ({ sortKey: _key, sort_key: _sort, ...r }: Row & { sort_key?: unknown }): ClusterSummary => ({
  ...r,
  firstSeenAt: iso(r.firstSeenAt),
  lastSeenAt: iso(r.lastSeenAt),
  analystEditedAt: iso(r.analystEditedAt),
  createdAt: iso(r.createdAt) as string,
  updatedAt: iso(r.updatedAt) as string,
  meanPSpoofed: r.meanPSpoofed === null ? null : Number(r.meanPSpoofed),
  radius: Number(r.radius),
  growth: Number(r.growth),
});

/** Recordings a cluster gained in the growth window before now (`utterances_spoof_cluster_idx`). */
const growthOf = (cluster: SQL) =>
  sql`(select count(distinct u.recording_id) from utterances u join recordings r on r.id = u.recording_id
       where u.spoof_cluster_id = ${cluster}
         and coalesce(r.call_at, r.created_at) > now() - ${sql.raw(`interval '${GROWTH_WINDOW_MS / 1000} seconds'`)})`;

const summaryColumns = (growth: SQL) =>
  sql`c.id, c.label, c.notes, c.status, c.size, c.recording_count as "recordingCount", c.account_count as "accountCount",
      c.channels, c.first_seen_at as "firstSeenAt", c.last_seen_at as "lastSeenAt", c.mean_p_spoofed as "meanPSpoofed",
      c.medoid_utterance_id as "medoidUtteranceId", ${growth} as growth, c.radius, c.origin, c.merged_into as "mergedInto",
      c.status_reason as "statusReason", c.analyst_edited_at as "analystEditedAt", c.created_at as "createdAt",
      c.updated_at as "updatedAt"`;

/** The sort key of each order over the listed columns, as a whole number (a cursor holds it): largest first, ties by id. */
const sortKeys: Record<ClusterSort, SQL> = {
  size: sql`size::bigint`,
  recent: sql`coalesce((extract(epoch from "lastSeenAt") * 1000000)::bigint, -1)`,
  growth: sql`growth::bigint`,
};

/**
 * Clusters of one status (or all), largest / fastest-growing / most recently seen first, keyset
 * paged on (sort key, id) descending. `growth` is computed per cluster from its members, so the
 * list reads every member of the listed clusters once (`utterances_spoof_cluster_idx`).
 */
export async function listClusters(
  db: Db,
  options: { sort: ClusterSort; status: SpoofClusterStatus | 'all'; limit?: number; after?: ListPosition },
): Promise<Page<ClusterSummary>> {
  const limit = options.limit ?? LIST_LIMIT_DEFAULT;
  const status = options.status === 'all' ? sql`true` : sql`c.status = ${options.status}`;
  const after = options.after
    ? sql`where (sort_key, id) < (${options.after.createdAtMicros}::bigint, ${options.after.id}::uuid)`
    : sql``;
  const rows = await queryRows<Row>(
    db,
    sql`select *, sort_key::text as "sortKey" from (
          select listed.*, ${sortKeys[options.sort]} as sort_key
          from (select ${summaryColumns(growthOf(sql`c.id`))} from spoof_clusters c where ${status}) listed
        ) keyed
        ${after}
        order by sort_key desc, id desc
        limit ${limit + 1}`,
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toSummary),
    nextCursor: rows.length > limit && last ? encodeListCursor({ createdAtMicros: last.sortKey, id: last.id }) : null,
  };
}

export async function clusterSummary(db: Db, clusterId: string): Promise<ClusterSummary | null> {
  const [row] = await queryRows<Row>(
    db,
    sql`select ${summaryColumns(growthOf(sql`c.id`))}, '0' as "sortKey" from spoof_clusters c where c.id = ${clusterId}`,
  );
  return row ? toSummary(row) : null;
}

/** Members per day (UTC) of their call, else of when they were stored, oldest first. */
export async function clusterTimeline(
  db: Db,
  clusterId: string,
): Promise<{ day: string; utterances: number; recordings: number }[]> {
  const rows = await queryRows<{ day: string; utterances: number | string; recordings: number | string }>(
    db,
    sql`select to_char(date_trunc('day', coalesce(r.call_at, r.created_at) at time zone 'UTC'), 'YYYY-MM-DD') as day,
               count(*) as utterances, count(distinct u.recording_id) as recordings
        from utterances u join recordings r on r.id = u.recording_id
        where u.spoof_cluster_id = ${clusterId}
        group by 1 order by 1`,
  );
  return rows.map((r) => ({ day: r.day, utterances: Number(r.utterances), recordings: Number(r.recordings) }));
}

export async function clusterAccountRefs(db: Db, clusterId: string): Promise<string[]> {
  const rows = await queryRows<{ accountRef: string }>(
    db,
    sql`select distinct r.account_ref as "accountRef" from utterances u join recordings r on r.id = u.recording_id
        where u.spoof_cluster_id = ${clusterId} and r.account_ref is not null order by 1`,
  );
  return rows.map((r) => r.accountRef);
}

export type ClusterHistoryItem = {
  action: string;
  utteranceIds: string[];
  relatedClusterIds: string[];
  reason: string | null;
  source: string;
  keyId: string | null;
  createdAt: string;
};

export async function clusterHistory(db: Db, clusterId: string): Promise<ClusterHistoryItem[]> {
  const rows = await queryRows<Omit<ClusterHistoryItem, 'createdAt'> & { createdAt: Date | string }>(
    db,
    sql`select action, utterance_ids::text[] as "utteranceIds", related_cluster_ids::text[] as "relatedClusterIds", reason,
               source, key_id as "keyId", created_at as "createdAt"
        from spoof_cluster_events where cluster_id = ${clusterId} order by created_at, id`,
  );
  return rows.map((r) => ({ ...r, createdAt: iso(r.createdAt) as string }));
}

export type ClusterMember = {
  utteranceId: string;
  recordingId: string;
  accountRef: string | null;
  channel: string | null;
  callAt: string | null;
  speakerLabel: string | null;
  start: number | null;
  end: number | null;
  pSpoofed: number | null;
  /** cosine similarity to the cluster's centroid */
  similarity: number;
};

/** A cluster's members, latest call first, keyset paged on (call time else stored time, id). */
export async function clusterMembers(
  db: Db,
  clusterId: string,
  options: { limit?: number; after?: ListPosition },
): Promise<Page<ClusterMember>> {
  const limit = options.limit ?? LIST_LIMIT_DEFAULT;
  const after = options.after
    ? sql`and (seen_micros, id) < (${options.after.createdAtMicros}::bigint, ${options.after.id}::uuid)`
    : sql``;
  const rows = await queryRows<
    Omit<ClusterMember, 'callAt' | 'similarity' | 'pSpoofed' | 'start' | 'end'> & {
      id: string;
      callAt: Date | string | null;
      similarity: number | string;
      pSpoofed: number | string | null;
      start: number | string | null;
      end: number | string | null;
      seenMicros: string;
    }
  >(
    db,
    sql`select * from (
          select u.id, u.id as "utteranceId", u.recording_id as "recordingId", r.account_ref as "accountRef", r.channel,
                 r.call_at as "callAt", u.speaker_label as "speakerLabel", u.start_s as start, u.end_s as "end",
                 u.p_spoofed as "pSpoofed", 1 - (u.deepfake_embedding <=> c.centroid) as similarity,
                 (extract(epoch from coalesce(r.call_at, r.created_at)) * 1000000)::bigint as seen_micros,
                 (extract(epoch from coalesce(r.call_at, r.created_at)) * 1000000)::bigint::text as "seenMicros"
          from utterances u join recordings r on r.id = u.recording_id join spoof_clusters c on c.id = u.spoof_cluster_id
          where u.spoof_cluster_id = ${clusterId}
        ) m
        where true ${after}
        order by seen_micros desc, id desc
        limit ${limit + 1}`,
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const num = (v: number | string | null) => (v === null ? null : Number(v));
  return {
    items: page.map((r) => ({
      utteranceId: r.utteranceId,
      recordingId: r.recordingId,
      accountRef: r.accountRef,
      channel: r.channel,
      callAt: iso(r.callAt),
      speakerLabel: r.speakerLabel,
      start: num(r.start),
      end: num(r.end),
      pSpoofed: num(r.pSpoofed),
      similarity: Math.round(Number(r.similarity) * 1e6) / 1e6,
    })),
    nextCursor:
      rows.length > limit && last ? encodeListCursor({ createdAtMicros: last.seenMicros, id: last.id }) : null,
  };
}

/**
 * The pairwise-similarity graph of a cluster's members: the `maxMembers` members nearest its
 * centroid as nodes, and every pair of them at ≥ minSimilarity as an edge (one statement, the
 * pairs compared in the database).
 */
export async function clusterGraph(
  db: Db,
  clusterId: string,
  options: { maxMembers: number; minSimilarity: number },
): Promise<{
  nodes: { utteranceId: string; recordingId: string; accountRef: string | null; similarity: number }[];
  edges: { source: string; target: string; similarity: number }[];
}> {
  const nodes = await queryRows<{
    utteranceId: string;
    recordingId: string;
    accountRef: string | null;
    similarity: number | string;
  }>(
    db,
    sql`select u.id as "utteranceId", u.recording_id as "recordingId", r.account_ref as "accountRef",
               1 - (u.deepfake_embedding <=> c.centroid) as similarity
        from utterances u join recordings r on r.id = u.recording_id join spoof_clusters c on c.id = u.spoof_cluster_id
        where u.spoof_cluster_id = ${clusterId}
        order by u.deepfake_embedding <=> c.centroid, u.id
        limit ${options.maxMembers}`,
  );
  const ids = sql.param(nodes.map((n) => n.utteranceId));
  const edges = await queryRows<{ source: string; target: string; similarity: number | string }>(
    db,
    sql`with picked as (select id, deepfake_embedding as e from utterances where id = any(${ids}::uuid[]))
        select a.id as source, b.id as target, 1 - (a.e <=> b.e) as similarity
        from picked a join picked b on a.id < b.id
        where 1 - (a.e <=> b.e) >= ${options.minSimilarity}
        order by a.id, b.id`,
  );
  const round = (v: number | string) => Math.round(Number(v) * 1e6) / 1e6;
  return {
    nodes: nodes.map((n) => ({ ...n, similarity: round(n.similarity) })),
    edges: edges.map((e) => ({ ...e, similarity: round(e.similarity) })),
  };
}
