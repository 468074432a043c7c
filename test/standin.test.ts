import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoCalls } from '../src/standin/demo-data.ts';
import type { CallManifest } from '../src/standin/manifest.ts';
import type { ProcessItem } from '../src/standin/processes.ts';
import { type Standin, startStandin } from '../src/standin/server.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { parseResultsDocument } from '../src/upstream/results.ts';
import { repoRoot } from './support/cli.ts';

type Api = 'deepfake' | 'behavioral';
type Item = {
  id: string;
  startTime: string;
  endTime: string;
  task: string;
  prediction: { label: string | null; posterior: string | null; dominantInSegments: unknown[] }[];
  finalLabel: string | null;
  level: string;
  embedding: string | null;
};
type Document = { pid: number; cid: number; code: number; message: string; results: Item[] };

const CID = 1234;
const clientUrl = (s: Standin, api: Api = 'deepfake', cid: number | string = CID) =>
  `${s.url}/${api === 'deepfake' ? 'detection/' : ''}clients/${cid}`;

function submit(
  s: Standin,
  file: Buffer,
  options: { api?: Api; fields?: Record<string, string>; query?: string; cid?: number; filename?: string } = {},
) {
  const form = new FormData();
  for (const [key, value] of Object.entries(options.fields ?? { name: 'call', embeddings: 'true' })) {
    form.set(key, value);
  }
  form.set('file', new Blob([new Uint8Array(file)]), options.filename ?? 'call.wav');
  return fetch(`${clientUrl(s, options.api, options.cid)}/processes/audio${options.query ?? ''}`, {
    method: 'POST',
    body: form,
    headers: { 'X-Auth-Token': s.token },
  });
}

async function submitted(s: Standin, file: Buffer, options: Parameters<typeof submit>[2] = {}) {
  const response = await submit(s, file, options);
  expect(response.status).toBe(200);
  return (await response.json()) as ProcessItem;
}

const get = (s: Standin, url: string) => fetch(url, { headers: { 'X-Auth-Token': s.token } });

async function results(s: Standin, pid: number, api: Api = 'deepfake') {
  const response = await get(s, `${clientUrl(s, api)}/processes/${pid}/results`);
  expect(response.status).toBe(200);
  return (await response.json()) as Document;
}

/** Polls until `check` returns a value (never a fixed sleep). */
async function until<T>(check: () => Promise<T | null | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function cosine(a: number[], b: number[]) {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] as number) * (b[i] as number);
  return dot / (Math.hypot(...a) * Math.hypot(...b));
}

const demo = [...generateDemoCalls({ calls: 60, speakers: 6, fraudsters: 1, campaigns: 1, seed: 5 })];
const demoWav = (manifest: CallManifest) => encodeCallWav(manifest);
/** A demo call with an agent, a customer, and utterances both under and over 2 s. */
const twoSpeakerCall = demo.find(
  ({ manifest }) =>
    manifest.speakers.length === 2 &&
    manifest.utterances.some((u) => u.end - u.start < 2) &&
    !manifest.speakers.some((sp) => sp.noisy),
)?.manifest as CallManifest;

let standin: Standin;
beforeAll(async () => {
  standin = await startStandin({ speed: 0 });
});
afterAll(async () => {
  await standin?.close();
});

