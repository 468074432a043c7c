import type { Db } from '../../db/client.ts';
import { spoofedNeighbours, votesByCluster } from './neighbours.ts';
import { centroidReach } from './queries.ts';
import { CENTROID_SIMILARITY, MIN_VOTES, NEAR_MISS_RADIUS_FACTOR } from './rules.ts';

/**
 * The cluster an embedding belongs to by the online rules (rules.ts), without placing anything:
 * the cluster that at least MIN_VOTES of its nearest spoofed utterances (of other recordings) vote
 * for, most votes first, when the embedding would join it (within CENTROID_SIMILARITY of the
 * centroid) or sits inside it as a near miss does (within NEAR_MISS_RADIUS_FACTOR × its radius);
 * else null. What spoof search answers for a query the clustering has not placed.
 * @example const clusterId = await clusterBelongedTo(tx, unit, null);
 */
export async function clusterBelongedTo(
  tx: Db,
  embedding: ArrayLike<number>,
  ownRecordingId: string | null,
): Promise<string | null> {
  const votes = votesByCluster(await spoofedNeighbours(tx, embedding, ownRecordingId));
  const voted = [...votes]
    .filter(([, count]) => count >= MIN_VOTES)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  for (const [clusterId] of voted) {
    const reach = await centroidReach(tx, clusterId, embedding);
    if (!reach) continue;
    if (reach.similarity >= CENTROID_SIMILARITY || 1 - reach.similarity <= reach.radius * NEAR_MISS_RADIUS_FACTOR) {
      return clusterId;
    }
  }
  return null;
}
