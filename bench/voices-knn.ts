/**
 * Similar-voice search at scale: voxtrace's kNN over a million voiceprints on native PostgreSQL +
 * pgvector, against exact ground truth, hnswlib-node and LanceDB on the same vectors and queries.
 *
 *   bash bench/support/pg-cluster.sh start            # the bench-owned cluster (port 5544)
 *   npm ci --prefix bench --omit=optional             # hnswlib-node and LanceDB, bench/ only
 *   node bench/voices-knn.ts [--voiceprints N] [--queries Q] [--seed K] [--url URL] [--skip a,b]
 *
 * N voiceprints (default 1,000,000) of the synthetic voice model (bench/support/voice-population.ts:
 * customers with 1–30 calls, fraudsters, 20 staff heard on 4 % of the recordings, identities for
 * a share of them), on ~N recordings with accounts, channels and call times. Q held-out queries
 * (default 500): new calls of existing customers, never loaded; plus one held-out call of each
 * staff member (searching a staff voice must still give k non-staff answers).
 *
 * Outside the reported figures: generating the data, loading it (binary COPY into recordings,
 * identities, voiceprints, after the product's migrations, with the voiceprints HNSW index dropped),
 * VACUUM ANALYZE, the calibration. Then, timed:
 * - the exact ground truth in-process (Float32Array, worker threads): top-10 by cosine over the
 *   rows the product's query sees — staff left out; on the 1 % channel; on the 0.1 % accounts;
 * - HNSW builds: m=16, ef_construction=64 (the migration's index) and one larger setting, each
 *   with its size, then pg_prewarm of index and tables;
 * - per ef_search: p50/p99/recall@10 of the raw SQL (one connection, prepared, session SET), of
 *   the product's kNN (`nearestNeighbours` with the default search's filter) and of the product's
 *   search (`searchVoices`: staff excluded, calibrated scores, audit row) over one connection;
 * - staff-voiced queries, the 1 % and 0.1 % filters (recall, rows returned, completeness, plan),
 *   the exact scan;
 * - the HTTP API (`voxtrace serve` in its own process; POST /v1/voices/search) at 1 and 16
 *   clients: latency, throughput, errors;
 * - storing and analysing a recording (storeResults + the registered analysis steps) on an empty
 *   database and at N voiceprints, when a step is registered;
 * - hnswlib-node (m=16, ef_construction=64) and LanceDB (IVF_FLAT, cosine) on the same vectors.
 * `--skip` names phases to leave out: hnswlib, lancedb, large, http, store. `--rejudge` measures
 * nothing: it judges the targets again on the figures of bench/results/voices-knn.json (after a
 * change to bench/support/knn-targets.ts) and rewrites its `targets` and README line.
 *
 * PostgreSQL: `--url` (default postgres://postgres@127.0.0.1:5544/postgres, the cluster of
 * bench/support/pg-cluster.sh); the benchmark creates and drops voxtrace_bench_voices and
 * voxtrace_bench_voices_empty there. Results are written after each phase (`complete: false`
 * until the end) to bench/results/voices-knn.json and the voices-knn line of bench/README.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { analysisSteps } from '../src/analysis/steps.ts';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { type Database, openPostgres } from '../src/db/client.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { createApiKey } from '../src/keys/keys.ts';
import {
  DEFAULT_EF_SEARCH,
  explainNearestNeighbours,
  type KnnFilter,
  nearestNeighbours,
  speakerSpace,
} from '../src/search/knn.ts';
import { refreshCalibration } from '../src/voices/calibration.ts';
import { searchVoices } from '../src/voices/search.ts';
import { adminQuery, databaseUrl } from '../test/support/postgres.ts';
import { buildLance } from './support/comparison-engines.ts';
import { BinaryRows, copyBinary } from './support/copy-binary.ts';
import { exactTopK, type TopK, truthOf } from './support/exact-knn.ts';
import { type Answer, type Measured, measure, measureConcurrent } from './support/knn-measure.ts';
import { evaluateTargets } from './support/knn-targets.ts';
import { round3 } from './support/latency.ts';
import { benchmarkSettings, calibrationMs, describeMachine } from './support/machine.ts';
import { recordResult } from './support/results.ts';
import { startServer } from './support/serve.ts';
import { storeAndAnalyse } from './support/store-and-analyse.ts';
import {
  accountRef,
  CHANNELS,
  ELIGIBLE,
  eligibility,
  generatePopulation,
  ONE_PERCENT_CHANNEL,
  type Population,
  uuidAt,
} from './support/voice-population.ts';

const benchDir = import.meta.dirname;
const DATABASE = 'voxtrace_bench_voices';
const EMPTY_DATABASE = 'voxtrace_bench_voices_empty';
const K = 10;
const MASKS = [ELIGIBLE.all, ELIGIBLE.channel, ELIGIBLE.accounts];
const [ALL, CHANNEL, ACCOUNTS] = [0, 1, 2];
const PHASES = ['hnswlib', 'lancedb', 'large', 'http', 'store'] as const;

const { values: args } = parseArgs({
  options: {
    voiceprints: { type: 'string', default: '1000000' },
    queries: { type: 'string', default: '500' },
    seed: { type: 'string', default: '1' },
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5544/postgres' },
    ef: { type: 'string', default: '40,64,100,200' },
    large: { type: 'string', default: '24,96' },
    'exact-queries': { type: 'string', default: '50' },
    'http-requests': { type: 'string', default: '2000' },
    'store-recordings': { type: 'string', default: '200' },
    'lance-dir': { type: 'string', default: '/work/bench-lance' },
    'lance-nprobes': { type: 'string', default: '5,10,20,40' },
    skip: { type: 'string', default: '' },
    keep: { type: 'boolean', default: false },
    rejudge: { type: 'boolean', default: false },
  },
});
const positive = (flag: string, text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) fail(`--${flag} must be a positive integer, got "${text}"`);
  return n;
};
const options = {
  voiceprints: positive('voiceprints', args.voiceprints),
  queries: positive('queries', args.queries),
  seed: positive('seed', args.seed),
  efs: args.ef.split(',').map((e) => positive('ef', e)),
  large: args.large.split(',').map((e) => positive('large', e)) as [number, number],
  exactQueries: positive('exact-queries', args['exact-queries']),
  httpRequests: positive('http-requests', args['http-requests']),
  storeRecordings: positive('store-recordings', args['store-recordings']),
  lanceNprobes: args['lance-nprobes'].split(',').map((e) => positive('lance-nprobes', e)),
  skip: new Set(args.skip.split(',').filter(Boolean)),
};
for (const s of options.skip) if (!(PHASES as readonly string[]).includes(s)) fail(`--skip: unknown phase "${s}"`);
const command = `node bench/voices-knn.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`;

function fail(message: string): never {
  console.error(`bench/voices-knn: ${message}`);
  process.exit(1);
}

const runStarted = performance.now();
const log = (line: string) =>
  console.error(`[${((performance.now() - runStarted) / 1000).toFixed(0).padStart(5)} s] ${line}`);
const seconds = (since: number) => Math.round((performance.now() - since) / 100) / 10;
const load = () => os.loadavg().map((l) => Math.round(l * 100) / 100);

const figures: Record<string, unknown> = { complete: false };
let machine: unknown = null;
let summary = 'incomplete run';

function save() {
  recordResult(benchDir, { name: 'voices-knn', command, machine, figures, summary });
}

// ---- data -----------------------------------------------------------------------------------

function queryVector(population: Population, q: number, staff = false): Float32Array {
  const d = population.dimensions;
  const source = staff ? population.staffQueries : population.queries;
  return source.slice(q * d, (q + 1) * d);
}

const vectorText = (v: Float32Array) => `[${Array.from(v).join(',')}]`;

async function loadPopulation(client: pg.Client, p: Population) {
  const started = performance.now();
  await client.query('drop index if exists voiceprints_embedding_hnsw');
  const recordingRows = function* () {
    const rows = new BinaryRows();
    for (let r = 0; r < p.recordings; r++) {
      rows.row(7);
      rows.uuid(p.recordingIds, r * 16);
      rows.text('import');
      rows.text(accountRef(p.recordingAccount[r] as number));
      rows.text(CHANNELS[p.recordingChannel[r] as number]?.name ?? null);
      rows.timestamptz(p.recordingCallAt[r] as number);
      rows.text('complete');
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
    ['id', 'source', 'account_ref', 'channel', 'call_at', 'status', 'completed_at'],
    recordingRows(),
  );
  const identityRows = function* () {
    const rows = new BinaryRows();
    for (let i = 0; i < p.identityKind.length; i++) {
      const account = p.identityAccount[i] ?? null;
      rows.row(4);
      rows.uuid(p.identityIds, i * 16);
      rows.text(p.identityKind[i] as string);
      rows.text(account === null ? null : accountRef(account));
      rows.text('analyst');
    }
    const last = rows.take(true);
    if (last) yield last;
  };
  const identitiesLoaded = await copyBinary(
    client,
    'identities',
    ['id', 'kind', 'account_ref', 'origin'],
    identityRows(),
  );
  const voiceprintRows = function* () {
    const rows = new BinaryRows();
    const assignedAt = Date.now();
    for (let v = 0; v < p.count; v++) {
      const identity = p.voiceprintIdentity[v] as number;
      rows.row(10);
      rows.uuid(p.voiceprintIds, v * 16);
      rows.uuid(p.recordingIds, (p.voiceprintRecording[v] as number) * 16);
      rows.text(p.voiceprintAgent[v] ? 'agent' : 'customer');
      rows.vector(p.vectors, v * p.dimensions, p.dimensions);
      rows.float8(p.rawNorm[v] as number);
      rows.float8(p.speechSeconds[v] as number);
      rows.int4(1 + (v % 12));
      if (identity < 0) {
        rows.null();
        rows.null();
        rows.null();
      } else {
        rows.uuid(p.identityIds, identity * 16);
        rows.text('analyst');
        rows.timestamptz(assignedAt);
      }
      const chunk = rows.take();
      if (chunk) yield chunk;
    }
    const last = rows.take(true);
    if (last) yield last;
  };
  const voiceprintsLoaded = await copyBinary(
    client,
    'voiceprints',
    [
      'id',
      'recording_id',
      'speaker_label',
      'embedding',
      'raw_norm',
      'speech_seconds',
      'utterance_count',
      'identity_id',
      'assigned_by',
      'assigned_at',
    ],
    voiceprintRows(),
  );
  const copySeconds = seconds(started);
  // identities' centroids and member counts, as membership changes keep them; the centroid index
  // is rebuilt afterwards (the migration's definition) rather than updated 35,000 times
  await client.query('drop index if exists identities_centroid_hnsw');
  await client.query(`update identities i set centroid = l2_normalize(s.centroid), member_count = s.members
                        from (select identity_id, avg(embedding) as centroid, count(*)::int as members
                                from voiceprints where identity_id is not null group by identity_id) s
                       where s.identity_id = i.id`);
  await client.query('create index identities_centroid_hnsw on identities using hnsw (centroid vector_cosine_ops)');
  await client.query('vacuum analyze recordings, identities, voiceprints');
  await client.query('checkpoint');
  return {
    recordings: recordingsLoaded,
    identities: identitiesLoaded,
    voiceprints: voiceprintsLoaded,
    copySeconds,
    seconds: seconds(started),
  };
}

// ---- measurement ----------------------------------------------------------------------------

function truthIds(population: Population, truth: TopK, offset: number, mask: number) {
  return (q: number) => truthOf(truth, q + offset, mask).map((i) => uuidAt(population.voiceprintIds, i));
}

const staffIdsSql = `select coalesce(array_agg(id), '{}') as ids from identities where kind = 'staff'`;

/** The raw SQL of the default search (staff left out), prepared, ef_search set for the session. */
async function rawSweep(client: pg.Client, p: Population, truth: TopK, queries: number[], efs: number[]) {
  const { rows } = await client.query<{ ids: string[] }>(staffIdsSql);
  const staff = rows[0]?.ids ?? [];
  const out: Record<string, Measured> = {};
  await client.query('set hnsw.iterative_scan = relaxed_order');
  for (const ef of efs) {
    await client.query(`set hnsw.ef_search = ${ef}`);
    out[ef] = await measure(
      queries,
      async (q) => {
        const { rows } = await client.query<{ id: string }>({
          name: 'knn-default',
          text: `with walked as materialized (
                   select id, embedding <=> $1::vector(192) as distance from voiceprints
                    where identity_id is null or identity_id <> all($2::uuid[])
                    order by embedding <=> $1::vector(192) limit ${K})
                 select id from walked order by distance`,
          values: [vectorText(queryVector(p, q)), staff],
        });
        return { ids: rows.map((r) => r.id) };
      },
      truthIds(p, truth, 0, ALL),
    );
    log(`  raw SQL ef_search=${ef}: ${JSON.stringify(out[ef])}`);
  }
  await client.query('reset hnsw.ef_search; reset hnsw.iterative_scan');
  return out;
}

