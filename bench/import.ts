/**
 * Import benchmark: how fast saved Deepfake API results documents go through the real import
 * path (`importDocumentFile`, one transaction per file, as `./voxtrace import` does) on native
 * PostgreSQL and on on-disk PGlite, in the same run so the two can be compared as a ratio.
 *
 *   node bench/import.ts [--documents N] [--seed K] [--engines postgres,pglite]
 *
 * Documents are `demo-data` calls as the stand-in answers them (the shared generator, seed K).
 *
 * Native PostgreSQL: the server of $BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432;
 * the benchmark creates (and afterwards drops) the database voxtrace_bench_import on it.
 * Writes bench/results/import.json and the import line of bench/README.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { type Database, type Engine, queryRows, redactUrl } from '../src/db/client.ts';
import { importDocumentFile } from '../src/import/import.ts';
import { expectedCounts, syntheticCalls } from '../test/support/synthetic-documents.ts';
import { withBenchDatabase } from './support/database.ts';
import { describeMachine, type Machine } from './support/machine.ts';
import { recordResult } from './support/results.ts';

// fewer utterances and the per-run start-up (connections, JIT warm-up) shows in the rate
const MINIMUM_UTTERANCES = 10_000;
const BENCH_DATABASE = 'voxtrace_bench_import';
const benchDir = import.meta.dirname;

type Counts = { documents: number; utterances: number; voiceprints: number; deepfakeEmbeddings: number };
type EngineFigures = Counts & { seconds: number; utterancesPerSecond: number; documentsPerSecond: number };

function parseOptions(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      documents: { type: 'string', default: '750' },
      seed: { type: 'string', default: '1' },
      engines: { type: 'string', default: 'postgres,pglite' },
    },
  });
  const documents = positiveInteger('--documents', values.documents);
  const seed = positiveInteger('--seed', values.seed);
  const engines = values.engines.split(',').map((name) => name.trim());
  const unknown = engines.find((name) => name !== 'postgres' && name !== 'pglite');
  if (unknown !== undefined) fail(`unknown engine "${unknown}" (postgres, pglite)`);
  return { documents, seed, engines: [...new Set(engines)] as Engine[] };
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) fail(`${flag} must be a positive integer, got "${text}"`);
  return value;
}

function fail(message: string): never {
  console.error(`bench/import: ${message}`);
  process.exit(1);
}

/** Writes document k with seed k and pid k (pids must differ, or later ones import as unchanged). */
function writeDocuments(dir: string, documents: number, seed: number) {
  const files: string[] = [];
  const expected: Counts = { documents, utterances: 0, voiceprints: 0, deepfakeEmbeddings: 0 };
  for (const [k, { document }] of syntheticCalls({ count: documents, seed, firstPid: 1 }).entries()) {
    // expectations come from the document itself, not from what the import reports
    const counts = expectedCounts(document);
    expected.utterances += counts.utterances;
    expected.voiceprints += counts.voiceprints;
    expected.deepfakeEmbeddings += counts.deepfakeEmbeddings;
    const file = path.join(dir, `document-${String(k + 1).padStart(6, '0')}.json`);
    fs.writeFileSync(file, JSON.stringify(document));
    files.push(file);
  }
  return { files, expected };
}

async function importAll(database: Database, files: string[]): Promise<number> {
  const progressEvery = Math.max(1, Math.ceil(files.length / 10));
  const started = performance.now();
  for (const [index, file] of files.entries()) {
    const outcome = await importDocumentFile(database.db, file, { api: 'deepfake' });
    if (outcome.status !== 'imported') {
      throw new Error(`${database.engine}: ${file} was ${outcome.status}, not imported: ${outcome.error ?? ''}`);
    }
    const done = index + 1;
    if (done % progressEvery === 0 || done === files.length) {
      const seconds = (performance.now() - started) / 1000;
      console.error(
        `  ${database.engine}: ${done}/${files.length} documents, ${(done / seconds).toFixed(1)} documents/s`,
      );
    }
  }
  return (performance.now() - started) / 1000;
}

