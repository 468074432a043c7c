import { type Actor, recordAudit } from '../audit/audit.ts';
import type { Db } from '../db/client.ts';
import { DEEPFAKE_DIMENSIONS } from '../db/schema.ts';
import { withTransaction } from '../db/transaction.ts';
import { NotFoundError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { deepfakeSpace, type KnnFilter, type KnnMethod, type Neighbour, nearestNeighbours } from '../search/knn.ts';
import { parseRequest } from '../search/parse-request.ts';
import { queryVectorUnit } from '../search/query-vector.ts';
import { clusterBelongedTo } from './clusters/belonging.ts';
import {
  type NearCluster,
  nearestClusters,
  type QueryUtterance,
  queryRecordingUtterances,
  queryUtterance,
} from './search-queries.ts';
import { type SpoofQuery, type SpoofSearchRequest, spoofSearchSchema } from './search-request.ts';

/**
 * "Which campaign is this?": the spoof clusters and spoofed utterances nearest a spoof query
 * (CONVENTIONS "Spoofs API", `POST /v1/spoofs/search`), audited.
 *
 * - `verdict.clusterId`: for a stored utterance, the cluster clustering put it in or, for a near
 *   miss, the one it sits inside; for a recording, the cluster most of its utterances belong to
 *   that way; otherwise (a raw embedding, or speech clustering left as noise) the cluster the
 *   online rules say it belongs to (clusters/belonging.ts). `novel`: the query is spoofed — a
 *   spoofed utterance, a recording with one, or a raw embedding — and belongs to no cluster.
 * - `clusters`: the active clusters nearest by centroid similarity (for a recording, its nearest
 *   utterance's), each with the votes of the answer's neighbours.
 * - `neighbours`: the k spoofed utterances nearest any of the query's vectors, the query's own
 *   recording left out; complete under the filter, as voice search is (src/search/knn.ts).
 */

export type SpoofNeighbour = {
  utteranceId: string;
  recordingId: string;
  accountRef: string | null;
  channel: string | null;
  callAt: string | null;
  clusterId: string | null;
  pSpoofed: number | null;
  similarity: number;
};

export type SpoofSearchAnswer = {
  verdict: { clusterId: string | null; novel: boolean };
  clusters: (NearCluster & { votes: number })[];
  neighbours: SpoofNeighbour[];
  plan: { method: KnnMethod; efSearch: number | null; ms: number };
};

/** A spoof query made concrete: its vectors, its recording (left out of answers), what is known of it. */
type ResolvedSpoofQuery = {
  vectors: { utteranceId: string | null; unit: ArrayLike<number>; stored: QueryUtterance | null }[];
  recordingId: string | null;
  spoofed: boolean;
  /** what the audit trail keeps: ids, never a vector */
  reference: { utteranceId: string } | { recordingId: string } | { embedding: 'given' };
};

/**
 * @example const { verdict, clusters, neighbours } = await searchSpoofs(db, { query: { utteranceId } }, actor);
 */
export async function searchSpoofs(db: Db, body: unknown, actor: Actor): Promise<SpoofSearchAnswer> {
  const request = parseRequest(spoofSearchSchema, body);
  const started = performance.now();
  return withTransaction(db, async (tx) => {
    const query = await resolveSpoofQuery(tx, request.query);
    const found = await neighboursOf(tx, query, request);
    const clusterId = await verdictCluster(tx, query);
    const clusters = await clustersNear(tx, query, request.clusters, found.neighbours);
    await recordAudit(tx, actor, {
      action: 'spoof.search',
      targetIds: [
        ...query.vectors.flatMap((v) => (v.utteranceId ? [v.utteranceId] : [])),
        ...found.neighbours.map((n) => n.utteranceId),
      ],
      params: { ...request, query: query.reference },
      resultCount: found.neighbours.length,
    });
    return {
      verdict: { clusterId, novel: query.spoofed && clusterId === null },
      clusters,
      neighbours: found.neighbours,
      plan: { ...found.plan, ms: Math.round((performance.now() - started) * 1000) / 1000 },
    };
  });
}

async function resolveSpoofQuery(tx: Db, query: SpoofQuery): Promise<ResolvedSpoofQuery> {
  if ('utteranceId' in query) {
    const stored = isUuid(query.utteranceId) ? await queryUtterance(tx, query.utteranceId) : null;
    if (!stored) throw new NotFoundError(`query.utteranceId: no utterance ${query.utteranceId}`);
    if (!stored.embedding) {
      throw new NotFoundError(`query.utteranceId: utterance ${query.utteranceId} has no deepfake embedding`);
    }
    return {
      vectors: [{ utteranceId: stored.id, unit: stored.embedding, stored }],
      recordingId: stored.recordingId,
      spoofed: stored.label === 'spoofed',
      reference: { utteranceId: stored.id },
    };
  }
  if ('recordingId' in query) {
    const { exists, utterances } = isUuid(query.recordingId)
      ? await queryRecordingUtterances(tx, query.recordingId)
      : { exists: false, utterances: [] };
    if (!exists) throw new NotFoundError(`query.recordingId: no recording ${query.recordingId}`);
    if (utterances.length === 0) {
      throw new NotFoundError(
        `query.recordingId: recording ${query.recordingId} has no utterance with a deepfake embedding`,
      );
    }
    return {
      vectors: utterances.map((u) => ({ utteranceId: u.id, unit: u.embedding as number[], stored: u })),
      recordingId: query.recordingId,
      spoofed: utterances.some((u) => u.label === 'spoofed'),
      reference: { recordingId: query.recordingId },
    };
  }
  return {
    vectors: [
      {
        utteranceId: null,
        unit: queryVectorUnit(query.embedding, 'query.embedding', DEEPFAKE_DIMENSIONS),
        stored: null,
      },
    ],
    recordingId: null,
    spoofed: true,
    reference: { embedding: 'given' },
  };
}

/** The k nearest spoofed utterances to any of the query's vectors: each vector's complete answer, merged. */
async function neighboursOf(tx: Db, query: ResolvedSpoofQuery, request: SpoofSearchRequest) {
  const f = request.filter ?? {};
  const filter: KnnFilter = {
    ...(f.accountRefs ? { accountRefs: f.accountRefs } : {}),
    ...(f.channels ? { channels: f.channels } : {}),
    ...(f.from ? { from: new Date(f.from) } : {}),
    ...(f.to ? { to: new Date(f.to) } : {}),
    ...(f.minPSpoofed !== undefined ? { minPSpoofed: f.minPSpoofed } : {}),
    ...(query.recordingId ? { excludeRecordingIds: [query.recordingId] } : {}),
  };
  const best = new Map<string, Neighbour>();
  const methods: KnnMethod[] = [];
  let efSearch: number | null = null;
  for (const vector of query.vectors) {
    const { neighbours, plan } = await nearestNeighbours(tx, deepfakeSpace, vector.unit, {
      k: request.k,
      filter,
      exact: request.exact,
      ...(request.efSearch ? { efSearch: request.efSearch } : {}),
    });
    methods.push(plan.method);
    efSearch ??= plan.efSearch;
    for (const n of neighbours) {
      const seen = best.get(n.id);
      if (!seen || n.similarity > seen.similarity) best.set(n.id, n);
    }
  }
  const neighbours = [...best.values()]
    .sort((a, b) => b.similarity - a.similarity || a.id.localeCompare(b.id))
    .slice(0, request.k)
    .map(toSpoofNeighbour);
  const method: KnnMethod = methods.includes('exact')
    ? 'exact'
    : methods.includes('hnsw-iterative')
      ? 'hnsw-iterative'
      : 'hnsw';
  return { neighbours, plan: { method, efSearch: method === 'exact' ? null : efSearch } };
}

/** The cluster the query belongs to: where clustering put it, else by the online rules. */
async function verdictCluster(tx: Db, query: ResolvedSpoofQuery): Promise<string | null> {
  const placed = new Map<string, number>();
  for (const { stored } of query.vectors) {
    const clusterId = stored?.clusterId ?? stored?.nearMissClusterId;
    if (clusterId) placed.set(clusterId, (placed.get(clusterId) ?? 0) + 1);
  }
  const top = [...placed].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
  if (top) return top[0];
  const votes = new Map<string, number>();
  for (const vector of query.vectors) {
    const clusterId = await clusterBelongedTo(tx, vector.unit, query.recordingId);
    if (clusterId) votes.set(clusterId, (votes.get(clusterId) ?? 0) + 1);
  }
  return [...votes].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] ?? null;
}

