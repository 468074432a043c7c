import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_SPOOF_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { importDocumentFile } from '../src/import/import.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { createLogger } from '../src/log.ts';
import type { UtteranceRow } from '../src/recordings/store.ts';
import { spoofVerdictStep } from '../src/spoofs/step.ts';
import { testApp } from './support/app.ts';
import { repoRoot } from './support/cli.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { analyseAll, callOf, person, storeCall } from './support/identity-calls.ts';
import { syntheticCalls } from './support/synthetic-documents.ts';

/**
 * Each call verdict on purpose-built calls, through the analysis steps on a real database: stored
 * in `recording_spoof_verdicts` for analysts, shown with its timeline in `GET /v1/recordings/{id}`,
 * and written once however often the step runs.
 */

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let reader: { key: string };

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  reader = await createApiKey(database.db, { scope: 'read', name: 'analyst' }, CLI_ACTOR);
});
afterAll(async () => {
  await database?.close();
});

let n = 0;
const utterance = (startS: number, endS: number, label: string | null, pSpoofed: number | null): UtteranceRow => ({
  upstreamId: String(n++),
  startS,
  endS,
  speakerLabel: 'speaker_0',
  transcript: null,
  language: 'en',
  deepfakeLabel: label,
  pSpoofed,
  deepfake: null,
});

type Spoof = {
  verdict: string;
  spoofedShare: number | null;
  peakPSpoofed: number | null;
  nearMisses: unknown[];
  clusterIds: string[];
  timeline: {
    utteranceId: string;
    start: number;
    end: number;
    pSpoofed: number;
    label: string;
    clusterId: null;
    nearMiss: boolean;
  }[];
};

