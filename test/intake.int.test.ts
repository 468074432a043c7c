import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { queryRows } from '../src/db/client.ts';
import { recordings } from '../src/db/schema.ts';
import { listen } from '../src/http/serve.ts';
import { importDocumentFile } from '../src/import/import.ts';
import { createApiKey } from '../src/keys/keys.ts';
import type { IntakeSettings } from '../src/recordings/intake.ts';
import type { RecordingSummaryResponse } from '../src/recordings/routes.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { must } from './support/must.ts';

const MiB = 1024 * 1024;
const realDocument = path.resolve(import.meta.dirname, '../../shared/upstream/real-results-behavioral-1speaker.json');

let database: TestDatabase;
let tempRoot: string;
let spoolDir: string;
let app: ReturnType<typeof testApp>;
const keys = { read: '', write: '' };
// small, so that the limit is cheap to cross through app.request; the socket tests use real sizes
const intake = (): IntakeSettings => ({ spoolDir, maxUploadBytes: 1 * MiB, upstreamApi: 'deepfake' });

beforeAll(async () => {
  database = await createTestDatabase();
  tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-intake-'));
  spoolDir = path.join(tempRoot, 'data', 'spool'); // not created: intake creates it
  app = testApp(database.db, { intake: intake() });
  keys.read = (await createApiKey(database.db, { scope: 'read' }, CLI_ACTOR)).key;
  keys.write = (await createApiKey(database.db, { scope: 'write' }, CLI_ACTOR)).key;
});
afterAll(async () => {
  await database?.close();
  if (tempRoot) fs.rmSync(tempRoot, { recursive: true, force: true });
});

/** A distinct small WAV per seed. */
const wav = (seed: number, audioSeconds = 0.25) => encodeCallWav(null, { audioSeconds, seed });

/** CBR MPEG-1 Layer III frames (128 kbps, 44.1 kHz): MP3 as far as the format check goes. */
function mp3(frames: number): Buffer {
  const bytes = Buffer.alloc(417 * frames);
  for (let i = 0; i < frames; i++) bytes.set([0xff, 0xfb, 0x90, 0x00], i * 417);
  return bytes;
}

type Part = [name: string, value: string] | [name: string, bytes: Uint8Array, fileName: string];

/** POSTs a real multipart body, parts in the given order. */
function upload(parts: Part[], options: { key?: string | null; headers?: Record<string, string> } = {}) {
  const form = new FormData();
  for (const part of parts) {
    if (part.length === 2) form.append(part[0], part[1]);
    else form.append(part[0], new Blob([new Uint8Array(part[1])]), part[2]);
  }
  const key = options.key === undefined ? keys.write : options.key;
  return app.request('/v1/recordings', {
    method: 'POST',
    body: form,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...options.headers },
  });
}

const post = (url: string, key = keys.write) =>
  app.request(url, { method: 'POST', headers: { authorization: `Bearer ${key}` } });