const defaultFilter: KnnFilter = { excludeIdentityKinds: ['staff'] };

async function productKnnSweep(database: Database, p: Population, truth: TopK, queries: number[], efs: number[]) {
  const out: Record<string, Measured> = {};
  for (const ef of efs) {
    out[ef] = await measure(
      queries,
      async (q) => {
        const { neighbours, plan } = await nearestNeighbours(database.db, speakerSpace, queryVector(p, q), {
          k: K,
          filter: defaultFilter,
          efSearch: ef,
        });
        return { ids: neighbours.map((n) => n.id), method: plan.method };
      },
      truthIds(p, truth, 0, ALL),
    );
    log(`  nearestNeighbours ef_search=${ef}: ${JSON.stringify(out[ef])}`);
  }
  return out;
}

async function searchOnce(database: Database, body: Record<string, unknown>): Promise<Answer> {
  const answer = await searchVoices(database.db, body, CLI_ACTOR);
  return { ids: answer.items.map((i) => i.voiceprintId), method: answer.plan.method };
}

async function productSearchSweep(database: Database, p: Population, truth: TopK, queries: number[], efs: number[]) {
  const out: Record<string, Measured> = {};
  for (const ef of [undefined, ...efs]) {
    const label = ef === undefined ? `default (${DEFAULT_EF_SEARCH})` : String(ef);
    out[label] = await measure(
      queries,
      (q) =>
        searchOnce(database, {
          query: { embedding: Array.from(queryVector(p, q)) },
          k: K,
          ...(ef === undefined ? {} : { efSearch: ef }),
        }),
      truthIds(p, truth, 0, ALL),
    );
    log(`  searchVoices efSearch=${label}: ${JSON.stringify(out[label])}`);
  }
  return out;
}

