import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { createApiClient } from '../src/client/api.ts';
import { listen } from '../src/http/serve.ts';
import { startWorker } from '../src/ingest/worker.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { createLogger } from '../src/log.ts';
import { generateDemoCalls } from '../src/standin/demo-data.ts';
import type { CallManifest } from '../src/standin/manifest.ts';
import { startStandin } from '../src/standin/server.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { createUpstreamClient } from '../src/upstream/client.ts';
import type { VoiceSearchResponse } from '../src/voices/routes.ts';
import { testApp } from './support/app.ts';
import { runCli } from './support/cli.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { until } from './support/until.ts';

/**
 * `voxtrace search voice` as a user runs it: a subprocess talking to the API, with the worker and
 * the stand-in in this process; a FILE goes through intake, the worker and the stand-in first.
 */

let database: TestDatabase;
let standin: Awaited<ReturnType<typeof startStandin>>;
let server: Awaited<ReturnType<typeof listen>>;
let worker: ReturnType<typeof startWorker>;
let upstream: ReturnType<typeof createUpstreamClient>;
let env: Record<string, string>;
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-search-cli-'));
const spoolDir = path.join(workDir, 'spool');
// 10 calls of 3 customers: every customer is heard on several calls
const calls = [
  ...generateDemoCalls({
    calls: 10,
    speakers: 3,
    fraudsters: 0,
    campaigns: 0,
    seed: 5,
    now: new Date('2026-11-01T00:00:00Z'),
  }),
].map(({ manifest }) => manifest);
const stored = new Map<string, CallManifest>(); // recording id → its manifest
const speakerAt = (manifest: CallManifest, label: string) =>
  manifest.speakers.find((s) => s.label === label)?.speakerId;
/** The speaker with the most speech: whom a search by recording without a label is about. */
function longestSpeaker(manifest: CallManifest): string | undefined {
  const seconds = new Map<string, number>();
  for (const u of manifest.utterances)
    seconds.set(u.speakerLabel, (seconds.get(u.speakerLabel) ?? 0) + u.end - u.start);
  const [label] = [...seconds].sort((a, b) => b[1] - a[1])[0] ?? [];
  return label === undefined ? undefined : speakerAt(manifest, label);
}

beforeAll(async () => {
  database = await createTestDatabase();
  standin = await startStandin({ port: 0, speed: 0 });
  const app = testApp(database.db, { intake: { spoolDir, maxUploadBytes: 20 * 1024 * 1024, upstreamApi: 'deepfake' } });
  server = await listen(app, { host: '127.0.0.1', port: 0 });
  const { key } = await createApiKey(database.db, { scope: 'write' }, CLI_ACTOR);
  env = { VOXTRACE_API_URL: server.url, VOXTRACE_API_KEY: key };
  upstream = createUpstreamClient({ baseUrl: standin.url, cid: '3', token: standin.token, api: 'deepfake' });
  worker = startWorker({
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
  // every call but the last is stored before the searches
  const api = createApiClient({ apiUrl: server.url, apiKey: key, connections: 2 });
  try {
    for (const [i, manifest] of calls.slice(0, -1).entries()) {
      const file = path.join(workDir, `call-${i}.wav`);
      fs.writeFileSync(file, encodeCallWav(manifest));
      const answer = await api.uploadRecording(file, {
        accountRef: manifest.accountRef,
        callAt: manifest.callAt ?? new Date().toISOString(),
      });
      if (!answer.ok) throw new Error(answer.detail);
      stored.set(answer.value.id, manifest);
    }
    await until(
      'the calls are stored',
      async () => {
        const answer = await api.recordingsByIds([...stored.keys()]);
        return answer.ok && answer.value.items.every((r) => r.status === 'complete');
      },
      60_000,
    );
  } finally {
    await api.close();
  }
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await upstream?.close();
  await server?.close();
  await standin?.close();
  await database?.close();
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe(`voxtrace search voice on ${engine}`, () => {
  it('FILE: ingests the call like any other, then finds the caller’s stored calls', async () => {
    const last = calls.at(-1) as CallManifest;
    const file = path.join(workDir, 'new-call.wav');
    fs.writeFileSync(file, encodeCallWav(last));
    const { code, stdout, stderr } = await runCli(['search', 'voice', file, '--json', '-k', '3'], env, {
      timeoutMs: 90_000,
    });
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/new-call\.wav → recording [0-9a-f-]{36}/);
    const answer = JSON.parse(stdout) as VoiceSearchResponse;
    expect(answer.items).toHaveLength(3);
    const top = answer.items[0] as VoiceSearchResponse['items'][number];
    // the new call's longest speaker (an agent heard on two stored calls): those calls come first
    const voice = longestSpeaker(last);
    expect(voice).toMatch(/./);
    for (const item of answer.items.slice(0, 2)) {
      expect(speakerAt(stored.get(item.recordingId) as CallManifest, item.speakerLabel)).toBe(voice);
    }
    expect(top.verdict).toBe('same');
  });

  it('--recording with --speaker, as a table', async () => {
    const [recordingId, manifest] = [...stored][0] as [string, CallManifest];
    const agent = manifest.speakers.find((s) => s.role === 'agent');
    const label = agent?.label ?? (manifest.speakers[0]?.label as string);
    const { code, stdout, stderr } = await runCli(
      ['search', 'voice', '--recording', recordingId, '--speaker', label, '--group-by', 'account', '-k', '2'],
      env,
    );
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^2 voiceprint\(s\) · plan (hnsw|hnsw-iterative|exact)/);
    expect(lines[1]).toMatch(/^score\s+verdict\s+similarity\s+voiceprint/);
    expect(lines).toHaveLength(4);
  });

  it('refuses two queries at once, and an unknown voiceprint, in one line', async () => {
    const both = await runCli(['search', 'voice', '--recording', 'x', '--voiceprint', 'y'], env);
    expect(both.code).toBe(1);
    expect(both.stderr.trim()).toBe(
      'voxtrace search voice: give exactly one of FILE, --recording ID or --voiceprint ID',
    );
    const unknown = await runCli(['search', 'voice', '--voiceprint', '7d4c9b3e-1111-4222-8333-444455556666'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toMatch(
      /^voxtrace search voice: query\.voiceprintId: no voiceprint .* \(HTTP 404\)$/,
    );
  });
});
