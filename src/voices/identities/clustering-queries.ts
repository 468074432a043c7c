import { sql } from 'drizzle-orm';
import pgvector from 'pgvector';
import { type Db, queryRows } from '../../db/client.ts';
import type { IdentityKind, IdentityOrigin } from '../../db/schema.ts';
import { CLUSTER_EF_SEARCH, SPOOFED_MEAN_P } from './thresholds.ts';

/**
 * The SQL of automatic identity clustering (the online step, step.ts + assign.ts, and
 * `recluster voices`, recluster.ts). Membership itself changes only through membership.ts.
 */

/**
 * The advisory lock every automatic assignment takes inside its transaction: two workers analysing
 * two calls of one new voice at once take turns, and the second (read committed: each statement
 * sees what committed before it) finds the first one's identity instead of seeding another.
 */
export const IDENTITY_ASSIGNMENT_LOCK = 0x766f_6963; // 'voic'

/** Waits for the assignment lock; it is released when the caller's transaction ends. */
export async function lockIdentityAssignment(tx: Db): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${IDENTITY_ASSIGNMENT_LOCK})`);
}

/** A voiceprint as clustering sees it. */
export type ClusterPoint = {
  id: string;
  recordingId: string;
  unit: number[];
  speechSeconds: number;
  /** mean pSpoofed ≥ SPOOFED_MEAN_P */
  spoofed: boolean;
  identityId: string | null;
  identityKind: IdentityKind | null;
  assignedBy: string | null;
};

type PointRow = {
  id: string;
  recordingId: string;
  embedding: string;
  speechSeconds: number | string;
  spoofed: boolean;
  identityId: string | null;
  identityKind: IdentityKind | null;
  assignedBy: string | null;
};

const pointColumns = sql`v.id, v.recording_id as "recordingId", v.embedding::text as embedding,
  v.speech_seconds as "speechSeconds", coalesce(v.mean_p_spoofed, 0) >= ${SPOOFED_MEAN_P} as spoofed,
  v.identity_id as "identityId", i.kind as "identityKind", v.assigned_by as "assignedBy"`;

function toPoint(row: PointRow): ClusterPoint {
  return {
    id: row.id,
    recordingId: row.recordingId,
    unit: pgvector.fromSql(row.embedding) as number[],
    speechSeconds: Number(row.speechSeconds),
    spoofed: Boolean(row.spoofed),
    identityId: row.identityId,
    identityKind: row.identityKind,
    assignedBy: row.assignedBy,
  };
}

/** The voiceprints of one recording, in speaker-label order. */
export async function recordingPoints(tx: Db, recordingId: string): Promise<ClusterPoint[]> {
  const rows = await queryRows<PointRow>(
    tx,
    sql`select ${pointColumns}
        from voiceprints v left join identities i on i.id = v.identity_id
        where v.recording_id = ${recordingId}
        order by v.speaker_label, v.id`,
  );
  return rows.map(toPoint);
}

/** These voiceprints (as they are now, in this transaction), in id order. */
export async function pointsById(tx: Db, ids: readonly string[]): Promise<ClusterPoint[]> {
  if (ids.length === 0) return [];
  const rows = await queryRows<PointRow>(
    tx,
    sql`select ${pointColumns}
        from voiceprints v left join identities i on i.id = v.identity_id
        where v.id = any(${sql.param([...ids])}::uuid[])
        order by v.id`,
  );
  return rows.map(toPoint);
}

export type CentroidCandidate = {
  identityId: string;
  kind: IdentityKind;
  origin: IdentityOrigin;
  similarity: number;
  /** whether its members are spoofed speech (judged by its first member) */
  spoofed: boolean;
};

/**
 * The `k` live identities whose centroids are nearest `unit`, nearest first, from the HNSW index
 * `identities_centroid_hnsw`. The walk has no filter, so that the index answers it: a retired or
 * merged identity has no members and so no centroid (refreshCentroid), and the index holds no
 * null; the check afterwards is for safety.
 */
export async function nearestCentroids(tx: Db, unit: readonly number[], k: number): Promise<CentroidCandidate[]> {
  const literal = pgvector.toSql([...unit]);
  await tx.execute(
    sql`select set_config('hnsw.ef_search', ${String(Math.max(k, CLUSTER_EF_SEARCH))}, true),
               set_config('hnsw.iterative_scan', 'off', true)`,
  );
  const rows = await queryRows<{
    identityId: string;
    kind: IdentityKind;
    origin: IdentityOrigin;
    distance: number | string;
    spoofed: boolean | null;
  }>(
    tx,
    sql`with walked as materialized (
          select id, kind, origin, retired_at, merged_into, centroid <=> ${literal}::vector(192) as distance
          from identities
          order by centroid <=> ${literal}::vector(192)
          limit ${k}
        )
        select w.id as "identityId", w.kind, w.origin, w.distance,
               (select coalesce(m.mean_p_spoofed, 0) >= ${SPOOFED_MEAN_P}
                from voiceprints m where m.identity_id = w.id order by m.id limit 1) as spoofed
        from walked w
        where w.retired_at is null and w.merged_into is null and w.distance is not null
        order by w.distance, w.id`,
  );
  return rows.map((r) => ({
    identityId: r.identityId,
    kind: r.kind,
    origin: r.origin,
    similarity: 1 - Number(r.distance),
    spoofed: Boolean(r.spoofed),
  }));
}

/** Identities as recluster needs them: kind and whether an analyst made or changed them. */
export type IdentityState = {
  id: string;
  kind: IdentityKind;
  origin: IdentityOrigin;
  analystEdited: boolean;
  memberCount: number;
};

/**
 * The voiceprints `recluster voices` re-derives: those in no identity or in a live `unknown`
 * identity that no analyst created or edited, and never one an analyst placed.
 */
export async function reclusterPool(tx: Db): Promise<ClusterPoint[]> {
  const rows = await queryRows<PointRow>(
    tx,
    sql`select ${pointColumns}
        from voiceprints v left join identities i on i.id = v.identity_id
        where (v.assigned_by is null or v.assigned_by <> 'analyst')
          and (v.identity_id is null
               or (i.kind = 'unknown' and i.origin <> 'analyst' and i.analyst_edited_at is null
                   and i.retired_at is null and i.merged_into is null))
        order by v.id`,
  );
  return rows.map(toPoint);
}

export type GraphEdge = { from: string; to: string; similarity: number };

/**
 * The `k` nearest voiceprints of each of `ids` (the HNSW index walked once per voiceprint, one
 * statement per batch), at least `minSimilarity`, other recordings only.
 */
export async function nearestVoiceprintsOf(
  tx: Db,
  ids: readonly string[],
  input: { k: number; minSimilarity: number; efSearch: number },
): Promise<GraphEdge[]> {
  if (ids.length === 0) return [];
  await tx.execute(
    sql`select set_config('hnsw.ef_search', ${String(Math.max(input.k, input.efSearch))}, true),
               set_config('hnsw.iterative_scan', 'off', true)`,
  );
  const rows = await queryRows<{ from: string; to: string; distance: number | string }>(
    tx,
    sql`select q.id as "from", n.id as "to", n.distance
        from voiceprints q
        cross join lateral (
          select c.id, c.recording_id, c.embedding <=> q.embedding as distance
          from voiceprints c
          order by c.embedding <=> q.embedding
          limit ${input.k}
        ) n
        where q.id = any(${sql.param([...ids])}::uuid[])
          and n.recording_id <> q.recording_id
          and n.distance <= ${1 - input.minSimilarity}`,
  );
  return rows.map((r) => ({ from: r.from, to: r.to, similarity: 1 - Number(r.distance) }));
}

/** Live identities holding any of `ids`, with what recluster must know of them. */
export async function identitiesOf(tx: Db, identityIds: readonly string[]): Promise<IdentityState[]> {
  if (identityIds.length === 0) return [];
  const rows = await queryRows<{
    id: string;
    kind: IdentityKind;
    origin: IdentityOrigin;
    analystEdited: boolean;
    memberCount: number | string;
  }>(
    tx,
    sql`select id, kind, origin, analyst_edited_at is not null as "analystEdited", member_count as "memberCount"
        from identities where id = any(${sql.param([...identityIds])}::uuid[]) order by id`,
  );
  return rows.map((r) => ({ ...r, memberCount: Number(r.memberCount) }));
}
