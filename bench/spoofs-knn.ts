/**
 * Spoof search at scale: voxtrace's kNN over a million spoofed utterances (halfvec(768), the HNSW
 * index of the product's spoof space, `deepfakeSpace.index` of src/search/knn.ts — since migration
 * 0013 `spoofed_utterances_embedding_hnsw` on `spoofed_utterances`, the insert-only copy of the
 * spoofed rows of `utterances` that a trigger fills) on native PostgreSQL + pgvector, against exact
 * ground truth: the spoof-space counterpart of bench/voices-knn.ts. The index's table, column and
 * any predicate are read from the catalog after the migrations, so the raw SQL follows the schema.
 *
 *   bash bench/support/pg-cluster.sh start            # the bench-owned cluster (port 5544)
 *   node bench/spoofs-knn.ts [--utterances N] [--queries Q] [--seed K] [--ef 40,100,…] [--small M] [--skip a,b]
 *                            [--index-with m=16,ef_construction=128]
 *
 * N spoofed utterances (default 1,000,000) of the synthetic spoof model (bench/support/spoof-population.ts:
 * generator families as clusters of unit vectors of varied tightness and size, a share of diffuse
 * calls; 1–5 utterances per recording, recordings with accounts, channels and call times). Q
 * held-out queries (default 300): one utterance of a new call of a family, never loaded.
 *
 * Outside the reported figures (under `setup`): generating the data, loading it (binary COPY into
 * recordings and utterances after the product's migrations, the product's trigger filling
 * spoofed_utterances, with the spoof HNSW index dropped), VACUUM ANALYZE. Then, timed:
 * - the exact ground truth in-process (Float32Array, worker threads): top-10 by cosine over all N
 *   and over the first M (the 200,000-utterance comparison), in one pass;
 * - the HNSW build with the migration's own index definition (read back before it is dropped),
 *   its size, then pg_prewarm of index and tables;
 * - per ef_search: p50/p99/recall@10 of the raw SQL (one connection, prepared, session SET) and of
 *   the product's kNN (`nearestNeighbours(db, deepfakeSpace, …)`) — beside recall@10, `tieRecallAt10`
 *   counts a returned row within 0.001 of the 10th true neighbour's similarity as found
 *   (ann-benchmarks' ε; the targets are judged on recall@10) — and the product's search
 *   (`searchSpoofs`: clusters, verdict, audit row) at its default;
 * - `vector`: at M utterances (default 200,000), vector(768) against halfvec(768) in two tables of
 *   the bench database: table and index size, build time, recall@10 and latency at the same ef_search;
 * - `http`: `voxtrace serve` in its own process, POST /v1/spoofs/search with a raw embedding at 1
 *   and 16 clients: latency, throughput, errors (not run, with the reason, if the route refuses the first query);
 * - `assign`: the `spoofs.clusters` analysis step (online cluster assignment) timed per recording
 *   on new recordings stored into the loaded database (bench/support/store-and-analyse.ts);
 * - the batch recluster of 200,000 spoofed utterances is bench/spoofs-batch.ts's, in a database of its own;
 * - peak memory: this process's RSS and the bench cluster's backends (RssAnon: their own memory,
 *   besides the shared buffers they touch), per phase, sampled every second.
 * `--skip` names phases to leave out: http, vector, assign. `--index-with` builds the spoof index with
 * other HNSW parameters than the migration's (the definition used is in the results); the `vector`
 * phase's two tables keep pgvector's defaults, as the migration does.
 *
 * PostgreSQL: `--url` (default postgres://postgres@127.0.0.1:5544/postgres, the cluster of
 * bench/support/pg-cluster.sh); the benchmark creates and drops voxtrace_bench_spoofs there (kept
 * with --keep). Results are written after each phase (`complete: false` until the end) to
 * bench/results/spoofs-knn.json and the spoofs-knn line of bench/README.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { AnalysisStep } from '../src/analysis/runner.ts';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_SPOOF_SETTINGS } from '../src/config.ts';
import { openPostgres } from '../src/db/client.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { DEFAULT_EF_SEARCH, deepfakeSpace, explainNearestNeighbours, nearestNeighbours } from '../src/search/knn.ts';
import { spoofClusterStep } from '../src/spoofs/clusters/step.ts';
import { searchSpoofs } from '../src/spoofs/search.ts';
import { adminQuery, databaseUrl } from '../test/support/postgres.ts';
import { BinaryRows, copyBinary } from './support/copy-binary.ts';
import { exactTopK, type TopK, truthOf } from './support/exact-knn.ts';
import { indexOptionsOf, parseIndexWith, withIndexOptions } from './support/hnsw-options.ts';
import { type Answer, type Measured, measure, measureConcurrent, type Ties } from './support/knn-measure.ts';
import { p50AtRecall } from './support/knn-targets.ts';
import { latencySummary, round3 } from './support/latency.ts';
import { benchmarkSettings, calibrationMs, describeMachine } from './support/machine.ts';
import { recordResult } from './support/results.ts';
import { startServer } from './support/serve.ts';
import { generateSpoofPopulation, type SpoofPopulation } from './support/spoof-population.ts';
import { storeAndAnalyse } from './support/store-and-analyse.ts';
import { accountRef, CHANNELS, uuidAt } from './support/voice-population.ts';

const benchDir = import.meta.dirname;
const DATABASE = 'voxtrace_bench_spoofs';
const INDEX = deepfakeSpace.index;
const K = 10;
/** truth lists: every utterance, and the first `--small` (the vector/halfvec comparison's tables) */
const [ALL, SMALL] = [0, 1];
const PHASES = ['http', 'vector', 'assign'] as const;
const TARGET = { p50Ms: 5, recall: 0.95 };

