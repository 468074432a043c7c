/**
 * Spoof clusters at scale, in a database of their own: batch `recluster spoofs` over N spoofed
 * utterances, the near-miss look-back's scan over B stored bonafide utterances, and the online
 * step's cost per utterance once the clusters exist.
 *
 *   node bench/spoofs-batch.ts [--spoofed 200000] [--bonafide 200000] [--families 40] [--assign 200] [--seed 3]
 *                              [--index-with m=32,ef_construction=128]
 *
 * The corpus (in memory, seeded): F generator families, each a random direction in 768-d with its
 * own spread (noise energy 0.06–0.22 of the signal: members at ≈ 0.82–0.95 to each other), sizes
 * skewed (the largest ten times the smallest); calls of 1–6 utterances, one family per spoofed
 * call; 1.5 % of the spoofed-labelled utterances are false alarms (random directions), and the
 * bonafide speech is random directions with 2 % of it spoofs the upstream missed (labelled
 * bonafide). Loaded with binary COPY after the product's migrations (the trigger copies the spoofed
 * ones into spoofed_utterances), the HNSW index built after the load; generation, loading, the
 * index build and VACUUM ANALYZE stay outside the timed figures. `--index-with` builds the spoof index
 * with other HNSW parameters than the migration's (bench/spoofs-knn.ts takes the same option).
 *
 * Timed: `reclusterSpoofs` from nothing (every utterance noise) and again on its own result (ids
 * must not move); the look-back's candidate scan (`lookBackCandidates`) for one cluster and for
 * every cluster; then A new spoofed calls of known families analysed by the `spoofs.clusters`
 * step one at a time (per-utterance cost). Scored against the corpus's truth: pairwise precision /
 * recall / F1 of the batch clusters over the spoofed-labelled utterances (noise counted as
 * singletons), false alarms clustered. Peak RSS of this process.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_SPOOF_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { createLogger } from '../src/log.ts';
import { lookBackCandidates } from '../src/spoofs/clusters/queries.ts';
import { reclusterSpoofs } from '../src/spoofs/clusters/recluster.ts';
import { spoofClusterStep } from '../src/spoofs/clusters/step.ts';
import { BinaryRows, copyBinary } from './support/copy-binary.ts';
import { withBenchDatabase } from './support/database.ts';
import { parseIndexWith, withIndexOptions } from './support/hnsw-options.ts';
import { latencySummary, round3 } from './support/latency.ts';
import { describeMachine } from './support/machine.ts';
import { recordResult } from './support/results.ts';

const DIMS = 768;
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    spoofed: { type: 'string', default: '200000' },
    bonafide: { type: 'string', default: '200000' },
    families: { type: 'string', default: '40' },
    assign: { type: 'string', default: '200' },
    seed: { type: 'string', default: '3' },
    'index-with': { type: 'string', default: '' },
  },
});
const fail = (message: string): never => {
  process.stderr.write(`bench/spoofs-batch: ${message}\n`);
  process.exit(1);
};
const whole = (name: string, value: string | undefined, min: number) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be a whole number ≥ ${min} (got ${value})`);
  return n;
};
const options = {
  spoofed: whole('spoofed', values.spoofed, 1000),
  bonafide: whole('bonafide', values.bonafide, 1000),
  families: whole('families', values.families, 2),
  assign: whole('assign', values.assign, 10),
  seed: whole('seed', values.seed, 0),
  indexWith: parseIndexWith(values['index-with'], fail),
};
const progress = (line: string) => process.stderr.write(`spoofs-batch: ${line}\n`);

/** sfc32 (period ≥ 2³², ~2¹²⁷ in practice) with Box–Muller: deterministic per seed, fast enough for 300M draws. */
function generator(seed: number) {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 20; i++) next();
  let spare: number | null = null;
  const gaussian = () => {
    if (spare !== null) {
      const value = spare;
      spare = null;
      return value;
    }
    const u = Math.max(next(), 1e-12);
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return { next, gaussian };
}

