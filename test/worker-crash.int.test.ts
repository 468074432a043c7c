import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { eq, inArray } from 'drizzle-orm';
import { afterEach, describe, expect } from 'vitest';
import { recordings } from '../src/db/schema.ts';
import type { WorkerOptions } from '../src/ingest/worker.ts';
import { startStandin } from '../src/standin/server.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { itNotOnPglite } from './support/engine.ts';
import { demoCallFiles, enqueueAudio } from './support/ingest.ts';
import { ingestionViolations } from './support/invariants.ts';
import { until } from './support/until.ts';
import { startWorkerProcess, type WorkerProcess, workerProcessEnv } from './support/worker-processes.ts';

/**
 * Two workers as separate OS processes against one PostgreSQL and the stand-in; one is killed
 * with SIGKILL at each dangerous moment, and the other must finish every recording exactly once.
 * PGlite serves one process, so these run on PostgreSQL only. Each worker is `voxtrace worker`
 * (`runWorkerProcess`), started through test/support/worker-process.ts so that a test can pass the
 * worker's test switches, which no command takes.
 */
type Switches = NonNullable<WorkerOptions['unsafe']>;

const children: ChildProcessWithoutNullStreams[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp() {
  const database: TestDatabase = await createTestDatabase();
  const standin = await startStandin({ port: 0, speed: 0 });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-crash-'));
  cleanups.push(async () => {
    await standin.close();
    await database.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  const spoolDir = path.join(dataDir, 'spool');
  const env = workerProcessEnv({ databaseUrl: database.url as string, dataDir, standin });
  // lets a person rerun the crash tests with a safety switched off and watch them fail, e.g.
  // VOXTRACE_TEST_WORKER_UNSAFE=noLeaseReclaim npx vitest run test/worker-crash.int.test.ts
  const forced: Switches = Object.fromEntries(
    (process.env.VOXTRACE_TEST_WORKER_UNSAFE ?? '')
      .split(',')
      .filter(Boolean)
      .map((name) => [name.trim(), true]),
  );
  const startWorker = (switches: Switches = {}) =>
    startWorkerProcess(env, { switches: { ...forced, ...switches } }, children);
  const calls = demoCallFiles(6, 11);
  const enqueue = async (count: number) => {
    const ids: string[] = [];
    for (const call of calls.slice(0, count)) ids.push(await enqueueAudio(database.db, spoolDir, call.bytes));
    return ids;
  };
  const rowsOf = (ids: string[]) => database.db.select().from(recordings).where(inArray(recordings.id, ids));
  const drained = (ids: string[]) =>
    until('every recording to be stored', async () => {
      const rows = await rowsOf(ids);
      return rows.every((r) => ['complete', 'failed', 'dead'].includes(r.status)) && rows;
    });
  const violations = () => ingestionViolations({ db: database.db, standinStats: standin.stats(), spoolDir });
  /** The worker process holding a recording's lease (the owner id carries the pid). */
  const holderOf = async (id: string, workers: WorkerProcess[]) => {
    const [row] = await database.db
      .select({ owner: recordings.leaseOwner })
      .from(recordings)
      .where(eq(recordings.id, id));
    return workers.find((w) => row?.owner?.split(':')[1] === String(w.pid));
  };
  return { database, standin, enqueue, rowsOf, drained, violations, holderOf, startWorker };
}

/** Kill whichever worker holds the held submission: the upstream took the upload, no pid is stored. */
async function killDuringHeldSubmission(env: Awaited<ReturnType<typeof setUp>>, switches: Switches = {}) {
  const ids = await env.enqueue(3);
  // hold exactly this recording's upload: the upstream creates the process, its 200 never leaves
  env.standin.setFaults({ rules: [{ on: 'submit', name: ids[0], fault: 'hold', times: 1 }] });
  const first = await env.startWorker(switches);
  const second = await env.startWorker(switches);
  await until('the submission to be held upstream', () => env.standin.stats().held === 1);
  const [held] = await env.rowsOf([ids[0] as string]);
  const victim = await until('its worker', () => env.holderOf(ids[0] as string, [first, second]));
  victim.child.kill('SIGKILL');
  await until('the victim to die', () => victim.child.exitCode !== null || victim.child.signalCode !== null);
  return { ids, held: held as NonNullable<typeof held>, victim };
}

describe('two worker processes, one killed with SIGKILL (PostgreSQL)', () => {
  itNotOnPglite(
    'multi-process',
    'killed after the upstream accepted the upload but before the pid was committed: the other adopts the process',
    async () => {
      const env = await setUp();
      const { ids, held } = await killDuringHeldSubmission(env);
      const rows = await env.drained(ids);
      expect(rows.every((r) => r.status === 'complete')).toBe(true);
      // exactly one upstream process per recording: the held one was adopted, not re-uploaded
      expect(ids.map((id) => env.standin.stats().submissions[id])).toEqual([1, 1, 1]);
      expect(rows.find((r) => r.id === held.id)?.upstreamPid).not.toBeNull();
      expect(await env.violations()).toEqual([]);
    },
    60_000,
  );

  itNotOnPglite(
    'multi-process',
    'killed after the results arrived but before they were stored: the other stores them once',
    async () => {
      const env = await setUp();
      const pausing = await env.startWorker({ pauseBeforeStoreMs: 600_000 });
      const ids = await env.enqueue(4);
      await until('results to arrive at the first worker', () => pausing.output().includes('pausing before storing'));
      const other = await env.startWorker();
      pausing.child.kill('SIGKILL');
      const rows = await env.drained(ids);
      expect(rows.every((r) => r.status === 'complete')).toBe(true);
      expect(ids.map((id) => env.standin.stats().submissions[id])).toEqual([1, 1, 1, 1]);
      expect(await env.violations()).toEqual([]);
      expect(other.output()).toContain('stored');
    },
    60_000,
  );

  itNotOnPglite(
    'multi-process',
    'SIGTERM: the worker exits cleanly and releases its leases at once',
    async () => {
      const env = await setUp();
      env.standin.setFaults({ rules: [{ on: 'submit', fault: 'hold', times: 1 }] });
      const worker = await env.startWorker();
      const [id] = await env.enqueue(1);
      await until('a submission to be held upstream', () => env.standin.stats().held === 1);
      const exited = new Promise<number | null>((resolve) => worker.child.on('exit', (code) => resolve(code)));
      worker.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const [row] = await env.rowsOf([id as string]);
      expect(row).toMatchObject({ status: 'submitting', leaseOwner: null, leaseExpiresAt: null });
      // the next worker adopts the upstream process at once instead of waiting for a lease to expire
      env.standin.release();
      await env.startWorker();
      const [done] = await env.drained([id as string]);
      expect(done?.status).toBe('complete');
      expect(env.standin.stats().submissions[id as string]).toBe(1);
      expect(await env.violations()).toEqual([]);
    },
    60_000,
  );

  itNotOnPglite(
    'multi-process',
    'without the submitting look-up, the same crash uploads a recording twice (the invariant checker catches it)',
    async () => {
      const env = await setUp();
      // both workers run without the look-up, so whichever survives resubmits
      const { ids, held } = await killDuringHeldSubmission(env, { noSubmittingLookup: true });
      await env.drained(ids);
      expect(env.standin.stats().submissions[held.id]).toBe(2);
      // (the dead worker may have had a second upload in flight: that one is duplicated as well)
      const violations = await env.violations();
      expect(violations).toContainEqual(
        expect.stringMatching(new RegExp(`recording ${held.id} .*submitted upstream 2 times`)),
      );
      expect(violations.every((v) => v.endsWith('submitted upstream 2 times'))).toBe(true);
    },
    60_000,
  );

  itNotOnPglite(
    'multi-process',
    'without lease reclaim, a crashed worker leaves its recording stuck (the invariant checker catches it)',
    async () => {
      const env = await setUp();
      const { ids, held, victim } = await killDuringHeldSubmission(env, { noLeaseReclaim: true });
      // the survivor finishes everything but what the dead worker still holds a lease on
      await until('the survivor to finish the rest', async () =>
        (await env.rowsOf(ids)).every(
          (r) =>
            ['complete', 'failed', 'dead'].includes(r.status) || r.leaseOwner?.split(':')[1] === String(victim.pid),
        ),
      );
      await sleep(3 * 2000); // three lease lengths: a reclaiming worker would have taken it by now
      const [row] = await env.rowsOf([held.id]);
      expect(row?.status).toBe('submitting');
      expect(await env.violations()).toContain(`recording ${held.id} is stuck in submitting`);
    },
    60_000,
  );
});