async function filteredSearches(database: Database, client: pg.Client, p: Population, truth: TopK, queries: number[]) {
  const accounts = p.filterAccounts.map(accountRef);
  const filters = {
    [`1% (channel ${ONE_PERCENT_CHANNEL})`]: { filter: { channels: [ONE_PERCENT_CHANNEL] }, mask: CHANNEL },
    [`0.1% (${accounts.length} accounts)`]: { filter: { accountRefs: accounts }, mask: ACCOUNTS },
  };
  const { rows } = await client.query<{ ids: string[] }>(staffIdsSql);
  const staff = rows[0]?.ids ?? [];
  const out: Record<string, unknown> = {};
  for (const [label, { filter, mask }] of Object.entries(filters)) {
    const matching = await client.query<{ n: string }>(
      `select count(*) as n from voiceprints v join recordings r on r.id = v.recording_id
        where ${mask === CHANNEL ? 'r.channel = any($1)' : 'r.account_ref = any($1)'}
          and (v.identity_id is null or v.identity_id <> all($2::uuid[]))`,
      [mask === CHANNEL ? [ONE_PERCENT_CHANNEL] : accounts, staff],
    );
    const product = await measure(
      queries,
      (q) => searchOnce(database, { query: { embedding: Array.from(queryVector(p, q)) }, k: K, filter }),
      truthIds(p, truth, 0, mask),
    );
    log(`  searchVoices filter ${label}: ${JSON.stringify(product)}`);
    // diagnostic: the same filter forced through the iterative index walk (what 'exact' is avoiding)
    const iterative = await measure(
      queries,
      async (q) => {
        await client.query('begin');
        await client.query(
          `set local hnsw.ef_search = ${DEFAULT_EF_SEARCH}; set local hnsw.iterative_scan = relaxed_order`,
        );
        const { rows } = await client.query<{ id: string }>({
          name: `knn-filter-${mask}`,
          text: `with walked as materialized (
                   select v.id, v.embedding <=> $1::vector(192) as distance
                     from voiceprints v join recordings r on r.id = v.recording_id
                    where ${mask === CHANNEL ? 'r.channel = any($2)' : 'r.account_ref = any($2)'}
                      and (v.identity_id is null or v.identity_id <> all($3::uuid[]))
                    order by v.embedding <=> $1::vector(192) limit ${K})
                 select id from walked order by distance`,
          values: [vectorText(queryVector(p, q)), mask === CHANNEL ? [ONE_PERCENT_CHANNEL] : accounts, staff],
        });
        await client.query('commit');
        return { ids: rows.map((r) => r.id) };
      },
      truthIds(p, truth, 0, mask),
    );
    log(`  raw iterative walk, filter ${label}: ${JSON.stringify(iterative)}`);
    out[label] = {
      matchingVoiceprints: Number(matching.rows[0]?.n ?? 0),
      searchVoices: product,
      rawIterativeWalkEf100: iterative,
    };
  }
  return out;
}