describe('auth and paths', () => {
  it('answers GET /v5/auth 200 with the right token and client, 401 {code, message} otherwise', async () => {
    const auth = (headers: Record<string, string>) => fetch(`${standin.url}/auth`, { headers });
    expect((await auth({ 'X-Auth-Token': standin.token, 'X-Auth-Client': '42' })).status).toBe(200);
    const refused: Record<string, string>[] = [
      { 'X-Auth-Token': 'wrong', 'X-Auth-Client': '42' },
      { 'X-Auth-Client': '42' },
      { 'X-Auth-Token': standin.token },
      { 'X-Auth-Token': standin.token, 'X-Auth-Client': 'abc' },
    ];
    for (const headers of refused) {
      const response = await auth(headers);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ code: 401, message: expect.any(String) });
    }
  });

  it('checks the token on every endpoint and accepts any numeric client id', async () => {
    for (const url of [
      `${clientUrl(standin)}/processes`,
      `${clientUrl(standin, 'behavioral')}/processes/1`,
      `${clientUrl(standin)}/processes/1/results`,
      `${standin.url}/__standin/stats`,
    ]) {
      const response = await fetch(url, { headers: { 'X-Auth-Token': 'nope' } });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ code: 401 });
    }
    const upload = await fetch(`${clientUrl(standin)}/processes/audio`, { method: 'POST', body: new FormData() });
    expect(upload.status).toBe(401);
    expect((await get(standin, `${clientUrl(standin, 'deepfake', 987654321)}/processes`)).status).toBe(200);
    const bad = await get(standin, `${clientUrl(standin, 'deepfake', 'abc')}/processes`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ code: 400, message: expect.stringMatching(/client id/) });
    const nowhere = await get(standin, `${standin.url}/nowhere`);
    expect(nowhere.status).toBe(404);
    expect(await nowhere.json()).toEqual({ code: 404, message: expect.any(String) });
  });

  it('serves both APIs: a process lives under the path style it was submitted to', async () => {
    const wav = demoWav(twoSpeakerCall);
    const deepfake = await submitted(standin, wav, { api: 'deepfake', fields: { name: 'df' } });
    const behavioral = await submitted(standin, wav, { api: 'behavioral', fields: { name: 'bh' } });
    expect((await get(standin, `${clientUrl(standin, 'deepfake')}/processes/${deepfake.pid}`)).status).toBe(200);
    expect((await get(standin, `${clientUrl(standin, 'behavioral')}/processes/${behavioral.pid}`)).status).toBe(200);
    const crossed = await get(standin, `${clientUrl(standin, 'behavioral')}/processes/${deepfake.pid}`);
    expect(crossed.status).toBe(404);
    expect(await crossed.json()).toEqual({ code: 404, message: expect.any(String) });
    const otherClient = await get(standin, `${clientUrl(standin, 'deepfake', 1)}/processes/${deepfake.pid}`);
    expect(otherClient.status).toBe(404);
  });
});

