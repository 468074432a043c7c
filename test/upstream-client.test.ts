import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FaultPlan, startStandin } from '../src/standin/server.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { createUpstreamClient, PROCESS_STATUS, type UpstreamClient, UpstreamError } from '../src/upstream/client.ts';
import { parseResultsDocument, ResultsDocumentError } from '../src/upstream/results.ts';
import { until } from './support/until.ts';

/** The client against the stand-in over real HTTP, one fault kind at a time. */

let standin: Awaited<ReturnType<typeof startStandin>>;
let client: UpstreamClient;
const retries: { operation: string; attempt: number; delayMs: number; reason: string }[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-client-'));
let wav: string;

/** A tiny valid WAV without a manifest: the stand-in hears one unknown speaker. */
function writeWav(file: string) {
  fs.writeFileSync(file, encodeCallWav(null, { audioSeconds: 0.5 }));
  return file;
}

function newClient(overrides: Partial<Parameters<typeof createUpstreamClient>[0]> = {}) {
  return createUpstreamClient({
    baseUrl: standin.url,
    cid: '42',
    token: standin.token,
    api: 'deepfake',
    retry: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 2000 },
    onRetry: (info) => retries.push(info),
    ...overrides,
  });
}

function faults(plan: FaultPlan) {
  standin.setFaults(plan);
}

async function rejection(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(UpstreamError);
    return error as UpstreamError;
  }
  throw new Error('the call succeeded');
}