const { values: args } = parseArgs({
  options: {
    utterances: { type: 'string', default: '1000000' },
    queries: { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5544/postgres' },
    ef: { type: 'string', default: '40,100,200,400,800' },
    small: { type: 'string', default: '200000' },
    'http-requests': { type: 'string', default: '2000' },
    'assign-recordings': { type: 'string', default: '200' },
    skip: { type: 'string', default: '' },
    'index-with': { type: 'string', default: '' },
    keep: { type: 'boolean', default: false },
  },
});
const positive = (flag: string, text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) fail(`--${flag} must be a positive integer, got "${text}"`);
  return n;
};
const options = {
  utterances: positive('utterances', args.utterances),
  queries: positive('queries', args.queries),
  seed: positive('seed', args.seed),
  efs: args.ef.split(',').map((e) => positive('ef', e)),
  small: positive('small', args.small),
  httpRequests: positive('http-requests', args['http-requests']),
  assignRecordings: positive('assign-recordings', args['assign-recordings']),
  skip: new Set(args.skip.split(',').filter(Boolean)),
  indexWith: parseIndexWith(args['index-with'], fail),
};
for (const s of options.skip) if (!(PHASES as readonly string[]).includes(s)) fail(`--skip: unknown phase "${s}"`);
options.small = Math.min(options.small, options.utterances);
const command = `node bench/spoofs-knn.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`;

function fail(message: string): never {
  console.error(`bench/spoofs-knn: ${message}`);
  process.exit(1);
}

const runStarted = performance.now();
const log = (line: string) =>
  console.error(`[${((performance.now() - runStarted) / 1000).toFixed(0).padStart(5)} s] ${line}`);
const seconds = (since: number) => Math.round((performance.now() - since) / 100) / 10;
const load = () => os.loadavg().map((l) => Math.round(l * 100) / 100);
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

const figures: Record<string, unknown> = { complete: false };
let machine: unknown = null;

function save() {
  recordResult(benchDir, { name: 'spoofs-knn', command, machine, figures, summary: summarise() });
}

// ---- memory ---------------------------------------------------------------------------------

type Peak = {
  benchRssMiB: number;
  /** the largest backend's own memory (RssAnon), and all the cluster's processes' together */
  backendMaxRssAnonMiB: number;
  backendsRssAnonMiB: number;
  /** the largest backend's RSS, shared buffers it touched included */
  backendMaxRssMiB: number;
  /** the largest backend's shared memory: the shared buffers it touched and dynamic segments (a parallel HNSW build's graph) */
  backendMaxRssShmemMiB: number;
  /** PostgreSQL's dynamic shared memory segments in use (/dev/shm/PostgreSQL.*, of any cluster on the machine; their blocks, as they are sparse) */
  devShmMiB: number;
  serveRssMiB?: number;
};

function statusKiB(pid: number | string): Record<string, number> | null {
  try {
    const out: Record<string, number> = {};
    for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const m = /^(VmRSS|VmHWM|RssAnon|RssShmem):\s+(\d+) kB/.exec(line);
      if (m) out[m[1] as string] = Number(m[2]);
    }
    return out;
  } catch {
    return null;
  }
}

function devShmBytes(): number {
  try {
    let total = 0;
    for (const name of fs.readdirSync('/dev/shm')) {
      if (name.startsWith('PostgreSQL.')) total += fs.statSync(path.join('/dev/shm', name)).blocks * 512;
    }
    return total;
  } catch {
    return 0;
  }
}

/**
 * Peaks per phase, sampled every second: this process, the bench cluster's processes (children of
 * its postmaster, whose pid `postmaster.pid` in the data directory names) and `voxtrace serve`.
 */