async function recordingCount(): Promise<number> {
  const [row] = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from recordings`);
  return must(row).n;
}

/** Every entry of the spool, temporary uploads (dot files) included. */
function spoolEntries(dir = spoolDir): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/** Runs a request that must be refused, and checks it left no row and no file behind. */
async function refusedWithNothingStored<T>(action: () => T | Promise<T>, dir = spoolDir): Promise<T> {
  const rows = await recordingCount();
  const files = spoolEntries(dir);
  const result = await action();
  expect(await recordingCount()).toBe(rows);
  expect(spoolEntries(dir)).toEqual(files);
  return result;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe(`POST /v1/recordings on ${engine}`, () => {
  it('queues a WAV: 202 with the recording, the audio spooled under its id, fields read after the file', async () => {
    const audio = wav(1, 0.5);
    const response = await upload([
      ['file', audio, 'Appel 2026-03-01 (agent 17) – été.wav'],
      ['accountRef', 'ACC-1'],
      ['channel', 'phone'],
      ['callAt', '2026-03-01T10:30:00+01:00'],
      ['meta', '{"agent":"A-17","tags":["cards"]}'],
    ]);
    expect(response.status).toBe(202);
    const body = (await response.json()) as RecordingSummaryResponse;
    expect(body).toMatchObject({
      status: 'queued',
      source: 'upload',
      sha256: sha256(audio),
      accountRef: 'ACC-1',
      channel: 'phone',
      callAt: '2026-03-01T09:30:00.000Z',
      meta: { agent: 'A-17', tags: ['cards'] },
      fileName: 'Appel 2026-03-01 (agent 17) – été.wav',
      audioFormat: 'wav',
      audioBytes: audio.length,
      attempts: 0,
      error: null,
      upstream: { api: 'deepfake', cid: null, pid: null },
      completedAt: null,
    });
    expect(body.durationS).toBeCloseTo(0.5, 3);
    expect(response.headers.get('location')).toBe(`/v1/recordings/${body.id}`);

    const [row] = await database.db.select().from(recordings).where(eq(recordings.id, body.id));
    expect(row).toMatchObject({ spoolFile: `${body.id}.wav`, upstreamApi: 'deepfake', leaseOwner: null });
    expect(must(row).nextAttemptAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    expect(spoolEntries()).toEqual([`${body.id}.wav`]);
    expect(fs.readFileSync(path.join(spoolDir, `${body.id}.wav`)).equals(audio)).toBe(true);

    // the detail view carries the same summary fields
    const detail = await app.request(`/v1/recordings/${body.id}`, {
      headers: { authorization: `Bearer ${keys.read}` },
    });
    expect(await detail.json()).toMatchObject({
      id: body.id,
      fileName: body.fileName,
      audioFormat: 'wav',
      attempts: 0,
    });
  });

  it('is idempotent on the bytes: 202 then 200 with the same recording; other bytes make a new one', async () => {
    const audio = wav(2);
    const first = await upload([
      ['accountRef', 'ACC-2'],
      ['file', audio, 'a.wav'],
    ]);
    expect(first.status).toBe(202);
    const created = (await first.json()) as RecordingSummaryResponse;
    const filesAfterFirst = spoolEntries();
    const rowsAfterFirst = await recordingCount();

    // same bytes, another name and context: the first upload's recording, unchanged
    const again = await upload([
      ['accountRef', 'ACC-other'],
      ['file', audio, 'renamed.wav'],
    ]);
    expect(again.status).toBe(200);
    const existing = (await again.json()) as RecordingSummaryResponse;
    expect(existing).toEqual(created);
    expect(await recordingCount()).toBe(rowsAfterFirst);
    expect(spoolEntries()).toEqual(filesAfterFirst);

    const other = await upload([['file', wav(3), 'a.wav']]);
    expect(other.status).toBe(202);
    const otherBody = (await other.json()) as RecordingSummaryResponse;
    expect(otherBody.id).not.toBe(created.id);
    expect(spoolEntries()).toEqual([...filesAfterFirst, `${otherBody.id}.wav`].sort());
  });

  it('concurrent uploads of the same bytes make one recording and leave one file', async () => {
    const audio = wav(4);
    const files = spoolEntries();
    const responses = await Promise.all(Array.from({ length: 5 }, () => upload([['file', audio, 'same.wav']])));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 202]);
    const ids = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { id: string }).id)));
    expect(ids.size).toBe(1);
    expect(spoolEntries()).toEqual([...files, `${[...ids][0]}.wav`].sort());
  });

  it('recognises MP3 by its content whatever the name; callAt defaults to now', async () => {
    const before = Date.now();
    const response = await upload([['file', mp3(200), 'recording.bin']]);
    expect(response.status).toBe(202);
    const body = (await response.json()) as RecordingSummaryResponse;
    expect(body.audioFormat).toBe('mp3');
    expect(body.durationS).toBeCloseTo((200 * 1152) / 44100, 0);
    expect(new Date(must(body.callAt)).getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(fs.existsSync(path.join(spoolDir, `${body.id}.mp3`))).toBe(true);
  });

  it('takes a file of exactly the limit; 413 one byte over, nothing stored', async () => {
    const limit = intake().maxUploadBytes;
    const exact = Buffer.concat([wav(5), Buffer.alloc(limit - wav(5).length, 1)]);
    expect((await upload([['file', exact, 'exact.wav']])).status).toBe(202);
    const over = Buffer.concat([wav(6), Buffer.alloc(limit + 1 - wav(6).length, 1)]);
    const problem = await refusedWithNothingStored(async () =>
      expectProblem(await upload([['file', over, 'over.wav']]), 413, 'payload-too-large'),
    );
    expect(problem.detail).toMatch(/limit of 1 MB/);
  });

  it('413 at once when Content-Length already says the upload is too large', async () => {
    const problem = await refusedWithNothingStored(async () =>
      expectProblem(
        await upload([['file', wav(7), 'a.wav']], { headers: { 'content-length': String(500 * MiB) } }),
        413,
        'payload-too-large',
      ),
    );
    expect(problem.detail).toMatch(/500 MB; the limit is 1 MB/);
  });

  it('415 for content that is not WAV or MP3, whatever its name says; nothing stored', async () => {
    const text = Buffer.from('RIFF? no: just a text file pretending to be audio\n'.repeat(50));
    const problem = await refusedWithNothingStored(async () =>
      expectProblem(await upload([['file', text, 'call.wav']]), 415, 'unsupported-media-type'),
    );
    expect(problem.detail).toMatch(/"call\.wav" is neither WAV nor MP3/);
  });

  it('415 for a body that is not multipart/form-data', async () => {
    const response = await refusedWithNothingStored(() =>
      app.request('/v1/recordings', {
        method: 'POST',
        body: JSON.stringify({ file: 'x' }),
        headers: { authorization: `Bearer ${keys.write}`, 'content-type': 'application/json' },
      }),
    );
    const problem = await expectProblem(response, 415, 'unsupported-media-type');
    expect(problem.detail).toMatch(/multipart\/form-data/);
  });

  it('400 for meta that is not JSON, or JSON but not an object; the error names meta', async () => {
    for (const [meta, message] of [
      ['{agent: A-17}', /not JSON/],
      ['[1, 2]', /not an array/],
      ['"text"', /not a string/],
      ['null', /not null/],
    ] as const) {
      const problem = await refusedWithNothingStored(async () =>
        expectProblem(
          await upload([
            ['file', wav(8), 'a.wav'],
            ['meta', meta],
          ]),
          400,
          'validation',
        ),
      );
      expect(problem.errors).toEqual([{ path: 'form.meta', message: expect.stringMatching(message) }]);
    }
  });

  it('takes enrolCustomer=true with an account; 400 naming enrolCustomer without one, or when it is not a boolean', async () => {
    const response = await upload([
      ['file', wav(31), 'a.wav'],
      ['accountRef', 'ACC-ENROL'],
      ['enrolCustomer', 'true'],
    ]);
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    const [row] = await queryRows<{ enrol: boolean }>(
      database.db,
      sql`select enrol_customer as enrol from recordings where id = ${id}`,
    );
    expect(row?.enrol).toBe(true);
    for (const [parts, message] of [
      [[['enrolCustomer', 'true']], /needs accountRef/],
      [
        [
          ['enrolCustomer', 'yes'],
          ['accountRef', 'ACC-1'],
        ],
        /true or false/,
      ],
    ] as const) {
      const problem = await refusedWithNothingStored(async () =>
        expectProblem(await upload([['file', wav(32), 'a.wav'], ...(parts as unknown as Part[])]), 400, 'validation'),
      );
      expect(problem.errors).toEqual([{ path: 'form.enrolCustomer', message: expect.stringMatching(message) }]);
    }
  });

  it('400 for a callAt that is not an ISO-8601 instant', async () => {
    for (const callAt of ['yesterday', '2026-13-01T00:00:00Z', '2026-03-01T09:30:00', '01/03/2026']) {
      const problem = await refusedWithNothingStored(async () =>
        expectProblem(
          await upload([
            ['callAt', callAt],
            ['file', wav(9), 'a.wav'],
          ]),
          400,
          'validation',
        ),
      );
      expect(problem.errors).toEqual([{ path: 'form.callAt', message: expect.stringMatching(/ISO-8601/) }]);
    }
  });

  it('400 for a missing, empty or repeated file, unknown fields and text in place of the file', async () => {
    const cases: [Part[], { path: string; message: RegExp }[]][] = [
      [[['accountRef', 'ACC-1']], [{ path: 'form.file', message: /required/ }]],
      [[['file', new Uint8Array(0), 'empty.wav']], [{ path: 'form.file', message: /empty/ }]],
      [
        [
          ['file', wav(10), 'a.wav'],
          ['file', wav(11), 'b.wav'],
        ],
        [{ path: 'form.file', message: /exactly one/ }],
      ],
      [
        [
          ['file', wav(12), 'a.wav'],
          ['colour', 'blue'],
        ],
        [{ path: 'form.colour', message: /unknown field/ }],
      ],
      [
        [['audio', wav(13), 'a.wav']],
        [
          { path: 'form.audio', message: /unknown field/ },
          { path: 'form.file', message: /required/ },
        ],
      ],
      [[['file', 'not a file part']], [{ path: 'form.file', message: /must be a file part/ }]],
      [
        [
          ['file', wav(14), 'a.wav'],
          ['channel', 'phone'],
          ['channel', 'web'],
        ],
        [{ path: 'form.channel', message: /more than once/ }],
      ],
    ];
    for (const [parts, errors] of cases) {
      const problem = await refusedWithNothingStored(async () => expectProblem(await upload(parts), 400, 'validation'));
      expect(problem.errors).toEqual(errors.map((e) => ({ path: e.path, message: expect.stringMatching(e.message) })));
      expect(problem.detail).toContain(errors[0]?.path);
    }
  });

  it('400 for a multipart body cut short; its temporary file is removed', async () => {
    const boundary = 'voxtrace-test-boundary';
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n` +
          'Content-Type: audio/wav\r\n\r\n',
      ),
      wav(15, 2), // no closing boundary: the client went away mid-upload
    ]);
    const response = await refusedWithNothingStored(() =>
      app.request('/v1/recordings', {
        method: 'POST',
        body,
        headers: { authorization: `Bearer ${keys.write}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      }),
    );
    const problem = await expectProblem(response, 400, 'validation');
    expect(problem.detail).toMatch(/multipart body could not be read/);
  });

  it('401 without a key and 403 for a read key, before anything is read or stored', async () => {
    await refusedWithNothingStored(async () =>
      expectProblem(await upload([['file', wav(16), 'a.wav']], { key: null }), 401, 'unauthorized'),
    );
    const problem = await refusedWithNothingStored(async () =>
      expectProblem(await upload([['file', wav(16), 'a.wav']], { key: keys.read }), 403, 'forbidden'),
    );
    expect(problem.detail).toBe('this needs a key with scope "write"; this key has "read"');
  });

  it('is described in the OpenAPI document as a multipart upload', async () => {
    const doc = await (await app.request('/openapi.json')).json();
    const operation = doc.paths['/v1/recordings'].post;
    expect(operation.operationId).toBe('createRecording');
    expect(Object.keys(operation.responses).sort()).toEqual(['200', '202', '400', '401', '403', '413', '415']);
    expect(operation.requestBody.content['multipart/form-data'].schema.$ref).toBe(
      '#/components/schemas/RecordingUpload',
    );
    expect(doc.components.schemas.RecordingUpload.properties.file).toMatchObject({ type: 'string', format: 'binary' });
    expect(doc.components.schemas.RecordingUpload.required).toEqual(['file']);
    expect(doc.paths['/v1/recordings/{id}/retry'].post.operationId).toBe('retryRecording');
  });
});

describe(`POST /v1/recordings/{id}/retry on ${engine}`, () => {
  async function uploaded(seed: number) {
    const response = await upload([['file', wav(100 + seed), 'r.wav']]);
    expect(response.status).toBe(202);
    return (await response.json()) as RecordingSummaryResponse;
  }

  it('queues a dead recording again: attempts, error, lease, pid and upstream document cleared', async () => {
    const { id } = await uploaded(1);
    await database.db
      .update(recordings)
      .set({
        status: 'dead',
        attempts: 8,
        error: 'gave up after 8 attempts; last error: 503',
        leaseOwner: 'host:1:abc',
        leaseExpiresAt: new Date(Date.now() + 60_000),
        upstreamPid: 4242,
        upstreamCid: 7,
        rawBody: '<html>bad gateway</html>',
        rawDocument: { partial: true },
        nextAttemptAt: new Date(Date.now() + 3_600_000),
        completedAt: new Date(),
      })
      .where(eq(recordings.id, id));
    const response = await post(`/v1/recordings/${id}/retry`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      id,
      status: 'queued',
      attempts: 0,
      error: null,
      upstream: { pid: null },
      completedAt: null,
    });
    const [row] = await database.db.select().from(recordings).where(eq(recordings.id, id));
    expect(row).toMatchObject({
      leaseOwner: null,
      leaseExpiresAt: null,
      rawBody: null,
      rawDocument: null,
      spoolFile: `${id}.wav`,
    });
    expect(must(row).nextAttemptAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it('queues a failed recording again', async () => {
    const { id } = await uploaded(2);
    await database.db.update(recordings).set({ status: 'failed', error: 'upstream 415' }).where(eq(recordings.id, id));
    expect(await (await post(`/v1/recordings/${id}/retry`)).json()).toMatchObject({ status: 'queued', error: null });
  });

  it('409 naming the status for a recording that is not failed or dead', async () => {
    const { id } = await uploaded(3);
    const queued = await expectProblem(await post(`/v1/recordings/${id}/retry`), 409, 'conflict');
    expect(queued.detail).toMatch(/is "queued"; only "failed" or "dead"/);
    await database.db.update(recordings).set({ status: 'complete' }).where(eq(recordings.id, id));
    const complete = await expectProblem(await post(`/v1/recordings/${id}/retry`), 409, 'conflict');
    expect(complete.detail).toMatch(/is "complete"/);
  });

  it('409 for an imported recording: it has no audio', async () => {
    const outcome = await importDocumentFile(database.db, realDocument, { api: 'auto' });
    const id = must(outcome.recordingId);
    const complete = await expectProblem(await post(`/v1/recordings/${id}/retry`), 409, 'conflict');
    expect(complete.detail).toMatch(/is "complete"/);
    await database.db.update(recordings).set({ status: 'failed' }).where(eq(recordings.id, id));
    const imported = await expectProblem(await post(`/v1/recordings/${id}/retry`), 409, 'conflict');
    expect(imported.detail).toMatch(/imported .* no audio/);
  });

  it('409 when the audio is no longer in the spool', async () => {
    const { id } = await uploaded(4);
    await database.db.update(recordings).set({ status: 'dead' }).where(eq(recordings.id, id));
    fs.rmSync(path.join(spoolDir, `${id}.wav`));
    const problem = await expectProblem(await post(`/v1/recordings/${id}/retry`), 409, 'conflict');
    expect(problem.detail).toMatch(/no longer in the spool/);
    const [row] = await database.db.select().from(recordings).where(eq(recordings.id, id));
    expect(row?.status).toBe('dead');
  });

  it('404 for an unknown id and for an id that is not a uuid; 403 for a read key', async () => {
    await expectProblem(await post('/v1/recordings/00000000-0000-4000-8000-000000000000/retry'), 404, 'not-found');
    await expectProblem(await post('/v1/recordings/not-a-uuid/retry'), 404, 'not-found');
    const { id } = await uploaded(5);
    await expectProblem(await post(`/v1/recordings/${id}/retry`, keys.read), 403, 'forbidden');
  });
});

/**
 * A multipart body whose audio (a WAV header, then zeros) is generated as it is sent, so the test
 * holds no copy of the file: the process's RSS then measures the server.
 */
function generatedUpload(audioBytes: number) {
  const boundary = 'voxtrace-stream-boundary';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n` +
      'Content-Type: audio/wav\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const wavHeader = encodeCallWav(null, { audioSeconds: 0 }); // 44 bytes; sizes patched below
  wavHeader.writeUInt32LE(audioBytes - 8, 4);
  wavHeader.writeUInt32LE(audioBytes - wavHeader.length, 40);
  const zeros = Buffer.alloc(MiB);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    contentLength: head.length + audioBytes + tail.length,
    *chunks() {
      yield head;
      yield wavHeader;
      let left = audioBytes - wavHeader.length;
      while (left > 0) {
        const size = Math.min(left, zeros.length);
        yield size === zeros.length ? zeros : zeros.subarray(0, size);
        left -= size;
      }
      yield tail;
    },
  };
}

/**
 * POSTs a generated upload over a real socket. `chunked` leaves out Content-Length, so that only
 * counting the bytes can stop a too-large upload.
 */
function streamUpload(
  url: string,
  key: string,
  options: { audioBytes: number; chunked: boolean },
): Promise<{ status: number; body: unknown }> {
  const body = generatedUpload(options.audioBytes);
  return new Promise((resolve, reject) => {
    let answered = false;
    const request = http.request(new URL('/v1/recordings', url), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': body.contentType,
        ...(options.chunked ? {} : { 'content-length': String(body.contentLength) }),
      },
    });
    const source = Readable.from(body.chunks());
    request.on('response', (response) => {
      answered = true;
      // an early answer (413): stop sending what the server will not read
      source.unpipe(request);
      source.destroy();
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => {
        text += chunk;
      });
      response.on('end', () => {
        request.destroy();
        resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) });
      });
    });
    // writing after the server answered early may hit a closed socket: only the answer matters
    request.on('error', (error) => {
      if (!answered) reject(error);
    });
    source.pipe(request);
  });
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function listenWithLimit(spool: string, maxUploadBytes: number) {
  return listen(testApp(database.db, { intake: { spoolDir: spool, maxUploadBytes, upstreamApi: 'deepfake' } }), {
    host: '127.0.0.1',
    port: 0,
  });
}