beforeAll(async () => {
  standin = await startStandin({ port: 0, speed: 0 });
  client = newClient();
  wav = writeWav(path.join(tmp, 'call.wav'));
});
afterEach(() => {
  faults({ rules: [] });
  standin.release();
  retries.length = 0;
});
afterAll(async () => {
  await client?.close();
  await standin?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('upstream client against the stand-in (no faults)', () => {
  it('checks auth, submits a file with embeddings, polls and fetches a parseable document', async () => {
    await client.checkAuth();
    const submitted = await client.submitFile({ file: wav, name: 'plain', meta: { recordingId: 'plain' } });
    expect(submitted).toMatchObject({ name: 'plain', cid: 42 });
    const done = await until('the process to complete', async () => {
      const p = await client.getProcess(submitted.pid);
      return p.status === PROCESS_STATUS.completed && p;
    });
    expect(JSON.parse(done.meta as string)).toEqual({ recordingId: 'plain' });
    const results = await client.getResults(submitted.pid);
    expect(results.jsonError).toBeNull();
    const parsed = parseResultsDocument(results.document, { api: 'deepfake' });
    expect(parsed.pid).toBe(submitted.pid);
    expect(parsed.utterances.some((u) => u.speakerEmbedding)).toBe(true);
  });

  it('wrong credentials: a typed 401 with the upstream code and message, not retried', async () => {
    const wrong = newClient({ token: 'not-the-token' });
    const error = await rejection(wrong.checkAuth());
    expect(error).toMatchObject({ kind: 'http', status: 401, attempts: 1 });
    expect(error.code).toBeTypeOf('number');
    expect(error.upstreamMessage).toBeTruthy();
    await wrong.close();
  });

  it('results before completion: a typed error in the {code, message} shape', async () => {
    const slow = await startStandin({ port: 0, speed: 1000 });
    const c = createUpstreamClient({ baseUrl: slow.url, cid: '42', token: slow.token, api: 'deepfake' });
    try {
      const p = await c.submitFile({ file: wav, name: 'early' });
      const error = await rejection(c.getResults(p.pid));
      expect(error.kind).toBe('http');
      expect(error.attempts).toBe(1);
      expect(error.upstreamMessage).toMatch(/complete|not ready|processing|pending/i);
    } finally {
      await c.close();
      await slow.close();
    }
  });

  it('submits by URL, and lists every process page by page', async () => {
    const byUrl = await client.submitUrl({ url: 'https://example.invalid/calls/1.wav', name: 'by-url' });
    expect(byUrl.name).toBe('by-url');
    for (let i = 0; i < 5; i++) await client.submitFile({ file: wav, name: `list-${i}` });
    const page = await client.listProcesses({ page: 0, pageSize: 2, sort: 'asc' });
    expect(page).toHaveLength(2);
    const names: string[] = [];
    for await (const p of client.allProcesses({ pageSize: 2 })) names.push(p.name ?? '');
    expect(names).toEqual(expect.arrayContaining(['by-url', 'list-0', 'list-4']));
    expect(new Set(names).size).toBe(names.length);
  });

  it('never logs the token', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logged = newClient({ log: pino({ level: 'trace' }, sink) });
    faults({ rules: [{ on: 'status', fault: 'status-500', times: 1 }] });
    const p = await logged.submitFile({ file: wav, name: 'logged' });
    await logged.getProcess(p.pid);
    await logged.close();
    expect(lines.join('')).toContain('retrying');
    expect(lines.join('')).not.toContain(standin.token);
  });
});

describe('upstream client under each fault kind', () => {
  it('429 with Retry-After: waits at least that long, retries and succeeds', async () => {
    const p = await client.submitFile({ file: wav, name: 'r429' });
    faults({ rules: [{ on: 'status', fault: 'status-429', times: 2, retryAfter: 1 }] });
    const started = Date.now();
    await client.getProcess(p.pid);
    expect(retries.map((r) => r.operation)).toEqual(['status', 'status']);
    expect(retries.every((r) => r.delayMs >= 1000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  });

  it('500 and 503 on a read: retried, then success (3 attempts)', async () => {
    const p = await client.submitFile({ file: wav, name: 'r5xx' });
    faults({
      rules: [
        { on: 'status', fault: 'status-500', times: 1 },
        { on: 'status', fault: 'status-503', times: 1 },
      ],
    });
    expect((await client.getProcess(p.pid)).pid).toBe(p.pid);
    expect(retries).toHaveLength(2);
  });

  it('503 on submit: the upload was not taken, so it is retried and stored once', async () => {
    faults({ rules: [{ on: 'submit', fault: 'status-503', times: 1 }] });
    const p = await client.submitFile({ file: wav, name: 's503' });
    expect(p.name).toBe('s503');
    expect(retries).toHaveLength(1);
    expect(standin.stats().submissions.s503).toBe(1);
  });

  it('500 on submit: not retried (the upload may have been taken): a typed error', async () => {
    faults({ rules: [{ on: 'submit', fault: 'status-500', times: 1 }] });
    const error = await rejection(client.submitFile({ file: wav, name: 's500' }));
    expect(error).toMatchObject({ status: 500, attempts: 1 });
    // not retried: the upload may have been taken, and only a look-up by name can tell
    expect(retries).toHaveLength(0);
  });

  it('a server that keeps failing: gives up after maxAttempts with the last error', async () => {
    faults({ rules: [{ on: 'list', fault: 'status-503', rate: 1 }] });
    const error = await rejection(client.listProcesses());
    expect(error).toMatchObject({ status: 503, attempts: 4 });
    expect(retries).toHaveLength(3);
  });

  it('a response slower than the headers timeout: a timeout, retried on reads', async () => {
    const impatient = newClient({ headersTimeoutMs: 300 });
    const p = await impatient.submitFile({ file: wav, name: 'slow-read' });
    faults({ rules: [{ on: 'status', fault: 'slow', times: 1, delayMs: 2000 }] });
    expect((await impatient.getProcess(p.pid)).pid).toBe(p.pid);
    expect(retries).toHaveLength(1);
    expect(retries[0]?.reason).toMatch(/timed out/);
    faults({ rules: [{ on: 'submit', fault: 'slow', times: 1, delayMs: 2000 }] });
    const error = await rejection(impatient.submitFile({ file: wav, name: 'slow-submit' }));
    expect(error).toMatchObject({ kind: 'timeout', attempts: 1 });
    await impatient.close();
  });

  it('a connection dropped mid-body: a network error, retried on reads', async () => {
    const p = await client.submitFile({ file: wav, name: 'dropped' });
    await until(
      'the process to complete',
      async () => (await client.getProcess(p.pid)).status === PROCESS_STATUS.completed,
    );
    faults({ rules: [{ on: 'results', fault: 'drop', times: 1 }] });
    const results = await client.getResults(p.pid);
    expect(results.jsonError).toBeNull();
    expect(retries).toHaveLength(1);
    expect(retries[0]?.reason).toMatch(/network error/);
  });

  it('a held submission: the process exists upstream although no answer came (ambiguous), and a release answers', async () => {
    const impatient = newClient({ headersTimeoutMs: 500 });
    faults({ rules: [{ on: 'submit', fault: 'hold', times: 2 }] });
    const error = await rejection(impatient.submitFile({ file: wav, name: 'held' }));
    expect(error).toMatchObject({ kind: 'timeout', attempts: 1 });
    const adopted = await until('the held process to be listed', async () => {
      for await (const p of client.allProcesses()) if (p.name === 'held') return p;
      return undefined;
    });
    expect(adopted.name).toBe('held');
    // the second hold is answered once released
    const pending = client.submitFile({ file: wav, name: 'held-then-released' });
    await until('a held submission', async () => standin.stats().held > 0);
    expect(standin.release()).toBeGreaterThan(0);
    expect((await pending).name).toBe('held-then-released');
    await impatient.close();
  });

  it('processes ending -1 (failed) and -2 (insufficient credits)', async () => {
    faults({
      rules: [
        { on: 'submit', name: 'will-fail', fault: 'fail' },
        { on: 'submit', name: 'no-credits', fault: 'insufficient-credits' },
      ],
    });
    const failed = await client.submitFile({ file: wav, name: 'will-fail' });
    const broke = await client.submitFile({ file: wav, name: 'no-credits' });
    expect(
      (
        await until('the process to fail', async () =>
          (await client.getProcess(failed.pid)).status < 0 ? client.getProcess(failed.pid) : undefined,
        )
      ).status,
    ).toBe(-1);
    expect(
      (
        await until('the process to run out of credits', async () =>
          (await client.getProcess(broke.pid)).status < 0 ? client.getProcess(broke.pid) : undefined,
        )
      ).status,
    ).toBe(-2);
  });

  it('results with trimmed vectors, wrong dimensions or a non-JSON body reach the caller intact', async () => {
    const p = await client.submitFile({ file: wav, name: 'bad-results' });
    await until(
      'the process to complete',
      async () => (await client.getProcess(p.pid)).status === PROCESS_STATUS.completed,
    );
    faults({ rules: [{ on: 'results', fault: 'trimmed', times: 1 }] });
    const trimmed = await client.getResults(p.pid);
    expect(() => parseResultsDocument(trimmed.document, { api: 'deepfake' })).toThrow(ResultsDocumentError);
    expect(() => parseResultsDocument(trimmed.document, { api: 'deepfake' })).toThrow(/trimmed/);
    faults({ rules: [{ on: 'results', fault: 'wrong-dimensions', times: 1 }] });
    const wrong = await client.getResults(p.pid);
    expect(() => parseResultsDocument(wrong.document, { api: 'deepfake' })).toThrow(/191 values, expected 192/);
    faults({ rules: [{ on: 'results', fault: 'non-json', times: 1 }] });
    const nonJson = await client.getResults(p.pid);
    expect(nonJson.document).toBeNull();
    expect(nonJson.jsonError).toBeTruthy();
    expect(nonJson.rawBody.length).toBeGreaterThan(0);
    expect(retries).toHaveLength(0);
  });

  it('caps the calls in flight', async () => {
    const capped = newClient({ maxConcurrent: 2 });
    faults({ rules: [{ on: 'submit', fault: 'hold', times: 5 }] });
    const uploads = [0, 1, 2, 3, 4].map((i) => capped.submitFile({ file: wav, name: `cap-${i}` }));
    await until('two held submissions', async () => standin.stats().held === 2);
    await sleep(200);
    expect(standin.stats().held).toBe(2);
    while ((await Promise.race([Promise.all(uploads).then(() => true), sleep(50).then(() => false)])) === false) {
      expect(standin.stats().held).toBeLessThanOrEqual(2);
      standin.release();
    }
    expect((await Promise.all(uploads)).map((p) => p.name)).toEqual(['cap-0', 'cap-1', 'cap-2', 'cap-3', 'cap-4']);
    await capped.close();
  });
});
