import type { Db } from '../../db/client.ts';
import { spoofedNeighbours, votesByCluster } from './neighbours.ts';
import { markNearMiss, nearMissCandidates } from './queries.ts';
import { MIN_VOTES } from './rules.ts';

/**
 * Near misses of a recording: bonafide-labelled utterances that sit inside a spoof cluster —
 * within its radius of the centroid, and confirmed by their nearest spoofed utterances of other
 * calls (at least MIN_VOTES of them in that cluster, at ≥ NEIGHBOUR_SIMILARITY): the calls the
 * upstream waved through that an analyst most wants to see. Centroids first (they are few), so
 * that an utterance near no cluster costs one comparison per cluster and no index walk.
 * Returns the near misses it flagged.
 */
export async function flagNearMisses(
  tx: Db,
  recordingId: string,
): Promise<{ utteranceId: string; clusterId: string }[]> {
  const flagged: { utteranceId: string; clusterId: string }[] = [];
  for (const candidate of await nearMissCandidates(tx, recordingId)) {
    const votes = votesByCluster(await spoofedNeighbours(tx, candidate.embedding, recordingId));
    const clusterId = candidate.clusterIds.find((id) => (votes.get(id) ?? 0) >= MIN_VOTES);
    if (!clusterId) continue;
    await markNearMiss(tx, candidate.utteranceId, clusterId);
    flagged.push({ utteranceId: candidate.utteranceId, clusterId });
  }
  return flagged;
}
