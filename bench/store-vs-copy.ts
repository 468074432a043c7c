/**
 * Store-vs-COPY benchmark: the worker's store step alone (what `fetchAndStore` does once a results
 * document has been fetched and parsed) against a raw `COPY` of the same rows into identical tables
 * with the same indexes, in the same run, on native PostgreSQL.
 *
 *   node bench/store-vs-copy.ts [--recordings N] [--seed K] [--batch B]
 *
 * N recordings (default 1,000 ≈ 14,000 utterances) are `demo-data` calls as the stand-in answers
 * them (the shared generator, seed K). Before anything is timed, every document is generated and
 * parsed (`rowsForDocument(parseResultsDocument(...))`, as the worker does before its transaction)
 * and every recording is inserted as the worker finds it: `submitted`, leased to this "worker".
 *
 * Timed, one after the other, each from a checkpoint:
 * - store: exactly the worker's transaction, one per recording (`storeResults`): the recording to
 *   `complete` with its `raw_document` (guarded by lease owner and status), then `recordStored`: its
 *   utterances and voiceprints and one `recording_events` row. Default connection settings, as the worker opens them: every commit is
 *   durable.
 * - batched transactions (diagnostic, not what the worker does): the same statements for up to B
 *   recordings (default 50) per transaction, to show what the per-recording commits cost; the
 *   tables are emptied and the recordings put back to `submitted` first, untimed, so it starts
 *   where the per-recording store started.
 * - copy: `COPY … FROM STDIN` (text format) of the same rows into `copy_recordings`,
 *   `copy_utterances`, `copy_voiceprints` and `copy_recording_events`, created `LIKE` the real
 *   tables `INCLUDING ALL` (so with the same btree and HNSW indexes, checked against pg_indexes)
 *   plus the same foreign keys, all in one transaction; each table's COPY is timed too, to show
 *   where the time goes (HNSW maintenance, the same cost for store and COPY).
 *
 * "The same rows" means the same data reaches the same kind of table, indexes and constraints:
 * every utterance with its halfvec(768) (pgvector text, as the driver sends it), every voiceprint
 * with its vector(192), one `recording_events` row per recording, and each recording's
 * `raw_document` (about 200 KiB of jsonb) with its status and timestamps. COPY cannot update, so
 * it writes each recording as a new, complete row, where the store updates the `submitted` row in
 * place; the recording's other columns are the same. Both sides start from the same in-memory rows:
 * the timed COPY includes turning them into COPY text, as the timed store includes the SQL and
 * parameters the driver builds. One difference favours COPY: the store sends the upstream's vector
 * text and lets the database normalise it (`l2_normalize`), which COPY cannot do, so COPY's unit
 * vectors are computed and written out before any timing. `rows` counts utterances + voiceprints (what the per-second rates
 * divide), the same for all three; the recordings and events rows are written by all three too.
 * Checked after each phase: the counts in the tables; after the COPY, that the copy tables hold the
 * same utterances, voiceprints (vectors as stored) and raw documents as the stored ones.
 * COPY goes through the `pg` driver itself (a small "submittable"), with no extra dependency.
 *
 * Native PostgreSQL: the server of $BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432;
 * the benchmark creates (and afterwards drops) the database voxtrace_bench_store on it.
 * Writes bench/results/store-vs-copy.json and the store-vs-copy line of bench/README.md.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import { type Db, queryRows, redactUrl } from '../src/db/client.ts';
import { recordings } from '../src/db/schema.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { storeResults } from '../src/ingest/worker.ts';
import { type DocumentRows, rowsForDocument, type VectorToStore } from '../src/recordings/store.ts';
import { parseResultsDocument } from '../src/upstream/results.ts';
import { syntheticCalls } from '../test/support/synthetic-documents.ts';
import { copyFromChunks } from './support/copy-from.ts';
import { withBenchDatabase } from './support/database.ts';
import { describeMachine } from './support/machine.ts';
import { recordResult } from './support/results.ts';

const BENCH_DATABASE = 'voxtrace_bench_store';
const OWNER = 'bench-store-vs-copy';
const TABLES = ['recordings', 'utterances', 'voiceprints', 'recording_events'] as const;
const benchDir = import.meta.dirname;

type Prepared = {
  id: string;
  pid: number;
  /** the results body as the worker receives it */
  rawBody: string;
  rows: DocumentRows;
  /** COPY cannot call l2_normalize: its vectors are normalised and written out here, before any timing. */
  unitVectors: { utterances: (string | null)[]; voiceprints: string[] };
  accountRef: string | null;
  channel: string | null;
  callAt: Date | null;
  durationS: number;
};
type Counts = { recordings: number; utterances: number; voiceprints: number; events: number };