// ---- HTTP -----------------------------------------------------------------------------------

async function httpPhase(url: string, key: string, p: Population, truth: TopK, queries: number[]) {
  const { base, stop } = await startServer(url);
  try {
    const post = async (q: number): Promise<Answer & { ok: boolean }> => {
      const response = await fetch(`${base}/v1/voices/search`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: { embedding: Array.from(queryVector(p, q)) }, k: K }),
      });
      const body = (await response.json()) as { items?: { voiceprintId: string }[]; plan?: { method: string } };
      return { ok: response.ok, ids: (body.items ?? []).map((i) => i.voiceprintId), method: body.plan?.method };
    };
    let errors = 0;
    const oneClient = await measure(
      queries,
      async (q) => {
        const answer = await post(q);
        if (!answer.ok) errors++;
        return answer;
      },
      truthIds(p, truth, 0, ALL),
    );
    log(`  HTTP 1 client: ${JSON.stringify(oneClient)}, errors ${errors}`);
    const oneClientErrors = errors;
    // 16 clients, each a loop of requests over its share of the queries
    const sixteen = await measureConcurrent({
      clients: 16,
      requests: options.httpRequests,
      queries,
      run: post,
      truth: truthIds(p, truth, 0, ALL),
    });
    log(`  HTTP 16 clients: ${JSON.stringify(sixteen)}`);
    return { oneClient: { ...oneClient, errors: oneClientErrors }, sixteenClients: sixteen };
  } finally {
    await stop();
  }
}