describe('submissions', () => {
  it('answers a process item with exactly the eight fields; meta comes back as the JSON string', async () => {
    const item = await submitted(standin, demoWav(twoSpeakerCall), {
      fields: { name: 'item-shape', embeddings: 'true', meta: '{"key": "value"}' },
    });
    expect(Object.keys(item).sort()).toEqual(
      ['cid', 'datetime', 'duration', 'meta', 'name', 'pid', 'status', 'statusmsg'].sort(),
    );
    expect(item).toMatchObject({
      cid: CID,
      name: 'item-shape',
      status: 2,
      statusmsg: 'Processing Complete',
      duration: twoSpeakerCall.durationS,
      meta: '{"key": "value"}',
    });
    expect(Number.isNaN(Date.parse(item.datetime))).toBe(false);
    // without a name, the file's name
    const unnamed = await submitted(standin, demoWav(twoSpeakerCall), { fields: {}, filename: 'x.wav' });
    expect(unnamed.name).toBe('x.wav');
  });

  it('refuses files that are neither WAV nor MP3, forms without a file, bad flags and bad meta', async () => {
    const cases: [Response, RegExp][] = [
      [await submit(standin, Buffer.from('hello, this is text'), { filename: 'notes.txt' }), /neither WAV nor MP3/],
      [await submit(standin, demoWav(twoSpeakerCall), { fields: { embeddings: 'yes' } }), /embeddings/],
      [await submit(standin, demoWav(twoSpeakerCall), { fields: { meta: '{not json' } }), /meta/],
      [
        await fetch(`${clientUrl(standin)}/processes/audio`, {
          method: 'POST',
          body: (() => {
            const form = new FormData();
            form.set('name', 'no-file');
            return form;
          })(),
          headers: { 'X-Auth-Token': standin.token },
        }),
        /"file"/,
      ],
      [
        await fetch(`${clientUrl(standin)}/processes/audio`, {
          method: 'POST',
          body: JSON.stringify({ file: 'x' }),
          headers: { 'X-Auth-Token': standin.token, 'content-type': 'application/json' },
        }),
        /multipart/,
      ],
    ];
    for (const [response, message] of cases) {
      expect(response.status).toBe(400);
      const body = await response.json();
      expect(body).toEqual({ code: 400, message: expect.stringMatching(message) });
    }
  });

  it('reads embeddings from the form or the query: true/True/1 give vectors, false/False/0 none', async () => {
    const wav = demoWav(twoSpeakerCall);
    const variants: [Parameters<typeof submit>[2], boolean][] = [
      [{ fields: { embeddings: 'true' } }, true],
      [{ fields: { embeddings: 'True' } }, true],
      [{ fields: { embeddings: '1' } }, true],
      [{ fields: {}, query: '?embeddings=true' }, true],
      [{ fields: {}, query: '?embeddings=True' }, true],
      [{ fields: { embeddings: 'false' } }, false],
      [{ fields: { embeddings: 'False' } }, false],
      [{ fields: { embeddings: '0' } }, false],
      [{ fields: {} }, false],
    ];
    for (const [options, expected] of variants) {
      const { pid } = await submitted(standin, wav, options);
      const document = await results(standin, pid);
      const speakerVectors = document.results.filter((i) => i.task === 'diarization' && i.embedding !== null);
      const features = document.results.filter((i) => i.task === 'features');
      expect([JSON.stringify(options), speakerVectors.length > 0]).toEqual([JSON.stringify(options), expected]);
      expect(features.length > 0).toBe(expected);
      if (!expected) expect(document.results.every((i) => i.embedding === null)).toBe(true);
      // verdicts do not depend on embeddings
      expect(document.results.some((i) => i.task === 'deepfake')).toBe(true);
    }
  });

  it('streams a 500 MB upload with flat memory, and takes its duration from the WAV header', async () => {
    /** Uploads a WAV of `size` bytes generated on the fly; answers the process item. */
    const upload = async (size: number) => {
      const header = encodeCallWav(null, { audioSeconds: 0 });
      header.writeUInt32LE(size - header.length, header.length - 4); // the data chunk's size
      const boundary = 'standin-big-upload';
      const preamble = Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n` +
          'Content-Type: audio/wav\r\n\r\n',
      );
      const epilogue = Buffer.from(`\r\n--${boundary}--\r\n`);
      const chunk = new Uint8Array(1024 * 1024);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(preamble);
          controller.enqueue(header);
          sent = header.length;
        },
        pull(controller) {
          if (sent >= size) {
            controller.enqueue(epilogue);
            controller.close();
            return;
          }
          const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
          sent += part.length;
          controller.enqueue(part);
        },
      });
      const response = await fetch(`${clientUrl(standin)}/processes/audio`, {
        method: 'POST',
        body,
        duplex: 'half',
        headers: { 'X-Auth-Token': standin.token, 'content-type': `multipart/form-data; boundary=${boundary}` },
      } as RequestInit);
      expect(response.status).toBe(200);
      const item = (await response.json()) as ProcessItem;
      expect(item.name).toBe('big');
      expect(item.duration).toBeCloseTo((size - header.length) / 16000, 2);
    };
    // a first, small upload brings the stream machinery's working set in
    await upload(20 * 1024 * 1024);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      await upload(500 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
    // client and server share this process: 500 MB buffered anywhere would show here
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  }, 60_000);
});

describe('status and results', () => {
  it('goes pending → processing → completed over duration × speed, and has no results before', async () => {
    // 1.5 s of processing: long enough for each state to be seen even on a busy machine
    const speed = 1.5 / twoSpeakerCall.durationS;
    const slow = await startStandin({ speed });
    try {
      const first = await submitted(slow, demoWav(twoSpeakerCall), { fields: { name: 'progress' } });
      expect(first).toMatchObject({ status: 0, statusmsg: 'Pending' });
      const early = await get(slow, `${clientUrl(slow)}/processes/${first.pid}/results`);
      expect(early.status).toBe(409);
      expect(await early.json()).toEqual({ code: 409, message: expect.stringMatching(/has no results/) });
      const seen: number[] = [first.status];
      await until(async () => {
        const item = (await (await get(slow, `${clientUrl(slow)}/processes/${first.pid}`)).json()) as ProcessItem;
        if (seen.at(-1) !== item.status) seen.push(item.status);
        return item.status === 2;
      });
      expect(seen).toEqual([0, 1, 2]);
      expect((await get(slow, `${clientUrl(slow)}/processes/${first.pid}/results`)).status).toBe(200);
      // processing takes duration × speed
      expect(Date.now() - Date.parse(first.datetime)).toBeGreaterThanOrEqual(1500);
    } finally {
      await slow.close();
    }
  });

  it('completes at once with speed 0', async () => {
    const item = await submitted(standin, demoWav(twoSpeakerCall));
    expect(item.status).toBe(2);
    expect((await get(standin, `${clientUrl(standin)}/processes/${item.pid}/results`)).status).toBe(200);
  });

  it('lists processes per client and API, paged, sorted and filtered by date', async () => {
    const cid = 777;
    const pids: number[] = [];
    for (let i = 0; i < 5; i++) {
      pids.push((await submitted(standin, demoWav(twoSpeakerCall), { cid, fields: { name: `list-${i}` } })).pid);
    }
    await submitted(standin, demoWav(twoSpeakerCall), { cid, api: 'behavioral', fields: { name: 'other-api' } });
    const list = async (query: string) => {
      const response = await get(standin, `${clientUrl(standin, 'deepfake', cid)}/processes${query}`);
      expect(response.status).toBe(200);
      return ((await response.json()) as ProcessItem[]).map((p) => p.pid);
    };
    expect(await list('')).toEqual(pids);
    expect(await list('?page=0&pageSize=2')).toEqual(pids.slice(0, 2));
    expect(await list('?page=2&pageSize=2')).toEqual(pids.slice(4));
    expect(await list('?page=3&pageSize=2')).toEqual([]);
    expect(await list('?sort=desc&pageSize=3')).toEqual(pids.slice().reverse().slice(0, 3));
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(await list(`?startDate=${today}&endDate=${today}`)).toEqual(pids);
    expect(await list(`?startDate=${tomorrow}`)).toEqual([]);
    for (const query of ['?pageSize=0', '?pageSize=1001', '?page=-1', '?sort=up', '?startDate=2024-13-45']) {
      const response = await get(standin, `${clientUrl(standin, 'deepfake', cid)}/processes${query}`);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ code: 400, message: expect.any(String) });
    }
  });

  it('writes Deepfake API documents like the real ones, and they pass the strict parser', async () => {
    const { pid } = await submitted(standin, demoWav(twoSpeakerCall));
    const document = await results(standin, pid);
    expect(document).toMatchObject({ pid, cid: CID, code: 2, message: 'Processing Complete' });
    expect(Object.keys(document).sort()).toEqual(['cid', 'code', 'message', 'pid', 'results']);
    for (const item of document.results) {
      expect(Object.keys(item).sort()).toEqual(
        ['embedding', 'endTime', 'finalLabel', 'id', 'level', 'prediction', 'startTime', 'task'].sort(),
      );
      expect(item.startTime).toMatch(/^\d+\.\d{3}$/);
      expect(item.endTime).toMatch(/^\d+\.\d{3}$/);
      expect(item.level).toBe('utterance');
      for (const p of item.prediction) {
        expect(p.dominantInSegments).toEqual([]);
        if (p.posterior !== null) expect(p.posterior).toMatch(/^(\d\.\d+|\de-04)$/);
      }
    }
    const parsed = parseResultsDocument(document, { api: 'deepfake' });
    expect(parsed.utterances).toHaveLength(twoSpeakerCall.utterances.length);
    // one voiceprint per speaker, on that speaker's first diarization item only
    const withVector = parsed.utterances.filter((u) => u.speakerEmbedding !== null);
    expect(withVector.map((u) => u.speakerLabel).sort()).toEqual(twoSpeakerCall.speakers.map((sp) => sp.label).sort());
    for (const u of withVector) {
      const first = parsed.utterances.find((other) => other.speakerLabel === u.speakerLabel);
      expect(first?.upstreamId).toBe(u.upstreamId);
      const norm = Math.hypot(...(u.speakerEmbedding as number[]));
      expect(norm).toBeGreaterThan(160);
      expect(norm).toBeLessThan(255);
    }
    parsed.utterances.forEach((u, i) => {
      const declared = twoSpeakerCall.utterances[i] as CallManifest['utterances'][number];
      expect([u.startS, u.endS, u.speakerLabel]).toEqual([declared.start, declared.end, declared.speakerLabel]);
      const long = declared.end - declared.start >= 2;
      // no features and no verdict under 2 s
      expect(u.deepfakeEmbedding !== null).toBe(long);
      expect(u.tasks.includes('deepfake')).toBe(long);
      expect(u.tasks.includes('features')).toBe(long);
      expect(u.tasks.slice(0, 3)).toEqual(['asr', 'diarization', 'language']);
      if (long) expect(u.pSpoofed).toBeGreaterThanOrEqual(0);
    });
    const language = document.results.find((i) => i.task === 'language');
    expect(language?.prediction).toHaveLength(3);
  });

  it('adds generator_detection items with enable_generator_detection (an unknown task the parser keeps)', async () => {
    const { pid } = await submitted(standin, demoWav(twoSpeakerCall), {
      fields: { embeddings: 'true', enable_generator_detection: 'True' },
    });
    const document = await results(standin, pid);
    const long = twoSpeakerCall.utterances.filter((u) => u.end - u.start >= 2).length;
    expect(document.results.filter((i) => i.task === 'generator_detection')).toHaveLength(long);
    const parsed = parseResultsDocument(document, { api: 'deepfake' });
    expect(parsed.utterances.some((u) => u.tasks.includes('generator_detection'))).toBe(true);
  });

  it('writes Behavioral API documents with the behavioral task set, detected as behavioral', async () => {
    const { pid } = await submitted(standin, demoWav(twoSpeakerCall), { api: 'behavioral' });
    const document = await results(standin, pid, 'behavioral');
    const tasks = new Set(document.results.map((i) => i.task));
    expect([...tasks].sort()).toEqual(
      [
        'asr',
        'diarization',
        'language',
        'features',
        'intermediate_features',
        'gender',
        'age',
        'emotion',
        'positivity',
        'strength',
        'speaking_rate',
        'hesitation',
        'engagement',
      ].sort(),
    );
    const parsed = parseResultsDocument(document, { api: 'auto' });
    expect(parsed.api).toBe('behavioral');
    expect(parsed.utterances.filter((u) => u.speakerEmbedding !== null)).toHaveLength(twoSpeakerCall.speakers.length);
    // Behavioral `features` live in another space: the parser does not take them as deepfake vectors
    expect(parsed.utterances.every((u) => u.deepfakeEmbedding === null)).toBe(true);
    const features = document.results.find((i) => i.task === 'features');
    expect(JSON.parse(features?.embedding as string)).toHaveLength(768);
    // the speaker model is the same in both APIs: the same audio gives the same speaker vectors
    const { pid: deepfakePid } = await submitted(standin, demoWav(twoSpeakerCall));
    const deepfake = parseResultsDocument(await results(standin, deepfakePid), { api: 'deepfake' });
    const vectors = (doc: typeof parsed) =>
      doc.utterances.flatMap((u) => (u.speakerEmbedding ? [u.speakerEmbedding] : []));
    expect(vectors(parsed)).toEqual(vectors(deepfake));
  });
});

describe('voices', () => {
  it('uses the manifest: the same speakerId in two calls gives cosine-similar voiceprints', async () => {
    const callsOf = new Map<string, CallManifest[]>();
    for (const { manifest } of demo) {
      const caller = manifest.speakers.find((sp) => sp.role === 'caller');
      if (!caller || caller.noisy || !caller.speakerId.startsWith('cust-')) continue;
      callsOf.set(caller.speakerId, [...(callsOf.get(caller.speakerId) ?? []), manifest]);
    }
    const [speakerA, [callA1, callA2]] = [...callsOf.entries()].find(([, calls]) => calls.length >= 2) as [
      string,
      CallManifest[],
    ];
    const callB = [...callsOf.entries()].find(([id]) => id !== speakerA)?.[1][0] as CallManifest;
    const voiceprint = async (manifest: CallManifest | undefined, speakerId: string) => {
      const call = manifest as CallManifest;
      const label = call.speakers.find((sp) => sp.speakerId === speakerId)?.label;
      const { pid } = await submitted(standin, demoWav(call));
      const parsed = parseResultsDocument(await results(standin, pid), { api: 'deepfake' });
      return parsed.utterances.find((u) => u.speakerLabel === label && u.speakerEmbedding)
        ?.speakerEmbedding as number[];
    };
    const a1 = await voiceprint(callA1, speakerA);
    const a2 = await voiceprint(callA2, speakerA);
    const b = await voiceprint(callB, callB.speakers.find((sp) => sp.role === 'caller')?.speakerId as string);
    expect(cosine(a1, a2)).toBeGreaterThan(0.45);
    expect(cosine(a1, b)).toBeLessThan(0.4);
    expect(cosine(a1, a2) - cosine(a1, b)).toBeGreaterThan(0.2);
  });

  it('hears unknown WAV and MP3 audio as one new speaker per file, with the file duration', async () => {
    const wavA = encodeCallWav(null, { audioSeconds: 25, seed: 1 });
    const wavB = encodeCallWav(null, { audioSeconds: 25, seed: 2 });
    const itemA = await submitted(standin, wavA, { filename: 'a.wav' });
    expect(itemA.duration).toBe(25);
    const voiceOf = async (pid: number) => {
      const parsed = parseResultsDocument(await results(standin, pid), { api: 'deepfake' });
      expect(new Set(parsed.utterances.map((u) => u.speakerLabel))).toEqual(new Set(['SPEAKER_00']));
      return parsed.utterances[0]?.speakerEmbedding as number[];
    };
    const a = await voiceOf(itemA.pid);
    // the same bytes again: the same speaker, the same vector
    expect(await voiceOf((await submitted(standin, wavA)).pid)).toEqual(a);
    const b = await voiceOf((await submitted(standin, wavB)).pid);
    expect(cosine(a, b)).toBeLessThan(0.4);

    const frames = 1000; // MPEG-1 Layer III, 128 kbps, 44.1 kHz: 26.1 s
    const mp3 = Buffer.alloc(417 * frames);
    for (let i = 0; i < frames; i++) mp3.set([0xff, 0xfb, 0x90, 0x00], i * 417);
    const mp3Item = await submitted(standin, mp3, { filename: 'call.mp3' });
    expect(mp3Item.duration).toBeCloseTo((frames * 1152) / 44100, 0);
    const mp3Voice = await voiceOf(mp3Item.pid);
    expect(cosine(a, mp3Voice)).toBeLessThan(0.4);
  });
});

describe('URL submissions', () => {
  it('downloads local URLs like uploads; other URLs stand for 60 s of one speaker named by the URL', async () => {
    const wav = demoWav(twoSpeakerCall);
    const files = createServer((req, res) => {
      if (req.url === '/call.wav') res.end(wav);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    const port = (files.address() as { port: number }).port;
    const byUrl = (url: string, extra: Record<string, unknown> = {}) =>
      fetch(`${clientUrl(standin)}/processes/s3-presigned-url`, {
        method: 'POST',
        body: JSON.stringify({ url, name: 'by-url', embeddings: true, ...extra }),
        headers: { 'X-Auth-Token': standin.token, 'content-type': 'application/json' },
      });
    const itemAt = async (url: string) => (await (await byUrl(url)).json()) as ProcessItem;
    try {
      const local = await byUrl(`http://127.0.0.1:${port}/call.wav`, { meta: '{"a": 1}' });
      expect(local.status).toBe(200);
      const localItem = (await local.json()) as ProcessItem;
      expect(localItem).toMatchObject({
        name: 'by-url',
        duration: twoSpeakerCall.durationS,
        status: 2,
        meta: '{"a": 1}',
      });
      const uploaded = await submitted(standin, wav);
      expect((await results(standin, localItem.pid)).results).toEqual((await results(standin, uploaded.pid)).results);

      const missing = await itemAt(`http://127.0.0.1:${port}/missing.wav`);
      expect(missing).toMatchObject({ status: -1, statusmsg: expect.stringMatching(/HTTP 404/) });

      const remote = await itemAt('https://bucket.s3.amazonaws.com/calls/a.wav?X-Amz-Signature=1');
      expect(remote).toMatchObject({ duration: 60, status: 2 });
      // a new signature for the same object: the same audio
      const resigned = await itemAt('https://bucket.s3.amazonaws.com/calls/a.wav?X-Amz-Signature=2');
      const vector = async (pid: number) =>
        parseResultsDocument(await results(standin, pid), { api: 'deepfake' }).utterances[0]?.speakerEmbedding;
      expect(await vector(resigned.pid)).toEqual(await vector(remote.pid));

      const bad = await byUrl('ftp://example.com/a.wav');
      expect(bad.status).toBe(400);
      expect(await bad.json()).toEqual({ code: 400, message: expect.stringMatching(/url/) });
    } finally {
      files.close();
    }
  });
});

