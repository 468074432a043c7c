import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { drainAnalysis } from '../src/analysis/drain.ts';
import { countAnalysisBacklog, findStoredEvent } from '../src/analysis/outbox.ts';
import { migrateDatabase } from '../src/db/migrate.ts';
import { recordingEvents } from '../src/db/schema.ts';
import { createLogger } from '../src/log.ts';
import { committedRuns, createRunsTable, type TestStepSpec, testSteps } from './support/analysis-steps.ts';
import { runCli } from './support/cli.ts';
import { createCliTarget, createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { must } from './support/must.ts';
import {
  leaseToOtherRunner,
  OTHER_RUNNER,
  retryLater,
  runWithSteps,
  storedRecordings,
} from './support/steps-commands.ts';

// each run of the CLI opens the database anew: seconds on PGlite, more on a busy machine
const CLI_TIMEOUT_MS = 240_000;

/**
 * `voxtrace analyze`: drains the analysis backlog with a runner of its own and says what it did;
 * with --wait, also waits for what another runner holds and for retries, until the backlog is 0.
 */

describe(`draining the analysis backlog on ${engine}`, () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
    await createRunsTable(database.db);
  });
  // one database for the file (a new one costs seconds on PGlite); each test starts from an empty outbox
  afterEach(async () => {
    await database.db.execute(sql`delete from recordings`);
    await database.db.execute(sql`delete from analysis_runs`);
  });
  afterAll(async () => {
    await database?.close();
  });

  const drain = (specs: TestStepSpec[], options: { wait: boolean; recordingIds?: string[]; maxAttempts?: number }) =>
    drainAnalysis({
      db: database.db,
      log: createLogger('silent'),
      steps: testSteps(specs),
      concurrency: 3,
      leaseSeconds: 30,
      maxAttempts: options.maxAttempts ?? 5,
      retryBaseMs: 10,
      pollMs: 20,
      wait: options.wait,
      recordingIds: options.recordingIds,
    });

  it('runs every step on every pending event, then stops and says what it did', async () => {
    const ids = await storedRecordings(database.db, 7);
    const summary = await drain([{ name: 'a' }, { name: 'b', after: 'a' }], { wait: false });
    expect(summary).toEqual({
      steps: ['a', 'b'],
      done: 7,
      dead: 0,
      retried: 0,
      left: { due: 0, held: 0, retrying: 0, pending: 0 },
      interrupted: false,
    });
    const runs = await committedRuns(database.db);
    expect(ids.map((id) => runs[id])).toEqual(ids.map(() => ({ a: 1, b: 1 })));
    expect(await countAnalysisBacklog(database.db)).toEqual({ pending: 0, dead: 0 });
    // a second drain finds nothing to do
    expect((await drain([{ name: 'a' }, { name: 'b' }], { wait: false })).done).toBe(0);
  });

  it("leaves an event another runner holds; with wait, takes it over once that runner's lease runs out", async () => {
    const [held, free] = (await storedRecordings(database.db, 2)) as [string, string];
    await leaseToOtherRunner(database.db, held, 2);
    const first = await drain([{ name: 'a' }], { wait: false });
    expect(first).toMatchObject({ done: 1, left: { pending: 1, held: 1, due: 0, retrying: 0 } });
    expect(await findStoredEvent(database.db, held)).toMatchObject({
      status: 'pending',
      leaseOwner: OTHER_RUNNER,
      stepsDone: [],
    });
    expect(await findStoredEvent(database.db, free)).toMatchObject({ status: 'done', stepsDone: ['a'] });

    const leaseEnd = (await findStoredEvent(database.db, held))?.leaseExpiresAt as Date;
    const second = await drain([{ name: 'a' }], { wait: true });
    expect(second).toMatchObject({ done: 1, left: { pending: 0 } });
    const event = await findStoredEvent(database.db, held);
    expect(event).toMatchObject({ status: 'done', stepsDone: ['a'], leaseOwner: null });
    // it waited for the lease to end (both times from the database's clock)
    expect(must(event?.completedAt).getTime()).toBeGreaterThanOrEqual(leaseEnd.getTime());
    expect((await committedRuns(database.db))[held]).toEqual({ a: 1 });
  });

  it('leaves an event waiting for its retry; with wait, retries it when it comes due', async () => {
    const [id] = (await storedRecordings(database.db, 1)) as [string];
    await retryLater(database.db, id, 1.5);
    const first = await drain([{ name: 'a' }], { wait: false });
    expect(first).toMatchObject({ done: 0, left: { pending: 1, retrying: 1, held: 0, due: 0 } });
    expect(await committedRuns(database.db)).toEqual({});

    const due = (await findStoredEvent(database.db, id))?.nextAttemptAt as Date;
    expect(await drain([{ name: 'a' }], { wait: true })).toMatchObject({ done: 1, left: { pending: 0 } });
    const event = await findStoredEvent(database.db, id);
    expect(event).toMatchObject({ status: 'done', attempts: 1, error: null });
    expect(must(event?.completedAt).getTime()).toBeGreaterThanOrEqual(due.getTime());
  });

  it('counts the events it gave up on as dead, and stops (a dead event is no longer pending)', async () => {
    const ids = await storedRecordings(database.db, 2);
    const summary = await drain([{ name: 'broken', failTimes: 1_000 }], { wait: true, maxAttempts: 2 });
    expect(summary).toMatchObject({ done: 0, dead: 2, retried: 2, left: { pending: 0 } });
    expect(await countAnalysisBacklog(database.db)).toEqual({ pending: 0, dead: 2 });
    expect((await findStoredEvent(database.db, ids[0] as string))?.error).toMatch(/^step broken: /);
  });

  it("analyses only the given recordings' events when asked (what an import does)", async () => {
    const [mine, other] = (await storedRecordings(database.db, 2)) as [string, string];
    const summary = await drain([{ name: 'a' }], { wait: true, recordingIds: [mine] });
    expect(summary).toMatchObject({ done: 1, left: { pending: 0 } });
    expect(await findStoredEvent(database.db, mine)).toMatchObject({ status: 'done' });
    expect(await findStoredEvent(database.db, other)).toMatchObject({ status: 'pending', stepsDone: [], attempts: 0 });
  });

  it('stops when interrupted, saying what is left', async () => {
    const [id] = (await storedRecordings(database.db, 1)) as [string];
    await leaseToOtherRunner(database.db, id, 600);
    const controller = new AbortController();
    const drained = drainAnalysis({
      db: database.db,
      log: createLogger('silent'),
      steps: testSteps([{ name: 'a' }]),
      concurrency: 1,
      leaseSeconds: 30,
      maxAttempts: 3,
      pollMs: 20,
      wait: true,
      signal: controller.signal,
      onProgress: (progress) => {
        if (progress.left.held === 1) controller.abort();
      },
    });
    expect(await drained).toMatchObject({ interrupted: true, done: 0, left: { pending: 1, held: 1 } });
  });
});

