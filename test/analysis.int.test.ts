import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countAnalysisBacklog, findStoredEvent } from '../src/analysis/outbox.ts';
import { type Analysis, startAnalysis } from '../src/analysis/runner.ts';
import { recordingEvents } from '../src/db/schema.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { startWorker } from '../src/ingest/worker.ts';
import { createLogger } from '../src/log.ts';
import { recordStored } from '../src/recordings/store.ts';
import { insertImportedRecording } from '../src/recordings/transitions.ts';
import { startStandin } from '../src/standin/server.ts';
import { createUpstreamClient } from '../src/upstream/client.ts';
import { committedRuns, createRunsTable, type TestStepSpec, testSteps } from './support/analysis-steps.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { itNotOnPglite } from './support/engine.ts';
import { demoCallFiles, enqueueAudio } from './support/ingest.ts';
import { ingestionViolations } from './support/invariants.ts';
import { until } from './support/until.ts';
import { startWorkerProcess, workerProcessEnv } from './support/worker-processes.ts';

/**
 * The outbox and its consumer: every stored recording's `stored` event goes through the analysis
 * steps in order, each step's writes committing exactly once, whatever fails or replays.
 */

let database: TestDatabase;
const runners: Analysis[] = [];
beforeEach(async () => {
  database = await createTestDatabase();
  await createRunsTable(database.db);
});
afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.stop(0);
  await database?.close();
});

/** `count` stored recordings (imported, with no rows), each with its `stored` event; their ids. */
async function storedRecordings(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    await withTransaction(database.db, async (tx) => {
      const id = await insertImportedRecording(tx, {
        documentSha256: randomUUID(),
        upstreamApi: 'deepfake',
        upstreamCid: null,
        upstreamPid: null,
        rawDocument: { results: [] },
        accountRef: null,
        channel: null,
      });
      await recordStored(tx, id as string, { utterances: [], voiceprints: [] });
      ids.push(id as string);
    });
  }
  return ids;
}

function run(
  specs: TestStepSpec[],
  options: { leaseSeconds?: number; maxAttempts?: number; concurrency?: number } = {},
) {
  const runner = startAnalysis({
    db: database.db,
    log: createLogger('silent'),
    steps: testSteps(specs),
    concurrency: options.concurrency ?? 3,
    leaseSeconds: options.leaseSeconds ?? 30,
    maxAttempts: options.maxAttempts ?? 5,
    idleMs: 20,
    retryBaseMs: 10,
  });
  runners.push(runner);
  return runner;
}

const allSettled = async (ids: string[]) =>
  until('every event to be done or dead', async () => {
    const { pending } = await countAnalysisBacklog(database.db);
    return pending === 0 && ids.length > 0;
  });

