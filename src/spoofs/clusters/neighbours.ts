import type { Db } from '../../db/client.ts';
import {
  deepfakeSpace,
  type KnnOptions,
  type Neighbour,
  nearestNeighbours,
  nearestNeighboursOfEach,
} from '../../search/knn.ts';
import { NEIGHBOUR_EF_SEARCH, NEIGHBOUR_K, NEIGHBOUR_SIMILARITY } from './rules.ts';

/**
 * An utterance's neighbours as the cluster rules count them (rules.ts): among its NEIGHBOUR_K
 * nearest spoofed utterances of other recordings (an index walk of NEIGHBOUR_EF_SEARCH candidates,
 * as recluster's graph), those at ≥ NEIGHBOUR_SIMILARITY. One call's utterances are alike whatever
 * they are, so its own recording (when it has one) never counts.
 */
export async function spoofedNeighbours(
  tx: Db,
  embedding: ArrayLike<number>,
  recordingId: string | null,
): Promise<Neighbour[]> {
  const { neighbours } = await nearestNeighbours(tx, deepfakeSpace, embedding, neighbourOptions(recordingId));
  return neighbours.filter((n) => n.similarity >= NEIGHBOUR_SIMILARITY);
}

/** spoofedNeighbours of each of one recording's utterances, under one estimate and SET LOCAL (nearestNeighboursOfEach). */
export async function spoofedNeighboursOfEach(
  tx: Db,
  embeddings: readonly ArrayLike<number>[],
  recordingId: string,
): Promise<Neighbour[][]> {
  const answers = await nearestNeighboursOfEach(tx, deepfakeSpace, embeddings, neighbourOptions(recordingId));
  return answers.map((neighbours) => neighbours.filter((n) => n.similarity >= NEIGHBOUR_SIMILARITY));
}

function neighbourOptions(recordingId: string | null): KnnOptions {
  return {
    k: NEIGHBOUR_K,
    ...(recordingId ? { filter: { excludeRecordingIds: [recordingId] } } : {}),
    // leaving one recording out keeps nearly every row: the index walk answers at any size, where
    // comparing every 768-d row of a small space (the exact answer's rule for voices) cost 12 ms at
    // 5,000 rows and grows with them (bench/spoofs-batch.ts)
    exactMaxRows: 0,
    efSearch: NEIGHBOUR_EF_SEARCH,
  };
}

/** How many of these neighbours each cluster holds (noise left out). */
export function votesByCluster(neighbours: readonly Neighbour[]): Map<string, number> {
  const votes = new Map<string, number>();
  for (const n of neighbours) {
    const clusterId = n.clusterId as string | null;
    if (clusterId) votes.set(clusterId, (votes.get(clusterId) ?? 0) + 1);
  }
  return votes;
}
