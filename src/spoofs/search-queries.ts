import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client.ts';
import { DEEPFAKE_DIMENSIONS } from '../db/schema.ts';

/** The SQL of spoof search: the stored utterances a query names, and the clusters nearest a vector. */

const DIMS = sql.raw(String(DEEPFAKE_DIMENSIONS));

/** A stored utterance as a spoof query: its embedding, label and where clustering put it. */
export type QueryUtterance = {
  id: string;
  recordingId: string;
  label: string | null;
  embedding: number[] | null;
  clusterId: string | null;
  nearMissClusterId: string | null;
};

type QueryUtteranceRow = Omit<QueryUtterance, 'embedding'> & { embedding: string | null };
const toQueryUtterance = (r: QueryUtteranceRow): QueryUtterance => ({
  ...r,
  embedding: r.embedding ? (JSON.parse(r.embedding) as number[]) : null,
});
const columns = sql`id, recording_id as "recordingId", deepfake_label as label, deepfake_embedding::text as embedding,
                    spoof_cluster_id as "clusterId", near_miss_cluster_id as "nearMissClusterId"`;

export async function queryUtterance(db: Db, utteranceId: string): Promise<QueryUtterance | null> {
  const [row] = await queryRows<QueryUtteranceRow>(
    db,
    sql`select ${columns} from utterances where id = ${utteranceId}`,
  );
  return row ? toQueryUtterance(row) : null;
}

/** A recording's utterances with a deepfake embedding; `exists` false when there is no such recording. */
export async function queryRecordingUtterances(
  db: Db,
  recordingId: string,
): Promise<{ exists: boolean; utterances: QueryUtterance[] }> {
  const [found] = await queryRows<{ n: number }>(db, sql`select 1 as n from recordings where id = ${recordingId}`);
  if (!found) return { exists: false, utterances: [] };
  const rows = await queryRows<QueryUtteranceRow>(
    db,
    sql`select ${columns} from utterances
        where recording_id = ${recordingId} and deepfake_embedding is not null
        order by start_s nulls last, upstream_id`,
  );
  return { exists: true, utterances: rows.map(toQueryUtterance) };
}

export type NearCluster = {
  clusterId: string;
  label: string | null;
  similarity: number;
  size: number;
  firstSeenAt: string | null;
  lastSeenAt: string | null;
};

/**
 * Active clusters by centroid similarity to a unit vector, nearest first: every centroid is
 * compared (`spoof_clusters_active_idx` finds them; campaigns are few next to utterances).
 */
export async function nearestClusters(db: Db, unit: ArrayLike<number>, limit: number): Promise<NearCluster[]> {
  if (limit === 0) return [];
  const rows = await queryRows<
    Omit<NearCluster, 'similarity'> & {
      similarity: number | string;
      firstSeenAt: Date | string | null;
      lastSeenAt: Date | string | null;
    }
  >(
    db,
    sql`select id as "clusterId", label, size, first_seen_at as "firstSeenAt", last_seen_at as "lastSeenAt",
               1 - (centroid <=> ${JSON.stringify(Array.from(unit))}::halfvec(${DIMS})) as similarity
        from spoof_clusters where status = 'active'
        order by centroid <=> ${JSON.stringify(Array.from(unit))}::halfvec(${DIMS}), id
        limit ${limit}`,
  );
  const iso = (v: Date | string | null) => (v === null ? null : new Date(v).toISOString());
  return rows.map((r) => ({
    ...r,
    similarity: Number(r.similarity),
    firstSeenAt: iso(r.firstSeenAt),
    lastSeenAt: iso(r.lastSeenAt),
  }));
}
