/**
 * A follow-up to bench/voices-knn.ts on the database it leaves loaded (run it with --keep, or
 * while it runs): recall@10 and latency of the default search's raw SQL (staff left out, session
 * ef_search, iterative scan) at ef_search values beyond its sweep, against an exact answer that
 * PostgreSQL computes (the index kept out with `+ 0`, as the product's exact plan does).
 * The queries are new held-out calls (`bench-ef-<q>`) of random loaded customers. Also: the recall
 * of the true neighbours with similarity ≥ 0.5 (likely the same voice), the ones an analyst acts on.
 *
 *   node bench/support/knn-ef-sweep.ts [--url URL] [--queries 100] [--ef 400,800,1000]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createVoiceModel, randomStream } from '../../src/standin/voices.ts';
import { latencySummary, round3 } from './latency.ts';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5544/voxtrace_bench_voices' },
    queries: { type: 'string', default: '100' },
    ef: { type: 'string', default: '400,800,1000' },
    seed: { type: 'string', default: '1' },
    speakers: { type: 'string', default: '100000' },
  },
});
/** similarity from which a neighbour counts as a likely same voice (generator: same speaker p05 0.48) */
const STRONG = 0.5;
const model = createVoiceModel(Number(args.seed));
const random = randomStream(Number(args.seed), 'bench-knn-ef-sweep');
const client = new pg.Client({ connectionString: args.url });
await client.connect();
const { rows: staffRows } = await client.query<{ ids: string[] }>(
  `select coalesce(array_agg(id), '{}') as ids from identities where kind = 'staff'`,
);
const staff = staffRows[0]?.ids ?? [];
const queries: string[] = [];
for (let q = 0; q < Number(args.queries); q++) {
  const speaker = Math.floor(random.uniform() * Number(args.speakers));
  const raw = model.speakerEmbedding(`speaker-${speaker}`, `bench-ef-${q}`);
  const norm = Math.hypot(...raw);
  queries.push(`[${raw.map((x) => Math.fround(x / norm)).join(',')}]`);
}
const where = 'identity_id is null or identity_id <> all($2::uuid[])';
const started = performance.now();
const truth: Set<string>[] = [];
// the true neighbours a fraud analyst acts on: similar enough to be the same voice
const strong: Set<string>[] = [];
for (const vector of queries) {
  const { rows } = await client.query<{ id: string; similarity: number }>(
    `select id, 1 - (embedding <=> $1::vector(192)) as similarity from voiceprints where ${where}
      order by (embedding <=> $1::vector(192)) + 0 limit 10`,
    [vector, staff],
  );
  truth.push(new Set(rows.map((r) => r.id)));
  strong.push(new Set(rows.filter((r) => r.similarity >= STRONG).map((r) => r.id)));
}
console.error(`exact answers for ${queries.length} queries in ${((performance.now() - started) / 1000).toFixed(0)} s`);
await client.query('set hnsw.iterative_scan = relaxed_order');
const out: Record<string, unknown> = {};
for (const ef of args.ef.split(',').map(Number)) {
  await client.query(`set hnsw.ef_search = ${ef}`);
  const ms: number[] = [];
  let recall = 0;
  let strongFound = 0;
  let strongTotal = 0;
  for (const [q, vector] of queries.entries()) {
    const t = performance.now();
    const { rows } = await client.query<{ id: string }>({
      name: 'knn-ef-sweep',
      text: `with walked as materialized (select id, embedding <=> $1::vector(192) as distance from voiceprints
              where ${where} order by embedding <=> $1::vector(192) limit 10) select id from walked order by distance`,
      values: [vector, staff],
    });
    ms.push(performance.now() - t);
    recall += rows.filter((r) => truth[q]?.has(r.id)).length / 10;
    strongFound += rows.filter((r) => strong[q]?.has(r.id)).length;
    strongTotal += strong[q]?.size ?? 0;
  }
  out[ef] = {
    queries: queries.length,
    ...latencySummary(ms),
    recallAt10: round3(recall / queries.length),
    [`recallOfSimilarityAtLeast${STRONG}`]: round3(strongFound / Math.max(1, strongTotal)),
    strongNeighbours: strongTotal,
  };
  console.error(`ef_search=${ef}: ${JSON.stringify(out[ef])}`);
}
const { rows: index } = await client.query<{ def: string }>(
  `select pg_get_indexdef('voiceprints_embedding_hnsw'::regclass) as def`,
);
console.log(JSON.stringify({ index: index[0]?.def, sweep: out }));
await client.end();
