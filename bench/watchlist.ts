/**
 * The fraudster watchlist at scale: the look-back over history when a voice is listed, and the
 * analysis step's check of each newly stored recording against every listed voice, on native
 * PostgreSQL + pgvector.
 *
 *   bash bench/support/pg-cluster.sh start            # the bench-owned cluster (port 5544)
 *   node bench/watchlist.ts [--voiceprints N] [--entries E] [--levels a,b] [--checks C] [--hits H]
 *                           [--seed K] [--url URL] [--skip look-back,check] [--keep] [--reuse]
 *
 * N voiceprints (default 1,000,000) of the synthetic voice model (bench/support/voice-population.ts:
 * customers with 1–30 calls, fraudsters, staff, identities for a share of them with their centroids
 * and member counts), on ~N recordings with accounts, channels and call times.
 *
 * Outside the reported figures: generating the data; loading it (binary COPY into recordings,
 * identities, voiceprints after the product's migrations, the voiceprints HNSW index dropped); the
 * identities' centroids; VACUUM ANALYZE; the HNSW build (the migration's index, m=16,
 * ef_construction=64: its time is reported as context); the calibration (`refreshCalibration`),
 * whose similarity at VOXTRACE_WATCHLIST_FAR (0.001) is the threshold of both operations.
 *
 * Timed, in this order:
 * - the look-back (`addToWatchlist`, POST /v1/watchlist's service) of 20 voiceprint entries: for
 *   identities of about 1, 5, 20 and 30 voiceprints, 3 fraudsters' voiceprints (their identity is
 *   listed) and 2 voiceprints of customers in no identity (listed as a new fraudster identity of
 *   one), each in a transaction rolled back afterwards. Seconds, the look-back's `checked` and
 *   `hits`, and the recall of its hits against the exact truth computed in-process from the
 *   generated vectors: every recording of a member voiceprint and every recording holding a
 *   voiceprint at a similarity ≥ the threshold to a member, but the entry's own recording; each
 *   truth split into the voice's own recordings and other people's (false matches at that
 *   threshold). For a fraudster, the look-back's pass over voiceprints is run again under EXPLAIN
 *   ANALYZE: its execution time and the parallel workers it had. Then 4 more fraudsters (one per
 *   size), each timed alone and again while another connection holds an uncommitted store of a new
 *   call of that voice (a row the look-back's snapshot cannot see);
 * - the check (`watchlistStep(...).run({ tx, event, log })`, src/voices/watchlist/step.ts) at 0,
 *   100, E (default 1,000) and 10,000 live watchlist entries (`--levels`), each entry a `fraudster`
 *   identity of 1–10 voiceprints (the population's fraudsters first, then customer identities
 *   relabelled): per level, C (default 300) fresh recordings of callers never heard before and H
 *   (default 100) fresh calls of listed voices, shuffled. Each is stored (a recordings row and its
 *   caller voiceprint) in a transaction, untimed; the step runs in that transaction, timed; the
 *   transaction is rolled back. Reported per kind of caller and per outcome (alert raised or not),
 *   with the plan of the step's comparison query and, on 50 more strangers, the time of its two
 *   parts (`lockWatchlist`, `recordingMatches`).
 *
 * PostgreSQL: `--url` (default postgres://postgres@127.0.0.1:5544/postgres, the cluster of
 * bench/support/pg-cluster.sh); the benchmark creates voxtrace_bench_watchlist there (with `_<N>`
 * appended when N is not 1,000,000) and drops it at the end, unless `--keep`. `--reuse` takes the
 * database a `--keep` run of the same N and seed left: the data are generated again (identically,
 * ids included) for the truth and loading is skipped; `--skip look-back` then reruns the check in
 * minutes. Results are written after each phase (`complete: false` until the end) to
 * bench/results/watchlist.json and the watchlist line of bench/README.md; a run with `--skip`
 * prints its figures on stdout instead and records nothing. The results name the product's commit.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { type Db, openPostgres, queryRows } from '../src/db/client.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { createLogger } from '../src/log.ts';
import { createVoiceModel, randomStream } from '../src/standin/voices.ts';
import { currentCalibration, refreshCalibration } from '../src/voices/calibration.ts';
import {
  lockWatchlist,
  memberEmbeddings,
  recordingMatches,
  watchlistMatchesQuery,
  withinReachOfIdentityQuery,
} from '../src/voices/watchlist/queries.ts';
import { watchlistStep } from '../src/voices/watchlist/step.ts';
import { addToWatchlist } from '../src/voices/watchlist/watchlist.ts';
import { adminQuery, databaseUrl } from '../test/support/postgres.ts';
import { BinaryRows, copyBinary } from './support/copy-binary.ts';
import { latencySummary, round3 } from './support/latency.ts';
import { benchmarkSettings, calibrationMs, describeMachine } from './support/machine.ts';
import { recordResult } from './support/results.ts';
import { accountRef, CHANNELS, generatePopulation, type Population, uuidAt } from './support/voice-population.ts';

const benchDir = import.meta.dirname;
/** Bumped when what the loaded database holds changes: a kept database of another version is not reused. */
const DATA_VERSION = 1;
const CHECK_TARGET_MS = 5;
const LOOK_BACK_TARGET_S = 5;
const LOOK_BACK_SIZES = [1, 5, 20, 30];
const LISTED_MEMBERS = { min: 1, max: 10 };
const NOISY_SHARE = 0.1;

const { values: args } = parseArgs({
  options: {
    voiceprints: { type: 'string', default: '1000000' },
    entries: { type: 'string', default: '1000' },
    levels: { type: 'string', default: '0,100,10000' },
    checks: { type: 'string', default: '300' },
    hits: { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5544/postgres' },
    skip: { type: 'string', default: '' },
    keep: { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
  },
});
const whole = (flag: string, text: string, min = 1) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) fail(`--${flag} must be a whole number ≥ ${min}, got "${text}"`);
  return n;
};
const options = {
  voiceprints: whole('voiceprints', args.voiceprints, 1000),
  entries: whole('entries', args.entries),
  levels: args.levels
    .split(',')
    .filter(Boolean)
    .map((l) => whole('levels', l, 0)),
  checks: whole('checks', args.checks),
  hits: whole('hits', args.hits),
  seed: whole('seed', args.seed),
  skip: new Set(args.skip.split(',').filter(Boolean)),
};
for (const phase of options.skip)
  if (phase !== 'look-back' && phase !== 'check') fail(`--skip: unknown phase "${phase}"`);
