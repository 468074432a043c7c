import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { startWorker } from '../src/ingest/worker.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { createLogger } from '../src/log.ts';
import type { RecordingDetailResponse } from '../src/recordings/routes.ts';
import { startStandin } from '../src/standin/server.ts';
import { createUpstreamClient } from '../src/upstream/client.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { demoCallFiles } from './support/ingest.ts';
import { ingestionViolations } from './support/invariants.ts';

/** The whole path in one process: upload → API → spool → worker → stand-in → database → API. */

let database: TestDatabase;
let standin: Awaited<ReturnType<typeof startStandin>>;
const spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-e2e-'));
let key: string;
let app: ReturnType<typeof testApp>;

beforeAll(async () => {
  database = await createTestDatabase();
  standin = await startStandin({ port: 0, speed: 0.002 });
  app = testApp(database.db, { intake: { spoolDir, maxUploadBytes: 10 * 1024 * 1024, upstreamApi: 'deepfake' } });
  key = (await createApiKey(database.db, { scope: 'write' }, CLI_ACTOR)).key;
});
afterAll(async () => {
  await standin?.close();
  await database?.close();
  fs.rmSync(spoolDir, { recursive: true, force: true });
});

function upload(bytes: Buffer, fields: Record<string, string> = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([new Uint8Array(bytes)], { type: 'audio/wav' }), 'call.wav');
  return app.request('/v1/recordings', { method: 'POST', body: form, headers: { authorization: `Bearer ${key}` } });
}

describe(`upload to stored recording on ${engine}`, () => {
  it('stores every uploaded call exactly once, with its utterances and voiceprints', async () => {
    const calls = demoCallFiles(3, 21);
    const ids: string[] = [];
    for (const call of calls) {
      const response = await upload(call.bytes, { accountRef: call.manifest.accountRef ?? 'acc-x', channel: 'phone' });
      expect(response.status).toBe(202);
      ids.push((await response.json()).id);
    }
    // the same bytes again: the same recording
    const again = await upload((calls[0] as (typeof calls)[number]).bytes);
    expect(again.status).toBe(200);
    expect((await again.json()).id).toBe(ids[0]);

    const client = createUpstreamClient({ baseUrl: standin.url, cid: '3', token: standin.token, api: 'deepfake' });
    const worker = startWorker({
      db: database.db,
      client,
      log: createLogger('silent'),
      spoolDir,
      concurrency: 2,
      leaseSeconds: 30,
      maxAttempts: 5,
      keepAudio: false,
      idleMs: 50,
    });
    try {
      const details: RecordingDetailResponse[] = [];
      for (const id of ids) {
        for (let i = 0; ; i++) {
          const detail = (await (
            await app.request(`/v1/recordings/${id}`, { headers: { authorization: `Bearer ${key}` } })
          ).json()) as RecordingDetailResponse;
          if (detail.status === 'complete') {
            details.push(detail);
            break;
          }
          if (i > 600) throw new Error(`recording ${id} stayed ${detail.status}`);
          await sleep(50);
        }
      }
      calls.forEach((call, i) => {
        const detail = details[i] as RecordingDetailResponse;
        expect(detail.accountRef).toBe(call.manifest.accountRef);
        expect(detail.utterances).toHaveLength(call.manifest.utterances.length);
        expect(detail.voiceprints.map((v) => v.speakerLabel).sort()).toEqual(
          call.manifest.speakers.map((s) => s.label).sort(),
        );
        expect(detail.upstream.pid).not.toBeNull();
      });
      const list = await (
        await app.request('/v1/recordings?status=complete', { headers: { authorization: `Bearer ${key}` } })
      ).json();
      expect(list.items).toHaveLength(3);
    } finally {
      await worker.stop();
      await client.close();
    }
    expect(await ingestionViolations({ db: database.db, standinStats: standin.stats(), spoolDir })).toEqual([]);
  });
});
