import { parentPort, workerData } from 'node:worker_threads';
import { scanTopK } from './exact-knn.ts';

// one thread's share of the exact search (bench/support/exact-knn.ts): voiceprints [start, end)
const { vectors, flags, queries, dimensions, masks, k, start, end } = workerData as {
  vectors: Float32Array;
  flags: Uint8Array;
  queries: Float32Array;
  dimensions: number;
  masks: number[];
  k: number;
  start: number;
  end: number;
};
parentPort?.postMessage(scanTopK({ vectors, flags, queries, dimensions, masks, k, start, end }));