describe(`analysis steps over the outbox on ${engine}`, () => {
  it('runs every step once per stored recording, in order, a later step seeing the earlier one', async () => {
    const ids = await storedRecordings(12);
    expect(await countAnalysisBacklog(database.db)).toEqual({ pending: 12, dead: 0 });
    run([{ name: 'first' }, { name: 'second', after: 'first' }, { name: 'third', after: 'second' }]);
    await allSettled(ids);
    const runs = await committedRuns(database.db);
    for (const id of ids) expect(runs[id]).toEqual({ first: 1, second: 1, third: 1 });
    for (const id of ids) {
      expect(await findStoredEvent(database.db, id)).toMatchObject({
        status: 'done',
        stepsDone: ['first', 'second', 'third'],
        attempts: 0,
        leaseOwner: null,
        error: null,
      });
    }
    expect(await countAnalysisBacklog(database.db)).toEqual({ pending: 0, dead: 0 });
  });

  it('rolls a failed step back, retries the event later, and never reruns the steps already committed', async () => {
    const [id] = await storedRecordings(1);
    run([{ name: 'first' }, { name: 'flaky', failTimes: 2, after: 'first' }, { name: 'last', after: 'flaky' }]);
    await allSettled([id as string]);
    // two failed runs of `flaky` wrote a row each and rolled it back: one row stays, from the run that committed
    expect((await committedRuns(database.db))[id as string]).toEqual({ first: 1, flaky: 1, last: 1 });
    expect(await findStoredEvent(database.db, id as string)).toMatchObject({
      status: 'done',
      attempts: 2,
      stepsDone: ['first', 'flaky', 'last'],
    });
  });

  it('gives up on a step that keeps failing (dead, with its error, counted apart) and goes on with the others', async () => {
    const ids = await storedRecordings(3);
    run([{ name: 'first' }, { name: 'broken', failTimes: 1_000 }], { maxAttempts: 3 });
    await allSettled(ids);
    expect(await countAnalysisBacklog(database.db)).toEqual({ pending: 0, dead: 3 });
    const event = await findStoredEvent(database.db, ids[0] as string);
    expect(event).toMatchObject({ status: 'dead', attempts: 3, stepsDone: ['first'] });
    expect(event?.error).toMatch(/^step broken: step broken fails on purpose/);
    expect((await committedRuns(database.db))[ids[0] as string]).toEqual({ first: 1 });
  });

  it('replays an event from where it stopped: a step already committed is skipped', async () => {
    const [id] = await storedRecordings(1);
    // what a runner leaves when it dies right after its first step committed
    await database.db
      .update(recordingEvents)
      .set({ stepsDone: ['first'] })
      .where(eq(recordingEvents.recordingId, id as string));
    run([{ name: 'first' }, { name: 'second' }]);
    await allSettled([id as string]);
    expect((await committedRuns(database.db))[id as string]).toEqual({ second: 1 });
    expect((await findStoredEvent(database.db, id as string))?.stepsDone).toEqual(['first', 'second']);
  });

  it('shares events between runners: each step still commits once per recording', async () => {
    const ids = await storedRecordings(30);
    run([{ name: 'a' }, { name: 'b', after: 'a' }], { concurrency: 2 });
    run([{ name: 'a' }, { name: 'b', after: 'a' }], { concurrency: 2 });
    await allSettled(ids);
    const runs = await committedRuns(database.db);
    for (const id of ids) expect(runs[id]).toEqual({ a: 1, b: 1 });
  });

  it('keeps a step that outlives its lease to itself: the event is not taken while its transaction runs', async () => {
    const [id] = await storedRecordings(1);
    const slow = run([{ name: 'slow', pauseMs: 2_500 }], { leaseSeconds: 1 });
    await until(
      'the slow step to hold the event',
      async () => (await findStoredEvent(database.db, id as string))?.leaseOwner,
    );
    // a second runner looks for due events all along, the lease expired after a second
    const other = run([{ name: 'slow' }], { leaseSeconds: 1 });
    await allSettled([id as string]);
    expect((await committedRuns(database.db))[id as string]).toEqual({ slow: 1 });
    expect(slow.stats.steps + other.stats.steps).toBe(1);
  });

  it('refuses two steps of one name', () => {
    expect(() => run([{ name: 'same' }, { name: 'same' }])).toThrow(/two analysis steps are named "same"/);
  });
});

describe(`the worker hands stored recordings to the analysis on ${engine}`, () => {
  it('wakes the runner when it stores a recording; the step reads the stored rows', async () => {
    const standin = await startStandin({ port: 0, speed: 0 });
    const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-analysis-'));
    const client = createUpstreamClient({ baseUrl: standin.url, cid: '5', token: standin.token, api: 'deepfake' });
    const seen: { recordingId: string; voiceprints: number }[] = [];
    const analysis = startAnalysis({
      db: database.db,
      log: createLogger('silent'),
      steps: [
        {
          name: 'count-voiceprints',
          async run({ tx, event }) {
            const result = (await tx.execute(
              sql`select count(*)::int as n from voiceprints where recording_id = ${event.recordingId}`,
            )) as unknown as { rows: { n: number }[] };
            seen.push({ recordingId: event.recordingId, voiceprints: result.rows[0]?.n ?? 0 });
          },
        },
      ],
      concurrency: 2,
      leaseSeconds: 30,
      maxAttempts: 3,
      // long enough that only the worker's wake-up can explain a prompt run
      idleMs: 60_000,
    });
    const worker = startWorker({
      db: database.db,
      client,
      log: createLogger('silent'),
      spoolDir,
      concurrency: 2,
      leaseSeconds: 30,
      maxAttempts: 3,
      keepAudio: false,
      idleMs: 20,
      onStored: () => analysis.wake(),
    });
    try {
      const ids: string[] = [];
      for (const call of demoCallFiles(3, 21)) ids.push(await enqueueAudio(database.db, spoolDir, call.bytes));
      await until('three recordings analysed', () => seen.length === 3, 20_000);
      expect(seen.map((s) => s.recordingId).sort()).toEqual([...ids].sort());
      expect(seen.every((s) => s.voiceprints > 0)).toBe(true);
    } finally {
      await worker.stop();
      await analysis.stop();
      await client.close();
      await standin.close();
      const violations = await ingestionViolations({ db: database.db, standinStats: standin.stats(), spoolDir });
      fs.rmSync(spoolDir, { recursive: true, force: true });
      expect(violations).toEqual([]);
    }
  });
});

