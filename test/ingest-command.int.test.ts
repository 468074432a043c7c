import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { runIngest } from '../src/commands/ingest/run.ts';
import { recordings } from '../src/db/schema.ts';
import { listen } from '../src/http/serve.ts';
import { startWorker } from '../src/ingest/worker.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { createLogger } from '../src/log.ts';
import { writeDemoData } from '../src/standin/demo-data.ts';
import { startStandin } from '../src/standin/server.ts';
import { createUpstreamClient } from '../src/upstream/client.ts';
import { testApp } from './support/app.ts';
import { cleanEnv, cliPath, repoRoot, runCli } from './support/cli.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';

/**
 * `voxtrace ingest` as a user runs it: a subprocess talking over a real socket to the API, with the
 * worker and the stand-in in this process processing what it uploads. Its stderr is a pipe, so
 * the plain progress lines are what is checked here (the TTY bar is the same counts, drawn).
 */

let database: TestDatabase;
let standin: Awaited<ReturnType<typeof startStandin>>;
let server: Awaited<ReturnType<typeof listen>>;
let worker: ReturnType<typeof startWorker>;
let upstream: ReturnType<typeof createUpstreamClient>;
let env: Record<string, string>;
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-ingest-cmd-'));
const spoolDir = path.join(workDir, 'spool');
// the resumption test slows intake down so that a run can be interrupted halfway
let uploadDelayMs = 0;
// requests of ingest --wait that look at more than its window of 2 (a status listing, or > 2 ids)
let sweeps = 0;

beforeAll(async () => {
  database = await createTestDatabase();
  standin = await startStandin({ port: 0, speed: 0.002 });
  const app = testApp(database.db, { intake: { spoolDir, maxUploadBytes: 20 * 1024 * 1024, upstreamApi: 'deepfake' } });
  server = await listen(
    {
      fetch: async (request) => {
        if (uploadDelayMs > 0 && request.method === 'POST') await sleep(uploadDelayMs);
        const query = new URL(request.url).searchParams;
        if (query.has('status') || (query.get('ids')?.split(',').length ?? 0) > 2) sweeps++;
        return app.fetch(request);
      },
    },
    { host: '127.0.0.1', port: 0 },
  );
  const { key } = await createApiKey(database.db, { scope: 'write' }, CLI_ACTOR);
  env = { VOXTRACE_API_URL: server.url, VOXTRACE_API_KEY: key };
  upstream = createUpstreamClient({ baseUrl: standin.url, cid: '3', token: standin.token, api: 'deepfake' });
  worker = startTestWorker();
});

function startTestWorker() {
  return startWorker({
    db: database.db,
    client: upstream,
    log: createLogger('silent'),
    spoolDir,
    concurrency: 4,
    leaseSeconds: 30,
    maxAttempts: 3,
    keepAudio: false,
    idleMs: 50,
  });
}

afterAll(async () => {
  await worker?.stop();
  await upstream?.close();
  await server?.close();
  await standin?.close();
  await database?.close();
  fs.rmSync(workDir, { recursive: true, force: true });
});

/** Writes `calls` demo calls as DIR/<accountRef>/<callId>.wav (plus truth.jsonl); answers the WAV paths. */
async function demoTree(name: string, calls: number, seed: number): Promise<{ dir: string; wavs: string[] }> {
  const dir = path.join(workDir, name);
  await writeDemoData(dir, {
    calls,
    speakers: Math.max(4, Math.ceil(calls / 2)),
    fraudsters: 1,
    campaigns: 1,
    seed,
    now: new Date('2026-11-01T00:00:00Z'),
  });
  const wavs = fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.wav'))
    .map((f) => path.join(dir, f))
    .sort();
  return { dir, wavs };
}

const sha256Of = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

async function rowsFor(wavs: string[]) {
  return database.db
    .select()
    .from(recordings)
    .where(inArray(recordings.sha256, wavs.map(sha256Of)));
}

const summaryPattern =
  /^uploaded (\d+) \(new (\d+), already known (\d+)\), skipped (\d+) non-audio files, rejected (\d+)$/m;

