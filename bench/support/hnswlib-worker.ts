import { parentPort, workerData } from 'node:worker_threads';
import { buildHnswlib } from './comparison-engines.ts';
import { latencySummary, round3 } from './latency.ts';

/**
 * hnswlib-node on a thread of its own (bench/voices-knn.ts builds it alongside the PostgreSQL
 * phases, sharing the vectors through a SharedArrayBuffer, paused while latencies are measured):
 * build, then — when told — per ef the p50/p99 and recall@k of the default search (staff left out
 * through hnswlib's filter) against the truth.
 */
const input = workerData as {
  vectors: Float32Array;
  staff: Uint8Array;
  count: number;
  dimensions: number;
  queries: Float32Array;
  /** per query, k truth rows (-1 padded) */
  truth: Int32Array;
  k: number;
  efs: number[];
  m: number;
  efConstruction: number;
  pause: Int32Array;
};
const log = (line: string) => parentPort?.postMessage({ log: line });
const started = performance.now();
const index = await buildHnswlib({ ...input, log });
const buildSeconds = Math.round((performance.now() - started) / 100) / 10;
log(`  hnswlib built in ${buildSeconds} s; its queries wait for the PostgreSQL phases`);
parentPort?.postMessage({ built: buildSeconds });
// the sweep runs when the caller says so, so that no PostgreSQL latency is measured alongside it
await new Promise((resolve) => parentPort?.once('message', resolve));
const allowed = (row: number) => input.staff[row] === 0;
const queryCount = input.queries.length / input.dimensions;
const sweep: Record<string, unknown> = {};
for (const ef of input.efs) {
  const run = (q: number) =>
    index.search(
      Array.from(input.queries.subarray(q * input.dimensions, (q + 1) * input.dimensions)),
      input.k,
      ef,
      allowed,
    );
  for (let q = 0; q < Math.min(20, queryCount); q++) run(q);
  const ms: number[] = [];
  let recall = 0;
  let complete = 0;
  for (let q = 0; q < queryCount; q++) {
    const t = performance.now();
    const found = run(q);
    ms.push(performance.now() - t);
    const want = new Set(Array.from(input.truth.subarray(q * input.k, (q + 1) * input.k)).filter((i) => i >= 0));
    recall += found.filter((i) => want.has(i)).length / Math.max(1, want.size);
    if (found.length === want.size) complete++;
  }
  sweep[ef] = {
    queries: queryCount,
    ...latencySummary(ms),
    recallAt10: round3(recall / queryCount),
    complete: `${complete}/${queryCount}`,
  };
  log(`  hnswlib ef=${ef}: ${JSON.stringify(sweep[ef])}`);
}
parentPort?.postMessage({
  result: { m: input.m, efConstruction: input.efConstruction, buildSeconds, threads: 1, sweep },
});
