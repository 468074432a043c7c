import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findStoredEvent } from '../src/analysis/outbox.ts';
import { recordings, utterances } from '../src/db/schema.ts';
import { startWorker, type Worker } from '../src/ingest/worker.ts';
import { createLogger } from '../src/log.ts';
import { retryRecording } from '../src/recordings/intake.ts';
import { type FaultPlan, startStandin } from '../src/standin/server.ts';
import { createUpstreamClient, type UpstreamClient } from '../src/upstream/client.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { demoCallFiles, enqueueAudio } from './support/ingest.ts';
import { ingestionViolations } from './support/invariants.ts';

/**
 * The worker against the stand-in over real HTTP, one fault kind at a time, in this process.
 * Each case: the fault, the attempts the stand-in saw, the final state, and the invariants; each
 * on a database and a spool of its own, so that one case's failure cannot spill into the next.
 */

let database: TestDatabase;
let standin: Awaited<ReturnType<typeof startStandin>>;
let client: UpstreamClient;
let worker: Worker | undefined;
let spoolDir: string;
const calls = demoCallFiles(40, 5);
let nextCall = 0;

function runWorker(overrides: { maxAttempts?: number } = {}) {
  worker = startWorker({
    db: database.db,
    client,
    log: createLogger('silent'),
    spoolDir,
    concurrency: 3,
    leaseSeconds: 30,
    maxAttempts: overrides.maxAttempts ?? 5,
    keepAudio: false,
    idleMs: 50,
    retryBaseMs: 20,
  });
  return worker;
}

async function enqueue(count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++)
    ids.push(await enqueueAudio(database.db, spoolDir, (calls[nextCall++] as (typeof calls)[number]).bytes));
  return ids;
}

/** Waits until every given recording is terminal; returns their rows. */
async function drained(ids: string[], timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await database.db.select().from(recordings).where(inArray(recordings.id, ids));
    if (rows.every((r) => ['complete', 'failed', 'dead'].includes(r.status))) return rows;
    if (Date.now() > deadline)
      throw new Error(`not drained: ${rows.map((r) => `${r.id}:${r.status}:${r.error}`).join(', ')}`);
    await sleep(50);
  }
}

async function run(plan: FaultPlan, count: number, options: { maxAttempts?: number } = {}) {
  standin.setFaults(plan);
  const ids = await enqueue(count);
  runWorker(options);
  const rows = await drained(ids);
  await worker?.stop();
  worker = undefined;
  const violations = await ingestionViolations({ db: database.db, standinStats: standin.stats(), spoolDir });
  return { ids, rows, violations, submissions: ids.map((id) => standin.stats().submissions[id] ?? 0) };
}

beforeAll(async () => {
  standin = await startStandin({ port: 0, speed: 0 });
  client = createUpstreamClient({
    baseUrl: standin.url,
    cid: '7',
    token: standin.token,
    api: 'deepfake',
    headersTimeoutMs: 1000,
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
  });
});
beforeEach(async () => {
  database = await createTestDatabase();
  spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-spool-'));
});
afterEach(async () => {
  await worker?.stop();
  worker = undefined;
  standin.setFaults({ rules: [] });
  await database?.close();
  fs.rmSync(spoolDir, { recursive: true, force: true });
});
afterAll(async () => {
  await client?.close();
  await standin?.close();
});