// ---- index ----------------------------------------------------------------------------------

async function buildIndex(client: pg.Client, m: number | null, efConstruction: number | null) {
  await client.query('drop index if exists voiceprints_embedding_hnsw');
  await client.query('checkpoint');
  const started = performance.now();
  // m=16, ef_construction=64 are pgvector's defaults: the migration's index exactly
  await client.query(
    `create index voiceprints_embedding_hnsw on voiceprints using hnsw (embedding vector_cosine_ops)${
      m === null ? '' : ` with (m = ${m}, ef_construction = ${efConstruction})`
    }`,
  );
  const buildSeconds = seconds(started);
  const { rows } = await client.query<{ bytes: string }>(
    `select pg_relation_size('voiceprints_embedding_hnsw') as bytes`,
  );
  const prewarmStarted = performance.now();
  await client.query(`select pg_prewarm('voiceprints_embedding_hnsw'), pg_prewarm('voiceprints'),
                             pg_prewarm('recordings'), pg_prewarm('identities'),
                             pg_prewarm('recordings_pkey'), pg_prewarm('identities_pkey')`);
  const bytes = Number(rows[0]?.bytes ?? 0);
  return {
    m: m ?? 16,
    efConstruction: efConstruction ?? 64,
    buildSeconds,
    indexBytes: bytes,
    indexMiB: Math.round(bytes / 2 ** 20),
    prewarmSeconds: seconds(prewarmStarted),
    loadAverageAfter: load(),
  };
}

// ---- comparison engines ----------------------------------------------------------------------

/**
 * hnswlib-node on a worker thread, started once the truth is known and run alongside the
 * PostgreSQL phases (a serial run does not fit the time this machine is shared for): its build
 * time and latencies are taken while PostgreSQL works too, as the results say.
 */
function startHnswlib(p: Population, truth: TopK, queries: number[], efs: number[]) {
  const truthRows = new Int32Array(queries.length * K).fill(-1);
  for (const q of queries) {
    for (const [r, row] of truthOf(truth, q, ALL).entries()) truthRows[q * K + r] = row;
  }
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL('./support/hnswlib-worker.ts', import.meta.url), {
    workerData: {
      vectors: p.vectors,
      staff: p.voiceprintStaff,
      count: p.count,
      dimensions: p.dimensions,
      queries: p.queries.slice(0, queries.length * p.dimensions),
      truth: truthRows,
      k: K,
      efs,
      m: 16,
      efConstruction: 64,
      pause,
    },
  });
  const started = performance.now();
  let pausedMs = 0;
  let pausedAt: number | null = null;
  let built = false;
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    worker.on('message', (message: { log?: string; built?: number; result?: Record<string, unknown> }) => {
      if (message.log) log(message.log);
      if (message.built !== undefined) built = true;
      if (message.result) {
        resolve({
          ...message.result,
          buildWallSeconds: message.result.buildSeconds,
          pausedSeconds: Math.round(pausedMs / 100) / 10,
          buildSeconds: Math.round(((message.result.buildSeconds as number) - pausedMs / 1000) * 10) / 10,
          wallSeconds: seconds(started),
          note: 'built on a worker thread while PostgreSQL built its indexes and loaded LanceDB (same 2 cores); paused while any latency was measured; buildSeconds excludes the pauses',
        });
        void worker.terminate();
      }
    });
    worker.once('error', reject);
  });
  result.catch(() => {}); // awaited at the end; an early failure must not go unhandled meanwhile
  return {
    /** latencies are about to be measured: the build waits */
    pause() {
      if (built || pausedAt !== null) return;
      Atomics.store(pause, 0, 1);
      pausedAt = performance.now();
    },
    resume() {
      if (pausedAt === null) return;
      pausedMs += performance.now() - pausedAt;
      pausedAt = null;
      Atomics.store(pause, 0, 0);
      Atomics.notify(pause, 0);
    },
    /** resumes the build if paused, waits for it, runs the queries and returns the figures */
    async finish() {
      this.resume();
      while (!built) await new Promise((resolve) => setTimeout(resolve, 1000));
      worker.postMessage('sweep');
      return result;
    },
  };
}