describe('the curl example in docs/upstream.md', () => {
  it('runs verbatim (host, token and client id substituted) and answers 200 with a process item', async () => {
    const docs = fs.readFileSync(path.join(repoRoot, 'docs/upstream.md'), 'utf8');
    const line = docs
      .split('\n')
      .find((l) => l.startsWith('curl --request POST --url http://127.0.0.1:8751/v5/detection/'));
    expect(line).toBeDefined();
    const command = (line as string)
      .replace('http://127.0.0.1:8751/v5', standin.url)
      .replace('<cid>', String(CID))
      .replace('<token>', standin.token);
    // only the host, token and client id differ from the vendor's example
    expect(line).toContain(
      "--header 'accept: application/json' --header 'content-type: multipart/form-data' --form name=my-awesome-audio --form embeddings=true --form 'meta={\"key\": \"value\"}' --form file=@call.wav",
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'standin-curl-'));
    try {
      fs.writeFileSync(path.join(dir, 'call.wav'), demoWav(twoSpeakerCall));
      const { stdout } = await promisify(execFile)(
        'bash',
        ['-c', `${command} --silent --write-out '\\n%{http_code}'`],
        {
          cwd: dir,
        },
      );
      const [body, status] = stdout.trim().split('\n');
      expect(status).toBe('200');
      expect(JSON.parse(body as string)).toMatchObject({
        cid: CID,
        name: 'my-awesome-audio',
        status: 2,
        meta: '{"key": "value"}',
        duration: twoSpeakerCall.durationS,
      });
      const { pid } = JSON.parse(body as string) as ProcessItem;
      const document = await results(standin, pid);
      expect(document.results.some((i) => i.task === 'diarization' && i.embedding !== null)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