function parseOptions(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      recordings: { type: 'string', default: '1000' },
      seed: { type: 'string', default: '1' },
      batch: { type: 'string', default: '50' },
    },
  });
  return {
    recordings: positiveInteger('--recordings', values.recordings),
    seed: positiveInteger('--seed', values.seed),
    batch: positiveInteger('--batch', values.batch),
  };
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) fail(`${flag} must be a positive integer, got "${text}"`);
  return value;
}

function fail(message: string): never {
  console.error(`bench/store-vs-copy: ${message}`);
  process.exit(1);
}

/** Documents as the worker holds them after `getResults` (plain JSON) and their parsed rows. */
function prepare(count: number, seed: number): Prepared[] {
  return syntheticCalls({ count, seed, firstPid: 1 }).map(({ manifest, document }, k) => {
    const rawBody = JSON.stringify(document);
    const json: unknown = JSON.parse(rawBody);
    const rows = rowsForDocument(parseResultsDocument(json, { api: 'deepfake' }));
    return {
      id: randomUUID(),
      pid: k + 1,
      rawBody,
      rows,
      unitVectors: {
        utterances: rows.utterances.map((u) => (u.deepfake ? unitVectorText(u.deepfake) : null)),
        voiceprints: rows.voiceprints.map((v) => unitVectorText(v.speaker)),
      },
      accountRef: manifest.accountRef,
      channel: manifest.channel,
      callAt: manifest.callAt === null ? null : new Date(manifest.callAt),
      durationS: manifest.durationS,
    };
  });
}

/** The recordings as the worker finds them when their results are ready: submitted, leased to it. */
async function insertSubmitted(db: Db, prepared: Prepared[], submittedAt: Date) {
  for (let i = 0; i < prepared.length; i += 500) {
    await db.insert(recordings).values(
      prepared.slice(i, i + 500).map((p) => ({
        id: p.id,
        sha256: p.id.replaceAll('-', '').padEnd(64, '0'),
        source: 'upload' as const,
        accountRef: p.accountRef,
        channel: p.channel,
        callAt: p.callAt,
        status: 'submitted' as const,
        upstreamApi: 'deepfake' as const,
        upstreamCid: 1,
        upstreamPid: p.pid,
        fileName: `${p.pid}.wav`,
        audioFormat: 'wav' as const,
        audioBytes: Math.round(p.durationS * 16_000) * 2 + 44,
        durationS: p.durationS,
        spoolFile: `${p.id}.wav`,
        attempts: 0,
        leaseOwner: OWNER,
        leaseExpiresAt: new Date(submittedAt.getTime() + 3_600_000),
        submittedAt,
      })),
    );
  }
}

/**
 * The worker's store step (src/ingest/worker.ts, `storeResults`) for one recording: its own
 * transaction, or the caller's when `db` is one. Throws LeaseLostError unless the recording is
 * `submitted` and leased to OWNER.
 */
async function storeStatements(db: Db, p: Prepared) {
  await storeResults(db, { id: p.id, owner: OWNER }, { rawBody: p.rawBody, rows: p.rows, keepAudio: false });
}

/** The worker's store step: one transaction per recording. */
async function storeOne(db: Db, p: Prepared) {
  await storeStatements(db, p);
}

/** Diagnostic: the same statements for several recordings in one transaction (one commit). */
async function storeBatch(db: Db, batch: Prepared[]) {
  await withTransaction(db, async (tx) => {
    for (const p of batch) await storeStatements(tx, p);
  });
}

async function timed(label: string, total: number, step: (done: number) => Promise<number>): Promise<number> {
  const progressEvery = Math.max(1, Math.ceil(total / 5));
  let nextReport = progressEvery;
  const started = performance.now();
  for (let done = 0; done < total; ) {
    done += await step(done);
    if (done >= nextReport || done === total) {
      nextReport += progressEvery;
      const seconds = (performance.now() - started) / 1000;
      console.error(`  ${label}: ${done}/${total} recordings, ${(done / seconds).toFixed(1)} recordings/s`);
    }
  }
  return (performance.now() - started) / 1000;
}

// ---- COPY ---------------------------------------------------------------------------------------