describe('analysis in two worker processes, one killed with SIGKILL mid-step (PostgreSQL)', () => {
  const children: ChildProcessWithoutNullStreams[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  itNotOnPglite(
    'multi-process',
    "the other process runs the killed one's step again, and each step commits once per recording",
    async () => {
      const standin = await startStandin({ port: 0, speed: 0 });
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-analysis-crash-'));
      try {
        const env = workerProcessEnv({ databaseUrl: database.url as string, dataDir, standin, logLevel: 'warn' });
        const start = (steps: TestStepSpec[]) => startWorkerProcess(env, { steps }, children);
        // the first process's second step sleeps inside its transaction: the crash window
        const victim = await start([{ name: 'identify' }, { name: 'score', after: 'identify', pauseMs: 600_000 }]);
        const spoolDir = path.join(dataDir, 'spool');
        const ids: string[] = [];
        for (const call of demoCallFiles(4, 31)) ids.push(await enqueueAudio(database.db, spoolDir, call.bytes));
        // generous waits: on a loaded CI machine four uploads and their steps can take a while;
        // a wait that runs out names itself and shows what both workers printed
        await until(
          'the victim to be inside a step',
          async () => {
            const rows = await database.db.execute(
              sql`select count(*)::int as n from recording_events where status = 'pending' and lease_owner is not null and 'identify' = any(steps_done)`,
            );
            return ((rows as unknown as { rows: { n: number }[] }).rows[0]?.n ?? 0) > 0;
          },
          60_000,
        ).catch(withOutput(victim));
        victim.child.kill('SIGKILL');
        const survivor = await start([{ name: 'identify' }, { name: 'score', after: 'identify' }]);
        await until(
          'every recording stored and analysed',
          async () => {
            // one read: counting the backlog and the events apart lets a recording stored between
            // the two pass as analysed
            const events = await database.db.select().from(recordingEvents);
            return events.length === ids.length && events.every((e) => e.status !== 'pending');
          },
          90_000,
        ).catch(withOutput(victim, survivor));
        // every event done with both steps, and each step's write committed once: all in one
        // comparison, so that a failure shows each event's state beside its runs
        const runs = await committedRuns(database.db);
        const events = await database.db.select().from(recordingEvents);
        const outcome = (recordingId: string) => {
          const event = events.find((e) => e.recordingId === recordingId);
          return { status: event?.status, stepsDone: event?.stepsDone, error: event?.error, runs: runs[recordingId] };
        };
        const expected = {
          status: 'done',
          stepsDone: ['identify', 'score'],
          error: null,
          runs: { identify: 1, score: 1 },
        };
        expect(ids.map(outcome)).toEqual(ids.map(() => expected));
        expect(await ingestionViolations({ db: database.db, standinStats: standin.stats(), spoolDir })).toEqual([]);
      } finally {
        await standin.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    },
    240_000,
  );
});

/** Rethrows a failed wait with what the worker processes printed, the one clue to why. */
function withOutput(...workers: { pid: number; output: () => string }[]) {
  return (error: unknown): never => {
    const printed = workers.map((w) => `--- worker ${w.pid} ---\n${w.output().slice(-4000)}`).join('\n');
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${printed}`);
  };
}
