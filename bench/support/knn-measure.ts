import { latencySummary, round3 } from './latency.ts';

/** One search's answer: the ids it returned, best first, and the plan that found them if it says. */
export type Answer = { ids: string[]; method?: string };

/**
 * Runs `run` for each query (after `warmup` untimed ones) and compares each answer with the
 * truth: recall@k over the truth's rows, and whether the answer is complete (as many rows as the
 * truth has: min(k, eligible rows)).
 * @example const point = await measure(queries, (q) => search(q), (q) => truth[q]);
 */
export async function measure(
  queries: number[],
  run: (q: number) => Promise<Answer>,
  truth: (q: number) => string[],
  warmup = Math.min(20, queries.length),
  ties?: Ties,
) {
  for (const q of queries.slice(0, warmup)) await run(q);
  const ms: number[] = [];
  let recallSum = 0;
  let tieRecallSum = 0;
  let complete = 0;
  let rows = 0;
  let minRows = Number.POSITIVE_INFINITY;
  const methods: Record<string, number> = {};
  for (const q of queries) {
    const started = performance.now();
    const answer = await run(q);
    ms.push(performance.now() - started);
    const expected = truth(q);
    const want = new Set(expected);
    const hits = answer.ids.filter((id) => want.has(id)).length;
    recallSum += expected.length === 0 ? 1 : hits / expected.length;
    if (ties) tieRecallSum += tieRecall(ties, q, answer.ids, expected.length);
    if (answer.ids.length === expected.length) complete++;
    rows += answer.ids.length;
    minRows = Math.min(minRows, answer.ids.length);
    if (answer.method) methods[answer.method] = (methods[answer.method] ?? 0) + 1;
  }
  return {
    queries: queries.length,
    ...latencySummary(ms),
    recallAt10: round3(recallSum / queries.length),
    ...(ties ? { tieRecallAt10: round3(tieRecallSum / queries.length) } : {}),
    complete: `${complete}/${queries.length}`,
    meanRows: round3(rows / queries.length),
    minRows,
    ...(Object.keys(methods).length ? { plans: methods } : {}),
  };
}

export type Measured = Awaited<ReturnType<typeof measure>>;

/**
 * ann-benchmarks' rule for near-ties: a returned row counts when its similarity to the query is
 * within `epsilon` of the k-th true neighbour's, so that a row as near as the truth's last one is
 * not a miss for being another row. `similarity` is computed outside the timed call.
 */
export type Ties = {
  epsilon: number;
  /** the k-th true neighbour's similarity to query `q` */
  kth: (q: number) => number;
  similarity: (q: number, id: string) => number;
};

function tieRecall(ties: Ties, q: number, ids: readonly string[], expected: number): number {
  if (expected === 0) return 1;
  const floor = ties.kth(q) - ties.epsilon;
  const found = ids.slice(0, expected).filter((id) => ties.similarity(q, id) >= floor).length;
  return found / expected;
}

/**
 * `requests` searches from `clients` concurrent loops, each taking the next query in turn (cycling
 * over `queries`): latency, throughput, errors (a thrown request or an answer not `ok`) and recall.
 * @example const sixteen = await measureConcurrent({ clients: 16, requests: 2000, queries, run: post, truth });
 */
export async function measureConcurrent(input: {
  clients: number;
  requests: number;
  queries: number[];
  run: (q: number) => Promise<Answer & { ok: boolean }>;
  truth: (q: number) => string[];
}) {
  const { clients, requests: total, queries } = input;
  const ms: number[] = [];
  let failed = 0;
  let recallSum = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (;;) {
        const n = next++;
        if (n >= total) return;
        const q = queries[n % queries.length] as number;
        const t = performance.now();
        try {
          const answer = await input.run(q);
          ms.push(performance.now() - t);
          if (!answer.ok) failed++;
          const want = new Set(input.truth(q));
          recallSum += answer.ids.filter((id) => want.has(id)).length / Math.max(1, want.size);
        } catch {
          failed++;
        }
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  return {
    clients,
    requests: total,
    ...latencySummary(ms),
    requestsPerSecond: round3(total / wall),
    errors: failed,
    recallAt10: round3(recallSum / total),
  };
}