/** The nearest clusters to any of the query's vectors (each at its best similarity), with the neighbours' votes. */
async function clustersNear(tx: Db, query: ResolvedSpoofQuery, limit: number, neighbours: SpoofNeighbour[]) {
  const best = new Map<string, NearCluster>();
  for (const vector of query.vectors) {
    for (const cluster of await nearestClusters(tx, vector.unit, limit)) {
      const seen = best.get(cluster.clusterId);
      if (!seen || cluster.similarity > seen.similarity) best.set(cluster.clusterId, cluster);
    }
  }
  const votes = new Map<string, number>();
  for (const n of neighbours) if (n.clusterId) votes.set(n.clusterId, (votes.get(n.clusterId) ?? 0) + 1);
  return [...best.values()]
    .sort((a, b) => b.similarity - a.similarity || a.clusterId.localeCompare(b.clusterId))
    .slice(0, limit)
    .map((c) => ({ ...c, similarity: round(c.similarity), votes: votes.get(c.clusterId) ?? 0 }));
}

function toSpoofNeighbour(n: Neighbour): SpoofNeighbour {
  return {
    utteranceId: n.id,
    recordingId: n.recordingId,
    accountRef: n.accountRef,
    channel: n.channel,
    callAt: n.callAt ? n.callAt.toISOString() : null,
    clusterId: (n.clusterId as string | null) ?? null,
    pSpoofed: n.pSpoofed == null ? null : Number(n.pSpoofed),
    similarity: round(n.similarity),
  };
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