async function recordingSpoof(recordingId: string): Promise<Spoof | null> {
  const response = await app.request(`/v1/recordings/${recordingId}`, {
    headers: { authorization: `Bearer ${reader.key}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { spoof: Spoof | null }).spoof;
}

async function callWith(utterances: UtteranceRow[]): Promise<string> {
  const caller = person(71, `caller-${n}`);
  const { recordingId } = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(caller, 1) }], `acc-${n}`, {
    utterances,
  });
  return recordingId;
}

describe('the call verdict step', () => {
  it('decides each verdict on purpose-built calls, stores it and shows it with the timeline', async () => {
    const calls = {
      spoofed: await callWith([utterance(0, 6, 'spoofed', 0.9999), utterance(6, 10, 'bonafide', 0.0001)]),
      mixed: await callWith([utterance(0, 3, 'spoofed', 0.998), utterance(3, 30, 'bonafide', 0.0002)]),
      bonafide: await callWith([utterance(0, 3, 'spoofed', 0.7), utterance(3, 30, 'bonafide', 0.0002)]),
      unknown: await callWith([utterance(0, 1.5, 'spoofed', 0.9999), utterance(2, 3, null, null)]),
    };
    // not analysed yet: no verdict to show
    expect(await recordingSpoof(calls.spoofed)).toBeNull();
    await analyseAll(database.db);

    const stored = await queryRows<{ recordingId: string; verdict: string; spoofedShare: number | null }>(
      database.db,
      sql`select recording_id as "recordingId", verdict, spoofed_share as "spoofedShare" from recording_spoof_verdicts`,
    );
    const byRecording = new Map(stored.map((r) => [r.recordingId, r]));
    for (const [verdict, recordingId] of Object.entries(calls)) {
      expect(byRecording.get(recordingId)?.verdict, verdict).toBe(verdict);
    }

    const spoofed = await recordingSpoof(calls.spoofed);
    expect(spoofed).toMatchObject({
      verdict: 'spoofed',
      spoofedShare: 0.6,
      peakPSpoofed: 0.9999,
      nearMisses: [],
      clusterIds: [],
    });
    expect(spoofed?.timeline.map((t) => [t.start, t.end, t.label, t.pSpoofed, t.nearMiss, t.clusterId])).toEqual([
      [0, 6, 'spoofed', 0.9999, false, null],
      [6, 10, 'bonafide', 0.0001, false, null],
    ]);
    expect((await recordingSpoof(calls.bonafide))?.verdict).toBe('bonafide');
    // the timeline lists what carries a verdict, judged or not (the 1.5 s utterance is too short to judge)
    const unknown = await recordingSpoof(calls.unknown);
    expect(unknown).toMatchObject({ verdict: 'unknown', spoofedShare: null });
    expect(unknown?.timeline.map((t) => t.label)).toEqual(['spoofed']);
  });

  it('judges whole upstream documents: stand-in calls of known truth, and a real behavioral one (no labels: unknown)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-spoof-docs-'));
    const files: { file: string; cloned: boolean | null }[] = [];
    for (const [i, { manifest, document }] of syntheticCalls({ count: 24, seed: 11 }).entries()) {
      const file = path.join(dir, `call-${i}.json`);
      fs.writeFileSync(file, JSON.stringify(document));
      files.push({ file, cloned: manifest.utterances.some((u) => u.spoofFamily !== null) });
    }
    files.push({
      file: path.resolve(import.meta.dirname, '../../shared/upstream/real-results-behavioral-1speaker.json'),
      cloned: null,
    });
    const imported: { recordingId: string; cloned: boolean | null; file: string }[] = [];
    for (const { file, cloned } of files) {
      const outcome = await importDocumentFile(database.db, file, { api: 'auto' });
      expect(outcome.error, file).toBeNull();
      imported.push({ recordingId: outcome.recordingId as string, cloned, file });
    }
    await analyseAll(database.db);
    expect(imported.some((c) => c.cloned)).toBe(true);
    for (const { recordingId, cloned, file } of imported) {
      // the judged utterances and their seconds, counted here straight from the stored utterances
      const [expected] = await queryRows<{
        judged: number;
        seconds: number | string | null;
        spoofed: number | string | null;
      }>(
        database.db,
        sql`select count(*)::int as judged, coalesce(sum(end_s - start_s), 0) as seconds,
                   coalesce(sum(end_s - start_s) filter (where deepfake_label = 'spoofed'), 0) as spoofed
            from utterances
            where recording_id = ${recordingId} and deepfake_label is not null and end_s - start_s >= 2`,
      );
      const [stored] = await queryRows<{
        verdict: string;
        judged: number;
        judgedSeconds: number;
        spoofedSeconds: number;
      }>(
        database.db,
        sql`select verdict, judged_utterances as judged, judged_seconds as "judgedSeconds", spoofed_seconds as "spoofedSeconds"
            from recording_spoof_verdicts where recording_id = ${recordingId}`,
      );
      expect(stored?.judged, file).toBe(expected?.judged);
      expect(stored?.judgedSeconds, file).toBeCloseTo(Number(expected?.seconds), 5);
      expect(stored?.spoofedSeconds, file).toBeCloseTo(Number(expected?.spoofed), 5);
      expect((await recordingSpoof(recordingId))?.verdict, file).toBe(stored?.verdict);
      if (cloned === null) expect(stored?.verdict, file).toBe('unknown');
      else expect(stored?.verdict, file).toBe(cloned ? 'spoofed' : 'bonafide');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes one row per recording however often the step runs, with the last run’s verdict', async () => {
    const recordingId = await callWith([utterance(0, 6, 'spoofed', 0.9999), utterance(6, 10, 'bonafide', 0.0001)]);
    await analyseAll(database.db);
    const verdicts = () =>
      queryRows<{ verdict: string }>(
        database.db,
        sql`select verdict from recording_spoof_verdicts where recording_id = ${recordingId}`,
      );
    expect(await verdicts()).toEqual([{ verdict: 'spoofed' }]);
    // run again under a stricter rule (as a replay after a configuration change would)
    const step = spoofVerdictStep({ ...DEFAULT_SPOOF_SETTINGS, spoofedShare: 0.9 });
    const event = { id: 'replayed', recordingId, kind: 'stored' as const, stepsDone: [], attempts: 1 };
    for (let i = 0; i < 2; i++) await step.run({ tx: database.db, event, log: createLogger('silent') });
    expect(await verdicts()).toEqual([{ verdict: 'mixed' }]);
  });

  it('keeps nothing once its recording is deleted', async () => {
    const recordingId = await callWith([utterance(0, 4, 'bonafide', 0.001)]);
    await analyseAll(database.db);
    await database.db.execute(sql`delete from recordings where id = ${recordingId}`);
    const rows = await queryRows(
      database.db,
      sql`select 1 from recording_spoof_verdicts where recording_id = ${recordingId}`,
    );
    expect(rows).toEqual([]);
  });
});

describe('the SQL docs/spoofs.md gives analysts, pasted as written', () => {
  const blocks = [
    ...fs.readFileSync(path.join(repoRoot, 'docs', 'spoofs.md'), 'utf8').matchAll(/```sql\n([\s\S]*?)```/g),
  ].map((m) => (m[1] as string).trim());

  it('counts the verdicts per channel and day, lists the calls to open first, and buckets their peak posterior', async () => {
    // the fourth and fifth (campaigns, near misses) run where there are clusters (spoof-clusters and spoof-recluster tests)
    expect(blocks).toHaveLength(5);
    const [buckets, perDay, toOpen] = blocks as [string, string, string];
    await database.db.execute(sql`delete from recordings`);
    const spoofed = await callWith([utterance(0, 6, 'spoofed', 0.9999), utterance(6, 10, 'bonafide', 0.0001)]);
    const mixed = await callWith([utterance(0, 3, 'spoofed', 0.995), utterance(3, 30, 'bonafide', 0.0002)]);
    await callWith([utterance(0, 10, 'bonafide', 0.0001)]);
    await analyseAll(database.db);

    const days = await queryRows<{ channel: string; verdict: string; calls: number | string }>(
      database.db,
      sql.raw(perDay),
    );
    expect(days.map((d) => [d.channel, d.verdict, Number(d.calls)])).toEqual([
      ['phone', 'bonafide', 1],
      ['phone', 'mixed', 1],
      ['phone', 'spoofed', 1],
    ]);
    const open = await queryRows<{ id: string; verdict: string }>(database.db, sql.raw(toOpen));
    expect(open.map((o) => o.id).sort()).toEqual([spoofed, mixed].sort());
    const byBucket = await queryRows<{ bucket: number; verdict: string; calls: number | string }>(
      database.db,
      sql.raw(buckets),
    );
    expect(byBucket.map((b) => [b.bucket, b.verdict, Number(b.calls)])).toEqual([
      [10, 'mixed', 1],
      [10, 'spoofed', 1],
    ]);
  });
});