async function lancePhase(
  p: Population,
  truth: TopK,
  queries: number[],
  hnswlib: { pause(): void; resume(): void } | null,
) {
  const started = performance.now();
  const table = await buildLance({
    dir: args['lance-dir'],
    vectors: p.vectors,
    staff: p.voiceprintStaff,
    count: p.count,
    dimensions: p.dimensions,
    index: 'ivf_flat',
    log,
  });
  const totalSeconds = seconds(started);
  hnswlib?.pause();
  log(`  lancedb: load ${table.loadSeconds.toFixed(0)} s, index ${table.indexSeconds.toFixed(0)} s`);
  const sweep: Record<string, Measured> = {};
  for (const nprobes of options.lanceNprobes) {
    sweep[`nprobes=${nprobes}`] = await measure(
      queries,
      async (q) => ({
        ids: (await table.search(queryVector(p, q), K, { nprobes })).map((i) => uuidAt(p.voiceprintIds, i)),
      }),
      truthIds(p, truth, 0, ALL),
    );
    const point = sweep[`nprobes=${nprobes}`] as Measured;
    log(`  lancedb nprobes=${nprobes}: ${JSON.stringify(point)}`);
    if (point.recallAt10 >= 0.995) break; // higher nprobes cannot find more
  }
  return {
    version: '0.31.0',
    index: 'IVF_FLAT (cosine, default partitions) + bitmap on staff, prefilter staff = false',
    loadSeconds: round3(table.loadSeconds),
    vectorIndexSeconds: round3(table.vectorIndexSeconds),
    indexSeconds: round3(table.indexSeconds),
    totalSeconds,
    bytes: table.bytes,
    sweep,
  };
}

// ---- run ------------------------------------------------------------------------------------

