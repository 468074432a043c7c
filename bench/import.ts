/**
 * Import benchmark: how fast saved Deepfake API results documents go through the real import
 * path (`importDocumentFile`, one transaction per file, as `./voxtrace import` does) on native
 * PostgreSQL and on on-disk PGlite, in the same run so the two can be compared as a ratio.
 *
 *   node bench/import.ts [--documents N] [--utterances-per-document U] [--engines postgres,pglite]
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
import { type Database, type Engine, openPglite, openPostgres, queryRows, redactUrl } from '../src/db/client.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { importDocumentFile } from '../src/import/import.ts';
import { adminQuery, databaseUrl } from '../test/support/postgres.ts';
import { syntheticDeepfakeDocument } from '../test/support/synthetic-documents.ts';
import { describeMachine, type Machine } from './support/machine.ts';

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
      documents: { type: 'string', default: '1000' },
      'utterances-per-document': { type: 'string', default: '10' },
      engines: { type: 'string', default: 'postgres,pglite' },
    },
  });
  const documents = positiveInteger('--documents', values.documents);
  const utterancesPerDocument = positiveInteger('--utterances-per-document', values['utterances-per-document']);
  if (documents * utterancesPerDocument < MINIMUM_UTTERANCES) {
    fail(
      `${documents} documents × ${utterancesPerDocument} utterances = ${documents * utterancesPerDocument} utterances; ` +
        `the benchmark needs at least ${MINIMUM_UTTERANCES.toLocaleString('en')} for a stable rate`,
    );
  }
  const engines = values.engines.split(',').map((name) => name.trim());
  const unknown = engines.find((name) => name !== 'postgres' && name !== 'pglite');
  if (unknown !== undefined) fail(`unknown engine "${unknown}" (postgres, pglite)`);
  return { documents, utterancesPerDocument, engines: [...new Set(engines)] as Engine[] };
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
function writeDocuments(dir: string, documents: number, utterancesPerDocument: number) {
  const files: string[] = [];
  const expected: Counts = { documents, utterances: 0, voiceprints: 0, deepfakeEmbeddings: 0 };
  for (let k = 1; k <= documents; k++) {
    const document = syntheticDeepfakeDocument({ seed: k, pid: k, utterances: utterancesPerDocument });
    // expectations come from the document itself, not from what the import reports
    const results = document.results as { id: string; task: string; embedding: string | null }[];
    expected.utterances += new Set(results.map((item) => item.id)).size;
    expected.voiceprints += results.filter((item) => item.task === 'diarization' && item.embedding).length;
    expected.deepfakeEmbeddings += results.filter((item) => item.task === 'features' && item.embedding).length;
    const file = path.join(dir, `document-${String(k).padStart(6, '0')}.json`);
    fs.writeFileSync(file, JSON.stringify(document));
    files.push(file);
  }
  return { files, expected };
}

/** A fresh, migrated database on `engine` for the length of `run`, removed afterwards. */
async function withFreshDatabase<T>(engine: Engine, run: (database: Database) => Promise<T>): Promise<T> {
  if (engine === 'pglite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-pglite-'));
    try {
      const database = await openPglite(path.join(dir, 'db'));
      try {
        await migrateDatabase(database);
        return await run(database);
      } finally {
        await database.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const serverUrl = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  await adminQuery(serverUrl, `drop database if exists ${BENCH_DATABASE} with (force)`);
  await adminQuery(serverUrl, `create database ${BENCH_DATABASE}`);
  try {
    // default connection settings, as `./voxtrace import` opens it: durable commits included
    const database = openPostgres(databaseUrl(serverUrl, BENCH_DATABASE));
    try {
      await migrateDatabase(database);
      return await run(database);
    } finally {
      await database.close();
    }
  } finally {
    await adminQuery(serverUrl, `drop database if exists ${BENCH_DATABASE} with (force)`);
  }
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

/** Replaces this benchmark's line in bench/README.md (creating the file with its header if needed). */
function updateReadme(line: string) {
  const readme = path.join(benchDir, 'README.md');
  const header = `# Benchmarks

Run each from the repo root with Node 24 (\`export PATH=$PWD/.voxtrace/node/bin:$PATH\` if the
system Node is older), e.g. \`node bench/import.ts\`; the first lines of each script list its
options. Native PostgreSQL is the server of \`$BENCH_DATABASE_URL\`, else
\`postgres://postgres@127.0.0.1:5432\`; each benchmark creates and drops its own database there.

Each run writes \`bench/results/<name>.json\` (\`{name, date, command, machine, figures}\`) and
replaces its line below. Numbers come from one run on a shared 2-core machine: compare them as
ratios within a run (e.g. PGlite ÷ PostgreSQL), not across runs or machines.

`;
  const lines = fs.existsSync(readme)
    ? fs.readFileSync(readme, 'utf8').trimEnd().split('\n')
    : header.trimEnd().split('\n');
  const index = lines.findIndex((l) => l.startsWith('- import:'));
  if (index >= 0) lines[index] = line;
  else lines.push(...(lines.at(-1)?.startsWith('- ') ? [] : ['']), line);
  fs.writeFileSync(readme, `${lines.join('\n')}\n`);
}

async function main() {
  const args = process.argv.slice(2);
  const options = parseOptions(args);
  const documentsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-documents-'));
  try {
    const generationStarted = performance.now();
    const { files, expected } = writeDocuments(documentsDir, options.documents, options.utterancesPerDocument);
    console.error(
      `wrote ${files.length} documents (${expected.utterances} utterances) in ` +
        `${((performance.now() - generationStarted) / 1000).toFixed(1)} s to ${documentsDir}`,
    );

    const figures: Partial<Record<Engine, EngineFigures>> = {};
    let machine: Machine | undefined;
    for (const engine of options.engines) {
      console.error(`${engine}: importing`);
      figures[engine] = await withFreshDatabase(engine, async (database) => {
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
    const date = new Date().toISOString();
    const command = commandLine(args);
    const result = { name: 'import', date, command, machine, figures: { ...figures, pgliteToPostgresRatio: ratio } };
    fs.mkdirSync(path.join(benchDir, 'results'), { recursive: true });
    fs.writeFileSync(path.join(benchDir, 'results', 'import.json'), `${JSON.stringify(result, null, 2)}\n`);

    const headline = Object.entries(figures)
      .map(([engine, f]) => `${engine} ${Math.round(f.utterancesPerSecond).toLocaleString('en')} utterances/s`)
      .join(', ');
    const ratioNote = ratio === null ? '' : ` (PGlite ÷ PostgreSQL ${ratio})`;
    updateReadme(`- import: ${date.slice(0, 10)} — ${headline}${ratioNote} — \`${command}\``);
    printSummary(figures, ratio);
  } finally {
    fs.rmSync(documentsDir, { recursive: true, force: true });
  }
}

await main();