const random = generator(options.seed);
const unitInto = (out: Float32Array, offset: number, values: Float64Array) => {
  let norm = 0;
  for (const v of values) norm += v * v;
  norm = Math.sqrt(norm);
  for (let d = 0; d < DIMS; d++) out[offset + d] = Math.fround((values[d] as number) / norm);
};
const scratch = new Float64Array(DIMS);
function direction(): Float64Array {
  const v = new Float64Array(DIMS);
  let norm = 0;
  for (let d = 0; d < DIMS; d++) {
    v[d] = random.gaussian();
    norm += (v[d] as number) ** 2;
  }
  norm = Math.sqrt(norm);
  for (let d = 0; d < DIMS; d++) v[d] = (v[d] as number) / norm;
  return v;
}
const families = Array.from({ length: options.families }, (_, f) => ({
  centre: direction(),
  noise: 0.06 + (0.16 * f) / Math.max(1, options.families - 1),
  weight: 1 + (9 * ((f * 7) % options.families)) / options.families,
}));
const totalWeight = families.reduce((sum, f) => sum + f.weight, 0);
function member(family: number, out: Float32Array, offset: number) {
  const f = families[family] as (typeof families)[number];
  const scale = Math.sqrt(f.noise / DIMS);
  for (let d = 0; d < DIMS; d++) scratch[d] = (f.centre[d] as number) + scale * random.gaussian();
  unitInto(out, offset, scratch);
}
function genuine(out: Float32Array, offset: number) {
  for (let d = 0; d < DIMS; d++) scratch[d] = random.gaussian();
  unitInto(out, offset, scratch);
}
function pickFamily(): number {
  let r = random.next() * totalWeight;
  for (const [i, f] of families.entries()) {
    r -= f.weight;
    if (r <= 0) return i;
  }
  return families.length - 1;
}

type Utterance = { recording: number; family: number; label: 'spoofed' | 'bonafide'; p: number };

/** Calls of 1–6 utterances until the counts are reached: spoofed calls (one family) and genuine ones. */
function corpus(spoofed: number, bonafide: number) {
  const utterances: Utterance[] = [];
  let recordings = 0;
  let spoofedLeft = spoofed;
  let bonafideLeft = bonafide;
  while (spoofedLeft > 0 || bonafideLeft > 0) {
    const size = 1 + Math.floor(random.next() * 6);
    const recording = recordings++;
    if (spoofedLeft > 0 && (bonafideLeft === 0 || random.next() < spoofed / (spoofed + bonafide))) {
      const family = pickFamily();
      for (let u = 0; u < size && spoofedLeft > 0; u++, spoofedLeft--) {
        // 1.5 % of the spoofed-labelled speech is a false alarm: genuine, not the family's
        const falseAlarm = random.next() < 0.015;
        utterances.push({
          recording,
          family: falseAlarm ? -1 : family,
          label: 'spoofed',
          p: 0.9 + 0.0999 * random.next(),
        });
      }
    } else {
      const missedFamily = pickFamily();
      for (let u = 0; u < size && bonafideLeft > 0; u++, bonafideLeft--) {
        const missed = random.next() < 0.02;
        utterances.push({ recording, family: missed ? missedFamily : -1, label: 'bonafide', p: 0.1 * random.next() });
      }
    }
  }
  return { utterances, recordings };
}

const generationStarted = performance.now();
const { utterances, recordings } = corpus(options.spoofed, options.bonafide);
const embeddings = new Float32Array(utterances.length * DIMS);
for (const [i, u] of utterances.entries()) {
  if (u.family >= 0) member(u.family, embeddings, i * DIMS);
  else genuine(embeddings, i * DIMS);
  for (let d = 0; d < DIMS; d++) embeddings[i * DIMS + d] = Math.f16round(embeddings[i * DIMS + d] as number);
}
const recordingIds = Array.from({ length: recordings }, () => randomUUID());
const utteranceIds = utterances.map(() => randomUUID());
const generationS = round3((performance.now() - generationStarted) / 1000);
progress(`generated ${utterances.length} utterances on ${recordings} recordings in ${generationS} s`);

const uuidBytes = (id: string) => Buffer.from(id.replaceAll('-', ''), 'hex');

