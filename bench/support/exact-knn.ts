import os from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * Top-k by inner product (= cosine on unit vectors), for every query and every eligibility mask:
 * `scores`/`indices` are laid out [query][mask][rank], best first, -1 where fewer than k rows
 * are eligible. The ground truth of the similar-voice benchmark, computed in-process.
 */
export type TopK = { k: number; masks: number[]; queries: number; scores: Float64Array; indices: Int32Array };

type ScanInput = {
  vectors: Float32Array;
  flags: Uint8Array;
  queries: Float32Array;
  dimensions: number;
  masks: number[];
  k: number;
  start: number;
  end: number;
};

/** One pass over voiceprints [start, end): each vector is compared with every query while it is in cache. */
export function scanTopK(input: ScanInput): TopK {
  const { vectors, flags, queries, dimensions: dims, masks, k, start, end } = input;
  const queryCount = queries.length / dims;
  const lists = queryCount * masks.length;
  const scores = new Float64Array(lists * k).fill(Number.NEGATIVE_INFINITY);
  const indices = new Int32Array(lists * k).fill(-1);
  // the k-th best score of each list: a candidate below it is dropped at once
  const floor = new Float64Array(lists).fill(Number.NEGATIVE_INFINITY);
  for (let v = start; v < end; v++) {
    const f = flags[v] as number;
    if (f === 0) continue;
    const vo = v * dims;
    for (let q = 0; q < queryCount; q++) {
      const qo = q * dims;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let d = 0; d < dims; d += 4) {
        s0 += (vectors[vo + d] as number) * (queries[qo + d] as number);
        s1 += (vectors[vo + d + 1] as number) * (queries[qo + d + 1] as number);
        s2 += (vectors[vo + d + 2] as number) * (queries[qo + d + 2] as number);
        s3 += (vectors[vo + d + 3] as number) * (queries[qo + d + 3] as number);
      }
      const s = s0 + s1 + s2 + s3;
      for (let m = 0; m < masks.length; m++) {
        if ((f & (masks[m] as number)) === 0) continue;
        const list = q * masks.length + m;
        if (s <= (floor[list] as number)) continue;
        const base = list * k;
        let at = k - 1;
        while (at > 0 && (scores[base + at - 1] as number) < s) {
          scores[base + at] = scores[base + at - 1] as number;
          indices[base + at] = indices[base + at - 1] as number;
          at--;
        }
        scores[base + at] = s;
        indices[base + at] = v;
        floor[list] = scores[base + k - 1] as number;
      }
    }
  }
  return { k, masks, queries: queryCount, scores, indices };
}

function merge(parts: TopK[]): TopK {
  const [first] = parts;
  if (!first) throw new Error('nothing to merge');
  const { k, masks, queries } = first;
  const lists = queries * masks.length;
  const scores = new Float64Array(lists * k);
  const indices = new Int32Array(lists * k);
  for (let list = 0; list < lists; list++) {
    const candidates: { s: number; i: number }[] = [];
    for (const part of parts) {
      for (let r = 0; r < k; r++) {
        const i = part.indices[list * k + r] as number;
        if (i >= 0) candidates.push({ s: part.scores[list * k + r] as number, i });
      }
    }
    candidates.sort((a, b) => b.s - a.s);
    for (let r = 0; r < k; r++) {
      scores[list * k + r] = candidates[r]?.s ?? Number.NEGATIVE_INFINITY;
      indices[list * k + r] = candidates[r]?.i ?? -1;
    }
  }
  return { k, masks, queries, scores, indices };
}

/**
 * The exact top-k over all voiceprints, split over `threads` worker threads (the vectors and flags
 * are SharedArrayBuffers, so nothing is copied).
 * @example const truth = await exactTopK({ vectors, flags, queries, dimensions: 192, masks: [1, 2, 4], k: 10 });
 */
export async function exactTopK(input: Omit<ScanInput, 'start' | 'end'> & { count: number; threads?: number }) {
  const threads = Math.max(1, input.threads ?? os.availableParallelism());
  const per = Math.ceil(input.count / threads);
  const parts = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const start = t * per;
      const end = Math.min(input.count, start + per);
      return new Promise<TopK>((resolve, reject) => {
        const worker = new Worker(new URL('./exact-knn-worker.ts', import.meta.url), {
          workerData: {
            vectors: input.vectors,
            flags: input.flags,
            queries: input.queries,
            dimensions: input.dimensions,
            masks: input.masks,
            k: input.k,
            start,
            end,
          },
        });
        worker.once('message', (result: TopK) => {
          resolve(result);
          void worker.terminate();
        });
        worker.once('error', reject);
      });
    }),
  );
  return merge(parts);
}

/** The truth of one query under one mask: indices best first (fewer than k when fewer rows are eligible). */
export function truthOf(truth: TopK, query: number, maskIndex: number): number[] {
  const base = (query * truth.masks.length + maskIndex) * truth.k;
  const out: number[] = [];
  for (let r = 0; r < truth.k; r++) {
    const i = truth.indices[base + r] as number;
    if (i >= 0) out.push(i);
  }
  return out;
}
