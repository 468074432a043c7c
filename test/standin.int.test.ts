import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordings } from '../src/db/schema.ts';
import { generateDemoCalls } from '../src/standin/demo-data.ts';
import type { CallManifest } from '../src/standin/manifest.ts';
import { type Standin, startStandin } from '../src/standin/server.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { runCli } from './support/cli.ts';
import { createCliTarget, engine } from './support/db.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-standin-import-'));
const manifest = [...generateDemoCalls({ calls: 20, speakers: 4, fraudsters: 1, campaigns: 1, seed: 8 })]
  .map((c) => c.manifest)
  .find((m) => m.speakers.length === 2 && m.utterances.some((u) => u.end - u.start < 2)) as CallManifest;

let standin: Standin;
beforeAll(async () => {
  standin = await startStandin({ speed: 0 });
});
afterAll(async () => {
  await standin?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Submits the demo call to one API and saves the results body, byte for byte, as a file. */
async function savedResults(api: 'deepfake' | 'behavioral', name: string, query = '') {
  const base = `${standin.url}/${api === 'deepfake' ? 'detection/' : ''}clients/4321`;
  const form = new FormData();
  form.set('name', name);
  form.set('embeddings', 'true');
  form.set('file', new Blob([new Uint8Array(encodeCallWav(manifest))]), `${name}.wav`);
  const headers = { 'X-Auth-Token': standin.token };
  const item = (await (await fetch(`${base}/processes/audio`, { method: 'POST', body: form, headers })).json()) as {
    pid: number;
  };
  const response = await fetch(`${base}/processes/${item.pid}/results${query}`, { headers });
  expect(response.status).toBe(200);
  const file = path.join(tmp, `${name}.json`);
  fs.writeFileSync(file, await response.text());
  return { file, pid: item.pid };
}

describe(`stand-in documents with ./voxtrace import on ${engine}`, () => {
  it('imports Deepfake and Behavioral API documents saved from the stand-in; rejects a trimmed one', async () => {
    const deepfake = await savedResults('deepfake', 'deepfake-doc');
    const behavioral = await savedResults('behavioral', 'behavioral-doc');
    standin.setFaults({ rules: [{ on: 'results', fault: 'trimmed' }] });
    const trimmed = await savedResults('deepfake', 'trimmed-doc');
    standin.setFaults({ rules: [] });

    const target = await createCliTarget();
    try {
      const run = await runCli(['import', '--json', deepfake.file, behavioral.file, trimmed.file], target.env);
      const lines = run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const long = manifest.utterances.filter((u) => u.end - u.start >= 2).length;
      expect(lines[0]).toMatchObject({
        status: 'imported',
        utterances: manifest.utterances.length,
        voiceprints: manifest.speakers.length,
        deepfakeEmbeddings: long,
      });
      expect(lines[1]).toMatchObject({
        status: 'imported',
        utterances: manifest.utterances.length,
        voiceprints: manifest.speakers.length,
        deepfakeEmbeddings: 0,
      });
      expect(lines[2]).toMatchObject({ status: 'rejected', error: expect.stringMatching(/trimmed/) });
      expect(run.code).toBe(1);
      await target.inspect(async (database) => {
        const stored = await database.db
          .select({ api: recordings.upstreamApi, cid: recordings.upstreamCid, pid: recordings.upstreamPid })
          .from(recordings)
          .where(eq(recordings.upstreamCid, 4321));
        expect(stored.sort((a, b) => String(a.api).localeCompare(String(b.api)))).toEqual([
          { api: 'behavioral', cid: 4321, pid: behavioral.pid },
          { api: 'deepfake', cid: 4321, pid: deepfake.pid },
        ]);
      });
    } finally {
      await target.cleanup();
    }
  });
});
