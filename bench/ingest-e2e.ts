/**
 * End-to-end ingestion benchmark: demo-data files → `voxtrace ingest` → API (`voxtrace serve`) →
 * spool → 2 `voxtrace worker` processes → the stand-in (`voxtrace standin`, speed 0) → native
 * PostgreSQL. Every piece is its own OS process, as in production.
 *
 *   node bench/ingest-e2e.ts [--recordings N] [--pglite]
 *
 * Default: 10,000 recordings (the benchmark refuses fewer). Figures: recordings, utterances,
 * seconds (first upload to last recording stored), recordings/s, utterances/s, and the workers'
 * peak RSS sampled every second. Targets on a 2-core machine: ≥ 50 recordings/s, RSS ≤ 300 MiB.
 *
 * --pglite: the same N (≥ 1,000) through `voxtrace start` (one process: API, worker and stand-in on
 * embedded PGlite) and through the native setup above, in the same run, as a ratio
 * (ingest-e2e-pglite.json).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { type Database, openPglite, openPostgres, queryRows } from '../src/db/client.ts';
import { writeDemoData } from '../src/standin/demo-data.ts';
import { adminQuery, databaseUrl } from '../test/support/postgres.ts';
import { cpuAccount } from './support/cpu.ts';
import { calibrationMs, describeMachine } from './support/machine.ts';
import { recordResult } from './support/results.ts';

const benchDir = import.meta.dirname;
const root = path.resolve(benchDir, '..');
// as users run voxtrace: through the wrapper, with its Node flags
const voxtrace = path.join(root, 'voxtrace');
const serverUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const BENCH_DATABASE = 'voxtrace_bench_e2e';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { recordings: { type: 'string' }, pglite: { type: 'boolean', default: false } },
});
const pgliteMode = values.pglite ?? false;
const recordings = Number(values.recordings ?? (pgliteMode ? 1000 : 10_000));
const minimum = pgliteMode ? 1000 : 10_000;
if (!Number.isInteger(recordings) || recordings < minimum) {
  process.stderr.write(
    `bench/ingest-e2e: --recordings must be a whole number ≥ ${minimum} (got ${values.recordings})\n`,
  );
  process.exit(1);
}

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function freePortBase(): number {
  return 21000 + (process.pid % 4000) * 2;
}

/** Starts a voxtrace command and resolves once its stdout shows `ready`. */
function startProcess(args: string[], env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(voxtrace, args, {
    cwd: root,
    env: { ...process.env, VOXTRACE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      if (ready.test(out)) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`voxtrace ${args.join(' ')} exited ${code}:\n${out}`)));
  });
}

/** Peak resident memory of processes, sampled every second from /proc. */
function sampleRss(pids: number[]) {
  let peak = 0;
  const read = () => {
    for (const pid of pids) {
      try {
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peak = Math.max(peak, kib / 1024);
      } catch {
        // the process has ended
      }
    }
  };
  const timer = setInterval(read, 1000);
  return {
    stop: () => {
      clearInterval(timer);
      read();
      return Math.round(peak * 10) / 10;
    },
  };
}

