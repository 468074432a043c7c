import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { count, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findStoredEvent } from '../src/analysis/outbox.ts';
import { type Db, queryRows } from '../src/db/client.ts';
import { recordingEvents, recordings, utterances, voiceprints } from '../src/db/schema.ts';
import { importDocumentFile } from '../src/import/import.ts';
import { committedRuns, createRunsTable } from './support/analysis-steps.ts';
import { runCli } from './support/cli.ts';
import { createCliTarget, createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { ingestionViolations } from './support/invariants.ts';
import { must } from './support/must.ts';
import { leaseToOtherRunner, runWithSteps } from './support/steps-commands.ts';
import { expectedCounts, syntheticCalls, syntheticDocument } from './support/synthetic-documents.ts';

// each run of the CLI opens the database anew: seconds on PGlite, more on a busy machine
const CLI_TIMEOUT_MS = 240_000;

const sharedDir = path.resolve(import.meta.dirname, '../../shared/upstream');
const realFile = path.join(sharedDir, 'real-results-behavioral-1speaker.json');
const exampleFile = path.join(sharedDir, 'example-response.json');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-import-'));

function writeJson(name: string, value: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}

async function tableCounts(db: Db) {
  const [r] = await db.select({ n: count() }).from(recordings);
  const [u] = await db.select({ n: count() }).from(utterances);
  const [v] = await db.select({ n: count() }).from(voiceprints);
  const [e] = await db.select({ n: count() }).from(recordingEvents);
  return { recordings: r?.n, utterances: u?.n, voiceprints: v?.n, events: e?.n };
}

/** Largest |stored × norm − original| relative to the original's norm. */
function relativeError(stored: number[], norm: number, original: number[]): number {
  let worst = 0;
  const originalNorm = Math.hypot(...original);
  for (let i = 0; i < original.length; i++) {
    worst = Math.max(worst, Math.abs((stored[i] as number) * norm - (original[i] as number)) / originalNorm);
  }
  return worst;
}

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe(`import on ${engine}`, () => {
  it('stores the real Behavioral API document: 9 utterances, 1 voiceprint, vectors reproducible', async () => {
    const outcome = await importDocumentFile(database.db, realFile, {
      api: 'auto',
      accountRef: 'acc-1',
      channel: 'phone',
    });
    expect(outcome).toMatchObject({
      status: 'imported',
      utterances: 9,
      voiceprints: 1,
      deepfakeEmbeddings: 0,
      error: null,
    });
    const [recording] = await database.db
      .select()
      .from(recordings)
      .where(eq(recordings.id, outcome.recordingId as string));
    expect(recording).toMatchObject({
      status: 'complete',
      source: 'import',
      upstreamApi: 'behavioral',
      accountRef: 'acc-1',
      channel: 'phone',
    });
    const document = JSON.parse(fs.readFileSync(realFile, 'utf8'));
    expect(recording?.upstreamPid).toBe(document.pid);
    // the raw document is kept whole, unknown tasks and unstored vectors included
    expect((must(recording).rawDocument as { results: unknown[] }).results).toHaveLength(107);

    const [vp] = await database.db
      .select()
      .from(voiceprints)
      .where(eq(voiceprints.recordingId, recording?.id as string));
    const original = JSON.parse(
      document.results.find((i: { task: string; embedding: unknown }) => i.task === 'diarization' && i.embedding)
        .embedding,
    );
    expect(vp?.speakerLabel).toBe('SPEAKER_00');
    expect(Math.hypot(...(must(vp).embedding as number[]))).toBeCloseTo(1, 5);
    expect(relativeError(vp?.embedding as number[], vp?.rawNorm as number, original)).toBeLessThan(1e-5);
    const speech = document.results
      .filter((i: { task: string }) => i.task === 'asr')
      .reduce((s: number, i: { startTime: string; endTime: string }) => s + Number(i.endTime) - Number(i.startTime), 0);
    expect(vp?.speechSeconds).toBeCloseTo(speech, 6);
    expect(vp?.utteranceCount).toBe(9);
  });

  it('stores deepfake vectors as halfvec within 1e-3 and p_spoofed from the string posterior', async () => {
    // a call with an agent: two voiceprints
    const document = must(
      syntheticCalls({ count: 20, seed: 11, firstPid: 9001 })
        .map((c) => c.document)
        .find((d) => expectedCounts(d).voiceprints === 2),
    );
    const expected = expectedCounts(document);
    const outcome = await importDocumentFile(database.db, writeJson('deepfake.json', document), { api: 'auto' });
    expect(outcome).toMatchObject({ status: 'imported', ...expected });
    const rows = await database.db
      .select()
      .from(utterances)
      .where(eq(utterances.recordingId, outcome.recordingId as string));
    expect(rows.filter((r) => r.deepfakeEmbedding)).toHaveLength(expected.deepfakeEmbeddings);
    for (const row of rows.filter((r) => r.deepfakeEmbedding)) {
      const item = document.results.find((i) => i.id === row.upstreamId && i.task === 'features');
      const original = JSON.parse(item?.embedding as string);
      expect(relativeError(row.deepfakeEmbedding as number[], row.deepfakeRawNorm as number, original)).toBeLessThan(
        1e-3,
      );
      const verdict = document.results.find((i) => i.id === row.upstreamId && i.task === 'deepfake');
      const spoofed = must(verdict).prediction.find((p) => p.label === 'spoofed');
      expect(row.pSpoofed).toBeCloseTo(Number(spoofed?.posterior), 12);
    }
    const speakers = await database.db
      .select()
      .from(voiceprints)
      .where(eq(voiceprints.recordingId, outcome.recordingId as string));
    const labels = document.results.filter((i) => i.task === 'diarization' && i.embedding).map((i) => i.finalLabel);
    expect(speakers.map((s) => s.speakerLabel).sort()).toEqual(labels.sort());
  });

  it("rejects the docs' example with a clear error and stores nothing", async () => {
    const before = await tableCounts(database.db);
    const outcome = await importDocumentFile(database.db, exampleFile, { api: 'auto' });
    expect(outcome.status).toBe('rejected');
    expect(outcome.error).toBe(
      'utterance "0", task diarization: embedding is not a JSON array of numbers: it is trimmed with "..." (a shortened example, not a full vector)',
    );
    expect(await tableCounts(database.db)).toEqual(before);
  });

  it('is idempotent: same api, cid and pid, or same bytes without pid, is unchanged', async () => {
    const first = await importDocumentFile(database.db, realFile, { api: 'auto' });
    expect(first).toMatchObject({ status: 'unchanged', utterances: 9, voiceprints: 1 });
    // the same process saved differently (pretty-printed) is still the same process
    const pretty = writeJson('pretty.json', JSON.parse(fs.readFileSync(realFile, 'utf8')));
    fs.writeFileSync(pretty, JSON.stringify(JSON.parse(fs.readFileSync(realFile, 'utf8')), null, 2));
    expect((await importDocumentFile(database.db, pretty, { api: 'auto' })).status).toBe('unchanged');
    // a bare array has no pid: its bytes identify it
    const bare = writeJson('bare.json', syntheticDocument(12).results);
    const a = await importDocumentFile(database.db, bare, { api: 'auto' });
    const b = await importDocumentFile(database.db, bare, { api: 'auto' });
    expect(a.status).toBe('imported');
    expect(b).toMatchObject({ status: 'unchanged', recordingId: a.recordingId });
    // concurrent imports of one new document store it once
    const racing = writeJson('race.json', syntheticDocument(13, 777));
    const outcomes = await Promise.all([1, 2, 3].map(() => importDocumentFile(database.db, racing, { api: 'auto' })));
    expect(outcomes.map((o) => o.status).sort()).toEqual(['imported', 'unchanged', 'unchanged']);
    const stored = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from recordings where upstream_pid = 777`,
    );
    expect(stored[0]?.n).toBe(1);
  });

  it('rolls back a document the database refuses midway, keeping what was stored', async () => {
    const before = await tableCounts(database.db);
    const document = syntheticDocument(14, 4242);
    (document.results[document.results.length - 1] as { finalLabel: string }).finalLabel = 'bad\u0000label';
    const outcome = await importDocumentFile(database.db, writeJson('nul.json', document), { api: 'auto' });
    expect(outcome.status).toBe('rejected');
    expect(outcome.error).toMatch(/the database refused the document \(nothing was stored\)/);
    expect(await tableCounts(database.db)).toEqual(before);
  });

  it('rejects unreadable files and invalid JSON', async () => {
    expect((await importDocumentFile(database.db, path.join(tmp, 'missing.json'), { api: 'auto' })).error).toMatch(
      /cannot read the file/,
    );
    const broken = path.join(tmp, 'broken.json');
    fs.writeFileSync(broken, '{"results": [');
    expect((await importDocumentFile(database.db, broken, { api: 'auto' })).error).toMatch(/^not valid JSON/);
  });

  it('hands every imported recording to the analysis steps, as the worker does: one stored event each', async () => {
    const counts = await tableCounts(database.db);
    expect(counts.recordings).toBeGreaterThan(3);
    expect(counts.events).toBe(counts.recordings);
    // the ingestion invariants, imports included: rows as their documents say, one event each
    expect(await ingestionViolations({ db: database.db })).toEqual([]);
  });
});

describe(`./voxtrace import on ${engine}`, { timeout: CLI_TIMEOUT_MS }, () => {
  it('prints one JSON line per file, goes on after a rejected file, exits 1, then 0 when all are stored', async () => {
    const target = await createCliTarget();
    try {
      const goodDocument = syntheticDocument(21, 2100);
      const good = writeJson('cli-good.json', goodDocument);
      const first = await runCli(['import', '--json', '--account', 'A-9', exampleFile, realFile, good], target.env);
      expect(first.code).toBe(1);
      const lines = first.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => [path.basename(l.file), l.status])).toEqual([
        ['example-response.json', 'rejected'],
        ['real-results-behavioral-1speaker.json', 'imported'],
        ['cli-good.json', 'imported'],
      ]);
      expect(Object.keys(lines[0]).sort()).toEqual(
        [
          'analysis',
          'analysisError',
          'deepfakeEmbeddings',
          'error',
          'file',
          'line',
          'recordingId',
          'status',
          'utterances',
          'voiceprints',
        ].sort(),
      );
      expect(lines[0].error).toMatch(/utterance "0", task diarization/);
      expect(lines[1]).toMatchObject({ utterances: 9, voiceprints: 1, deepfakeEmbeddings: 0, error: null });

      const second = await runCli(['import', '--json', realFile, good], target.env);
      expect(second.code).toBe(0);
      expect(
        second.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).status),
      ).toEqual(['unchanged', 'unchanged']);

      const forced = await runCli(
        [
          'import',
          '--api',
          'deepfake',
          writeJson('cli-bare.json', JSON.parse(fs.readFileSync(realFile, 'utf8')).results),
        ],
        target.env,
      );
      expect(forced.code).toBe(0);
      expect(forced.stdout).toMatch(/^imported .* \(9 utterances, 1 voiceprints, 8 deepfake embeddings\)/);

      const badFlag = await runCli(['import', '--api', 'nope', good], target.env);
      expect(badFlag.code).not.toBe(0);
      expect(badFlag.stderr).toMatch(/argument 'nope' is invalid/);

      const stored = await target.inspect(async (db) => tableCounts(db.db));
      const fromGood = expectedCounts(goodDocument);
      expect(stored).toEqual({
        recordings: 3,
        utterances: 9 + fromGood.utterances + 9,
        voiceprints: 1 + fromGood.voiceprints + 1,
        events: 3,
      });
      const accounts = await target.inspect((db) =>
        db.db.selectDistinct({ a: recordings.accountRef }).from(recordings),
      );
      expect(accounts.map((a) => a.a).sort()).toEqual(['A-9', null]);
    } finally {
      await target.cleanup();
    }
  });
});

describe(`./voxtrace import --manifest, and the analysis of what it imports, on ${engine}`, () => {
  it(
    "stores each manifest line's context, rejects bad lines by number and imports the others",
    async () => {
      const target = await createCliTarget();
      const dir = fs.mkdtempSync(path.join(tmp, 'manifest-'));
      try {
        fs.mkdirSync(path.join(dir, 'docs'));
        const doc = (name: string, seed: number) => {
          const file = path.join(dir, 'docs', name);
          fs.writeFileSync(file, JSON.stringify(syntheticDocument(seed, 3100 + seed)));
          return file;
        };
        const [a, , c, d] = [doc('a.json', 1), doc('b.json', 2), doc('c.json', 3), doc('d.json', 4)];
        // stored before, with a context of its own that the manifest must not overwrite
        const earlier = await runWithSteps([], ['import', '--account', 'KEEP', realFile], target.env);
        expect(earlier.code).toBe(0);
        const manifest = path.join(dir, 'calls.jsonl');
        fs.writeFileSync(
          manifest,
          [
            JSON.stringify({
              file: 'docs/a.json',
              accountRef: 'ACC-1',
              channel: 'phone',
              callAt: '2026-03-01T09:30:00Z',
              meta: { agent: 'A-17', queue: 'cards' },
            }),
            '{"file": "docs/b.json"',
            JSON.stringify({ file: 'docs/b.json', acount: 'typo' }),
            JSON.stringify({ file: 'docs/b.json', callAt: 'yesterday' }),
            JSON.stringify({ accountRef: 'ACC-2' }),
            JSON.stringify({ file: 'docs/missing.json' }),
            '',
            JSON.stringify({ file: c, callAt: '2026-03-02' }),
            JSON.stringify({ file: realFile, accountRef: 'OTHER' }),
            JSON.stringify({ file: 'docs/b.json', meta: 'not an object' }),
          ].join('\n'),
        );
        const result = await runWithSteps(
          [],
          ['import', '--json', '--account', 'DEF', d, '--manifest', manifest],
          target.env,
        );
        expect(result.code).toBe(1);
        const lines = result.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        expect(lines.map((l) => [l.line, path.basename(l.file), l.status])).toEqual([
          [null, 'd.json', 'imported'],
          [1, 'a.json', 'imported'],
          [2, 'calls.jsonl', 'rejected'],
          [3, 'b.json', 'rejected'],
          [4, 'b.json', 'rejected'],
          [5, 'calls.jsonl', 'rejected'],
          [6, 'missing.json', 'rejected'],
          [8, 'c.json', 'imported'],
          [9, path.basename(realFile), 'unchanged'],
          [10, 'b.json', 'rejected'],
        ]);
        const errorOf = (line: number) => lines.find((l) => l.line === line)?.error;
        expect(errorOf(2)).toMatch(/^manifest line 2: not valid JSON/);
        expect(errorOf(3)).toMatch(/^manifest line 3: unknown field "acount"; a line takes file, accountRef/);
        expect(errorOf(4)).toMatch(/^manifest line 4: callAt: /);
        expect(errorOf(5)).toMatch(/^manifest line 5: file: required/);
        expect(errorOf(6)).toMatch(/^manifest line 6: cannot read the file/);
        expect(errorOf(10)).toMatch(/^manifest line 10: meta: must be a JSON object/);
        // no analysis step: nothing waited, the recordings wait for the first step
        expect(lines.filter((l) => l.status !== 'rejected').map((l) => l.analysis)).toEqual([
          'none',
          'none',
          'none',
          'none',
        ]);

        const stored = await target.inspect(async (db) => {
          const rows = await db.db.select().from(recordings);
          const events = await db.db.select().from(recordingEvents);
          return { rows, events };
        });
        const byId = (id: string) => must(stored.rows.find((r) => r.id === id));
        const idOf = (file: string) => lines.find((l) => l.file === file)?.recordingId as string;
        expect(byId(idOf(a))).toMatchObject({
          accountRef: 'ACC-1',
          channel: 'phone',
          callAt: new Date('2026-03-01T09:30:00Z'),
          meta: { agent: 'A-17', queue: 'cards' },
        });
        expect(byId(idOf(c))).toMatchObject({
          accountRef: 'DEF',
          channel: null,
          callAt: new Date('2026-03-02T00:00:00Z'),
          meta: {},
        });
        expect(byId(idOf(d))).toMatchObject({ accountRef: 'DEF', callAt: null, meta: {} });
        expect(byId(idOf(realFile))).toMatchObject({ accountRef: 'KEEP' });
        // b.json was on rejected lines only: stored nowhere; every stored recording has its pending event
        expect(stored.rows).toHaveLength(4);
        expect(stored.events.map((e) => e.status)).toEqual(['pending', 'pending', 'pending', 'pending']);

        const unreadable = await runWithSteps([], ['import', '--manifest', path.join(dir, 'none.jsonl')], target.env);
        expect(unreadable.code).toBe(1);
        expect(unreadable.stderr).toMatch(/^voxtrace import: cannot read the manifest .*none\.jsonl/);
        const nothing = await runWithSteps([], ['import'], target.env);
        expect(nothing.code).toBe(1);
        expect(nothing.stderr).toMatch(/nothing to import: give results documents as arguments, or --manifest FILE/);
      } finally {
        await target.cleanup();
      }
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'returns once its recordings are analysed, waiting for another runner; a dead analysis says why and exits 1',
    async () => {
      const target = await createCliTarget();
      try {
        await target.inspect((db) => createRunsTable(db.db));
        const [e, f, g, h] = [41, 42, 43, 44].map((seed) =>
          writeJson(`analysed-${seed}.json`, syntheticDocument(seed, 4100 + seed)),
        );
        // stored before any step ran: its event waits, and is no business of the next import
        const waiting = await runWithSteps([], ['import', '--json', g as string], target.env);
        const gId = JSON.parse(waiting.stdout).recordingId as string;

        const steps = [{ name: 'a' }, { name: 'b', after: 'a' }];
        const result = await runWithSteps(steps, ['import', '--json', e as string, f as string], target.env);
        expect(result.code).toBe(0);
        const lines = result.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        expect(lines.map((l) => [l.status, l.analysis, l.analysisError])).toEqual([
          ['imported', 'done', null],
          ['imported', 'done', null],
        ]);
        // done when the command returned: every step committed once
        const after = await target.inspect(async (db) => ({
          runs: await committedRuns(db.db),
          events: await db.db.select().from(recordingEvents),
        }));
        for (const line of lines) expect(after.runs[line.recordingId]).toEqual({ a: 1, b: 1 });
        expect(after.runs[gId]).toBeUndefined();
        expect(after.events.find((ev) => ev.recordingId === gId)?.status).toBe('pending');

        // g again (unchanged), while another runner holds its event: import waits for the lease to run out
        const leaseEnd = await target.inspect(async (db) => {
          await leaseToOtherRunner(db.db, gId, 4);
          return must((await findStoredEvent(db.db, gId))?.leaseExpiresAt);
        });
        const again = await runWithSteps(steps, ['import', g as string], target.env);
        expect(again.code).toBe(0);
        expect(again.stdout).toMatch(/^unchanged .* → recording .*, analysed$/m);
        const gEvent = must(await target.inspect((db) => findStoredEvent(db.db, gId)));
        expect(gEvent).toMatchObject({ status: 'done', stepsDone: ['a', 'b'] });
        expect(must(gEvent.completedAt).getTime()).toBeGreaterThanOrEqual(leaseEnd.getTime());

        const broken = await runWithSteps([{ name: 'broken', failTimes: 1_000 }], ['import', '--json', h as string], {
          ...target.env,
          VOXTRACE_MAX_ATTEMPTS: '1',
        });
        expect(broken.code).toBe(1);
        expect(JSON.parse(broken.stdout)).toMatchObject({
          status: 'imported',
          analysis: 'dead',
          analysisError: expect.stringMatching(/^step broken: step broken fails on purpose/),
        });
      } finally {
        await target.cleanup();
      }
    },
    CLI_TIMEOUT_MS,
  );
});