describe(`voxtrace ingest on ${engine}`, () => {
  it('uploads a demo-data tree with accounts from directories, call times from mtimes, and waits until complete', async () => {
    const { dir, wavs } = await demoTree('tree', 12, 101);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not audio');
    const mtimeOf = new Map(wavs.map((wav, i) => [wav, 1_780_000_000 + i * 60]));
    for (const [wav, seconds] of mtimeOf) fs.utimesSync(wav, seconds, seconds);

    const run = await runCli(['ingest', '--account-from-dir', '--wait', '--concurrency', '3', dir], env);

    expect(run.stderr).not.toMatch(/voxtrace ingest:/);
    expect(run.code).toBe(0);
    // truth.jsonl and notes.txt are skipped
    expect(run.stdout).toContain('uploaded 12 (new 12, already known 0), skipped 2 non-audio files, rejected 0');
    expect(run.stdout).toContain('final states: complete 12, failed 0, dead 0');
    expect(run.stderr).toMatch(
      /^ingest: 12\/12 uploaded \(queued \d+, submitted \d+, done \d+, failed 0\), [\d.]+ files\/s, eta /m,
    );
    expect(run.stderr).toMatch(/^ingest: 12\/12 finished \(queued 0, submitted 0, done 12, failed 0\)/m);
    expect(run.stderr).not.toContain('\r');
    expect(run.stderr).not.toContain('\u001b'); // no ANSI escapes

    const rows = await rowsFor(wavs);
    expect(rows).toHaveLength(12);
    for (const wav of wavs) {
      const row = rows.find((r) => r.sha256 === sha256Of(wav));
      expect(row?.status).toBe('complete');
      expect(row?.accountRef).toBe(path.basename(path.dirname(wav)));
      expect(row?.callAt?.getTime()).toBe((mtimeOf.get(wav) as number) * 1000);
      expect(row?.fileName).toBe(path.basename(wav));
    }
  });

  it('with --wait, the counts shown while files still upload include what the workers already finished', async () => {
    const { dir, wavs } = await demoTree('live', 12, 303);
    uploadDelayMs = 300; // about 3.6 s of uploads, one at a time
    let progress = '';
    try {
      const result = await runIngest({
        apiUrl: env.VOXTRACE_API_URL as string,
        apiKey: env.VOXTRACE_API_KEY as string,
        paths: [dir],
        accountFromDir: true,
        wait: true,
        concurrency: 1,
        pollIntervalMs: 100, // so refreshed every 0.5 s during the uploads
        // a window smaller than what is pending: the oldest 2 by id each round, all of them every 10th
        pendingWindow: 2,
        progress: { write: (text: string) => (progress += text) },
      });
      expect(result.recordings.map((r) => r.status)).toEqual(new Array(wavs.length).fill('complete'));
    } finally {
      uploadDelayMs = 0;
    }
    const doneWhileUploading = [...progress.matchAll(/^ingest: (\d+)\/12 uploaded \(.*, done (\d+),/gm)].map((m) => ({
      uploaded: Number(m[1]),
      done: Number(m[2]),
    }));
    expect(doneWhileUploading.length).toBeGreaterThan(2);
    // before the refresh, every upload line said "done 0" until the uploads ended
    expect(doneWhileUploading.some((line) => line.uploaded < 12 && line.done > 0)).toBe(true);
    expect(progress).toMatch(/^ingest: 12\/12 finished \(queued 0, submitted 0, done 12, failed 0\)/m);
  });

  it('with --wait, checks every pending recording now and then, not only the oldest few', async () => {
    const { dir, wavs } = await demoTree('sweep', 6, 404);
    // no worker for now: all 6 stay pending, more than the window of 2, so the full sweeps come due
    await worker.stop();
    const before = sweeps;
    const ingest = runIngest({
      apiUrl: env.VOXTRACE_API_URL as string,
      apiKey: env.VOXTRACE_API_KEY as string,
      paths: [dir],
      accountFromDir: true,
      wait: true,
      pollIntervalMs: 20,
      pendingWindow: 2,
    });
    try {
      for (let i = 0; sweeps === before; i++) {
        if (i > 500) throw new Error('no full sweep within 10 s');
        await sleep(20);
      }
    } finally {
      worker = startTestWorker();
    }
    const result = await ingest;
    expect(result.recordings).toHaveLength(wavs.length);
    expect(result.recordings.map((r) => r.status)).toEqual(new Array(wavs.length).fill('complete'));
  });

  it('resumes an interrupted run: the second run finds what the first stored and uploads only the rest', async () => {
    const { dir, wavs } = await demoTree('resume', 30, 202);
    uploadDelayMs = 100;
    const child = spawn(process.execPath, [cliPath, 'ingest', '--account-from-dir', '--concurrency', '1', dir], {
      env: cleanEnv(env),
      cwd: repoRoot,
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      for (let i = 0; (await rowsFor(wavs)).length < 5; i++) {
        if (i > 300) throw new Error('the first run stored fewer than 5 recordings in 15 s');
        await sleep(50);
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
      uploadDelayMs = 0;
    }
    // the upload in flight at the kill may still be stored (its body had been sent) or refused:
    // wait until the count stops moving
    let storedBefore = (await rowsFor(wavs)).length;
    for (let stableSince = Date.now(); Date.now() - stableSince < 500; ) {
      await sleep(100);
      const now = (await rowsFor(wavs)).length;
      if (now !== storedBefore) [storedBefore, stableSince] = [now, Date.now()];
    }
    expect(storedBefore).toBeGreaterThanOrEqual(5);
    expect(storedBefore).toBeLessThan(30);

    const run = await runCli(['ingest', '--account-from-dir', '--wait', dir], env);
    expect(run.code).toBe(0);
    const [, uploaded, created, known] = summaryPattern.exec(run.stdout)?.map(Number) ?? [];
    expect(uploaded).toBe(30);
    expect(known).toBe(storedBefore);
    expect(created).toBe(30 - storedBefore);
    expect(run.stdout).toContain('final states: complete 30, failed 0, dead 0');

    const rows = await rowsFor(wavs);
    expect(rows).toHaveLength(30);
    expect(new Set(rows.map((r) => r.sha256)).size).toBe(30);
    expect(rows.every((r) => r.status === 'complete')).toBe(true);
  });

  it('with --wait, exits 1 and lists the recordings that failed with their file and error', async () => {
    const { dir, wavs } = await demoTree('failing', 5, 303);
    standin.setFaults({ rules: [{ on: 'submit', fault: 'fail', times: 2 }] });
    try {
      const run = await runCli(['ingest', '--account', 'acc-fail', '--channel', 'phone', '--wait', dir], env);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain('uploaded 5 (new 5, already known 0), skipped 1 non-audio files, rejected 0');
      expect(run.stdout).toContain('final states: complete 3, failed 2, dead 0');
      const failedLines = run.stderr.split('\n').filter((line) => line.startsWith('failed '));
      expect(failedLines).toHaveLength(2);
      const rows = await rowsFor(wavs);
      const wavBySha = new Map(wavs.map((wav) => [sha256Of(wav), wav]));
      const failedRows = rows.filter((r) => r.status === 'failed');
      expect(failedRows).toHaveLength(2);
      for (const row of failedRows) {
        expect(row.error).toBeTruthy();
        expect(failedLines).toContain(`failed ${row.id} ${wavBySha.get(row.sha256 as string)}: ${row.error}`);
      }
      expect(rows.every((r) => r.accountRef === 'acc-fail' && r.channel === 'phone')).toBe(true);
    } finally {
      standin.setFaults({ rules: [] });
    }
  });

  it('refuses bad input clearly and reports a file that is not audio while uploading the others', async () => {
    const { dir, wavs } = await demoTree('mixed', 2, 404);

    const noKey = await runCli(['ingest', dir], { VOXTRACE_API_URL: server.url });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('voxtrace ingest: no API key: pass --key <key> or set VOXTRACE_API_KEY');

    const badKey = await runCli(['ingest', '--key', 'vxt_wrong', dir], env);
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toMatch(/voxtrace ingest: the API refused the key \(401\)/);

    const both = await runCli(['ingest', '--account', 'a', '--account-from-dir', dir], env);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('--account and --account-from-dir cannot be used together');

    const missing = path.join(workDir, 'no-such-dir');
    const notThere = await runCli(['ingest', dir, missing], env);
    expect(notThere.code).toBe(1);
    expect(notThere.stderr).toContain(`voxtrace ingest: no such file or directory: ${missing}`);
    expect(await rowsFor(wavs)).toHaveLength(0); // refused before anything was uploaded

    const fake = path.join(dir, 'x.wav');
    fs.writeFileSync(fake, 'this is text, not audio\n');
    const run = await runCli(['ingest', '--account-from-dir', dir], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('uploaded 2 (new 2, already known 0), skipped 1 non-audio files, rejected 1');
    expect(run.stderr).toContain(`ingest: rejected ${fake} (415): the file "x.wav" is neither WAV nor MP3 audio`);
    expect(await rowsFor(wavs)).toHaveLength(2);
  });
});
