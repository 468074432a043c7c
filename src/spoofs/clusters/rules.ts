import { DAY_MS } from '../../time.ts';

/**
 * The online spoof-cluster rules (docs/spoofs.md, "Spoof clusters"), density-based in deepfake
 * space: a neighbour is another recording's spoofed utterance at cosine similarity ≥
 * NEIGHBOUR_SIMILARITY; a new spoofed utterance joins the cluster most of its clustered neighbours
 * belong to (at least MIN_VOTES of them) when it is also within CENTROID_SIMILARITY of that
 * cluster's centroid (a border point joins, it never bridges two clusters); otherwise it waits as
 * noise, and noise seeds a cluster once a point has MIN_POINTS − 1 noise neighbours from at least
 * MIN_RECORDINGS recordings (itself included).
 *
 * Provisional: set from the stand-in's deepfake statistics (bench/results/generator.json): one
 * family's utterances score 0.70–0.96 with each other (p01 0.72), a near relative's 0.43–0.60, an
 * unrelated family's and bonafide speech's at most 0.25 — so 0.65 keeps relatives apart and
 * bonafide false alarms (~1.5 % of genuine utterances labelled spoofed) without neighbours. They
 * are tuned and reported by `eval spoofs` when it lands.
 */

/** the nearest spoofed utterances looked at */
export const NEIGHBOUR_K = 16;
export const NEIGHBOUR_SIMILARITY = 0.65;
/** clustered neighbours of one cluster needed to join it */
export const MIN_VOTES = 2;
/** a member's similarity to its cluster's centroid (one family's members sit at ~0.9) */
export const CENTROID_SIMILARITY = 0.75;
/** points (the new one and its noise neighbours) that seed a cluster */
export const MIN_POINTS = 4;
/** distinct recordings among them: one call's utterances are alike whatever they are */
export const MIN_RECORDINGS = 3;
/**
 * A near miss sits within this many times the cluster's radius of its centroid. The radius is the
 * farthest member, and the members pull the centroid towards themselves, so another utterance of
 * the same generator sits farther out than they do, the more so the smaller the cluster (1.5 times
 * the radius in a 6-member test cluster, test/spoof-clusters.int.test.ts). Its nearest members
 * confirm it (MIN_VOTES), and a relative family (similarity ≈ 0.5, distance ≈ 0.5) or genuine speech
 * (distance ≥ 0.75) stays far beyond twice a family's radius (0.05–0.15 on the stand-in's families).
 */
export const NEAR_MISS_RADIUS_FACTOR = 2;
/**
 * The index walk's candidate list for every neighbour walk of these rules: recluster's kNN graph
 * (NEIGHBOUR_K + 4 nearest of each utterance), the online step and the near-miss confirmation, so
 * that online and batch placement see the same neighbours. The walk is most of the online step's
 * cost: in a profile of the step's statements at 50,000 spoofed utterances, ef_search 100 → 40 took
 * it from 4.1 to 2.7 ms. 40 since the index became m 32 / ef_construction 128 (migration 0015), whose
 * walk costs 1.4–1.6 times m 16's at the same ef_search and finds more: at 200,000 rows recall@10
 * 0.873 at 40 against m 16's 0.742 at 40 and 0.896 at 100 (docs/spoofs.md, "At scale"); the eval's
 * tuning seed kept every target at 40.
 */
export const NEIGHBOUR_EF_SEARCH = 40;
/**
 * A cluster's look-back over stored bonafide speech for near misses runs when it forms and again
 * each time it has grown this many times over since the last one (near-misses.ts): the scan reads
 * every bonafide utterance, so it is bounded by how often it runs, not per call.
 */
export const LOOK_BACK_GROWTH = 2;
/** noise utterances one call's placements may pull into clusters (absorbNoise): a bound on one step's work */
export const ABSORB_MAX = 500;
/** `spoof_cluster_growth` looks at the recordings a cluster gained within this window */
export const GROWTH_WINDOW_MS = DAY_MS;