async function storedCounts(database: Database): Promise<Counts> {
  const [row] = await queryRows<Counts>(
    database.db,
    sql`select (select count(*)::int from recordings) as documents,
               (select count(*)::int from utterances) as utterances,
               (select count(*)::int from voiceprints) as voiceprints,
               (select count(*)::int from utterances where deepfake_embedding is not null) as "deepfakeEmbeddings"`,
  );
  if (!row) throw new Error(`${database.engine}: the count query returned no row`);
  return row;
}

function verify(engine: Engine, stored: Counts, expected: Counts) {
  const wrong = (Object.keys(expected) as (keyof Counts)[]).filter((key) => stored[key] !== expected[key]);
  if (wrong.length > 0) {
    const detail = wrong.map((key) => `${key} ${stored[key]} (expected ${expected[key]})`).join(', ');
    throw new Error(`${engine}: the database does not hold what was imported: ${detail}`);
  }
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

function commandLine(args: string[]): string {
  const quoted = args.map((arg) => (/^[\w.,=/-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`));
  const env = process.env.BENCH_DATABASE_URL ? `BENCH_DATABASE_URL=${redactUrl(process.env.BENCH_DATABASE_URL)} ` : '';
  return `${env}node bench/import.ts${quoted.map((arg) => ` ${arg}`).join('')}`;
}

function printSummary(figures: Partial<Record<Engine, EngineFigures>>, ratio: number | null) {
  const header = ['engine', 'documents', 'utterances', 'seconds', 'utterances/s', 'documents/s'];
  const rows = Object.entries(figures).map(([engine, f]) => [
    engine,
    String(f.documents),
    String(f.utterances),
    f.seconds.toFixed(2),
    f.utterancesPerSecond.toFixed(1),
    f.documentsPerSecond.toFixed(1),
  ]);
  for (const row of [header, ...rows]) {
    console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(8) : cell.padStart(12))).join(' '));
  }
  if (ratio !== null) console.log(`PGlite ÷ PostgreSQL (utterances/s): ${ratio.toFixed(3)}`);
}

async function main() {
  const args = process.argv.slice(2);
  const options = parseOptions(args);
  const documentsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-documents-'));
  try {
    const generationStarted = performance.now();
    const { files, expected } = writeDocuments(documentsDir, options.documents, options.seed);
    if (expected.utterances < MINIMUM_UTTERANCES) {
      fail(
        `${options.documents} documents hold ${expected.utterances} utterances; the benchmark needs at least ` +
          `${MINIMUM_UTTERANCES.toLocaleString('en')} for a stable rate: raise --documents`,
      );
    }
    console.error(
      `wrote ${files.length} documents (${expected.utterances} utterances) in ` +
        `${((performance.now() - generationStarted) / 1000).toFixed(1)} s to ${documentsDir}`,
    );

    const figures: Partial<Record<Engine, EngineFigures>> = {};
    let machine: Machine | undefined;
    for (const engine of options.engines) {
      console.error(`${engine}: importing`);
      figures[engine] = await withBenchDatabase(engine, BENCH_DATABASE, async (database) => {
        const seconds = await importAll(database, files);
        const stored = await storedCounts(database);
        verify(engine, stored, expected);
        // the native server's version and settings describe the run best; PGlite's only when alone
        if (engine === 'postgres' || !machine) machine = await describeMachine(database);
        return {
          ...stored,
          seconds: round(seconds, 3),
          utterancesPerSecond: round(stored.utterances / seconds, 1),
          documentsPerSecond: round(stored.documents / seconds, 1),
        };
      });
    }

    const { postgres, pglite } = figures;
    const ratio = postgres && pglite ? round(pglite.utterancesPerSecond / postgres.utterancesPerSecond, 3) : null;
    const headline = Object.entries(figures)
      .map(([engine, f]) => `${engine} ${Math.round(f.utterancesPerSecond).toLocaleString('en')} utterances/s`)
      .join(', ');
    const ratioNote = ratio === null ? '' : ` (PGlite ÷ PostgreSQL ${ratio})`;
    recordResult(benchDir, {
      name: 'import',
      command: commandLine(args),
      machine,
      figures: { ...figures, pgliteToPostgresRatio: ratio },
      summary: `${headline}${ratioNote}`,
    });
    printSummary(figures, ratio);
  } finally {
    fs.rmSync(documentsDir, { recursive: true, force: true });
  }
}

await main();