/** One database per size, so that a small run leaves a kept full-size one alone. */
const DATABASE =
  options.voiceprints === 1_000_000 ? 'voxtrace_bench_watchlist' : `voxtrace_bench_watchlist_${options.voiceprints}`;
const levels = [...new Set([...options.levels, options.entries])].sort((a, b) => a - b);
const command = `node bench/watchlist.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`;

function fail(message: string): never {
  console.error(`bench/watchlist: ${message}`);
  process.exit(1);
}

const runStarted = performance.now();
const log = (line: string) =>
  console.error(`[${((performance.now() - runStarted) / 1000).toFixed(0).padStart(5)} s] ${line}`);
const seconds = (since: number) => Math.round((performance.now() - since) / 100) / 10;
const load = () => os.loadavg().map((l) => Math.round(l * 100) / 100);
const silent = createLogger('silent');
const settings = DEFAULT_VOICE_SETTINGS;

const figures: Record<string, unknown> = { complete: false };
let machine: unknown = null;
let summary = 'incomplete run';

/** The product code measured: its commit, and any uncommitted change to src/ or migrations/ at the start. */
function codeVersion() {
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', path.join(benchDir, '..'), ...args], { encoding: 'utf8' }).trim();
  try {
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      uncommitted: git('status', '--porcelain', '--', 'src', 'migrations').split('\n').filter(Boolean),
    };
  } catch {
    return null;
  }
}

/** A run with `--skip` is partial: it prints its figures and leaves the recorded results alone. */
function save() {
  if (options.skip.size > 0) return;
  recordResult(benchDir, { name: 'watchlist', command, machine, figures, summary });
}

/**
 * Other processes busy on this shared machine (ps: CPU share over each one's lifetime, ≥ 10 %),
 * but this benchmark and its own database's backends.
 */
