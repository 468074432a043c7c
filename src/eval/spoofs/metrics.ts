import { clusteringScores } from '../voices/metrics.ts';

/**
 * The spoofs eval's scoring (docs/spoofs.md, "Evaluation"): pure functions over the truth and what
 * the product stored; the only code besides the generator that reads the truth.
 */

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;
const pairs = (n: number) => (n * (n - 1)) / 2;

export type BinaryScores = {
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  precision: number;
  recall: number;
  f1: number;
};

/**
 * Precision (of what was predicted, the share that is true), recall (of what is true, the share
 * predicted) and F1. With nothing predicted precision is 1; with nothing true recall is 1.
 * @example binaryScores({ truePositives: 8, falsePositives: 2, falseNegatives: 0 }); // precision 0.8, recall 1
 */
export function binaryScores(counts: {
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
}): BinaryScores {
  const { truePositives: tp, falsePositives: fp, falseNegatives: fn } = counts;
  const precision = tp + fp === 0 ? 1 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 1 : tp / (tp + fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { ...counts, precision: round(precision), recall: round(recall), f1: round(f1) };
}

/** Binary scores of items that each carry a truth and a prediction. */
export function scoreFlags(items: Iterable<{ truth: boolean; predicted: boolean }>): BinaryScores {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const { truth, predicted } of items) {
    if (predicted && truth) tp++;
    else if (predicted) fp++;
    else if (truth) fn++;
  }
  return binaryScores({ truePositives: tp, falsePositives: fp, falseNegatives: fn });
}

/**
 * The adjusted Rand index of predicted groups against the true ones (an unassigned item, predicted
 * null, is a group of its own): 1 for identical partitions, about 0 for chance agreement.
 * @example adjustedRandIndex([{ truth: 'a', predicted: 'x' }, { truth: 'a', predicted: 'x' }]); // 1
 */
export function adjustedRandIndex(items: readonly { truth: string; predicted: string | null }[]): number {
  const cells = new Map<string, number>();
  const truthSizes = new Map<string, number>();
  const predictedSizes = new Map<string, number>();
  items.forEach((item, i) => {
    const p = item.predicted ?? `unassigned:${i}`;
    cells.set(`${item.truth}\u0000${p}`, (cells.get(`${item.truth}\u0000${p}`) ?? 0) + 1);
    truthSizes.set(item.truth, (truthSizes.get(item.truth) ?? 0) + 1);
    predictedSizes.set(p, (predictedSizes.get(p) ?? 0) + 1);
  });
  let index = 0;
  for (const n of cells.values()) index += pairs(n);
  let truthPairs = 0;
  for (const n of truthSizes.values()) truthPairs += pairs(n);
  let predictedPairs = 0;
  for (const n of predictedSizes.values()) predictedPairs += pairs(n);
  const all = pairs(items.length);
  if (all === 0) return 1;
  const expected = (truthPairs * predictedPairs) / all;
  const max = (truthPairs + predictedPairs) / 2;
  return max === expected ? 1 : round((index - expected) / (max - expected));
}

/**
 * Family clustering figures over spoofed-labelled utterances: pairwise precision / recall / F1,
 * B³ and ARI, where each false alarm (genuine speech labelled spoofed) is a true group of its own,
 * so that putting one into a cluster costs precision.
 */
export function familyScores(items: readonly { truth: string; predicted: string | null }[]) {
  const scores = clusteringScores(items);
  return {
    utterances: scores.voiceprints,
    clusters: scores.clusters,
    unclustered: scores.unassigned,
    pairwise: scores.pairwise,
    bcubed: scores.bcubed,
    ari: adjustedRandIndex(items),
  };
}

/**
 * Each true group's main predicted cluster (the one holding most of its members) and the share
 * of its members there; and each predicted cluster's majority group.
 */
export function majorities(items: readonly { truth: string; predicted: string | null }[]) {
  const byCluster = new Map<string, Map<string, number>>();
  const byTruth = new Map<string, Map<string, number>>();
  const truthSizes = new Map<string, number>();
  for (const { truth, predicted } of items) {
    truthSizes.set(truth, (truthSizes.get(truth) ?? 0) + 1);
    if (!predicted) continue;
    const c = byCluster.get(predicted) ?? new Map<string, number>();
    c.set(truth, (c.get(truth) ?? 0) + 1);
    byCluster.set(predicted, c);
    const t = byTruth.get(truth) ?? new Map<string, number>();
    t.set(predicted, (t.get(predicted) ?? 0) + 1);
    byTruth.set(truth, t);
  }
  const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0] ?? null;
  const majorityOf = new Map<string, string>();
  for (const [cluster, counts] of byCluster) majorityOf.set(cluster, (top(counts) as [string, number])[0]);
  const mainOf = new Map<string, { cluster: string | null; share: number; clusters: number }>();
  for (const [truth, size] of truthSizes) {
    const counts = byTruth.get(truth);
    const best = counts ? top(counts) : null;
    mainOf.set(truth, { cluster: best?.[0] ?? null, share: best ? best[1] / size : 0, clusters: counts?.size ?? 0 });
  }
  return { majorityOf, mainOf };
}