function memorySampler(dataDir: string) {
  const peaks: Record<string, Peak> = {};
  let phase = 'start';
  let servePid: number | null = null;
  let postmaster: number | null = null;
  try {
    postmaster = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    postmaster = null;
  }
  const children = () => {
    if (postmaster === null) return [];
    const pids: number[] = [];
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pids.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  };
  const sample = () => {
    peaks[phase] ??= {
      benchRssMiB: 0,
      backendMaxRssAnonMiB: 0,
      backendsRssAnonMiB: 0,
      backendMaxRssMiB: 0,
      backendMaxRssShmemMiB: 0,
      devShmMiB: 0,
    };
    const peak = peaks[phase] as Peak;
    peak.benchRssMiB = Math.max(peak.benchRssMiB, mib(process.memoryUsage.rss()));
    let anonSum = 0;
    for (const pid of children()) {
      const s = statusKiB(pid);
      if (!s) continue;
      anonSum += s.RssAnon ?? 0;
      peak.backendMaxRssAnonMiB = Math.max(peak.backendMaxRssAnonMiB, mib((s.RssAnon ?? 0) * 1024));
      peak.backendMaxRssMiB = Math.max(peak.backendMaxRssMiB, mib((s.VmRSS ?? 0) * 1024));
      peak.backendMaxRssShmemMiB = Math.max(peak.backendMaxRssShmemMiB, mib((s.RssShmem ?? 0) * 1024));
    }
    peak.devShmMiB = Math.max(peak.devShmMiB, mib(devShmBytes()));
    peak.backendsRssAnonMiB = Math.max(peak.backendsRssAnonMiB, mib(anonSum * 1024));
    if (servePid !== null) {
      const s = statusKiB(servePid);
      if (s) peak.serveRssMiB = Math.max(peak.serveRssMiB ?? 0, mib((s.VmRSS ?? 0) * 1024));
    }
  };
  const timer = setInterval(sample, 1000);
  timer.unref();
  return {
    phase(name: string) {
      sample();
      phase = name;
      sample();
    },
    serve(pid: number | null) {
      servePid = pid;
    },
    report() {
      sample();
      return {
        note: 'sampled every second; RssAnon is a process’s own memory, RSS adds the shared buffers it touched, RssShmem the shared memory it touched (a parallel HNSW build keeps its graph in a dynamic shared segment, counted there and in devShmMiB); backends are every process of the bench cluster (parallel build workers included)',
        postmasterPid: postmaster,
        benchMaxRssMiB: mib(process.resourceUsage().maxRSS * 1024),
        peaks,
      };
    },
    stop() {
      clearInterval(timer);
    },
  };
}

// ---- data -----------------------------------------------------------------------------------

const queryVector = (p: SpoofPopulation, q: number) => p.queries.subarray(q * p.dimensions, (q + 1) * p.dimensions);

const halfvecText = (v: Float32Array) => `[${Array.from(v).join(',')}]`;
/** A plan without its 768 query values. */
const shortPlan = (lines: string[]) => lines.join('\n').replace(/'\[[^\]]*\]'/g, "'[…]'");