function othersBusy(): string[] {
  try {
    return execFileSync('ps', ['-eo', 'pid=,pcpu=,args=', '--sort=-pcpu'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim().match(/^(\d+)\s+([\d.]+)\s+(.*)$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .filter((m) => Number(m[1]) !== process.pid && Number(m[2]) >= 10)
      .filter((m) => !(m[3] as string).includes(DATABASE) && !(m[3] as string).startsWith('ps '))
      .map((m) => `${m[2]} % ${(m[3] as string).slice(0, 100)}`);
  } catch {
    return [];
  }
}

// ---- data -----------------------------------------------------------------------------------

/**
 * uuids from a seeded stream (version 4 bits set): the population's own are random per run, and a
 * kept database is only reusable when the same data get the same ids again.
 */
function seededIds(count: number, label: string): Uint8Array {
  const random = randomStream(options.seed, 'bench-watchlist-ids', label);
  const ids = new Uint8Array(count * 16);
  const view = new DataView(ids.buffer);
  for (let i = 0; i < count * 4; i++) view.setUint32(i * 4, Math.floor(random.uniform() * 2 ** 32));
  for (let i = 0; i < count; i++) {
    ids[i * 16 + 6] = ((ids[i * 16 + 6] as number) & 0x0f) | 0x40;
    ids[i * 16 + 8] = ((ids[i * 16 + 8] as number) & 0x3f) | 0x80;
  }
  return ids;
}

/** What the benchmark reads of the population besides its arrays. */
type Index = {
  /** voiceprints of each identity */
  members: number[][];
  /** voiceprints of each customer speaker */
  speakerVoiceprints: number[][];
};

function indexPopulation(p: Population): Index {
  const members: number[][] = p.identityKind.map(() => []);
  const speakerVoiceprints: number[][] = Array.from({ length: p.speakers }, () => []);
  for (let v = 0; v < p.count; v++) {
    const identity = p.voiceprintIdentity[v] as number;
    if (identity >= 0) members[identity]?.push(v);
    const speaker = p.voiceprintSpeaker[v] as number;
    if (speaker >= 0) speakerVoiceprints[speaker]?.push(v);
  }
  return { members, speakerVoiceprints };
}

const speakerName = (speaker: number) => (speaker >= 0 ? `speaker-${speaker}` : `staff-${-1 - speaker}`);
const vectorText = (v: ArrayLike<number>) => `[${Array.from(v).join(',')}]`;

function unit(values: number[]): number[] {
  const norm = Math.sqrt(values.reduce((s, x) => s + x * x, 0));
  return values.map((x) => x / norm);
}

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
  // centroids and member counts as membership changes keep them; the centroid index rebuilt after
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

/** The migration's index (pgvector's defaults m=16, ef_construction=64), then everything prewarmed. */
async function buildIndex(client: pg.Client) {
  await client.query('drop index if exists voiceprints_embedding_hnsw');
  await client.query('checkpoint');
  const loadBefore = load();
  const started = performance.now();
  await client.query('create index voiceprints_embedding_hnsw on voiceprints using hnsw (embedding vector_cosine_ops)');
  const buildSeconds = seconds(started);
  const { rows } = await client.query<{ bytes: string }>(
    `select pg_relation_size('voiceprints_embedding_hnsw') as bytes`,
  );
  const bytes = Number(rows[0]?.bytes ?? 0);
  return {
    m: 16,
    efConstruction: 64,
    buildSeconds,
    indexMiB: Math.round(bytes / 2 ** 20),
    loadAverageBefore: loadBefore,
    loadAverageAfter: load(),
  };
}

async function prewarm(client: pg.Client) {
  const started = performance.now();
  await client.query(`select pg_prewarm('voiceprints_embedding_hnsw'), pg_prewarm('voiceprints'),
                             pg_prewarm('recordings'), pg_prewarm('identities'), pg_prewarm('voiceprints_pkey'),
                             pg_prewarm('voiceprints_identity_idx'), pg_prewarm('voiceprints_recording_speaker_key'),
                             pg_prewarm('recordings_pkey'), pg_prewarm('identities_pkey')`);
  return seconds(started);
}

/** The customer identities back to their loaded kind and account (the check relabels some). */
async function restoreIdentities(client: pg.Client, p: Population) {
  const ids: string[] = [];
  const accounts: string[] = [];
  for (let i = 0; i < p.identityKind.length; i++) {
    if (p.identityKind[i] !== 'customer') continue;
    ids.push(uuidAt(p.identityIds, i));
    accounts.push(accountRef(p.identityAccount[i] as number));
  }
  await client.query('delete from listed_voiceprints');
  await client.query('delete from watchlist_entries');
  await client.query('delete from alerts');
  await client.query(
    `update identities i set kind = 'customer', account_ref = x.account
       from unnest($1::uuid[], $2::text[]) as x(id, account)
      where i.id = x.id and (i.kind <> 'customer' or i.account_ref is distinct from x.account)`,
    [ids, accounts],
  );
  await client.query('vacuum analyze identities, watchlist_entries, listed_voiceprints, alerts');
}

// ---- rolled-back transactions ---------------------------------------------------------------

class Undo<T> extends Error {
  readonly value: T;
  constructor(value: T) {
    super('rolled back on purpose');
    this.value = value;
  }
}

/** Runs `fn` in a transaction and rolls it back, returning what `fn` returned. */
async function rolledBack<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  try {
    await db.transaction(async (tx) => {
      throw new Undo(await fn(tx as unknown as Db));
    });
  } catch (error) {
    if (error instanceof Undo) return error.value as T;
    throw error;
  }
  throw new Error('unreachable: the transaction always rolls back');
}

// ---- the check ------------------------------------------------------------------------------

type Listed = { identity: number; id: string; members: number; firstVoiceprint: number };

/**
 * The identities the check lists, in order (level L lists the first L): fraudster identities of
 * 1–10 voiceprints, then customer identities of as many (relabelled fraudster when listed), each
 * group in a seeded random order; never one of the look-back's voices.
 */
function watchlistCandidates(p: Population, index: Index, exclude: Set<number>): Listed[] {
  const random = randomStream(options.seed, 'bench-watchlist-candidates');
  const of = (kind: string) => {
    const found: Listed[] = [];
    for (let i = 0; i < p.identityKind.length; i++) {
      const members = index.members[i] as number[];
      if (p.identityKind[i] !== kind || exclude.has(i)) continue;
      if (members.length < LISTED_MEMBERS.min || members.length > LISTED_MEMBERS.max) continue;
      found.push({
        identity: i,
        id: uuidAt(p.identityIds, i),
        members: members.length,
        firstVoiceprint: members[0] as number,
      });
    }
    for (let i = found.length - 1; i > 0; i--) {
      const j = Math.floor(random.uniform() * (i + 1));
      [found[i], found[j]] = [found[j] as Listed, found[i] as Listed];
    }
    return found;
  };
  return [...of('fraudster'), ...of('customer')];
}

/** Lists `listed` (identities made fraudster, one live voiceprint entry each, as POST would leave them). */
async function addEntries(client: pg.Client, p: Population, listed: Listed[]) {
  if (listed.length === 0) return;
  const ids = listed.map((l) => l.id);
  const voiceprints = listed.map((l) => uuidAt(p.voiceprintIds, l.firstVoiceprint));
  const recordings = listed.map((l) => uuidAt(p.recordingIds, p.voiceprintRecording[l.firstVoiceprint] as number));
  await client.query(
    `update identities set kind = 'fraudster', account_ref = null, updated_at = now() where id = any($1::uuid[])`,
    [ids],
  );
  await client.query(
    `insert into watchlist_entries (identity_id, reason, voiceprint_id, seed_recording_id, source)
     select * from unnest($1::uuid[], array_fill('bench: listed fraudster'::text, array[$4::int]), $2::uuid[], $3::uuid[],
                          array_fill('cli'::text, array[$4::int]))`,
    [ids, voiceprints, recordings, listed.length],
  );
  // what insertEntry's relisting leaves (src/voices/watchlist/listed.ts)
  await client.query(
    `insert into listed_voiceprints (voiceprint_id, identity_id, recording_id, embedding)
     select v.id, v.identity_id, v.recording_id, v.embedding from voiceprints v where v.identity_id = any($1::uuid[])`,
    [ids],
  );
  await client.query('analyze watchlist_entries, identities, listed_voiceprints');
}

type CheckRun = { ms: number; alerted: string[] };

/**
 * Stores a recording with one caller voiceprint (untimed), runs the step on it (timed), reads the
 * alerts it raised, and rolls everything back.
 */
async function checkOnce(db: Db, embedding: number[], account: string, step: ReturnType<typeof watchlistStep>) {
  const recordingId = randomUUID();
  return rolledBack<CheckRun>(db, async (tx) => {
    await tx.execute(
      sql`insert into recordings (id, source, account_ref, channel, call_at, status, completed_at)
          values (${recordingId}, 'upload', ${account}, 'phone', now(), 'complete', now())`,
    );
    await tx.execute(
      sql`insert into voiceprints (id, recording_id, speaker_label, embedding, raw_norm, speech_seconds, utterance_count)
          values (${randomUUID()}, ${recordingId}, 'customer', ${vectorText(embedding)}::vector, 1, 40, 6)`,
    );
    const started = performance.now();
    await step.run({
      tx,
      event: { id: randomUUID(), recordingId, kind: 'stored', stepsDone: [], attempts: 0 },
      log: silent,
    });
    const ms = performance.now() - started;
    const alerts = await queryRows<{ identityId: string }>(
      tx,
      sql`select identity_id as "identityId" from alerts
          where type = 'watchlist_hit' and recording_ids @> array[${recordingId}]::uuid[]`,
    );
    return { ms, alerted: alerts.map((a) => a.identityId) };
  });
}

/** The plan of the step's comparison query (`watchlistMatchesQuery`, what `recordingMatches` runs) on a fresh recording. */
async function comparisonPlan(db: Db, embedding: number[], minSimilarity: number) {
  const recordingId = randomUUID();
  return rolledBack(db, async (tx) => {
    await tx.execute(
      sql`insert into recordings (id, source, account_ref, channel, call_at, status, completed_at)
          values (${recordingId}, 'upload', 'acct-plan', 'phone', now(), 'complete', now())`,
    );
    await tx.execute(
      sql`insert into voiceprints (id, recording_id, speaker_label, embedding, raw_norm, speech_seconds, utterance_count)
          values (${randomUUID()}, ${recordingId}, 'customer', ${vectorText(embedding)}::vector, 1, 40, 6)`,
    );
    const rows = await queryRows<{ 'QUERY PLAN': string }>(
      tx,
      sql`explain (analyze, buffers, costs off) ${watchlistMatchesQuery(recordingId, minSimilarity)}`,
    );
    return rows.map((r) => r['QUERY PLAN']);
  });
}

/**
 * Where the step's time goes on a fresh recording of a stranger: its lock (`lockWatchlist`) and its
 * comparison (`recordingMatches`, which also reads the newest calibration's id), each timed on its
 * own, in a rolled-back transaction.
 */
async function checkParts(db: Db, embeddings: number[][], minSimilarity: number) {
  const lockMs: number[] = [];
  const matchesMs: number[] = [];
  for (const embedding of embeddings) {
    const recordingId = randomUUID();
    await rolledBack(db, async (tx) => {
      await tx.execute(
        sql`insert into recordings (id, source, account_ref, channel, call_at, status, completed_at)
            values (${recordingId}, 'upload', 'acct-parts', 'phone', now(), 'complete', now())`,
      );
      await tx.execute(
        sql`insert into voiceprints (id, recording_id, speaker_label, embedding, raw_norm, speech_seconds, utterance_count)
            values (${randomUUID()}, ${recordingId}, 'customer', ${vectorText(embedding)}::vector, 1, 40, 6)`,
      );
      let t = performance.now();
      await lockWatchlist(tx, 'shared');
      lockMs.push(performance.now() - t);
      t = performance.now();
      await recordingMatches(tx, recordingId, minSimilarity);
      matchesMs.push(performance.now() - t);
    });
  }
  return {
    recordings: embeddings.length,
    lockWatchlist: latencySummary(lockMs),
    recordingMatches: latencySummary(matchesMs),
  };
}

async function checkPhase(
  db: Db,
  client: pg.Client,
  p: Population,
  candidates: Listed[],
  minSimilarity: number,
): Promise<Record<string, unknown>> {
  const model = createVoiceModel(options.seed);
  const step = watchlistStep(settings);
  const out: Record<string, unknown> = {};
  let listedSoFar = 0;
  for (const level of levels) {
    const target = Math.min(level, candidates.length);
    if (out[String(target)]) continue; // a level above what the population can list: measured already
    await addEntries(client, p, candidates.slice(listedSoFar, target));
    listedSoFar = target;
    const listed = candidates.slice(0, target);
    const listedVoiceprints = listed.reduce((s, l) => s + l.members, 0);
    const random = randomStream(options.seed, 'bench-watchlist-check', String(level));
    const stranger = (i: number) =>
      unit(
        model.speakerEmbedding(`watchlist-stranger-${level}-${i}`, 'call-0', {
          noisy: random.uniform() < NOISY_SHARE,
        }),
      );
    const account = () => accountRef(Math.floor(random.uniform() * p.speakers));
    type Task = { kind: 'stranger' | 'listed'; i: number };
    const tasks: Task[] = Array.from({ length: options.checks }, (_, i) => ({ kind: 'stranger', i }));
    if (target > 0) for (let i = 0; i < options.hits; i++) tasks.push({ kind: 'listed', i });
    for (let i = tasks.length - 1; i > 0; i--) {
      const j = Math.floor(random.uniform() * (i + 1));
      [tasks[i], tasks[j]] = [tasks[j] as Task, tasks[i] as Task];
    }
    for (let i = 0; i < 10; i++) await checkOnce(db, stranger(10_000 + i), account(), step); // warm-up
    const ms = { stranger: [] as number[], listed: [] as number[], alerted: [] as number[], quiet: [] as number[] };
    let strangersAlerted = 0;
    let strangerAlerts = 0;
    let listedDetected = 0;
    let listedOtherAlerts = 0;
    const loadBefore = load();
    const started = performance.now();
    for (const task of tasks) {
      let embedding: number[];
      let expected: string | null = null;
      if (task.kind === 'stranger') embedding = stranger(task.i);
      else {
        const voice = listed[Math.floor(random.uniform() * listed.length)] as Listed;
        expected = voice.id;
        embedding = unit(
          model.speakerEmbedding(
            speakerName(p.identitySpeaker[voice.identity] as number),
            `watchlist-fresh-${level}-${task.i}`,
            { noisy: random.uniform() < NOISY_SHARE },
          ),
        );
      }
      const run = await checkOnce(db, embedding, account(), step);
      ms[task.kind].push(run.ms);
      (run.alerted.length > 0 ? ms.alerted : ms.quiet).push(run.ms);
      if (task.kind === 'stranger') {
        if (run.alerted.length > 0) strangersAlerted++;
        strangerAlerts += run.alerted.length;
      } else {
        if (expected && run.alerted.includes(expected)) listedDetected++;
        listedOtherAlerts += run.alerted.filter((a) => a !== expected).length;
      }
    }
    const plan = target > 0 ? await comparisonPlan(db, stranger(20_000), minSimilarity) : null;
    const parts =
      target > 0
        ? await checkParts(
            db,
            Array.from({ length: 50 }, (_, i) => stranger(30_000 + i)),
            minSimilarity,
          )
        : null;
    const figure = {
      entries: target,
      ...(target < level ? { requested: level, note: `only ${candidates.length} identities of 1–10 voiceprints` } : {}),
      listedVoiceprints,
      recordings: tasks.length,
      wallSeconds: seconds(started),
      strangers: {
        what: 'a fresh call of a voice never heard before (not listed)',
        recordings: ms.stranger.length,
        ...latencySummary(ms.stranger),
        alerted: strangersAlerted,
        alertedShare: round3(strangersAlerted / Math.max(1, ms.stranger.length)),
        alertsPerRecording: round3(strangerAlerts / Math.max(1, ms.stranger.length)),
      },
      ...(target > 0
        ? {
            listedVoices: {
              what: 'a fresh call of a listed voice (a hit: the alert is raised in the step)',
              recordings: ms.listed.length,
              ...latencySummary(ms.listed),
              detected: listedDetected,
              detectedShare: round3(listedDetected / Math.max(1, ms.listed.length)),
              otherIdentitiesAlerted: listedOtherAlerts,
            },
            byOutcome: {
              alertRaised: { recordings: ms.alerted.length, ...latencySummary(ms.alerted) },
              noAlert: { recordings: ms.quiet.length, ...latencySummary(ms.quiet) },
            },
            parts,
            comparisonPlan: plan,
          }
        : {}),
      loadAverageBefore: loadBefore,
      loadAverageAfter: load(),
    };
    out[String(target)] = figure;
    log(
      `  check at ${target} entries (${listedVoiceprints} voiceprints): strangers p50 ${figure.strangers.p50Ms} ms, ` +
        `p99 ${figure.strangers.p99Ms} ms, alerted ${strangersAlerted}/${ms.stranger.length}` +
        (target > 0
          ? `; listed p50 ${latencySummary(ms.listed).p50Ms} ms, detected ${listedDetected}/${ms.listed.length}`
          : ''),
    );
    figures.check = { ...out };
    save();
  }
  return out;
}

// ---- the look-back --------------------------------------------------------------------------

type Voice = {
  kind: 'fraudster' | 'customer, no identity';
  /** the size asked for */
  size: number;
  voiceprint: number;
  identity: number;
  members: number[];
  speaker: number;
  speakerCalls: number;
};

/**
 * 3 fraudsters' voiceprints and 2 of customers in no identity for each size (the closest sizes,
 * distinct), fraudsters first: their look-backs change no voiceprint row, a customer's moves its
 * voiceprint into a new identity (a new version of the row, in every index). Then one more
 * fraudster of each size for the look-back while a call of it is being stored (`inFlightVoices`).
 */
function lookBackVoices(p: Population, index: Index): { voices: Voice[]; inFlightVoices: Voice[] } {
  const random = randomStream(options.seed, 'bench-watchlist-look-back');
  const speechOk = (v: number) => (p.speechSeconds[v] as number) >= settings.enrolMinSpeechS;
  const fraudsters: number[] = [];
  for (let i = 0; i < p.identityKind.length; i++) {
    if (p.identityKind[i] === 'fraudster' && (index.members[i] as number[]).some(speechOk)) fraudsters.push(i);
  }
  const loneSpeakers: number[] = [];
  for (let s = 0; s < p.speakers; s++) {
    const vs = index.speakerVoiceprints[s] as number[];
    if (vs.length > 0 && (p.voiceprintIdentity[vs[0] as number] as number) < 0 && vs.some(speechOk)) {
      loneSpeakers.push(s);
    }
  }
  const usedIdentities = new Set<number>();
  const usedSpeakers = new Set<number>();
  const closest = <T>(items: T[], size: (t: T) => number, want: number, n: number, used: (t: T) => boolean) =>
    items
      .filter((t) => !used(t))
      .map((t) => ({ t, d: Math.abs(size(t) - want), tie: random.uniform() }))
      .sort((a, b) => a.d - b.d || a.tie - b.tie)
      .slice(0, n)
      .map((x) => x.t);
  const fraudster = (size: number, n: number): Voice[] =>
    closest(
      fraudsters,
      (i) => (index.members[i] as number[]).length,
      size,
      n,
      (i) => usedIdentities.has(i),
    ).map((i) => {
      usedIdentities.add(i);
      const members = index.members[i] as number[];
      const speaker = p.identitySpeaker[i] as number;
      return {
        kind: 'fraudster',
        size,
        voiceprint: members.find(speechOk) as number,
        identity: i,
        members,
        speaker,
        speakerCalls: (index.speakerVoiceprints[speaker] as number[]).length,
      };
    });
  const customers: Voice[] = [];
  const fraudsterVoices: Voice[] = [];
  for (const size of LOOK_BACK_SIZES) {
    fraudsterVoices.push(...fraudster(size, 3));
    const lone = closest(
      loneSpeakers,
      (s) => (index.speakerVoiceprints[s] as number[]).length,
      size,
      2,
      (s) => usedSpeakers.has(s),
    );
    for (const s of lone) {
      usedSpeakers.add(s);
      const calls = index.speakerVoiceprints[s] as number[];
      const v = calls.find(speechOk) as number;
      customers.push({
        kind: 'customer, no identity',
        size,
        voiceprint: v,
        identity: -1,
        members: [v],
        speaker: s,
        speakerCalls: calls.length,
      });
    }
  }
  const inFlightVoices = LOOK_BACK_SIZES.flatMap((size) => fraudster(size, 1));
  return { voices: [...fraudsterVoices, ...customers], inFlightVoices };
}

/**
 * The look-back's right answer, from the generated vectors: the members' recordings and every
 * recording holding a voiceprint at similarity ≥ `threshold` to a member, less the seed recording;
 * split into the voice's own recordings and other people's.
 */
function lookBackTruth(p: Population, voice: Voice, threshold: number) {
  const d = p.dimensions;
  const x = p.vectors;
  const seed = p.voiceprintRecording[voice.voiceprint] as number;
  const own = new Set<number>();
  const others = new Set<number>();
  let borderline = 0;
  for (const m of voice.members) own.add(p.voiceprintRecording[m] as number);
  const ms = voice.members;
  for (let v = 0; v < p.count; v++) {
    const ov = v * d;
    for (const m of ms) {
      const om = m * d;
      let dot = 0;
      for (let k = 0; k < d; k++) dot += (x[ov + k] as number) * (x[om + k] as number);
      if (Math.abs(dot - threshold) < 1e-5) borderline++;
      if (dot < threshold) continue;
      const r = p.voiceprintRecording[v] as number;
      if (p.voiceprintSpeaker[v] === voice.speaker) own.add(r);
      else others.add(r);
    }
  }
  own.delete(seed);
  others.delete(seed);
  for (const r of own) others.delete(r);
  const ownAll = new Set<number>();
  for (let v = 0; v < p.count; v++) {
    if (p.voiceprintSpeaker[v] === voice.speaker) ownAll.add(p.voiceprintRecording[v] as number);
  }
  ownAll.delete(seed);
  return { own, others, ownAll: ownAll.size, borderline };
}

/**
 * The look-back's pass on its own (EXPLAIN ANALYZE, rolled back) for a voice already in an
 * identity: its execution time, the workers that scanned beside the leader, the rows it returned.
 */
async function passPlan(db: Db, p: Population, voice: Voice, threshold: number) {
  if (voice.identity < 0) return null;
  const identityId = uuidAt(p.identityIds, voice.identity);
  return rolledBack(db, async (tx) => {
    const query = withinReachOfIdentityQuery(identityId, await memberEmbeddings(tx, identityId), threshold);
    const [row] = await queryRows<{ 'QUERY PLAN': unknown }>(tx, sql`explain (analyze, format json) ${query}`);
    const [top] = (row?.['QUERY PLAN'] ?? []) as { Plan: PlanNode; 'Execution Time': number }[];
    const nodes: PlanNode[] = [];
    const walk = (n: PlanNode) => {
      nodes.push(n);
      for (const c of n.Plans ?? []) walk(c);
    };
    if (top) walk(top.Plan);
    const gather = nodes.find((n) => n['Node Type'] === 'Gather' || n['Node Type'] === 'Gather Merge');
    return {
      ms: round3(top?.['Execution Time'] ?? Number.NaN),
      workersLaunched: gather?.['Workers Launched'] ?? 0,
      rows: top?.Plan['Actual Rows'] ?? 0,
      nodes: [...new Set(nodes.map((n) => n['Node Type'] + (n['Relation Name'] ? ` on ${n['Relation Name']}` : '')))],
    };
  });
}

type PlanNode = {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Workers Launched'?: number;
  Plans?: PlanNode[];
};

/**
 * One timed look-back (addToWatchlist, rolled back) of `voice`, judged against its truth.
 * `before` runs in the same transaction first, untimed.
 */
async function timedLookBack(
  db: Db,
  p: Population,
  voice: Voice,
  truth: ReturnType<typeof lookBackTruth>,
  before?: (tx: Db) => Promise<void>,
) {
  const voiceprintId = uuidAt(p.voiceprintIds, voice.voiceprint);
  const loadBefore = load();
  const started = performance.now();
  const result = await rolledBack(db, async (tx) => {
    if (before) await before(tx);
    const t = performance.now();
    const answer = await addToWatchlist(
      tx,
      settings,
      { voiceprintId, reason: 'bench: look-back timing (rolled back)' },
      CLI_ACTOR,
    );
    const ms = performance.now() - t;
    const alerted = await queryRows<{ recordingId: string }>(
      tx,
      sql`select distinct unnest(recording_ids) as "recordingId" from alerts
          where type = 'watchlist_hit' and identity_id = ${answer.identityId}`,
    );
    return { ms, answer, alerted: alerted.map((a) => a.recordingId) };
  });
  const hits = new Set(result.alerted);
  const ownIds = new Set([...truth.own].map((r) => uuidAt(p.recordingIds, r)));
  const otherIds = new Set([...truth.others].map((r) => uuidAt(p.recordingIds, r)));
  const foundOwn = [...ownIds].filter((r) => hits.has(r)).length;
  const foundOther = [...otherIds].filter((r) => hits.has(r)).length;
  const truthSize = ownIds.size + otherIds.size;
  return {
    kind: voice.kind,
    size: voice.size,
    members: voice.members.length,
    speakerCalls: voice.speakerCalls,
    created: result.answer.created,
    seconds: round3(result.ms / 1000),
    wallSeconds: seconds(started),
    checked: result.answer.lookBack.checked,
    hits: result.answer.lookBack.hits,
    truth: truthSize,
    truthOwnRecordings: ownIds.size,
    truthOtherPeople: otherIds.size,
    ownRecordingsOfTheVoice: truth.ownAll,
    recall: truthSize === 0 ? 1 : round3((foundOwn + foundOther) / truthSize),
    recallOwn: ownIds.size === 0 ? 1 : round3(foundOwn / ownIds.size),
    hitsOutsideTruth: [...hits].filter((r) => !ownIds.has(r) && !otherIds.has(r)).length,
    borderlinePairs: truth.borderline,
    loadAverageBefore: loadBefore,
  };
}

type LookBackRun = Awaited<ReturnType<typeof timedLookBack>>;

function lookBackSummary(runs: LookBackRun[]) {
  const sorted = runs.map((r) => r.seconds).sort((a, b) => a - b);
  const truth = runs.reduce((s, r) => s + r.truth, 0);
  const found = runs.reduce((s, r) => s + r.recall * r.truth, 0);
  const truthOwn = runs.reduce((s, r) => s + r.truthOwnRecordings, 0);
  const foundOwn = runs.reduce((s, r) => s + r.recallOwn * r.truthOwnRecordings, 0);
  return {
    voices: runs.length,
    p50Seconds: round3(sorted[Math.ceil(sorted.length / 2) - 1] ?? Number.NaN),
    maxSeconds: round3(sorted.at(-1) ?? Number.NaN),
    meanSeconds: round3(sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length)),
    recall: round3(truth === 0 ? 1 : found / truth),
    minRecall: Math.min(...runs.map((r) => r.recall)),
    recallOwnRecordings: round3(truthOwn === 0 ? 1 : foundOwn / truthOwn),
    hitsTotal: runs.reduce((s, r) => s + r.hits, 0),
    truthTotal: truth,
    truthOtherPeopleTotal: runs.reduce((s, r) => s + r.truthOtherPeople, 0),
  };
}

async function lookBackPhase(
  db: Db,
  client: pg.Client,
  p: Population,
  voices: Voice[],
  inFlightVoices: Voice[],
  threshold: number,
) {
  const runs: (LookBackRun & { pass: unknown })[] = [];
  let truthSeconds = 0;
  for (const [n, voice] of voices.entries()) {
    const started = performance.now();
    const truth = lookBackTruth(p, voice, threshold);
    truthSeconds += (performance.now() - started) / 1000;
    const run = {
      ...(await timedLookBack(db, p, voice, truth)),
      pass: await passPlan(db, p, voice, threshold),
    };
    runs.push(run);
    log(`  look-back ${n + 1}/${voices.length}: ${JSON.stringify(run)}`);
    figures.lookBack = { partial: true, runs };
    save();
  }
  const main = {
    threshold: round3(threshold),
    ...lookBackSummary(runs),
    truthSeconds: round3(truthSeconds),
    note:
      'seconds: the call of addToWatchlist inside a transaction that is then rolled back (no commit), on the ' +
      'freshly built HNSW index; truth computed in-process (float64 dot products of the generated float32 ' +
      'vectors), untimed; recall: of the truth recordings, those the look-back raised a watchlist_hit on',
    runs,
  };
  figures.lookBack = main;
  save();

  // the same look-back while a new call of the voice is being stored: its uncommitted voiceprint is
  // an element of the HNSW graph that the look-back's snapshot cannot see (so is a rolled-back store's)
  const model = createVoiceModel(options.seed);
  const inFlight: (LookBackRun & { pass: unknown; alone: Record<string, unknown> })[] = [];
  for (const voice of inFlightVoices) {
    const truth = lookBackTruth(p, voice, threshold);
    const alone = await timedLookBack(db, p, voice, truth);
    const alonePass = await passPlan(db, p, voice, threshold);
    const recordingId = randomUUID();
    const call = unit(model.speakerEmbedding(speakerName(voice.speaker), 'bench-watchlist-in-flight'));
    await client.query('begin');
    let run: LookBackRun;
    let during: Awaited<ReturnType<typeof passPlan>>;
    try {
      await client.query(
        `insert into recordings (id, source, account_ref, channel, call_at, status, completed_at)
         values ($1, 'upload', 'acct-in-flight', 'phone', now(), 'complete', now())`,
        [recordingId],
      );
      await client.query(
        `insert into voiceprints (id, recording_id, speaker_label, embedding, raw_norm, speech_seconds, utterance_count)
         values ($1, $2, 'customer', $3::vector, 1, 40, 6)`,
        [randomUUID(), recordingId, vectorText(call)],
      );
      run = await timedLookBack(db, p, voice, truth);
      during = await passPlan(db, p, voice, threshold);
    } finally {
      await client.query('rollback');
    }
    const both = {
      ...run,
      pass: during,
      alone: {
        seconds: alone.seconds,
        checked: alone.checked,
        hits: alone.hits,
        recall: alone.recall,
        pass: alonePass,
      },
    };
    inFlight.push(both);
    log(`  look-back while a call of the voice is being stored: ${JSON.stringify(both)}`);
  }
  const weighted = (pick: (r: (typeof inFlight)[number]) => number) =>
    round3(
      inFlight.reduce((s, r) => s + pick(r) * r.truth, 0) /
        Math.max(
          1,
          inFlight.reduce((s, r) => s + r.truth, 0),
        ),
    );
  return {
    ...main,
    whileACallOfTheVoiceIsStored: {
      what:
        'one more fraudster of each size, its look-back timed alone and then while another connection holds an ' +
        'uncommitted store of a new call of that voice (a recording and its voiceprint, rolled back afterwards): ' +
        'an HNSW element invisible to the look-back, next to every member',
      ...lookBackSummary(inFlight),
      recallAlone: weighted((r) => r.alone.recall as number),
      runs: inFlight,
    },
  };
}

// ---- run ------------------------------------------------------------------------------------

async function main() {
  const serverUrl = args.url;
  const url = databaseUrl(serverUrl, DATABASE);
  const exists = (await adminQuery(serverUrl, `select 1 from pg_database where datname = '${DATABASE}'`)).length > 0;
  if (args.reuse && !exists) fail(`--reuse: no database ${DATABASE} (run once with --keep)`);
  if (!args.reuse) {
    await adminQuery(serverUrl, `drop database if exists ${DATABASE} with (force)`);
    await adminQuery(serverUrl, `create database ${DATABASE}`);
  }
  const database = openPostgres(url, { max: 1 });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await migrateDatabase(database);
    await client.query('create extension if not exists pg_prewarm');
    await client.query(
      'create table if not exists bench_watchlist_meta (voiceprints int, seed int, version int, used boolean, figures jsonb)',
    );
    machine = await describeMachine(database, [
      ...benchmarkSettings,
      'random_page_cost',
      'max_parallel_workers_per_gather',
      'port',
    ]);
    figures.code = codeVersion();
    figures.cpu = {
      note: 'shared 2-core machine: other work may run during the run; the load average is recorded per phase',
      calibrationMsBefore: await calibrationMs(),
      loadAverageAtStart: load(),
      othersBusyAtStart: othersBusy(),
    };

    log(`generating ${options.voiceprints.toLocaleString('en')} voiceprints…`);
    let started = performance.now();
    const p = generatePopulation({ voiceprints: options.voiceprints, queries: 1, seed: options.seed, log });
    p.voiceprintIds = seededIds(p.count, 'voiceprints');
    p.recordingIds = seededIds(p.recordings, 'recordings');
    p.identityIds = seededIds(p.identityKind.length, 'identities');
    const index = indexPopulation(p);
    figures.data = {
      voiceprints: p.count,
      recordings: p.recordings,
      speakers: p.speakers,
      identities: p.identityKind.length,
      identitiesByKind: Object.fromEntries(
        ['customer', 'fraudster', 'staff'].map((k) => [k, p.identityKind.filter((x) => x === k).length]),
      ),
      voiceprintsInIdentities: p.voiceprintIdentity.reduce((s, x) => s + (x >= 0 ? 1 : 0), 0),
      generator: `createVoiceModel(${options.seed}).speakerEmbedding, unit length; 10 % noisy calls`,
      generateSeconds: seconds(started),
    };
    log(`generated: ${JSON.stringify(figures.data)}`);

    const [meta] = (
      await client.query<{
        voiceprints: number;
        seed: number;
        version: number;
        used: boolean;
        figures: Record<string, unknown>;
      }>('select * from bench_watchlist_meta')
    ).rows;
    if (args.reuse) {
      if (!meta || meta.voiceprints !== p.count || meta.seed !== options.seed || meta.version !== DATA_VERSION) {
        fail(`--reuse: ${DATABASE} holds other data (${JSON.stringify(meta ?? null)}); run without --reuse`);
      }
      // the same ids and vectors as generated now?
      for (const v of [0, Math.floor(p.count / 2), p.count - 1]) {
        const { rows } = await client.query<{ similarity: number }>(
          'select 1 - (embedding <=> $2::vector) as similarity from voiceprints where id = $1',
          [uuidAt(p.voiceprintIds, v), vectorText(p.vectors.subarray(v * p.dimensions, (v + 1) * p.dimensions))],
        );
        if (!rows[0] || rows[0].similarity < 0.9999) fail(`--reuse: voiceprint ${v} differs from the generated one`);
      }
      await restoreIdentities(client, p);
      Object.assign(figures, meta.figures, {
        reused: "the database of an earlier --keep run: the load figures are that run's",
      });
      log('reusing the kept database');
    } else {
      log('loading (binary COPY)…');
      figures.load = { ...(await loadPopulation(client, p)), note: 'outside the reported figures' };
      log(`loaded: ${JSON.stringify(figures.load)}`);
      save();
      log('HNSW build m=16, ef_construction=64…');
      figures.index = { ...(await buildIndex(client)), note: 'outside the reported figures: context' };
      log(`built: ${JSON.stringify(figures.index)}`);
      started = performance.now();
      await refreshCalibration(database.db);
      figures.calibrationRefreshSeconds = seconds(started);
      await client.query('insert into bench_watchlist_meta values ($1, $2, $3, false, $4)', [
        p.count,
        options.seed,
        DATA_VERSION,
        JSON.stringify({ load: figures.load, calibrationRefreshSeconds: figures.calibrationRefreshSeconds }),
      ]);
      save();
    }
    figures.prewarmSeconds = await prewarm(client);

    const calibration = await currentCalibration(database.db);
    const threshold = calibration.similarityAtFar(settings.watchlistFar);
    figures.calibration = {
      method: calibration.method,
      cohortSize: calibration.cohortSize,
      pairCount: calibration.pairCount,
      watchlistFar: settings.watchlistFar,
      similarityAtFar: round3(threshold),
      note: 'the threshold of the check and the look-back: calibration.similarityAtFar(VOXTRACE_WATCHLIST_FAR)',
    };
    log(`calibration: ${JSON.stringify(figures.calibration)}`);

    const { voices, inFlightVoices } = lookBackVoices(p, index);
    const lookBackIdentities = new Set([...voices, ...inFlightVoices].map((v) => v.identity).filter((i) => i >= 0));
    const candidates = watchlistCandidates(p, index, lookBackIdentities);
    await client.query('update bench_watchlist_meta set used = true');

    // the look-back first, on the fresh index: the check's rolled-back inserts leave dead graph elements
    if (!options.skip.has('look-back')) {
      log(`look-back for ${voices.length} + ${inFlightVoices.length} voices…`);
      figures.lookBack = await lookBackPhase(database.db, client, p, voices, inFlightVoices, threshold);
      save();
    }
    if (!options.skip.has('check')) {
      log(`check at ${levels.join(', ')} entries…`);
      figures.check = await checkPhase(database.db, client, p, candidates, threshold);
      await restoreIdentities(client, p);
      save();
    }

    figures.cpu = {
      ...(figures.cpu as object),
      calibrationMsAfter: await calibrationMs(),
      loadAverageAtEnd: load(),
      othersBusyAtEnd: othersBusy(),
    };
    figures.targets = judge(p.count);
    figures.complete = options.skip.size === 0;
    summary = summarise(p.count);
    save();
    if (options.skip.size > 0) console.log(JSON.stringify({ command, summary, figures }, null, 2));
    log(`done in ${seconds(runStarted)} s`);
  } finally {
    await client.end();
    await database.close();
    if (!args.keep && !args.reuse) {
      await adminQuery(serverUrl, `drop database if exists ${DATABASE} with (force)`).catch(() => {});
    }
  }
}