async function main() {
  const serverUrl = args.url;
  if (new URL(serverUrl).port === '5432' || new URL(serverUrl).port === '') {
    log('note: --url points at port 5432; the benchmark is meant for its own cluster (bench/support/pg-cluster.sh)');
  }
  const url = databaseUrl(serverUrl, DATABASE);
  const emptyUrl = databaseUrl(serverUrl, EMPTY_DATABASE);
  for (const name of [DATABASE, EMPTY_DATABASE]) {
    await adminQuery(serverUrl, `drop database if exists ${name} with (force)`);
    await adminQuery(serverUrl, `create database ${name}`);
  }
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
      note: 'shared 2-core machine: other work ran during this run; the load average is recorded per phase',
      calibrationMsBefore: await calibrationMs(),
      loadAverageAtStart: load(),
    };

    const steps = analysisSteps();
    const measureStore = !options.skip.has('store') && steps.length > 0;
    if (measureStore) {
      const empty = openPostgres(emptyUrl, { max: 1 });
      try {
        await migrateDatabase(empty);
        figures.storeAndAnalyse = {
          empty: await storeAndAnalyse(empty.db, { count: options.storeRecordings, seed: 11, firstPid: 1, steps }),
        };
        log(`store+analyse on an empty database: ${JSON.stringify(figures.storeAndAnalyse)}`);
      } finally {
        await empty.close();
      }
    } else {
      figures.storeAndAnalyse = { skipped: steps.length === 0 ? 'no analysis step registered' : '--skip store' };
    }

    log(`generating ${options.voiceprints.toLocaleString('en')} voiceprints…`);
    let started = performance.now();
    const p = generatePopulation({
      voiceprints: options.voiceprints,
      queries: options.queries,
      seed: options.seed,
      log,
    });
    const flags = eligibility(p);
    const generateSeconds = seconds(started);
    const staffVoiceprints = p.voiceprintStaff.reduce((s, x) => s + x, 0);
    figures.data = {
      voiceprints: p.count,
      recordings: p.recordings,
      speakers: p.speakers,
      staffSpeakers: p.staffQueryCount,
      staffVoiceprints,
      identities: p.identityKind.length,
      identitiesByKind: Object.fromEntries(
        ['customer', 'fraudster', 'staff'].map((k) => [k, p.identityKind.filter((x) => x === k).length]),
      ),
      voiceprintsInIdentities: p.voiceprintIdentity.reduce((s, x) => s + (x >= 0 ? 1 : 0), 0),
      channels: Object.fromEntries(CHANNELS.map((c) => [c.name, c.share])),
      oneTenthPercentAccounts: p.filterAccounts.length,
      queries: p.queryCount,
      staffVoicedQueries: p.staffQueryCount,
      generator: `createVoiceModel(${options.seed}).speakerEmbedding, unit length; 10 % noisy calls`,
      generateSeconds,
    };
    log(`generated in ${generateSeconds} s: ${JSON.stringify(figures.data)}`);

    log('exact ground truth…');
    const allQueries = new Float32Array(p.queries.length + p.staffQueries.length);
    allQueries.set(p.queries);
    allQueries.set(p.staffQueries, p.queries.length);
    started = performance.now();
    const truth = await exactTopK({
      vectors: p.vectors,
      flags,
      queries: allQueries,
      dimensions: p.dimensions,
      masks: MASKS,
      k: K,
      count: p.count,
      threads: 2,
    });
    figures.exactTruth = {
      seconds: seconds(started),
      threads: 2,
      queries: p.queryCount + p.staffQueryCount,
      lists: `${MASKS.length} per query (default, 1 % channel, 0.1 % accounts)`,
      how: 'in-process Float32Array dot products over every eligible voiceprint, worker_threads',
    };
    log(`truth in ${seconds(started)} s`);

    const queries = Array.from({ length: p.queryCount }, (_, q) => q);
    const staffQueries = Array.from({ length: p.staffQueryCount }, (_, q) => q);
    const hnswlib = options.skip.has('hnswlib') ? null : startHnswlib(p, truth, queries, options.efs);

    log('loading (binary COPY)…');
    figures.load = { ...(await loadPopulation(client, p)), note: 'outside the reported figures' };
    log(`loaded: ${JSON.stringify(figures.load)}`);
    started = performance.now();
    await refreshCalibration(database.db);
    figures.calibrationRefreshSeconds = seconds(started);
    const { key } = await createApiKey(database.db, { scope: 'read', name: 'bench voices-knn' }, CLI_ACTOR);
    save();

    // ---- m=16, ef_construction=64: the migration's index
    log('HNSW build m=16, ef_construction=64…');
    hnswlib?.resume();
    const small = await buildIndex(client, null, null);
    log(`  built: ${JSON.stringify(small)}`);
    const m16: Record<string, unknown> = { index: small };
    figures.hnswM16 = m16;
    save();
    hnswlib?.pause();
    m16.rawSql = await rawSweep(client, p, truth, queries, options.efs);
    m16.nearestNeighbours = await productKnnSweep(database, p, truth, queries, options.efs);
    m16.searchVoices = await productSearchSweep(database, p, truth, queries, options.efs);
    m16.defaultPlan = (
      await explainNearestNeighbours(database.db, speakerSpace, queryVector(p, 0), { k: K, filter: defaultFilter })
    ).explain;
    save();
    m16.staffVoicedQueries = await measure(
      staffQueries,
      async (q) => {
        const answer = await searchVoices(
          database.db,
          { query: { embedding: Array.from(queryVector(p, q, true)) }, k: K },
          CLI_ACTOR,
        );
        return { ids: answer.items.map((i) => i.voiceprintId), method: answer.plan.method };
      },
      truthIds(p, truth, p.queryCount, ALL),
      2,
    );
    log(`  staff-voiced queries: ${JSON.stringify(m16.staffVoicedQueries)}`);
    m16.filtered = await filteredSearches(database, client, p, truth, queries);
    save();
    const exactQueries = queries.slice(0, options.exactQueries);
    m16.exact = await measure(
      exactQueries,
      (q) => searchOnce(database, { query: { embedding: Array.from(queryVector(p, q)) }, k: K, exact: true }),
      truthIds(p, truth, 0, ALL),
      2,
    );
    log(`  exact: ${JSON.stringify(m16.exact)}`);
    save();
    if (!options.skip.has('http')) {
      m16.http = await httpPhase(url, key, p, truth, queries);
      save();
    }
    if (measureStore) {
      const at = await storeAndAnalyse(database.db, {
        count: options.storeRecordings,
        seed: 11,
        firstPid: 1,
        steps,
      });
      const store = figures.storeAndAnalyse as { empty: { meanMs: number } };
      figures.storeAndAnalyse = {
        ...store,
        atScale: at,
        ratio: round3(at.meanMs / store.empty.meanMs),
        target: '≤ 2',
      };
      log(`store+analyse at scale: ${JSON.stringify(figures.storeAndAnalyse)}`);
      save();
    }

    if (!options.skip.has('lancedb')) {
      log('LanceDB…');
      hnswlib?.resume();
      figures.lancedb = await lancePhase(p, truth, queries, hnswlib);
      figures.load = { ...(figures.load as object), loadAverageAfterLance: load() };
      save();
    }

    if (hnswlib) {
      log('waiting for hnswlib-node…');
      figures.hnswlib = await hnswlib.finish();
      save();
    }

    if (!options.skip.has('large')) {
      const [m, efc] = options.large;
      log(`HNSW build m=${m}, ef_construction=${efc}…`);
      const large = await buildIndex(client, m, efc);
      log(`  built: ${JSON.stringify(large)}`);
      const big: Record<string, unknown> = { index: large };
      figures[`hnswM${m}`] = big;
      save();
      big.rawSql = await rawSweep(client, p, truth, queries, options.efs);
      big.nearestNeighbours = await productKnnSweep(database, p, truth, queries, options.efs);
      big.searchVoices = await productSearchSweep(database, p, truth, queries, options.efs);
      save();
    }

    figures.cpu = { ...(figures.cpu as object), calibrationMsAfter: await calibrationMs(), loadAverageAtEnd: load() };
    figures.targets = evaluateTargets(figures, DEFAULT_EF_SEARCH);
    figures.complete = true;
    summary = summarise(options.voiceprints);
    save();
    log(`done in ${seconds(runStarted)} s`);
  } finally {
    await client.end();
    await database.close();
    if (!args.keep) {
      for (const name of [DATABASE, EMPTY_DATABASE]) {
        await adminQuery(serverUrl, `drop database if exists ${name} with (force)`).catch(() => {});
      }
      fs.rmSync(args['lance-dir'], { recursive: true, force: true });
    }
  }
}

