/**
 * Outbox benchmark: what the analysis mechanism itself costs per stored recording, apart from any
 * step's own work. N stored recordings with their `stored` events are loaded (untimed), then the
 * analysis runner (src/analysis/runner.ts) drains them with steps that do nothing, as `worker` and
 * `start` run it: claims of up to `concurrency` events, each step in its own transaction with its
 * `steps_done` record, then the event marked done.
 *
 *   node bench/outbox.ts [--events N] [--concurrency C] [--engines postgres,pglite]
 *
 * Default: 10,000 events, concurrency 4 (VOXTRACE_WORKER_CONCURRENCY's default), both engines.
 * Timed, each from a fresh backlog of N pending events:
 * - `1 step`, `3 steps`: one runner; ms of wall time per event, and what each extra step adds;
 * - `2 runners × 1 step`: two runners sharing the backlog, as two worker processes do;
 * - the backlog count (`countAnalysisBacklog`) at N pending events, median of 20.
 * Checked after each phase: every event `done` with exactly its steps. Writes
 * bench/results/outbox.json and its line in bench/README.md.
 */
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { countAnalysisBacklog } from '../src/analysis/outbox.ts';
import { type AnalysisStep, startAnalysis } from '../src/analysis/runner.ts';
import { type Database, queryRows } from '../src/db/client.ts';
import { createLogger } from '../src/log.ts';
import { type BenchEngine, withBenchDatabase } from './support/database.ts';
import { calibrationMs, describeMachine, type Machine } from './support/machine.ts';
import { recordResult } from './support/results.ts';

const benchDir = import.meta.dirname;
const BENCH_DATABASE = 'voxtrace_bench_outbox';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    events: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '4' },
    engines: { type: 'string', default: 'postgres,pglite' },
  },
});
const events = Number(values.events);
const concurrency = Number(values.concurrency);
const engines = (values.engines ?? '').split(',').map((e) => e.trim()) as BenchEngine[];
if (!Number.isInteger(events) || events < 1000) fail(`--events must be a whole number ≥ 1000 (got ${values.events})`);
if (!Number.isInteger(concurrency) || concurrency < 1) fail('--concurrency must be a whole number ≥ 1');
if (engines.length === 0 || engines.some((e) => e !== 'postgres' && e !== 'pglite')) {
  fail('--engines takes postgres, pglite or both, comma-separated');
}

function fail(message: string): never {
  process.stderr.write(`bench/outbox: ${message}\n`);
  process.exit(1);
}

const noop = (name: string): AnalysisStep => ({ name, run: async () => {} });
const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** A fresh backlog: N stored recordings (imported, no rows) and their pending `stored` events. */
async function loadBacklog(database: Database) {
  await database.db.execute(sql`truncate recordings cascade`);
  await database.db.execute(sql`
    insert into recordings (source, status, document_sha256, completed_at)
    select 'import', 'complete', md5(i::text), now() from generate_series(1, ${events}) as i`);
  await database.db.execute(sql`
    insert into recording_events (recording_id, kind) select id, 'stored' from recordings`);
  if (database.engine === 'postgres') await database.db.execute(sql`vacuum analyze recording_events`);
}

/** Drains the backlog with `runners` runners of `steps`; the wall-clock seconds it took. */
async function drain(database: Database, steps: AnalysisStep[], runners = 1): Promise<number> {
  const log = createLogger('silent');
  const started = performance.now();
  const running = Array.from({ length: runners }, () =>
    startAnalysis({ db: database.db, log, steps, concurrency, leaseSeconds: 60, maxAttempts: 3, idleMs: 20 }),
  );
  for (;;) {
    const { pending } = await countAnalysisBacklog(database.db);
    if (pending === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const seconds = (performance.now() - started) / 1000;
  for (const runner of running) await runner.stop(0);
  return seconds;
}

async function verify(database: Database, stepNames: string[], phase: string) {
  const [row] = await queryRows<{ done: number; wrong: number }>(
    database.db,
    sql`select count(*) filter (where status = 'done')::int as done,
               count(*) filter (where status <> 'done' or steps_done <> ${sql.param(stepNames)}::text[])::int as wrong
        from recording_events`,
  );
  if (row?.done !== events || row.wrong !== 0) {
    throw new Error(`${phase}: ${row?.done} of ${events} events done, ${row?.wrong} not done with exactly their steps`);
  }
}

async function measure(engine: BenchEngine) {
  return withBenchDatabase(engine, BENCH_DATABASE, async (database) => {
    const phases: Record<string, { seconds: number; msPerEvent: number; eventsPerSecond: number }> = {};
    const phase = async (name: string, steps: AnalysisStep[], runners = 1) => {
      await loadBacklog(database);
      console.error(`${engine}: ${name}: draining ${events} events`);
      const seconds = await drain(database, steps, runners);
      await verify(
        database,
        steps.map((s) => s.name),
        name,
      );
      phases[name] = {
        seconds: round(seconds),
        msPerEvent: round((seconds * 1000) / events),
        eventsPerSecond: round(events / seconds, 1),
      };
      console.error(`  ${phases[name]?.msPerEvent} ms per event, ${phases[name]?.eventsPerSecond} events/s`);
    };
    await phase('1 step', [noop('a')]);
    await phase('3 steps', [noop('a'), noop('b'), noop('c')]);
    await phase('2 runners × 1 step', [noop('a')], 2);

    await loadBacklog(database);
    const timings: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      await countAnalysisBacklog(database.db);
      timings.push(performance.now() - started);
    }
    timings.sort((a, b) => a - b);
    const one = phases['1 step']?.msPerEvent ?? 0;
    const three = phases['3 steps']?.msPerEvent ?? 0;
    return {
      machine: engine === 'postgres' ? await describeMachine(database) : undefined,
      figures: {
        phases,
        msPerEvent: one,
        msPerExtraStep: round((three - one) / 2),
        backlogCountMs: round(timings[10] ?? 0, 2),
      },
    };
  });
}

async function main() {
  const before = await calibrationMs();
  const figures: Record<string, unknown> = { events, concurrency };
  let machine: Machine | undefined;
  for (const engine of engines) {
    const result = await measure(engine);
    figures[engine] = result.figures;
    machine ??= result.machine;
  }
  figures.calibrationMs = { before, after: await calibrationMs() };
  const pg = figures.postgres as Awaited<ReturnType<typeof measure>>['figures'] | undefined;
  const lite = figures.pglite as Awaited<ReturnType<typeof measure>>['figures'] | undefined;
  const describe = (name: string, f: typeof pg) =>
    f
      ? `${name} ${f.msPerEvent} ms per event (+${f.msPerExtraStep} ms per extra step; ` +
        `2 runners: ${f.phases['2 runners × 1 step']?.msPerEvent} ms)`
      : null;
  recordResult(benchDir, {
    name: 'outbox',
    command: `node bench/outbox.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machine ?? (await import('./support/machine.ts')).describeHost(),
    figures,
    summary:
      [describe('PostgreSQL', pg), describe('PGlite', lite)].filter(Boolean).join(', ') +
      ` of wall time for the analysis runner's own work (no-op steps, ${events} events, concurrency ${concurrency})`,
  });
  console.log(JSON.stringify(figures, null, 2));
}

await main();