type CheckFigure = {
  entries: number;
  listedVoiceprints: number;
  strangers: { p50Ms: number; p99Ms: number; alertedShare: number };
  listedVoices?: { p50Ms: number; p99Ms: number; detectedShare: number };
};

type LookBackFigure = ReturnType<typeof lookBackSummary> & {
  threshold: number;
  whileACallOfTheVoiceIsStored: ReturnType<typeof lookBackSummary> & { recallAlone: number };
};

const missBy = (value: number, target: number) =>
  value <= target ? null : { by: round3(value - target), ratio: round3(value / target) };

function judge(voiceprints: number) {
  const check = figures.check as Record<string, CheckFigure> | undefined;
  // the level of --entries (fewer when the population has fewer identities to list)
  const at = check
    ? Object.values(check)
        .filter((c) => c.entries <= options.entries)
        .at(-1)
    : undefined;
  const lookBack = figures.lookBack as LookBackFigure | undefined;
  return {
    check: at
      ? {
          target: `the check of a newly stored recording at ${options.entries.toLocaleString('en')} watchlisted voices: p50 ≤ ${CHECK_TARGET_MS} ms`,
          entries: at.entries,
          listedVoiceprints: at.listedVoiceprints,
          p50Ms: at.strangers.p50Ms,
          p99Ms: at.strangers.p99Ms,
          met: at.strangers.p50Ms <= CHECK_TARGET_MS,
          missedByMs: missBy(at.strangers.p50Ms, CHECK_TARGET_MS),
          judgedOn: 'fresh recordings of callers not on the watchlist (what nearly every stored recording is)',
          strangersAlertedShare: at.strangers.alertedShare,
          hit: {
            p50Ms: at.listedVoices?.p50Ms,
            p99Ms: at.listedVoices?.p99Ms,
            met: (at.listedVoices?.p50Ms ?? Number.POSITIVE_INFINITY) <= CHECK_TARGET_MS,
            missedByMs: missBy(at.listedVoices?.p50Ms ?? Number.NaN, CHECK_TARGET_MS),
            detectedShare: at.listedVoices?.detectedShare,
          },
        }
      : null,
    lookBack: lookBack
      ? {
          target: `a look-back over 1,000,000 voiceprints finishes in ≤ ${LOOK_BACK_TARGET_S} s`,
          voiceprints,
          ...(voiceprints === 1_000_000 ? {} : { note: 'not at the target size' }),
          p50Seconds: lookBack.p50Seconds,
          maxSeconds: lookBack.maxSeconds,
          met: lookBack.maxSeconds <= LOOK_BACK_TARGET_S,
          missedBySeconds: missBy(lookBack.maxSeconds, LOOK_BACK_TARGET_S),
          p50Met: lookBack.p50Seconds <= LOOK_BACK_TARGET_S,
          p50MissedBySeconds: missBy(lookBack.p50Seconds, LOOK_BACK_TARGET_S),
          judgedOn: 'the slowest of the look-backs on the freshly built index (every one must finish in time)',
          recall: lookBack.recall,
          recallWhileACallOfTheVoiceIsStored: lookBack.whileACallOfTheVoiceIsStored.recall,
          recallAloneOfThoseVoices: lookBack.whileACallOfTheVoiceIsStored.recallAlone,
        }
      : null,
  };
}