async function loadPopulation(client: pg.Client, p: SpoofPopulation, indexed: Table) {
  const started = performance.now();
  const recordingRows = function* () {
    const rows = new BinaryRows();
    for (let r = 0; r < p.recordings; r++) {
      rows.row(8);
      rows.uuid(p.recordingIds, r * 16);
      rows.text('import');
      rows.text(accountRef(p.recordingAccount[r] as number));
      rows.text(CHANNELS[p.recordingChannel[r] as number]?.name ?? null);
      rows.timestamptz(p.recordingCallAt[r] as number);
      rows.text('complete');
      rows.text('deepfake');
      rows.timestamptz(p.recordingCallAt[r] as number);
      const chunk = rows.take();
      if (chunk) yield chunk;
    }
    const last = rows.take(true);
    if (last) yield last;
  };
  const recordingsLoaded = await copyBinary(
    client,
    'recordings',
    ['id', 'source', 'account_ref', 'channel', 'call_at', 'status', 'upstream_api', 'completed_at'],
    recordingRows(),
  );
  const utteranceRows = function* () {
    const rows = new BinaryRows();
    for (let u = 0; u < p.count; u++) {
      const index = p.utteranceIndex[u] as number;
      // utterances of 2–10 s, one after the other from the start of the call
      const start = index * 6;
      rows.row(10);
      rows.uuid(p.utteranceIds, u * 16);
      rows.uuid(p.recordingIds, (p.utteranceRecording[u] as number) * 16);
      rows.text(String(index));
      rows.float8(start);
      rows.float8(start + 2 + ((u * 7919) % 8));
      rows.text('SPEAKER_00');
      rows.text('spoofed');
      rows.float8(p.pSpoofed[u] as number);
      rows.halfvec(p.vectors, u * p.dimensions, p.dimensions);
      rows.float8(p.rawNorm[u] as number);
      const chunk = rows.take();
      if (chunk) yield chunk;
    }
    const last = rows.take(true);
    if (last) yield last;
  };
  const utterancesLoaded = await copyBinary(
    client,
    'utterances',
    [
      'id',
      'recording_id',
      'upstream_id',
      'start_s',
      'end_s',
      'speaker_label',
      'deepfake_label',
      'p_spoofed',
      'deepfake_embedding',
      'deepfake_raw_norm',
    ],
    utteranceRows(),
  );
  const copySeconds = seconds(started);
  const tables = [...new Set(['recordings', 'utterances', indexed.name])];
  await client.query(`vacuum analyze ${tables.join(', ')}`);
  await client.query('checkpoint');
  const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${indexed.name} ${indexed.where}`);
  return {
    recordings: recordingsLoaded,
    utterances: utterancesLoaded,
    [`rowsIn_${indexed.name}`]: rows[0]?.n ?? 0,
    copySeconds,
    seconds: seconds(started),
  };
}

// ---- measurement ----------------------------------------------------------------------------

function truthIds(p: SpoofPopulation, truth: TopK, list: number) {
  return (q: number) => truthOf(truth, q, list).map((i) => uuidAt(p.utteranceIds, i));
}

/** ann-benchmarks' ε for near-ties (knn-measure.ts `Ties`), on cosine similarity. */
const TIE_EPSILON = 1e-3;

/**
 * Near-tie recall against the truth over every utterance: the k-th true neighbour's similarity,
 * and any returned row's, computed in-process from the same half-rounded vectors as the truth.
 */
function tiesOf(p: SpoofPopulation, truth: TopK): Ties {
  const index = new Map<string, number>();
  for (let i = 0; i < p.count; i++) index.set(uuidAt(p.utteranceIds, i), i);
  return {
    epsilon: TIE_EPSILON,
    kth: (q) => {
      const found = truthOf(truth, q, ALL).length;
      return truth.scores[(q * truth.masks.length + ALL) * truth.k + found - 1] as number;
    },
    similarity: (q, id) => {
      const i = index.get(id);
      if (i === undefined) return Number.NEGATIVE_INFINITY;
      const query = queryVector(p, q);
      let dot = 0;
      for (let d = 0; d < p.dimensions; d++) dot += (query[d] as number) * (p.vectors[i * p.dimensions + d] as number);
      return dot;
    },
  };
}

type Table = { name: string; column: string; type: 'halfvec' | 'vector'; where: string };
/**
 * The table, column and predicate of the spoof space's HNSW index as the migrations define it, and
 * the statement that creates it.
 */
async function spoofIndex(client: pg.Client): Promise<{ table: Table; definition: string }> {
  const { rows } = await client.query<{ def: string; table: string; column: string; predicate: string | null }>(
    `select pg_get_indexdef(i.indexrelid) as def, i.indrelid::regclass::text as table,
            pg_get_indexdef(i.indexrelid, 1, true) as column, pg_get_expr(i.indpred, i.indrelid) as predicate
       from pg_index i where i.indexrelid = to_regclass($1)`,
    [INDEX],
  );
  const row = rows[0];
  if (!row) fail(`the migrations created no ${INDEX}`);
  return {
    table: {
      name: row.table,
      column: row.column,
      type: 'halfvec',
      where: row.predicate ? `where ${row.predicate}` : '',
    },
    definition: row.def,
  };
}

/** The raw SQL of an unfiltered spoof kNN, prepared, ef_search set for the session. */
async function rawSweep(
  client: pg.Client,
  table: Table,
  queries: number[],
  vector: (q: number) => Float32Array,
  truth: (q: number) => string[],
  ties?: Ties,
) {
  const out: Record<string, Measured> = {};
  const distance = `${table.column} <=> $1::${table.type}(768)`;
  for (const ef of options.efs) {
    await client.query(`set hnsw.ef_search = ${ef}`);
    out[ef] = await measure(
      queries,
      async (q) => {
        const { rows } = await client.query<{ id: string }>({
          name: `spoofs-knn-${table.name}`,
          text: `select id from ${table.name} ${table.where} order by ${distance} limit ${K}`,
          values: [halfvecText(vector(q))],
        });
        return { ids: rows.map((r) => r.id) };
      },
      truth,
      undefined,
      ties,
    );
    log(`  raw SQL ${table.name} ef_search=${ef}: ${JSON.stringify(out[ef])}`);
  }
  await client.query('reset hnsw.ef_search');
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(
    `explain select id from ${table.name} ${table.where} order by ${table.column} <=> '${halfvecText(vector(0))}'::${table.type}(768) limit ${K}`,
  );
  return { sweep: out, plan: shortPlan(rows.map((r) => r['QUERY PLAN'])) };
}

async function productKnnSweep(
  database: ReturnType<typeof openPostgres>,
  p: SpoofPopulation,
  truth: TopK,
  queries: number[],
  ties: Ties,
) {
  const out: Record<string, Measured> = {};
  for (const ef of options.efs) {
    out[ef] = await measure(
      queries,
      async (q) => {
        const { neighbours, plan } = await nearestNeighbours(database.db, deepfakeSpace, queryVector(p, q), {
          k: K,
          efSearch: ef,
        });
        return { ids: neighbours.map((n) => n.id), method: plan.method };
      },
      truthIds(p, truth, ALL),
      undefined,
      ties,
    );
    log(`  nearestNeighbours ef_search=${ef}: ${JSON.stringify(out[ef])}`);
  }
  return out;
}

/** The HNSW index of `table`, built and measured; `definition` is the statement that creates it. */
async function buildIndex(client: pg.Client, index: string, definition: string, table: string) {
  await client.query(`drop index if exists ${index}`);
  await client.query('checkpoint');
  const notices: string[] = [];
  const onNotice = (n: { message?: string }) => notices.push(n.message ?? '');
  client.on('notice', onNotice);
  const started = performance.now();
  await client.query(definition);
  const buildSeconds = seconds(started);
  client.off('notice', onNotice);
  const { rows } = await client.query<{ index: string; table: string; total: string }>(
    `select pg_relation_size($1::regclass) as index, pg_table_size($2::regclass) as table,
            pg_total_relation_size($2::regclass) as total`,
    [index, table],
  );
  const prewarmStarted = performance.now();
  await client.query(`select pg_prewarm($1::regclass), pg_prewarm($2::regclass)`, [index, table]);
  const bytes = Number(rows[0]?.index ?? 0);
  return {
    definition,
    buildSeconds,
    indexBytes: bytes,
    indexMiB: mib(bytes),
    tableMiB: mib(Number(rows[0]?.table ?? 0)),
    tableWithIndexesMiB: mib(Number(rows[0]?.total ?? 0)),
    ...(notices.length ? { notices } : {}),
    prewarmSeconds: seconds(prewarmStarted),
    loadAverageAfter: load(),
  };
}

// ---- phases ---------------------------------------------------------------------------------

/** At M utterances: the same vectors in a halfvec(768) and a vector(768) table, each with its HNSW index. */
async function vectorPhase(
  client: pg.Client,
  p: SpoofPopulation,
  truth: TopK,
  queries: number[],
  indexOptions: string | null,
) {
  const withClause = indexOptions ? ` with (${indexOptions})` : '';
  const out: Record<string, unknown> = {
    utterances: options.small,
    note: `two tables of the bench database (id uuid, embedding), the first M generated utterances (a random sample of the calls); the same half-rounded values in both; indexes with the main index’s parameters (${indexOptions ?? 'pgvector’s defaults'}), cosine ops of each type; recall against the exact top-10 over those M`,
  };
  for (const type of ['halfvec', 'vector'] as const) {
    const table = `bench_spoofs_${type}`;
    await client.query(`drop table if exists ${table}`);
    await client.query(`create table ${table} (id uuid not null, embedding ${type}(768) not null)`);
    const started = performance.now();
    const rows = function* () {
      const b = new BinaryRows();
      for (let u = 0; u < options.small; u++) {
        b.row(2);
        b.uuid(p.utteranceIds, u * 16);
        if (type === 'halfvec') b.halfvec(p.vectors, u * p.dimensions, p.dimensions);
        else b.vector(p.vectors, u * p.dimensions, p.dimensions);
        const chunk = b.take();
        if (chunk) yield chunk;
      }
      const last = b.take(true);
      if (last) yield last;
    };
    await copyBinary(client, table, ['id', 'embedding'], rows());
    await client.query(`vacuum analyze ${table}`);
    const loadSeconds = seconds(started);
    log(`  ${table}: loaded in ${loadSeconds} s; HNSW build…`);
    memory.phase(`vector: ${type} build`);
    const index = await buildIndex(
      client,
      `${table}_hnsw`,
      `create index ${table}_hnsw on ${table} using hnsw (embedding ${type}_cosine_ops)${withClause}`,
      table,
    );
    log(`  ${table}: ${JSON.stringify(index)}`);
    memory.phase(`vector: ${type} queries`);
    const sweep = await rawSweep(
      client,
      { name: table, column: 'embedding', type, where: '' },
      queries,
      (q) => queryVector(p, q),
      truthIds(p, truth, SMALL),
    );
    out[type] = { setupLoadSeconds: loadSeconds, index, rawSql: sweep.sweep, plan: sweep.plan };
    save();
  }
  const h = out.halfvec as { index: { tableMiB: number; indexMiB: number; buildSeconds: number } };
  const v = out.vector as { index: { tableMiB: number; indexMiB: number; buildSeconds: number } };
  out.vectorOverHalfvec = {
    table: round3(v.index.tableMiB / h.index.tableMiB),
    index: round3(v.index.indexMiB / h.index.indexMiB),
    buildSeconds: round3(v.index.buildSeconds / h.index.buildSeconds),
  };
  return out;
}

async function httpPhase(url: string, key: string, p: SpoofPopulation, truth: TopK, queries: number[]) {
  const server = await startServer(url);
  memory.serve(server.child.pid ?? null);
  try {
    const post = async (q: number): Promise<Answer & { ok: boolean; status: number }> => {
      const response = await fetch(`${server.base}/v1/spoofs/search`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: { embedding: Array.from(queryVector(p, q)) }, k: K }),
      });
      const body = (await response.json().catch(() => ({}))) as {
        neighbours?: { utteranceId: string }[];
        plan?: { method: string };
      };
      return {
        ok: response.ok,
        status: response.status,
        ids: (body.neighbours ?? []).map((n) => n.utteranceId),
        method: body.plan?.method,
      };
    };
    const probe = await post(0);
    if (!probe.ok) return { notRun: `POST /v1/spoofs/search answered ${probe.status} to the first query` };
    let errors = 0;
    const oneClient = await measure(
      queries,
      async (q) => {
        const answer = await post(q);
        if (!answer.ok) errors++;
        return answer;
      },
      truthIds(p, truth, ALL),
    );
    log(`  HTTP 1 client: ${JSON.stringify(oneClient)}, errors ${errors}`);
    const sixteen = await measureConcurrent({
      clients: 16,
      requests: options.httpRequests,
      queries,
      run: post,
      truth: truthIds(p, truth, ALL),
    });
    log(`  HTTP 16 clients: ${JSON.stringify(sixteen)}`);
    return {
      body: '{"query":{"embedding":[768 numbers]},"k":10} (efSearch left to the default)',
      oneClient: { ...oneClient, errors, requestsPerSecond: round3(1000 / oneClient.meanMs) },
      sixteenClients: sixteen,
    };
  } finally {
    memory.serve(null);
    await server.stop();
  }
}

/** The `spoofs.clusters` step, timed alone on each recording it runs for. */
async function assignPhase(database: ReturnType<typeof openPostgres>, client: pg.Client) {
  const inner = spoofClusterStep(DEFAULT_SPOOF_SETTINGS);
  const stepMs = new Map<string, number>();
  const timed: AnalysisStep = {
    name: inner.name,
    async run(context) {
      const started = performance.now();
      await inner.run(context);
      stepMs.set(context.event.recordingId, performance.now() - started);
    },
  };
  const stored = await storeAndAnalyse(database.db, {
    count: options.assignRecordings,
    seed: 11,
    firstPid: 1,
    steps: [timed],
  });
  const { rows } = await client.query<{ id: string; spoofed: number; placed: number }>(
    `select r.id, count(u.id) filter (where u.deepfake_label = 'spoofed' and u.deepfake_embedding is not null)::int as spoofed,
            count(u.id) filter (where u.spoof_cluster_id is not null)::int as placed
       from recordings r left join utterances u on u.recording_id = r.id
      where r.upstream_pid is not null group by r.id`,
  );
  const withSpoofs = rows.filter((r) => r.spoofed > 0);
  const spoofedUtterances = withSpoofs.reduce((s, r) => s + r.spoofed, 0);
  const msOf = (rs: typeof rows) => rs.map((r) => stepMs.get(r.id) ?? 0);
  const totalWith = msOf(withSpoofs).reduce((s, x) => s + x, 0);
  const { rows: clusters } = await client.query<{ n: number }>('select count(*)::int as n from spoof_clusters');
  return {
    note: 'the shared synthetic demo calls (about one in ten a cloned caller from a campaign), stored one at a time into the loaded database and analysed with the spoofs.clusters step alone; their spoof vectors come from the stand-in’s model, not from the loaded families, so their neighbours among the loaded rows are far and seldom clustered (the loaded rows have no clusters): this is the cost of the step’s searches and writes, not of a realistic placement',
    recordings: options.assignRecordings,
    recordingsWithSpoofedUtterances: withSpoofs.length,
    spoofedUtterances,
    placedInClusters: rows.reduce((s, r) => s + r.placed, 0),
    clustersFormed: clusters[0]?.n ?? 0,
    stepPerRecordingWithSpoofs: latencySummary(msOf(withSpoofs)),
    stepPerRecordingWithout: latencySummary(msOf(rows.filter((r) => r.spoofed === 0))),
    stepMsPerSpoofedUtterance: spoofedUtterances ? round3(totalWith / spoofedUtterances) : null,
    storeAndAnalyse: stored,
  };
}

// ---- judgment -------------------------------------------------------------------------------

type Point = Measured;

/** The fastest point (by p50) at recall@10 ≥ TARGET.recall; the target is met if its p50 is ≤ TARGET.p50Ms. */
function judge(sweep: Record<string, Point> | undefined) {
  if (!sweep) return null;
  const entries = Object.entries(sweep);
  const reaching = entries.filter(([, m]) => m.recallAt10 >= TARGET.recall).sort((a, b) => a[1].p50Ms - b[1].p50Ms);
  const best = reaching[0];
  const highest = [...entries].sort((a, b) => b[1].recallAt10 - a[1].recallAt10)[0];
  return {
    target: `p50 ≤ ${TARGET.p50Ms} ms at recall@10 ≥ ${TARGET.recall} (k=${K})`,
    atTargetRecall: best
      ? { efSearch: best[0], p50Ms: best[1].p50Ms, p99Ms: best[1].p99Ms, recallAt10: best[1].recallAt10 }
      : null,
    p50AtTargetRecallInterpolated: p50AtRecall(sweep, TARGET.recall),
    highestRecall: highest
      ? { efSearch: highest[0], recallAt10: highest[1].recallAt10, p50Ms: highest[1].p50Ms }
      : null,
    met: best ? best[1].p50Ms <= TARGET.p50Ms : false,
    ...(best ? {} : { why: `no ef_search of the sweep reached recall@10 ${TARGET.recall}` }),
  };
}

function evaluateTargets() {
  const m = figures.hnsw as { rawSql?: { sweep: Record<string, Point> }; nearestNeighbours?: Record<string, Point> };
  const v = figures.vectorVsHalfvec as
    | { halfvec?: { rawSql: Record<string, Point> }; vector?: { rawSql: Record<string, Point> } }
    | undefined;
  return {
    nearestNeighbours: judge(m?.nearestNeighbours),
    rawSql: judge(m?.rawSql?.sweep),
    ...(v?.halfvec ? { smallHalfvecRawSql: judge(v.halfvec.rawSql) } : {}),
    ...(v?.vector ? { smallVectorRawSql: judge(v.vector.rawSql) } : {}),
  };
}

function summarise(): string {
  const data = figures.data as { utterances?: number } | undefined;
  const hnsw = figures.hnsw as
    | { index?: { buildSeconds: number; indexMiB: number }; nearestNeighbours?: Record<string, Point> }
    | undefined;
  const parts: string[] = [];
  if (!figures.complete) parts.push('incomplete run');
  if (data?.utterances) parts.push(`${data.utterances.toLocaleString('en')} spoofed utterances (halfvec(768))`);
  if (hnsw?.index) parts.push(`HNSW build ${hnsw.index.buildSeconds} s, ${hnsw.index.indexMiB} MiB`);
  if (hnsw?.nearestNeighbours) {
    const j = judge(hnsw.nearestNeighbours);
    const a = j?.atTargetRecall;
    parts.push(
      a
        ? `nearestNeighbours ef_search ${a.efSearch}: p50 ${a.p50Ms} ms, p99 ${a.p99Ms} ms, recall@10 ${a.recallAt10} (target p50 ≤ ${TARGET.p50Ms} ms at recall ≥ ${TARGET.recall}: ${j?.met ? 'met' : 'missed'})`
        : `recall@10 ${TARGET.recall} not reached (best ${j?.highestRecall?.recallAt10} at ef_search ${j?.highestRecall?.efSearch}, p50 ${j?.highestRecall?.p50Ms} ms): target missed`,
    );
  }
  const http = (figures.hnsw as { http?: Record<string, unknown> } | undefined)?.http;
  if (http?.notRun) parts.push(`HTTP not run (${String(http.notRun).slice(0, 120)})`);
  else if (http?.oneClient) {
    const one = http.oneClient as Point;
    const sixteen = http.sixteenClients as { requestsPerSecond: number; errors: number; p50Ms: number };
    parts.push(
      `HTTP 1 client p50 ${one.p50Ms} ms, 16 clients p50 ${sixteen.p50Ms} ms, ${sixteen.requestsPerSecond} requests/s, ${sixteen.errors} errors`,
    );
  }
  const v = figures.vectorVsHalfvec as
    | Record<'halfvec' | 'vector', { index: { tableMiB: number; indexMiB: number; buildSeconds: number } }>
    | undefined;
  if (v?.halfvec && v.vector) {
    parts.push(
      `at ${options.small.toLocaleString('en')}: halfvec table ${v.halfvec.index.tableMiB} MiB + index ${v.halfvec.index.indexMiB} MiB, build ${v.halfvec.index.buildSeconds} s; vector ${v.vector.index.tableMiB} + ${v.vector.index.indexMiB} MiB, ${v.vector.index.buildSeconds} s`,
    );
  }
  const assign = figures.assign as { stepMsPerSpoofedUtterance?: number | null } | undefined;
  if (assign?.stepMsPerSpoofedUtterance != null) {
    parts.push(`spoofs.clusters step ${assign.stepMsPerSpoofedUtterance} ms per spoofed utterance`);
  }
  const mem = figures.memory as { benchMaxRssMiB?: number; peaks?: Record<string, Peak> } | undefined;
  if (mem?.peaks) {
    const backend = Math.max(...Object.values(mem.peaks).map((p) => p.backendsRssAnonMiB));
    parts.push(`peak RSS bench ${mem.benchMaxRssMiB} MiB, PostgreSQL processes ${backend} MiB own`);
  }
  return parts.join('; ') || 'incomplete run';
}

// ---- run ------------------------------------------------------------------------------------

const memory = memorySampler(process.env.BENCH_PG_DIR ?? '/work/bench-pg');

async function main() {
  const serverUrl = args.url;
  if (new URL(serverUrl).port === '5432' || new URL(serverUrl).port === '') {
    log('note: --url points at port 5432; the benchmark is meant for its own cluster (bench/support/pg-cluster.sh)');
  }
  const url = databaseUrl(serverUrl, DATABASE);
  await adminQuery(serverUrl, `drop database if exists ${DATABASE} with (force)`);
  await adminQuery(serverUrl, `create database ${DATABASE}`);
  // one connection: the product's queries are measured over one, as one analyst's session would be
  const database = openPostgres(url, { max: 1 });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await migrateDatabase(database);
    await client.query('create extension if not exists pg_prewarm');
    machine = await describeMachine(database, [
      ...benchmarkSettings,
      'effective_io_concurrency',
      'random_page_cost',
      'max_parallel_workers_per_gather',
      'port',
    ]);
    figures.cpu = {
      note: 'a 2-core machine shared with other tenants: the load average is recorded per phase',
      calibrationMsBefore: await calibrationMs(),
      loadAverageAtStart: load(),
    };
    const { table: indexed, definition: migrationDefinition } = await spoofIndex(client);
    // the migration's definition, or the same with other HNSW parameters (--index-with)
    const indexDefinition = withIndexOptions(migrationDefinition, options.indexWith);

    memory.phase('setup: generate');
    log(`generating ${options.utterances.toLocaleString('en')} spoofed utterances…`);
    let started = performance.now();
    const p = generateSpoofPopulation({
      utterances: options.utterances,
      queries: options.queries,
      seed: options.seed,
      log,
    });
    const spreads = Array.from(p.familySpread).sort((a, b) => a - b);
    figures.data = {
      utterances: p.count,
      recordings: p.recordings,
      families: p.families,
      diffuseUtterances: p.utteranceFamily.reduce((s, f) => s + (f < 0 ? 1 : 0), 0),
      familySpread: { min: round3(spreads[0] ?? 0), max: round3(spreads.at(-1) ?? 0) },
      queries: p.queryCount,
      generator:
        'bench/support/spoof-population.ts: families of spoof generators (direction, spread σ, size), calls with their own offset, 1–5 utterances each; diffuse calls of no family; half-rounded unit vectors',
    };
    figures.setup = { generateSeconds: seconds(started), note: 'outside the reported figures' };
    log(`generated: ${JSON.stringify(figures.data)} in ${seconds(started)} s`);

    memory.phase('exact truth');
    log('exact ground truth…');
    const flags = new Uint8Array(new SharedArrayBuffer(p.count)).fill(1);
    flags.fill(3, 0, options.small);
    started = performance.now();
    const truth = await exactTopK({
      vectors: p.vectors,
      flags,
      queries: p.queries,
      dimensions: p.dimensions,
      masks: [1, 2],
      k: K,
      count: p.count,
      threads: 2,
    });
    figures.exactTruth = {
      seconds: seconds(started),
      threads: 2,
      queries: p.queryCount,
      lists: `top-${K} over all ${p.count} and over the first ${options.small}`,
      how: 'in-process Float32Array dot products (of the half-rounded values) over every utterance, worker_threads',
    };
    log(`truth in ${seconds(started)} s`);
    const queries = Array.from({ length: p.queryCount }, (_, q) => q);

    memory.phase('setup: load');
    log('loading (binary COPY)…');
    await client.query(`drop index if exists ${INDEX}`);
    figures.setup = { ...(figures.setup as object), ...(await loadPopulation(client, p, indexed)) };
    log(`loaded: ${JSON.stringify(figures.setup)}`);
    const { key } = await createApiKey(database.db, { scope: 'read', name: 'bench spoofs-knn' }, CLI_ACTOR);
    save();

    memory.phase('hnsw build');
    log(`HNSW build: ${indexDefinition}`);
    const index = await buildIndex(client, INDEX, indexDefinition, indexed.name);
    // the product joins each neighbour's utterance and recording: in the OS cache, as the index and
    // its table take most of the shared buffers
    await client.query(`select pg_prewarm('recordings'), pg_prewarm('recordings_pkey'), pg_prewarm('utterances_pkey'),
                               pg_prewarm('utterances', 'prefetch')`);
    log(`  built: ${JSON.stringify(index)}`);
    const hnsw: Record<string, unknown> = { table: indexed, index };
    figures.hnsw = hnsw;
    save();

    memory.phase('queries');
    const ties = tiesOf(p, truth);
    hnsw.rawSql = await rawSweep(client, indexed, queries, (q) => queryVector(p, q), truthIds(p, truth, ALL), ties);
    save();
    hnsw.nearestNeighbours = await productKnnSweep(database, p, truth, queries, ties);
    hnsw.plan = shortPlan([
      (await explainNearestNeighbours(database.db, deepfakeSpace, queryVector(p, 0), { k: K })).explain,
    ]);
    save();
    hnsw.searchSpoofs = {
      [`default (${DEFAULT_EF_SEARCH})`]: await measure(
        queries,
        async (q) => {
          const answer = await searchSpoofs(
            database.db,
            { query: { embedding: Array.from(queryVector(p, q)) }, k: K },
            CLI_ACTOR,
          );
          return { ids: answer.neighbours.map((n) => n.utteranceId), method: answer.plan.method };
        },
        truthIds(p, truth, ALL),
      ),
    };
    log(`  searchSpoofs: ${JSON.stringify(hnsw.searchSpoofs)}`);
    figures.targets = evaluateTargets();
    figures.memory = memory.report();
    save();

    if (options.skip.has('vector')) figures.vectorVsHalfvec = { skipped: '--skip vector' };
    else {
      log(`vector(768) against halfvec(768) at ${options.small.toLocaleString('en')} utterances…`);
      figures.vectorVsHalfvec = {};
      figures.vectorVsHalfvec = await vectorPhase(client, p, truth, queries, indexOptionsOf(indexDefinition));
      figures.targets = evaluateTargets();
      figures.memory = memory.report();
      save();
    }

    if (options.skip.has('http')) hnsw.http = { skipped: '--skip http' };
    else {
      memory.phase('http');
      log('HTTP: voxtrace serve, POST /v1/spoofs/search…');
      hnsw.http = await httpPhase(url, key, p, truth, queries).catch((error: Error) => ({
        notRun: `failed: ${error.message}`,
      }));
      figures.memory = memory.report();
      save();
    }

    if (options.skip.has('assign')) figures.assign = { skipped: '--skip assign' };
    else {
      memory.phase('assign');
      log(`spoofs.clusters step on ${options.assignRecordings} new recordings…`);
      figures.assign = await assignPhase(database, client).catch((error: Error) => ({
        notRun: `failed: ${error.message}`,
      }));
      log(`  assign: ${JSON.stringify(figures.assign)}`);
      figures.memory = memory.report();
      save();
    }

    figures.recluster = {
      measuredBy:
        'bench/spoofs-batch.ts: the batch recluster of 200,000 spoofed utterances in a database of its own (results/spoofs-batch.json)',
    };

    figures.cpu = { ...(figures.cpu as object), calibrationMsAfter: await calibrationMs(), loadAverageAtEnd: load() };
    figures.targets = evaluateTargets();
    figures.memory = memory.report();
    figures.complete = true;
    save();
    log(`done in ${seconds(runStarted)} s`);
  } finally {
    memory.stop();
    await client.end();
    await database.close();
    if (!args.keep) await adminQuery(serverUrl, `drop database if exists ${DATABASE} with (force)`).catch(() => {});
  }
}

await main();
