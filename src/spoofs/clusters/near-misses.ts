import type { Db } from '../../db/client.ts';
import { spoofedNeighbours, votesByCluster } from './neighbours.ts';
import {
  lookBackCandidates,
  markLookedBack,
  markNearMiss,
  type NearMissCandidate,
  nearMissCandidates,
} from './queries.ts';
import { MIN_VOTES } from './rules.ts';

/**
 * Near misses: bonafide-labelled utterances that sit inside a spoof cluster — within its reach of
 * the centroid (NEAR_MISS_RADIUS_FACTOR × radius), and confirmed by their nearest spoofed utterances
 * of other calls (at least MIN_VOTES of them in that cluster, at ≥ NEIGHBOUR_SIMILARITY): the calls
 * the upstream waved through that an analyst most wants to see. Centroids first (they are few), so
 * that an utterance near no cluster costs one comparison per cluster and no index walk.
 */

export type NearMiss = { utteranceId: string; recordingId: string; clusterId: string };

/** A new recording's near misses, flagged. */
export async function flagNearMisses(tx: Db, recordingId: string): Promise<NearMiss[]> {
  return confirm(
    tx,
    (await nearMissCandidates(tx, recordingId)).map((c) => ({ ...c, recordingId })),
  );
}

/**
 * The look-back: stored bonafide speech near clusters that formed or grew (or every active
 * cluster, for recluster), flagged as new recordings are, and the clusters marked as looked back
 * over at their size. Returns the near misses it flagged; their calls need judging again.
 */
export async function lookBackNearMisses(tx: Db, clusterIds: readonly string[] | 'all'): Promise<NearMiss[]> {
  if (clusterIds !== 'all' && clusterIds.length === 0) return [];
  const flagged = await confirm(tx, await lookBackCandidates(tx, clusterIds));
  await markLookedBack(tx, clusterIds);
  return flagged;
}

async function confirm(tx: Db, candidates: (NearMissCandidate & { recordingId: string })[]): Promise<NearMiss[]> {
  const flagged: NearMiss[] = [];
  for (const candidate of candidates) {
    const votes = votesByCluster(await spoofedNeighbours(tx, candidate.embedding, candidate.recordingId));
    const clusterId = candidate.clusterIds.find((id) => (votes.get(id) ?? 0) >= MIN_VOTES);
    if (!clusterId) continue;
    await markNearMiss(tx, candidate.utteranceId, clusterId);
    flagged.push({ utteranceId: candidate.utteranceId, recordingId: candidate.recordingId, clusterId });
  }
  return flagged;
}
