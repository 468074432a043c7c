/**
 * The eval's scoring: the only code that reads the corpus' truth. Pure functions.
 */

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;
const pairs = (n: number) => (n * (n - 1)) / 2;

export type ClusteringScores = {
  voiceprints: number;
  /** predicted groups with ≥ 2 members, and voiceprints left unassigned */
  clusters: number;
  unassigned: number;
  pairwise: { precision: number; recall: number; f1: number };
  bcubed: { precision: number; recall: number; f1: number };
};

/**
 * Pairwise and B-cubed precision/recall of predicted groups against the true speakers; an
 * unassigned voiceprint is a group of its own.
 * @example clusteringScores([{ truth: 'a', predicted: 'x' }, { truth: 'a', predicted: null }]);
 */
export function clusteringScores(items: readonly { truth: string; predicted: string | null }[]): ClusteringScores {
  const predictedOf = (item: { predicted: string | null }, i: number) => item.predicted ?? `unassigned:${i}`;
  const cells = new Map<string, number>();
  const truthSizes = new Map<string, number>();
  const predictedSizes = new Map<string, number>();
  items.forEach((item, i) => {
    const p = predictedOf(item, i);
    const cell = `${item.truth}\u0000${p}`;
    cells.set(cell, (cells.get(cell) ?? 0) + 1);
    truthSizes.set(item.truth, (truthSizes.get(item.truth) ?? 0) + 1);
    predictedSizes.set(p, (predictedSizes.get(p) ?? 0) + 1);
  });
  let together = 0;
  for (const n of cells.values()) together += pairs(n);
  let predictedPairs = 0;
  for (const n of predictedSizes.values()) predictedPairs += pairs(n);
  let truthPairs = 0;
  for (const n of truthSizes.values()) truthPairs += pairs(n);
  let bPrecision = 0;
  let bRecall = 0;
  items.forEach((item, i) => {
    const p = predictedOf(item, i);
    const cell = cells.get(`${item.truth}\u0000${p}`) as number;
    bPrecision += cell / (predictedSizes.get(p) as number);
    bRecall += cell / (truthSizes.get(item.truth) as number);
  });
  const f1 = (p: number, r: number) => (p + r === 0 ? 0 : (2 * p * r) / (p + r));
  const precision = predictedPairs === 0 ? 1 : together / predictedPairs;
  const recall = truthPairs === 0 ? 1 : together / truthPairs;
  const bp = items.length ? bPrecision / items.length : 1;
  const br = items.length ? bRecall / items.length : 1;
  return {
    voiceprints: items.length,
    clusters: [...predictedSizes.entries()].filter(([key, n]) => !key.startsWith('unassigned:') && n >= 2).length,
    unassigned: items.filter((item) => item.predicted === null).length,
    pairwise: { precision: round(precision), recall: round(recall), f1: round(f1(precision, recall)) },
    bcubed: { precision: round(bp), recall: round(br), f1: round(f1(bp, br)) },
  };
}

/** Equal error rate and the true-match rates at fixed false-accept rates, from two score samples. */
export function verificationFigures(genuine: Float32Array, impostor: Float32Array) {
  const g = Float32Array.from(genuine).sort();
  const imp = Float32Array.from(impostor).sort();
  const acceptedAbove = (sorted: Float32Array, t: number) => {
    // share of scores ≥ t
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((sorted[mid] as number) < t) lo = mid + 1;
      else hi = mid;
    }
    return (sorted.length - lo) / sorted.length;
  };
  // EER: the first threshold where missing genuine pairs is as likely as accepting impostors
  let eer = 1;
  let eerThreshold = 0;
  for (let t = -0.2; t <= 1; t += 0.0005) {
    const far = acceptedAbove(imp, t);
    const frr = 1 - acceptedAbove(g, t);
    if (frr >= far) {
      eer = (far + frr) / 2;
      eerThreshold = t;
      break;
    }
  }
  const thresholdAtFar = (far: number) => imp[Math.min(imp.length - 1, Math.floor((1 - far) * imp.length))] as number;
  const tmrAt = (far: number) => {
    const t = thresholdAtFar(far);
    return { far, threshold: round(t), tmr: round(acceptedAbove(g, t)) };
  };
  return {
    genuinePairs: g.length,
    impostorPairs: imp.length,
    eer: round(eer),
    eerThreshold: round(eerThreshold),
    atFar: [tmrAt(0.01), tmrAt(0.001)],
    /** the share of impostor pairs at or above `t`, and of genuine pairs */
    realised: (t: number) => ({ far: acceptedAbove(imp, t), tmr: acceptedAbove(g, t) }),
  };
}

export function unitOf(vector: readonly number[]): Float32Array {
  let s = 0;
  for (const v of vector) s += v * v;
  const n = Math.sqrt(s);
  return Float32Array.from(vector, (v) => v / n);
}