describe(`ingestion worker on ${engine}: fault × outcome`, () => {
  it('no fault: every recording stored once, spool emptied, one pending outbox event each', async () => {
    const { ids, rows, violations, submissions } = await run({ rules: [] }, 4);
    expect(rows.map((r) => r.status)).toEqual(['complete', 'complete', 'complete', 'complete']);
    expect(submissions).toEqual([1, 1, 1, 1]);
    expect(violations).toEqual([]);
    for (const id of ids) {
      // committed with the recording, waiting for the analysis steps
      expect(await findStoredEvent(database.db, id)).toMatchObject({
        kind: 'stored',
        status: 'pending',
        stepsDone: [],
      });
    }
  });

  it('429 with Retry-After on submit: retried, stored once', async () => {
    const { rows, violations, submissions } = await run(
      { rules: [{ on: 'submit', fault: 'status-429', times: 3, retryAfter: 0 }] },
      2,
    );
    expect(rows.every((r) => r.status === 'complete')).toBe(true);
    expect(submissions).toEqual([1, 1]);
    expect(violations).toEqual([]);
  });

  it('500 on submit (ambiguous): looked up by name, submitted once, stored', async () => {
    const { rows, violations, submissions } = await run(
      { rules: [{ on: 'submit', fault: 'status-500', times: 1 }] },
      1,
    );
    expect(rows[0]).toMatchObject({ status: 'complete', attempts: 1 });
    expect(submissions).toEqual([1]);
    expect(violations).toEqual([]);
  });

  it('503 on status and results: retried by the client and the worker, stored', async () => {
    const { rows, violations } = await run(
      {
        rules: [
          { on: 'status', fault: 'status-503', times: 3, retryAfter: 0 },
          { on: 'results', fault: 'status-503', times: 2, retryAfter: 0 },
        ],
      },
      2,
    );
    expect(rows.every((r) => r.status === 'complete')).toBe(true);
    expect(violations).toEqual([]);
  });

  it('a submission answered slower than the timeout: the process it made is adopted, not made twice', async () => {
    const { rows, violations, submissions } = await run(
      { rules: [{ on: 'submit', fault: 'slow', times: 1, delayMs: 3000 }] },
      1,
    );
    expect(rows[0]?.status).toBe('complete');
    expect(submissions).toEqual([1]);
    expect(violations).toEqual([]);
  });

  it('a connection dropped mid-body on results: retried, stored', async () => {
    const { rows, violations } = await run({ rules: [{ on: 'results', fault: 'drop', times: 2 }] }, 1);
    expect(rows[0]?.status).toBe('complete');
    expect(violations).toEqual([]);
  });

  it('upstream -1 and -2: failed with the upstream message, audio kept for a retry', async () => {
    const { rows, violations } = await run(
      {
        rules: [
          { on: 'submit', fault: 'fail', times: 1 },
          { on: 'submit', fault: 'insufficient-credits', times: 1 },
        ],
      },
      2,
    );
    expect(rows.map((r) => r.status).sort()).toEqual(['failed', 'failed']);
    expect(rows.map((r) => r.error)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/ended with status -1/),
        expect.stringMatching(/ended with status -2/),
      ]),
    );
    expect(rows.every((r) => r.spoolFile && fs.existsSync(path.join(spoolDir, r.spoolFile)))).toBe(true);
    expect(violations).toEqual([]);
  });

  it('trimmed and wrong-dimension results: failed with the parser message, raw document kept, nothing stored', async () => {
    const { rows, violations } = await run(
      {
        rules: [
          { on: 'results', fault: 'trimmed', times: 1 },
          { on: 'results', fault: 'wrong-dimensions', times: 1 },
        ],
      },
      2,
    );
    expect(rows.map((r) => r.status)).toEqual(['failed', 'failed']);
    expect(rows.map((r) => r.error)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/cannot be stored: utterance "\d+", task diarization: embedding has 191 values/),
        expect.stringMatching(/cannot be stored: utterance "\d+", task (diarization|features): .*trimmed/),
      ]),
    );
    expect(rows.every((r) => r.rawDocument !== null)).toBe(true);
    expect(violations).toEqual([]);
  });

  it('a results body that is not JSON: failed, the body kept in raw_body', async () => {
    const { rows, violations } = await run({ rules: [{ on: 'results', fault: 'non-json', times: 1 }] }, 1);
    expect(rows[0]).toMatchObject({ status: 'failed', rawDocument: null });
    expect(rows[0]?.error).toMatch(/not JSON/);
    expect(rows[0]?.rawBody?.length).toBeGreaterThan(0);
    expect(violations).toEqual([]);
  });

  it('results the database refuses (\\u0000 in a transcript): failed at once, nothing stored, the body kept', async () => {
    const { rows, violations } = await run({ rules: [{ on: 'results', fault: 'nul-byte', times: 1 }] }, 2);
    const refused = rows.find((r) => r.status === 'failed');
    expect(rows.map((r) => r.status).sort()).toEqual(['complete', 'failed']);
    // one try: a data error is the document's, fetching it again would bring the same bytes
    expect(refused).toMatchObject({ attempts: 0, rawDocument: null });
    expect(refused?.error).toMatch(
      /^the database refused the upstream's results for process \d+ \(nothing of them was stored\): .*(\\u0000|0x00)/,
    );
    expect(refused?.rawBody).toContain('\\u0000');
    expect(JSON.parse(refused?.rawBody as string).results.length).toBeGreaterThan(0);
    const [stored] = await database.db
      .select({ n: sql<number>`count(*)::int` })
      .from(utterances)
      .where(eq(utterances.recordingId, refused?.id as string));
    expect(stored?.n).toBe(0);
    expect(violations).toEqual([]);
  });

  it('an upstream that never recovers: dead after the attempt limit, with the last error', async () => {
    const { rows, violations, submissions } = await run(
      { rules: [{ on: 'submit', fault: 'status-503', rate: 1, retryAfter: 0 }] },
      1,
      { maxAttempts: 3 },
    );
    expect(rows[0]).toMatchObject({ status: 'dead', attempts: 3 });
    expect(rows[0]?.error).toMatch(/gave up after 3 attempts; last error: submit: upstream answered 503/);
    expect(submissions).toEqual([0]);
    expect(violations).toEqual([]);
  });

  it('stop() releases the leases of recordings in flight', async () => {
    standin.setFaults({ rules: [{ on: 'submit', fault: 'hold', times: 1 }] });
    const [id] = await enqueue(1);
    const w = runWorker();
    for (let i = 0; i < 200 && standin.stats().held === 0; i++) await sleep(25);
    await w.stop(200);
    worker = undefined;
    const [row] = await database.db
      .select()
      .from(recordings)
      .where(eq(recordings.id, id as string));
    expect(row).toMatchObject({ status: 'submitting', leaseOwner: null, leaseExpiresAt: null });
    standin.release();
    // the next worker adopts the held submission's process instead of uploading again
    standin.setFaults({ rules: [] });
    runWorker();
    const [done] = await drained([id as string]);
    expect(done?.status).toBe('complete');
    expect(standin.stats().submissions[id as string]).toBe(1);
  });
  it('a failed recording retried: submitted afresh (its failed process is not adopted), then stored', async () => {
    const first = await run({ rules: [{ on: 'submit', fault: 'fail', times: 1 }] }, 1);
    const id = first.ids[0] as string;
    expect(first.rows[0]?.status).toBe('failed');
    await retryRecording(database.db, { spoolDir }, id);
    runWorker();
    const [done] = await drained([id]);
    expect(done?.status).toBe('complete');
    await worker?.stop(); // the spool file goes right after the commit: let the step finish
    worker = undefined;
    // two upstream processes for this recording: the failed one and the retry's, asked for by a person
    expect(standin.stats().submissions[id]).toBe(2);
    const violations = await ingestionViolations({ db: database.db, standinStats: standin.stats(), spoolDir });
    expect(violations).toEqual([expect.stringMatching(new RegExp(`recording ${id} .*submitted upstream 2 times`))]);
  });
});
