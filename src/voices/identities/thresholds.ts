/**
 * The numbers behind automatic identity clustering (online step and `recluster voices`), in one
 * place. Similarities are cosines of unit speaker vectors. They were chosen with
 * `./voxtrace eval voices --seed 1` (the tuning corpus) and are reported on seed 2
 * (docs/voices.md, "Identities"; bench/results/voices-eval.json). Changing one is a deliberate
 * change that re-runs the eval.
 */

/**
 * A new voiceprint joins the identity whose centroid it is most similar to when that similarity
 * reaches this. A centroid (the mean of many calls) is a cleaner picture of a voice than any one
 * call: a genuine call scores ≈ 0.81 against its speaker's 10-call centroid (1st percentile 0.56),
 * while the best of 1,000,000 impostor call–centroid pairs scored 0.63, and 9 in a million reach
 * 0.60 (seed 1).
 */
export const JOIN_SIMILARITY = 0.6;

/**
 * Below JOIN_SIMILARITY, a voiceprint still joins its most similar centroid when that reaches
 * `similarity` and beats the next centroid by `margin`: a hard call (a noisy line, a few seconds)
 * scores lower against its own speaker's centroid (median 0.61, 10th percentile 0.45) but still far
 * above every other, while a voice with no identity yet sits about as close to its two nearest
 * strangers. Online, a join moves the centroid the next call is compared with, so one wrong join
 * draws the stranger's later calls after it: seed 1 at 0.45 / 0.1 online had pairwise precision
 * 0.951 (0.987 without the rule), most of the loss from later calls of the intruding voice joining
 * at ≥ JOIN_SIMILARITY; at 0.5 / 0.15, 0.986 with recall 0.902 (0.878 without).
 */
export const ONLINE_MARGIN_JOIN = { similarity: 0.5, margin: 0.15 } as const;

/**
 * The same rule in `recluster voices`, where what the graph left out attaches to clusters whose
 * centroids are fixed first: an attachment moves nothing another voiceprint is compared with.
 */
export const BATCH_MARGIN_JOIN = { similarity: 0.45, margin: 0.1 } as const;

/**
 * The clustering radius: two voiceprints are neighbours when their similarity reaches this. Single
 * calls are noisier than centroids: on seed 1 (18,700 customer voiceprints), 69 % of the 147,000
 * genuine pairs reach 0.6 and 190 of the 188M impostor pairs do (0.65: 55 % and 3). An edge between
 * two people stays rare, and links them only when both ends are core points that share a neighbour
 * (nearestCoreMember); a speaker with three or four calls needs the lower radius to be found at all.
 */
export const NEIGHBOUR_SIMILARITY = 0.6;

/**
 * A voiceprint is a core point when at least this many voiceprints of other recordings lie within
 * the radius (DBSCAN's minPts, not counting the point itself). Only core points seed an identity
 * or extend one through a neighbour; a border point joins the core point's group but links nothing.
 */
export const MIN_NEIGHBOURS = 2;

/**
 * A core point extends an identity through a core neighbour only when it is also at least this
 * similar to the identity's centroid (among the IDENTITY_CANDIDATES nearest): a call that sits
 * between two people is a core point of both neighbourhoods, and without this it would carry the
 * second person's calls into the first one's identity. Genuine long calls score ≥ 0.56 against their
 * speaker's centroid 99 % of the time; another speaker's centroid scores ≈ 0.21.
 */
export const EXTEND_SIMILARITY = 0.5;

/** Neighbours looked at per voiceprint (the kNN's k): enough to count MIN_NEIGHBOURS and to find them. */
export const NEIGHBOUR_K = 16;

/** Nearest live identity centroids compared with a new voiceprint. */
export const IDENTITY_CANDIDATES = 8;

/** HNSW candidate list for the clustering's index walks (≥ NEIGHBOUR_K; recall ≈ 0.98 at 100). */
export const CLUSTER_EF_SEARCH = 100;

/**
 * A voiceprint whose mean pSpoofed is at least this is mostly spoofed speech: it never joins a
 * `customer` or `staff` identity, nor an `unknown` identity of genuine speech (a voice clone sits
 * next to its victim and must not become part of the victim's identity), and genuine speech never
 * joins an `unknown` identity of spoofed speech. Same value as the analyst edits' SPOOFED_SPEECH.
 */
export const SPOOFED_MEAN_P = 0.5;

/** Identity kinds that never take mostly spoofed speech: a genuine person's voice. */
export const GENUINE_KINDS = ['customer', 'staff'] as const;