/** COPY text-format field: `\N` for null, backslash escapes for the characters COPY treats specially. */
function field(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  const text = typeof value === 'string' ? value : value instanceof Date ? value.toISOString() : String(value);
  return /[\\\n\r\t]/.test(text)
    ? text.replace(/[\\\n\r\t]/g, (c) => ({ '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c] as string)
    : text;
}

/**
 * A stored vector's text as COPY must write it: the unit vector exactly as the store's `l2_normalize`
 * computes it in the database (single-precision values, a double-precision norm, a single-precision
 * quotient), so both sides hold identical rows.
 */
function unitVectorText(v: VectorToStore): string {
  const values = (JSON.parse(v.text) as number[]).map(Math.fround);
  let sum = 0;
  for (const x of values) sum += x * x;
  const norm = Math.sqrt(sum);
  return `[${values.map((x) => Math.fround(x / norm)).join(',')}]`;
}
const line = (values: unknown[]) => `${values.map(field).join('\t')}\n`;

function* chunked(lines: Iterable<string>, size = 1 << 20): Generator<string> {
  let buffer = '';
  for (const l of lines) {
    buffer += l;
    if (buffer.length >= size) {
      yield buffer;
      buffer = '';
    }
  }
  if (buffer) yield buffer;
}

async function copyInto(client: pg.Client, table: string, columns: string[], lines: Iterable<string>): Promise<number> {
  const chunks = (function* () {
    for (const text of chunked(lines)) yield Buffer.from(text);
  })();
  return copyFromChunks(client, `copy ${table} (${columns.join(', ')}) from stdin`, chunks);
}

/** copy_* tables LIKE the real ones INCLUDING ALL, the same foreign keys; fails if an index differs. */
async function createCopyTables(client: pg.Client) {
  for (const table of TABLES) await client.query(`create table copy_${table} (like ${table} including all)`);
  const { rows: fks } = await client.query<{ table: string; name: string; definition: string }>(
    `select conrelid::regclass::text as table, conname as name, pg_get_constraintdef(oid) as definition
       from pg_constraint where contype = 'f' and conrelid::regclass::text = any($1)`,
    [TABLES],
  );
  for (const fk of fks) {
    // a reference among the copied tables points at its copy; one outside them (identities) stays
    const definition = fk.definition.replace(/REFERENCES (public\.)?(\w+)/, (whole, _schema, target: string) =>
      (TABLES as readonly string[]).includes(target) ? `REFERENCES copy_${target}` : whole,
    );
    await client.query(
      `alter table copy_${fk.table} add constraint copy_${fk.name} foreign key ${definition.slice(12)}`,
    );
  }
  const { rows: indexes } = await client.query<{ tablename: string; indexdef: string }>(
    `select tablename, indexdef from pg_indexes where schemaname = 'public' and tablename = any($1)`,
    [[...TABLES, ...TABLES.map((t) => `copy_${t}`)]],
  );
  // an index definition without its name and table, e.g. "USING hnsw (deepfake_embedding halfvec_cosine_ops)"
  const shape = (def: string) => def.replace(/^CREATE (UNIQUE )?INDEX \S+ ON \S+ /, '$1').replace(/copy_/g, '');
  for (const table of TABLES) {
    const real = indexes
      .filter((i) => i.tablename === table)
      .map((i) => shape(i.indexdef))
      .sort();
    const copied = indexes
      .filter((i) => i.tablename === `copy_${table}`)
      .map((i) => shape(i.indexdef))
      .sort();
    if (JSON.stringify(real) !== JSON.stringify(copied)) {
      throw new Error(`copy_${table} does not have the indexes of ${table}: ${JSON.stringify({ real, copied })}`);
    }
  }
  const copiedFks = await client.query(
    `select count(*)::int as n from pg_constraint where contype = 'f' and conrelid::regclass::text like 'copy_%'`,
  );
  if (copiedFks.rows[0].n !== fks.length) throw new Error('the copy tables lack foreign keys');
  return { indexes: indexes.filter((i) => i.tablename.startsWith('copy_')).length, foreignKeys: fks.length };
}

/** The same rows, by COPY, in one transaction: recordings (complete, with raw_document), then the rest. */
async function copyAll(client: pg.Client, prepared: Prepared[], submittedAt: Date) {
  const started = performance.now();
  const tableSeconds: Record<string, number> = {};
  const copy = async (table: string, columns: string[], lines: Iterable<string>) => {
    const tableStarted = performance.now();
    const copied = await copyInto(client, table, columns, lines);
    tableSeconds[table.replace('copy_', '')] = round((performance.now() - tableStarted) / 1000, 3);
    return copied;
  };
  await client.query('begin');
  const now = new Date();
  await copy(
    'copy_recordings',
    [
      'id',
      'sha256',
      'source',
      'account_ref',
      'channel',
      'call_at',
      'status',
      'upstream_api',
      'upstream_cid',
      'upstream_pid',
      'raw_document',
      'file_name',
      'audio_format',
      'audio_bytes',
      'duration_s',
      'attempts',
      'submitted_at',
      'completed_at',
      'updated_at',
    ],
    (function* () {
      for (const p of prepared) {
        yield line([
          p.id,
          p.id.replaceAll('-', '').padEnd(64, '0'),
          'upload',
          p.accountRef,
          p.channel,
          p.callAt,
          'complete',
          'deepfake',
          1,
          p.pid,
          p.rawBody,
          `${p.pid}.wav`,
          'wav',
          Math.round(p.durationS * 16_000) * 2 + 44,
          p.durationS,
          0,
          submittedAt,
          now,
          now,
        ]);
      }
    })(),
  );
  await copy(
    'copy_utterances',
    [
      'recording_id',
      'upstream_id',
      'start_s',
      'end_s',
      'speaker_label',
      'transcript',
      'language',
      'deepfake_label',
      'p_spoofed',
      'deepfake_embedding',
      'deepfake_raw_norm',
    ],
    (function* () {
      for (const p of prepared) {
        for (const [j, u] of p.rows.utterances.entries()) {
          yield line([
            p.id,
            u.upstreamId,
            u.startS,
            u.endS,
            u.speakerLabel,
            u.transcript,
            u.language,
            u.deepfakeLabel,
            u.pSpoofed,
            p.unitVectors.utterances[j],
            u.deepfake?.norm ?? null,
          ]);
        }
      }
    })(),
  );
  await copy(
    'copy_voiceprints',
    ['recording_id', 'speaker_label', 'embedding', 'raw_norm', 'speech_seconds', 'utterance_count', 'mean_p_spoofed'],
    (function* () {
      for (const p of prepared) {
        for (const [k, v] of p.rows.voiceprints.entries()) {
          yield line([
            p.id,
            v.speakerLabel,
            p.unitVectors.voiceprints[k],
            v.speaker.norm,
            v.speechSeconds,
            v.utteranceCount,
            v.meanPSpoofed,
          ]);
        }
      }
    })(),
  );
  await copy(
    'copy_recording_events',
    ['recording_id', 'kind'],
    (function* () {
      for (const p of prepared) yield line([p.id, 'stored']);
    })(),
  );
  const committing = performance.now();
  await client.query('commit');
  tableSeconds.commit = round((performance.now() - committing) / 1000, 3);
  return { seconds: (performance.now() - started) / 1000, tableSeconds };
}

// ---- checks and figures -------------------------------------------------------------------------

async function counts(db: Db, prefix: '' | 'copy_'): Promise<Counts> {
  const [row] = await queryRows<Counts>(
    db,
    sql.raw(`select
      (select count(*)::int from ${prefix}recordings where status = 'complete' and raw_document is not null) as recordings,
      (select count(*)::int from ${prefix}utterances) as utterances,
      (select count(*)::int from ${prefix}voiceprints) as voiceprints,
      (select count(*)::int from ${prefix}recording_events) as events`),
  );
  if (!row) throw new Error('the count query returned no row');
  return row;
}

/** The stored rows, compared by content between the real and the copy tables (vectors as stored). */
async function sameContent(db: Db): Promise<boolean> {
  const utteranceColumns = `recording_id, upstream_id, start_s, end_s, speaker_label, transcript, language,
    deepfake_label, p_spoofed, deepfake_embedding::text, deepfake_raw_norm`;
  const voiceprintColumns =
    'recording_id, speaker_label, embedding::text, raw_norm, speech_seconds, utterance_count, mean_p_spoofed';
  const differing = (columns: string, table: string) =>
    `(select count(*) from (select ${columns} from ${table} except select ${columns} from copy_${table}) d)`;
  const [row] = await queryRows<{ differing: number }>(
    db,
    sql.raw(`select (${differing(utteranceColumns, 'utterances')} + ${differing(voiceprintColumns, 'voiceprints')}
      + ${differing('id, raw_document', 'recordings')})::int as differing`),
  );
  return row?.differing === 0;
}

function verify(label: string, stored: Counts, expected: Counts) {
  const wrong = (Object.keys(expected) as (keyof Counts)[]).filter((key) => stored[key] !== expected[key]);
  if (wrong.length > 0) {
    const detail = wrong.map((key) => `${key} ${stored[key]} (expected ${expected[key]})`).join(', ');
    throw new Error(`${label}: the tables do not hold what was stored: ${detail}`);
  }
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

function commandLine(args: string[]): string {
  const quoted = args.map((arg) => (/^[\w.,=/-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`));
  const env = process.env.BENCH_DATABASE_URL ? `BENCH_DATABASE_URL=${redactUrl(process.env.BENCH_DATABASE_URL)} ` : '';
  return `${env}node bench/store-vs-copy.ts${quoted.map((arg) => ` ${arg}`).join('')}`;
}

async function main() {
  const args = process.argv.slice(2);
  const options = parseOptions(args);
  const preparing = performance.now();
  const prepared = prepare(options.recordings, options.seed);
  const expected: Counts = {
    recordings: prepared.length,
    utterances: prepared.reduce((n, p) => n + p.rows.utterances.length, 0),
    voiceprints: prepared.reduce((n, p) => n + p.rows.voiceprints.length, 0),
    events: prepared.length,
  };
  const rows = expected.utterances + expected.voiceprints;
  console.error(
    `prepared ${prepared.length} recordings (${expected.utterances} utterances, ${expected.voiceprints} voiceprints) ` +
      `in ${((performance.now() - preparing) / 1000).toFixed(1)} s`,
  );

  // default connection settings, as the worker opens them: durable commits included
  await withBenchDatabase('postgres', BENCH_DATABASE, async (database, url) => {
    const { db } = database;
    const pgModule = (await import('pg')).default;
    const client = new pgModule.Client({ connectionString: url });
    await client.connect();
    try {
      const copyTables = await createCopyTables(client);
      const submittedAt = new Date();
      const reset = async () => {
        await db.execute(sql.raw(`truncate ${TABLES.join(', ')}`));
        await insertSubmitted(db, prepared, submittedAt);
        await db.execute(sql`checkpoint`);
      };

      console.error(`store: one transaction per recording, as the worker does`);
      await reset();
      const storeSeconds = await timed('store', prepared.length, async (done) => {
        await storeOne(db, prepared[done] as Prepared);
        return 1;
      });
      verify('store', await counts(db, ''), expected);

      console.error(`batched transactions (diagnostic): up to ${options.batch} recordings per transaction`);
      await reset();
      const batchedSeconds = await timed('batched transactions', prepared.length, async (done) => {
        const batch = prepared.slice(done, done + options.batch);
        await storeBatch(db, batch);
        return batch.length;
      });
      verify('batched transactions', await counts(db, ''), expected);

      console.error('copy: COPY FROM STDIN of the same rows, one transaction');
      await db.execute(sql`checkpoint`);
      const { seconds: copySeconds, tableSeconds: copyTableSeconds } = await copyAll(client, prepared, submittedAt);
      console.error(`  copy: ${prepared.length}/${prepared.length} recordings in ${copySeconds.toFixed(2)} s`);
      verify('copy', await counts(db, 'copy_'), expected);
      if (!(await sameContent(db))) throw new Error('the copy tables do not hold the same rows as the stored ones');

      const storeRowsPerSecond = rows / storeSeconds;
      const batchedRowsPerSecond = rows / batchedSeconds;
      const copyRowsPerSecond = rows / copySeconds;
      const figures = {
        recordings: expected.recordings,
        utterances: expected.utterances,
        voiceprints: expected.voiceprints,
        rows,
        storeSeconds: round(storeSeconds, 3),
        storeRowsPerSecond: round(storeRowsPerSecond, 1),
        copySeconds: round(copySeconds, 3),
        copyRowsPerSecond: round(copyRowsPerSecond, 1),
        ratio: round(storeRowsPerSecond / copyRowsPerSecond, 3),
        target: 0.5,
        copyTableSeconds,
        copyTables,
        // diagnostic: the worker's statements, `batchRecordings` recordings per transaction
        batchRecordings: options.batch,
        batchedTransactionsSeconds: round(batchedSeconds, 3),
        batchedTransactionsRowsPerSecond: round(batchedRowsPerSecond, 1),
        batchedTransactionsRatio: round(batchedRowsPerSecond / copyRowsPerSecond, 3),
      };
      const machine = await describeMachine(database);
      const rate = (r: number) => Math.round(r).toLocaleString('en');
      recordResult(benchDir, {
        name: 'store-vs-copy',
        command: commandLine(args),
        machine,
        figures,
        summary:
          `store ${rate(storeRowsPerSecond)} rows/s, COPY ${rate(copyRowsPerSecond)} rows/s: ratio ${figures.ratio} ` +
          `(target ≥ 0.5; ${options.batch} recordings per transaction: ${figures.batchedTransactionsRatio}), ` +
          `${expected.recordings} recordings, ${expected.utterances} utterances + ${expected.voiceprints} voiceprints`,
      });
      console.log(JSON.stringify(figures, null, 2));
    } finally {
      await client.end();
    }
  });
}

await main();