function summarise(voiceprints: number): string {
  const t = judge(voiceprints);
  const check = figures.check as Record<string, CheckFigure> | undefined;
  const index = figures.index as { buildSeconds: number } | undefined;
  const lookBack = figures.lookBack as LookBackFigure | undefined;
  const verdict = (met: boolean, miss: { by: number } | null, unit: string) =>
    met ? 'met' : `missed by ${miss?.by} ${unit}`;
  const others = check
    ? Object.values(check)
        .filter((c) => c.entries !== t.check?.entries)
        .map((c) => `${c.entries.toLocaleString('en')} ${c.strangers.p50Ms}`)
        .join(', ')
    : '';
  return [
    `${voiceprints.toLocaleString('en')} voiceprints`,
    t.check
      ? `check at ${t.check.entries.toLocaleString('en')} entries (${t.check.listedVoiceprints.toLocaleString('en')} voiceprints): ` +
        `p50 ${t.check.p50Ms} ms, p99 ${t.check.p99Ms} ms (target ≤ ${CHECK_TARGET_MS} ms: ${verdict(t.check.met, t.check.missedByMs, 'ms')}), ` +
        `hit p50 ${t.check.hit.p50Ms} ms; ${Math.round(t.check.strangersAlertedShare * 100)} % of unlisted callers alerted; ` +
        `p50 ms at ${others} entries`
      : null,
    t.lookBack && lookBack
      ? `look-back p50 ${t.lookBack.p50Seconds} s, max ${t.lookBack.maxSeconds} s (target ≤ ${LOOK_BACK_TARGET_S} s: ` +
        `${verdict(t.lookBack.met, t.lookBack.missedBySeconds, 's')}), recall ${t.lookBack.recall} at similarity ≥ ${lookBack.threshold} ` +
        `(while a call of the voice is being stored: ${t.lookBack.recallWhileACallOfTheVoiceIsStored}, alone ${t.lookBack.recallAloneOfThoseVoices})`
      : null,
    index ? `HNSW build ${index.buildSeconds} s` : null,
  ]
    .filter(Boolean)
    .join('; ');
}

await main();