async function load(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // the migration's definition, rebuilt after the COPY (or with other parameters, --index-with)
    const { rows: defined } = await client.query<{ def: string | null }>(
      `select pg_get_indexdef(to_regclass('spoofed_utterances_embedding_hnsw')) as def`,
    );
    const migrationDefinition = defined[0]?.def ?? fail('the migrations created no spoofed_utterances_embedding_hnsw');
    const indexDefinition = withIndexOptions(migrationDefinition, options.indexWith);
    await client.query('drop index spoofed_utterances_embedding_hnsw');
    const start = Date.UTC(2026, 0, 1);
    const recordingRows = function* () {
      const rows = new BinaryRows();
      for (let r = 0; r < recordings; r++) {
        rows.row(6);
        rows.uuid(uuidBytes(recordingIds[r] as string), 0);
        rows.text('import');
        rows.text(`acct-${r % 50_000}`);
        rows.text(['ivr', 'phone', 'branch', 'app'][r % 4] as string);
        rows.timestamptz(start + Math.floor((r / recordings) * 60 * 86_400_000));
        rows.text('complete');
        const chunk = rows.take();
        if (chunk) yield chunk;
      }
      const last = rows.take(true);
      if (last) yield last;
    };
    await copyBinary(
      client,
      'recordings',
      ['id', 'source', 'account_ref', 'channel', 'call_at', 'status'],
      recordingRows(),
    );
    const utteranceRows = function* () {
      const rows = new BinaryRows();
      for (const [i, u] of utterances.entries()) {
        rows.row(8);
        rows.uuid(uuidBytes(utteranceIds[i] as string), 0);
        rows.uuid(uuidBytes(recordingIds[u.recording] as string), 0);
        rows.text(String(i));
        rows.float8((i % 6) * 5);
        rows.float8((i % 6) * 5 + 4);
        rows.text(u.label);
        rows.float8(u.p);
        rows.halfvec(embeddings, i * DIMS, DIMS);
        const chunk = rows.take();
        if (chunk) yield chunk;
      }
      const last = rows.take(true);
      if (last) yield last;
    };
    await copyBinary(
      client,
      'utterances',
      ['id', 'recording_id', 'upstream_id', 'start_s', 'end_s', 'deepfake_label', 'p_spoofed', 'deepfake_embedding'],
      utteranceRows(),
    );
    progress('loaded; building the HNSW index');
    const built = performance.now();
    await client.query(`set maintenance_work_mem = '2GB'`);
    // the trigger filled spoofed_utterances during the COPY
    await client.query(indexDefinition);
    const indexBuildS = round3((performance.now() - built) / 1000);
    await client.query('vacuum analyze recordings');
    await client.query('vacuum analyze utterances');
    await client.query('vacuum analyze spoofed_utterances');
    return { indexBuildS, indexDefinition };
  } finally {
    await client.end();
  }
}

/** Pairwise precision / recall / F1 of clusters (noise as singletons) against the families, over spoofed-labelled utterances. */
function pairwise(predicted: (string | null)[], truth: number[]) {
  const pairs = (counts: Map<string, number>) => [...counts.values()].reduce((sum, n) => sum + (n * (n - 1)) / 2, 0);
  const byPredicted = new Map<string, number>();
  const byTruth = new Map<string, number>();
  const byBoth = new Map<string, number>();
  predicted.forEach((p, i) => {
    const t = truth[i] as number;
    const pk = p ?? `noise-${i}`;
    const tk = t >= 0 ? `f${t}` : `alarm-${i}`;
    byPredicted.set(pk, (byPredicted.get(pk) ?? 0) + 1);
    byTruth.set(tk, (byTruth.get(tk) ?? 0) + 1);
    byBoth.set(`${pk}|${tk}`, (byBoth.get(`${pk}|${tk}`) ?? 0) + 1);
  });
  const both = pairs(byBoth);
  const precision = both / pairs(byPredicted) || 0;
  const recall = both / pairs(byTruth) || 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision: round3(precision), recall: round3(recall), f1: round3(f1) };
}