describe(`./voxtrace analyze on ${engine}`, () => {
  it(
    'drains the backlog and prints what it did; --wait waits for a held event; dead events exit 1',
    async () => {
      const target = await createCliTarget();
      try {
        const [held, ...rest] = await target.inspect(async (db) => {
          await migrateDatabase(db);
          await createRunsTable(db.db);
          const ids = await storedRecordings(db.db, 3);
          // held well past the first run's start-up (PGlite takes seconds to open)
          await leaseToOtherRunner(db.db, ids[0] as string, 120);
          return ids;
        });

        const first = await runWithSteps([{ name: 'a' }, { name: 'b', after: 'a' }], ['analyze'], target.env);
        expect(first.stderr).not.toMatch(/voxtrace analyze:/);
        expect(first.code).toBe(0);
        expect(first.stdout).toMatch(
          /^analyze: 2 events done, 0 dead, 1 left \(1 held by another runner\) \(steps: a, b\)$/m,
        );
        expect(first.stdout).toMatch(/--wait waits for the events left/);

        // the other runner's lease now ends soon: --wait takes the event over then
        const leaseEnd = await target.inspect(async (db) => {
          await leaseToOtherRunner(db.db, held as string, 4);
          return (await findStoredEvent(db.db, held as string))?.leaseExpiresAt as Date;
        });
        const second = await runWithSteps(
          [{ name: 'a' }, { name: 'b', after: 'a' }],
          ['analyze', '--wait', '--json'],
          target.env,
        );
        expect(second.code).toBe(0);
        expect(JSON.parse(second.stdout)).toEqual({
          steps: ['a', 'b'],
          done: 1,
          dead: 0,
          retried: 0,
          left: 0,
          held: 0,
          retrying: 0,
          backlog: { pending: 0, dead: 0 },
          interrupted: false,
        });
        const runs = await target.inspect((db) => committedRuns(db.db));
        for (const id of [held as string, ...rest]) expect(runs[id]).toEqual({ a: 1, b: 1 });
        const event = await target.inspect((db) => findStoredEvent(db.db, held as string));
        expect(event).toMatchObject({ status: 'done', leaseOwner: null });
        expect(must(event?.completedAt).getTime()).toBeGreaterThanOrEqual(leaseEnd.getTime());

        // a step that keeps failing: with one attempt allowed, the event is dead at once, and so is the exit code
        await target.inspect((db) => storedRecordings(db.db, 1));
        const broken = await runWithSteps([{ name: 'broken', failTimes: 1_000 }], ['analyze', '--json'], {
          ...target.env,
          VOXTRACE_MAX_ATTEMPTS: '1',
        });
        expect(broken.code).toBe(1);
        expect(JSON.parse(broken.stdout)).toMatchObject({
          done: 0,
          dead: 1,
          left: 0,
          backlog: { pending: 0, dead: 1 },
        });
      } finally {
        await target.cleanup();
      }
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'says so and touches no event when no analysis step is registered',
    async () => {
      const target = await createCliTarget();
      try {
        const before = await target.inspect(async (db) => {
          await migrateDatabase(db);
          await storedRecordings(db.db, 2);
          return db.db.select().from(recordingEvents);
        });
        const result = await runWithSteps([], ['analyze', '--wait'], target.env);
        expect(result.code).toBe(0);
        expect(result.stdout.trim()).toBe(
          'analyze: no analysis step is registered; nothing was run (2 events wait for the first step)',
        );
        const json = await runWithSteps([], ['analyze', '--json'], target.env);
        expect(JSON.parse(json.stdout)).toMatchObject({
          steps: [],
          done: 0,
          left: 0,
          backlog: { pending: 2, dead: 0 },
        });
        const after = await target.inspect((db) => db.db.select().from(recordingEvents));
        expect(after).toEqual(before);
      } finally {
        await target.cleanup();
      }
    },
    CLI_TIMEOUT_MS,
  );

  it('stops with one line when the embedded database is in use by another process', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-analyze-busy-'));
    // what a process holding the embedded database leaves in it: the lock file with its pid
    fs.mkdirSync(path.join(dataDir, 'db'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'db', 'voxtrace.lock'), String(process.pid));
    try {
      const result = await runCli(['analyze'], { VOXTRACE_DATA_DIR: dataDir, VOXTRACE_LOG_LEVEL: 'warn' });
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toMatch(
        new RegExp(
          `^voxtrace analyze: the embedded database in .* is in use by another voxtrace process \\(pid ${process.pid}\\)`,
        ),
      );
      expect(result.stderr).not.toMatch(/\n\s+at /);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
