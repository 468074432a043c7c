/**
 * How well `far` is calibrated: the impostor cohort drawn from a database of synthetic voices, read
 * against held-out pairs whose truth is known (the scorer never sees it). Writes
 * bench/results/voices-calibration.json: the cohort's curve (similarity at each FAR), and for raw
 * cosine and AS-norm the realised FAR and the true-match rate at nominal FAR 1e-2, 1e-3 (`likely`,
 * `same`) and 1e-4, and the EER.
 *
 *   node bench/voices-calibration.ts [--speakers 5000] [--calls 3] [--seed 2]
 *
 * The database holds `speakers` × `calls` voiceprints (10 % of calls noisy), each speaker on an
 * account of their own and in no identity (as before any clustering). The held-out set is 600
 * other speakers × 2 calls: every same-speaker pair is genuine, every other pair an impostor.
 */
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { recordings, voiceprints } from '../src/db/schema.ts';
import { createVoiceModel } from '../src/standin/voices.ts';
import { normalise } from '../src/vectors.ts';
import { asNormStats } from '../src/voices/as-norm.ts';
import { asNormScore, refreshCalibration } from '../src/voices/calibration.ts';
import { withBenchDatabase } from './support/database.ts';
import { describeMachine } from './support/machine.ts';
import { recordResult } from './support/results.ts';

const { values } = parseArgs({
  options: {
    speakers: { type: 'string', default: '5000' },
    calls: { type: 'string', default: '3' },
    seed: { type: 'string', default: '2' },
  },
});
const speakers = Number(values.speakers);
const callsPerSpeaker = Number(values.calls);
const seed = Number(values.seed);
const HELD_OUT = 600;
const benchDir = import.meta.dirname;
const model = createVoiceModel(seed);
const noisy = (speaker: number, call: number) => (speaker * 7 + call * 3) % 10 === 0;

await withBenchDatabase('postgres', 'voxtrace_bench_calibration', async (database) => {
  const db = database.db;
  const started = performance.now();
  for (let first = 0; first < speakers; first += 500) {
    const batch = [];
    for (let s = first; s < Math.min(speakers, first + 500); s++) {
      for (let c = 0; c < callsPerSpeaker; c++) batch.push({ s, c });
    }
    const made = await db
      .insert(recordings)
      .values(
        batch.map(({ s, c }) => ({
          source: 'import' as const,
          status: 'complete' as const,
          accountRef: `acct-${s}`,
          documentSha256: `${s}-${c}`,
        })),
      )
      .returning({ id: recordings.id });
    await db.insert(voiceprints).values(
      batch.map(({ s, c }, i) => ({
        recordingId: made[i]?.id as string,
        speakerLabel: 'SPEAKER_00',
        embedding: normalise(model.speakerEmbedding(`db-${s}`, `call-${c}`, { noisy: noisy(s, c) })).unit,
        rawNorm: 200,
        speechSeconds: 30,
        utteranceCount: 3,
      })),
    );
  }
  await db.execute(sql`analyze voiceprints`);
  const loadMs = performance.now() - started;
  const refreshStarted = performance.now();
  const calibration = await refreshCalibration(db);
  const refreshMs = performance.now() - refreshStarted;

  // held out: other speakers, two calls each
  const held = Array.from({ length: HELD_OUT }, (_, s) =>
    [0, 1].map((c) =>
      Float32Array.from(normalise(model.speakerEmbedding(`held-${s}`, `call-${c}`, { noisy: noisy(s, c) })).unit),
    ),
  );
  const dot = (a: Float32Array, b: Float32Array) => {
    let sum = 0;
    for (let d = 0; d < a.length; d++) sum += (a[d] as number) * (b[d] as number);
    return sum;
  };
  type Pair = { similarity: number; far: number; normalisedScore: number; normalisedFar: number; genuine: boolean };
  const pairs: Pair[] = [];
  const firsts = held.map((calls) => calls[0] as Float32Array);
  const seconds = held.map((calls) => calls[1] as Float32Array);
  const firstStats = await asNormStats(db, calibration, firsts);
  const secondStats = await asNormStats(db, calibration, seconds);
  const normalisedFar = calibration.asNorm?.far ?? (() => 1);
  for (let s = 0; s < HELD_OUT; s++) {
    for (let t = 0; t < HELD_OUT; t++) {
      const similarity = dot(firsts[s] as Float32Array, seconds[t] as Float32Array);
      const normalisedScore = asNormScore(similarity, firstStats[s] as never, secondStats[t] as never);
      pairs.push({
        similarity,
        far: calibration.far(similarity),
        normalisedScore,
        normalisedFar: normalisedFar(normalisedScore),
        genuine: s === t,
      });
    }
  }
  const genuine = pairs.filter((p) => p.genuine);
  const impostor = pairs.filter((p) => !p.genuine);
  type Point = { realisedFar: number; trueMatchRate: number };
  const at = (key: 'far' | 'normalisedFar'): Record<string, Point> =>
    Object.fromEntries(
      [1e-2, 1e-3, 1e-4].map((nominal) => [
        String(nominal),
        {
          realisedFar: round(impostor.filter((p) => p[key] <= nominal).length / impostor.length),
          trueMatchRate: round(genuine.filter((p) => p[key] <= nominal).length / genuine.length),
        },
      ]),
    );
  const eer = (score: (p: Pair) => number) => {
    const sorted = [...pairs].sort((a, b) => score(b) - score(a));
    let falseAccepts = 0;
    let trueAccepts = 0;
    for (const p of sorted) {
      if (p.genuine) trueAccepts++;
      else falseAccepts++;
      const far = falseAccepts / impostor.length;
      const frr = 1 - trueAccepts / genuine.length;
      if (far >= frr) return round((far + frr) / 2);
    }
    return 0.5;
  };
  const curve = Object.fromEntries(
    [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6].map((far) => [String(far), round(calibration.similarityAtFar(far))]),
  );
  const figures = {
    databaseVoiceprints: speakers * callsPerSpeaker,
    cohortSize: calibration.cohortSize,
    cohortPairs: calibration.pairCount,
    refreshMs: Math.round(refreshMs),
    loadMs: Math.round(loadMs),
    heldOut: { genuinePairs: genuine.length, impostorPairs: impostor.length },
    similarityAtFar: curve,
    raw: { eer: eer((p) => p.similarity), atNominalFar: at('far') },
    asNorm: { eer: eer((p) => p.normalisedScore), atNominalFar: at('normalisedFar') },
  };
  const machine = await describeMachine(database);
  recordResult(benchDir, {
    name: 'voices-calibration',
    command: `node bench/voices-calibration.ts --speakers ${speakers} --calls ${callsPerSpeaker} --seed ${seed}`,
    machine,
    figures,
    summary:
      `same (nominal FAR 0.001): realised ${figures.raw.atNominalFar['0.001']?.realisedFar} raw / ${figures.asNorm.atNominalFar['0.001']?.realisedFar} AS-norm; ` +
      `likely (0.01): ${figures.raw.atNominalFar['0.01']?.realisedFar} / ${figures.asNorm.atNominalFar['0.01']?.realisedFar}; EER ${figures.raw.eer} / ${figures.asNorm.eer}`,
  });
  console.log(JSON.stringify(figures, null, 2));
});

function round(value: number): number {
  return Math.round(value * 1e5) / 1e5;
}