/**
 * Peak RSS growth of this process while `action` runs. Each reading follows a forced garbage
 * collection: V8 frees the socket's spent read buffers lazily (once external memory has grown by
 * about 64 MB), so unforced readings would measure when the collector ran, not what the server
 * holds on to. What remains is memory the upload path retains, which must not scale with the file.
 */
async function measureRssGrowth<T>(action: () => Promise<T>): Promise<{ answer: T; growthMiB: number }> {
  v8.setFlagsFromString('--expose-gc');
  const collect = (globalThis as { gc?: () => void }).gc ?? (vm.runInNewContext('gc') as () => void);
  collect();
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sample = () => {
    collect();
    peak = Math.max(peak, process.memoryUsage.rss());
  };
  const sampler = setInterval(sample, 50);
  try {
    const answer = await action();
    sample();
    return { answer, growthMiB: (peak - baseline) / MiB };
  } finally {
    clearInterval(sampler);
  }
}

describe(`streaming uploads over a socket on ${engine}`, () => {
  it('413 for a 150 MB upload under a 100 MB limit, by Content-Length and by counting; nothing stored', async () => {
    const bigSpool = path.join(tempRoot, 'spool-100');
    const server = await listenWithLimit(bigSpool, 100 * MiB);
    try {
      for (const chunked of [false, true]) {
        const answer = await refusedWithNothingStored(
          () => streamUpload(server.url, keys.write, { audioBytes: 150 * MiB, chunked }),
          bigSpool,
        );
        expect(answer.status).toBe(413);
        expect(answer.body).toMatchObject({ type: '/problems/payload-too-large' });
        expect(spoolEntries(bigSpool)).toEqual([]);
      }
    } finally {
      await server.close();
    }
  }, 120_000);

  it('a client that goes away mid-upload leaves no row and no file behind', async () => {
    const abortSpool = path.join(tempRoot, 'spool-abort');
    const server = await listenWithLimit(abortSpool, 100 * MiB);
    try {
      const rows = await recordingCount();
      const body = generatedUpload(50 * MiB);
      const request = http.request(new URL('/v1/recordings', server.url), {
        method: 'POST',
        headers: {
          authorization: `Bearer ${keys.write}`,
          'content-type': body.contentType,
          'content-length': String(body.contentLength),
        },
      });
      request.on('error', () => {}); // destroyed on purpose
      let sent = 0;
      for (const chunk of body.chunks()) {
        request.write(chunk);
        sent += chunk.length;
        if (sent > 8 * MiB) break;
      }
      await waitFor(() => spoolEntries(abortSpool).some((f) => f.startsWith('.upload-')), 'the upload to start');
      request.destroy();
      await waitFor(() => spoolEntries(abortSpool).length === 0, 'the temporary file to be removed');
      expect(await recordingCount()).toBe(rows);
    } finally {
      await server.close();
    }
  });

  it('takes a 120 MB upload under a 200 MB limit with RSS growing far less than the file', async () => {
    const bigSpool = path.join(tempRoot, 'spool-200');
    const server = await listenWithLimit(bigSpool, 200 * MiB);
    try {
      // warm-up: first-use allocations (parsers, buffers, JIT) are not what is measured
      expect((await streamUpload(server.url, keys.write, { audioBytes: 2 * MiB, chunked: false })).status).toBe(202);
      const { answer, growthMiB } = await measureRssGrowth(() =>
        streamUpload(server.url, keys.write, { audioBytes: 120 * MiB, chunked: false }),
      );
      expect(answer.status).toBe(202);
      const body = answer.body as RecordingSummaryResponse;
      expect(body).toMatchObject({ audioBytes: 120 * MiB, audioFormat: 'wav', status: 'queued' });
      expect(fs.statSync(path.join(bigSpool, `${body.id}.wav`)).size).toBe(120 * MiB);
      expect(spoolEntries(bigSpool).filter((f) => f.startsWith('.'))).toEqual([]);
      expect(growthMiB).toBeLessThan(60);
    } finally {
      await server.close();
    }
  }, 120_000);
});