function summarise(voiceprints: number): string {
  const t = figures.targets as ReturnType<typeof evaluateTargets>;
  const m16 = figures.hnswM16 as { index: { buildSeconds: number; indexMiB: number } };
  const point = t.searchVoicesAtRecall097 as { efSearch?: string; p50Ms?: number; p99Ms?: number; recallAt10?: number };
  const larger = Object.entries(t.largerIndexes).map(([key, judged]) => {
    const build = (figures[key] as { index: { buildSeconds: number; indexMiB: number } }).index;
    const at = judged.searchVoicesAtRecall097 as { efSearch?: string; p50Ms?: number; recallAt10?: number };
    return `${judged.index} build ${build.buildSeconds} s, ${build.indexMiB} MiB${
      at.efSearch ? `, searchVoices ef_search ${at.efSearch}: p50 ${at.p50Ms} ms, recall@10 ${at.recallAt10}` : ''
    }`;
  });
  return [
    `${voiceprints.toLocaleString('en')} voiceprints: HNSW m=16 build ${m16.index.buildSeconds} s, ${m16.index.indexMiB} MiB`,
    point.efSearch
      ? `searchVoices ef_search ${point.efSearch}: p50 ${point.p50Ms} ms, p99 ${point.p99Ms} ms, recall@10 ${point.recallAt10}`
      : `recall@10 0.97 not reached (best ${t.bestSearchVoices.recallAt10} at ef_search ${t.bestSearchVoices.efSearch}, p50 ${t.bestSearchVoices.p50Ms} ms)`,
    ...larger,
    t.lanceRatio === null ? null : `÷ LanceDB p50 at equal recall ${t.lanceRatio}`,
    t.filteredOnePercent ? `1 % filter recall ${t.filteredOnePercent.recallAt10}` : null,
    t.http ? `HTTP 1 client p50 ${t.http.oneClientP50Ms} ms (${t.http.ratio}× the query)` : null,
  ]
    .filter(Boolean)
    .join('; ');
}

/** Judges the recorded figures again; the run's own date, command, machine and measurements stay. */
function rejudge() {
  const file = path.join(benchDir, 'results', 'voices-knn.json');
  const recorded = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    date: string;
    command: string;
    machine: unknown;
    figures: Record<string, unknown>;
  };
  if (!recorded.figures.complete) fail(`${file} holds an incomplete run: nothing to judge`);
  Object.assign(figures, recorded.figures);
  figures.targets = evaluateTargets(figures, DEFAULT_EF_SEARCH);
  const data = figures.data as { voiceprints: number };
  recordResult(benchDir, {
    name: 'voices-knn',
    date: recorded.date,
    command: recorded.command,
    machine: recorded.machine,
    figures,
    summary: summarise(data.voiceprints),
  });
  log(`targets judged again: ${JSON.stringify(figures.targets)}`);
}

if (args.rejudge) rejudge();
else await main();