/** Starts `voxtrace ingest --wait` on the corpus; `done` settles when it exits. */
function runIngest(dir: string, apiUrl: string, key: string) {
  const child = spawn(voxtrace, ['ingest', '--account-from-dir', '--wait', '--concurrency', '8', dir], {
    cwd: root,
    env: { ...process.env, VOXTRACE_API_URL: apiUrl, VOXTRACE_API_KEY: key },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  const done = new Promise<void>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ingest exited ${code}`))));
  });
  return { pid: child.pid as number, done };
}

/** What the run stored: recordings (all, and complete) and utterances. */
async function storedCounts(database: Database) {
  const [counts] = await queryRows<{ recordings: number; complete: number; utterances: number }>(
    database.db,
    sql`select (select count(*)::int from recordings) as recordings,
               (select count(*)::int from recordings where status = 'complete') as complete,
               (select count(*)::int from utterances) as utterances`,
  );
  if (!counts) throw new Error('the count query returned no row');
  return counts;
}

async function nativeRun(dir: string) {
  await adminQuery(serverUrl, `drop database if exists ${BENCH_DATABASE} with (force)`);
  await adminQuery(serverUrl, `create database ${BENCH_DATABASE}`);
  const url = databaseUrl(serverUrl, BENCH_DATABASE);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-e2e-'));
  const base = freePortBase();
  const env = {
    DATABASE_URL: url,
    VOXTRACE_DATA_DIR: dataDir,
    VOXTRACE_PORT: String(base),
    VOXTRACE_STANDIN_PORT: String(base + 1),
    VOXTRACE_STANDIN_TOKEN: 'bench',
    VOXTRACE_STANDIN_SPEED: '0',
  };
  try {
    const standin = await startProcess(['standin'], env, /stand-in on/);
    const api = await startProcess(['serve'], env, /admin key: (vxt_\S+)/);
    const key = fs.readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
    const workers = await Promise.all([
      startProcess(['worker'], env, /voxtrace worker /),
      startProcess(['worker'], env, /voxtrace worker /),
    ]);
    const rss = sampleRss(workers.map((w) => w.pid as number));
    const started = performance.now();
    const ingest = runIngest(dir, `http://127.0.0.1:${base}`, key);
    const cpu = cpuAccount({
      standin: () => [standin.pid as number],
      api: () => [api.pid as number],
      workers: () => workers.map((w) => w.pid as number),
      ingest: () => [ingest.pid],
    });
    await ingest.done;
    const seconds = (performance.now() - started) / 1000;
    const workerMaxRssMiB = rss.stop();
    const cpuSeconds = cpu.stop();
    const database = openPostgres(url);
    try {
      const counts = await storedCounts(database);
      const machine = await describeMachine(database);
      for (const child of [api, ...workers]) child.kill('SIGTERM');
      return { counts, seconds, workerMaxRssMiB, cpuSeconds, machine };
    } finally {
      await database.close();
    }
  } finally {
    for (const child of children.splice(0)) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));
    await adminQuery(serverUrl, `drop database if exists ${BENCH_DATABASE} with (force)`);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function pgliteRun(dir: string) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-e2e-pglite-'));
  const base = freePortBase();
  const env = {
    VOXTRACE_DATA_DIR: dataDir,
    VOXTRACE_PORT: String(base),
    VOXTRACE_STANDIN_PORT: String(base + 1),
    VOXTRACE_STANDIN_SPEED: '0',
  };
  try {
    const start = await startProcess(['start'], env, /worker: /);
    const key = fs.readFileSync(path.join(dataDir, 'admin-key'), 'utf8').trim();
    const rss = sampleRss([start.pid as number]);
    const started = performance.now();
    await runIngest(dir, `http://127.0.0.1:${base}`, key).done;
    const seconds = (performance.now() - started) / 1000;
    const maxRssMiB = rss.stop();
    start.kill('SIGTERM');
    await new Promise((resolve) => start.on('exit', resolve));
    const database = await openPglite(path.join(dataDir, 'db'));
    try {
      const counts = await storedCounts(database);
      return { counts, seconds, maxRssMiB };
    } finally {
      await database.close();
    }
  } finally {
    for (const child of children.splice(0)) child.kill('SIGTERM');
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** The figures of one run: what was stored, and how fast. */
function rates(counts: { complete: number; utterances: number }, seconds: number) {
  return {
    recordings: counts.complete,
    utterances: counts.utterances,
    seconds: round(seconds, 2),
    recordingsPerSecond: round(counts.complete / seconds),
    utterancesPerSecond: round(counts.utterances / seconds),
  };
}
const command = ['node', 'bench/ingest-e2e.ts', ...process.argv.slice(2)].join(' ');
const corpus = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-corpus-'));
try {
  process.stderr.write(`writing ${recordings} demo-data calls…\n`);
  await writeDemoData(corpus, {
    calls: recordings,
    speakers: Math.max(10, Math.round(recordings / 5)),
    fraudsters: 10,
    campaigns: 3,
    seed: 1,
  });
  const calibrationBefore = await calibrationMs();
  const native = await nativeRun(corpus);
  const calibrationAfter = await calibrationMs();
  if (native.counts.complete !== recordings) {
    throw new Error(`native: ${native.counts.complete} of ${recordings} recordings stored`);
  }
  const nativeFigures = {
    ...rates(native.counts, native.seconds),
    workerMaxRssMiB: native.workerMaxRssMiB,
    // where the 2 cores went: CPU seconds per process role during the run
    cpuSeconds: native.cpuSeconds,
    // the machine's speed before and after (bench/support/machine.ts): higher means a slowed machine
    calibrationMs: { before: calibrationBefore, after: calibrationAfter },
  };
  if (!pgliteMode) {
    recordResult(benchDir, {
      name: 'ingest-e2e',
      command,
      machine: native.machine,
      figures: nativeFigures,
      summary: `${nativeFigures.recordingsPerSecond} recordings/s, ${nativeFigures.utterancesPerSecond} utterances/s over ${recordings} recordings (2 workers, stand-in speed 0, PostgreSQL); worker RSS ≤ ${nativeFigures.workerMaxRssMiB} MiB`,
    });
  } else {
    const embedded = await pgliteRun(corpus);
    if (embedded.counts.complete !== recordings) {
      throw new Error(`pglite: ${embedded.counts.complete} of ${recordings} recordings stored`);
    }
    const pgliteFigures = { ...rates(embedded.counts, embedded.seconds), startMaxRssMiB: embedded.maxRssMiB };
    const ratio = round(pgliteFigures.recordingsPerSecond / nativeFigures.recordingsPerSecond, 3);
    recordResult(benchDir, {
      name: 'ingest-e2e-pglite',
      command,
      machine: native.machine,
      figures: { postgres: nativeFigures, pglite: pgliteFigures, pgliteToPostgresRatio: ratio },
      summary: `PGlite (voxtrace start, one process) ${pgliteFigures.recordingsPerSecond} recordings/s vs PostgreSQL ${nativeFigures.recordingsPerSecond} at N=${recordings}: ratio ${ratio}`,
    });
  }
  process.stdout.write(`${JSON.stringify({ native: nativeFigures }, null, 2)}\n`);
} finally {
  fs.rmSync(corpus, { recursive: true, force: true });
}