const figures = await withBenchDatabase('postgres', 'voxtrace_bench_spoofs_batch', async (database, url) => {
  const loadStarted = performance.now();
  const { indexBuildS, indexDefinition } = await load(url as string);
  const setup = {
    generationS,
    loadAndIndexS: round3((performance.now() - loadStarted) / 1000),
    indexBuildS,
    index: indexDefinition,
    indexWith: options.indexWith ?? 'the migration’s',
  };
  progress(`setup: ${JSON.stringify(setup)}`);

  const lines: { at: number; line: string }[] = [];
  const started = performance.now();
  const first = await reclusterSpoofs(database.db, DEFAULT_SPOOF_SETTINGS, CLI_ACTOR, (line) => {
    lines.push({ at: round3((performance.now() - started) / 1000), line });
    progress(line);
  });
  progress(`recluster from nothing: ${first.ms} ms, ${first.clusters} clusters`);
  const second = await reclusterSpoofs(database.db, DEFAULT_SPOOF_SETTINGS, CLI_ACTOR);
  progress(`recluster again: ${second.ms} ms, ${second.created.length} created, ${second.retired.length} retired`);

  const placed = await queryRows<{ id: string; cluster: string | null }>(
    database.db,
    sql`select id, spoof_cluster_id as cluster from utterances where deepfake_label = 'spoofed'`,
  );
  const index = new Map<string, number>(utteranceIds.map((id, i) => [id, i]));
  const truth = placed.map((p) => (utterances[index.get(p.id) as number] as Utterance).family);
  const quality = pairwise(
    placed.map((p) => p.cluster),
    truth,
  );
  const falseAlarms = placed.filter((_, i) => truth[i] === -1);

  const clusters = await queryRows<{ id: string; size: number }>(
    database.db,
    sql`select id, size from spoof_clusters where status = 'active' order by size desc`,
  );
  const timeScan = async (ids: string[] | 'all') => {
    const t = performance.now();
    const found = await lookBackCandidates(database.db, ids);
    return { ms: round3(performance.now() - t), candidates: found.length };
  };
  const biggest = clusters[0]?.id as string;
  const lookBack = {
    bonafideUtterances: options.bonafide,
    oneCluster: [await timeScan([biggest]), await timeScan([biggest])],
    everyCluster: await timeScan('all'),
    clusters: clusters.length,
  };
  progress(`look-back scans: ${JSON.stringify(lookBack)}`);

  // the online step on new calls of known families, one call at a time
  const step = spoofClusterStep(DEFAULT_SPOOF_SETTINGS);
  const log = createLogger('silent');
  const perCall: number[] = [];
  let assigned = 0;
  let spoofedAssigned = 0;
  for (let c = 0; c < options.assign; c++) {
    const recordingId = randomUUID();
    const family = pickFamily();
    const size = 1 + Math.floor(random.next() * 6);
    const vector = new Float32Array(DIMS);
    await database.db.execute(
      sql`insert into recordings (id, source, account_ref, channel, call_at, status)
          values (${recordingId}, 'import', ${`acct-new-${c}`}, 'ivr', now(), 'complete')`,
    );
    for (let u = 0; u < size; u++) {
      member(family, vector, 0);
      await database.db.execute(
        sql`insert into utterances (recording_id, upstream_id, start_s, end_s, deepfake_label, p_spoofed, deepfake_embedding)
            values (${recordingId}, ${String(u)}, ${u * 5}, ${u * 5 + 4}, 'spoofed', 0.999, ${`[${Array.from(vector).join(',')}]`}::halfvec)`,
      );
    }
    const t = performance.now();
    await database.db.transaction(async (tx) =>
      step.run({ tx, event: { id: `bench-${c}`, recordingId, kind: 'stored', stepsDone: [], attempts: 1 }, log }),
    );
    perCall.push((performance.now() - t) / size);
    spoofedAssigned += size;
    const [joined] = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from utterances where recording_id = ${recordingId} and spoof_cluster_id is not null`,
    );
    assigned += joined?.n ?? 0;
  }
  const online = {
    calls: options.assign,
    utterances: spoofedAssigned,
    joinedACluster: round3(assigned / spoofedAssigned),
    msPerUtterance: latencySummary(perCall.sort((a, b) => a - b)),
  };
  progress(`online: ${JSON.stringify(online)}`);

  return {
    corpus: {
      spoofedLabelled: placed.length,
      falseAlarms: falseAlarms.length,
      bonafide: options.bonafide,
      families: options.families,
      recordings,
    },
    setup,
    recluster: {
      fromNothing: {
        ms: first.ms,
        clusters: first.clusters,
        created: first.created.length,
        moved: first.moved,
        nearMisses: first.nearMisses,
        progress: lines,
      },
      again: {
        ms: second.ms,
        created: second.created.length,
        retired: second.retired.length,
        merged: second.merged.length,
        moved: second.moved,
        unchanged: second.unchanged,
      },
      pairwise: quality,
      falseAlarmsClustered: falseAlarms.filter((p) => p.cluster).length,
    },
    lookBack,
    online,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    machine: await describeMachine(database),
  };
});

const { machine, ...reported } = figures;
const target = {
  reclusterUnder10Min: reported.recluster.fromNothing.ms <= 600_000,
  onlineP50Under5Ms: reported.online.msPerUtterance.p50Ms <= 5,
};
const command = `node bench/spoofs-batch.ts --spoofed ${options.spoofed} --bonafide ${options.bonafide} --families ${options.families} --assign ${options.assign} --seed ${options.seed}${values['index-with'] ? ` --index-with ${values['index-with']}` : ''}`;
recordResult(import.meta.dirname, {
  name: 'spoofs-batch',
  command,
  machine,
  figures: { ...reported, targets: target },
  summary:
    `recluster ${options.spoofed} spoofed in ${(reported.recluster.fromNothing.ms / 1000).toFixed(0)} s (again: ${(reported.recluster.again.ms / 1000).toFixed(0)} s, ${reported.recluster.again.created} created), ` +
    `pairwise F1 ${reported.recluster.pairwise.f1}; look-back scan of ${options.bonafide} bonafide ${reported.lookBack.oneCluster[1]?.ms} ms; ` +
    `online ${reported.online.msPerUtterance.p50Ms} ms p50 per utterance`,
});
progress('done');
