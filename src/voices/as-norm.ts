import type { Db } from '../db/client.ts';
import { ConflictError } from '../errors.ts';
import { dot } from '../vectors.ts';
import { asNormScore, type Calibration, topStats } from './calibration.ts';
import { embeddingsOf } from './queries.ts';

/**
 * Adaptive symmetric score normalisation (AS-norm) at search time: a similarity is restated as how
 * far it stands above what each side scores against its most similar impostors in the cohort, so
 * that voices that score high against everyone (a common accent, a noisy line) stop looking alike.
 * Its FAR is read from the cohort's own normalised impostor pairs (calibration.ts). Opt-in per
 * search (`asNorm: true`): it compares every answer with the whole cohort.
 */

// The cohort's vectors, by calibration: loaded once per process, the newest two kept.
const cohorts = new Map<string, Float32Array[]>();

async function cohortVectors(db: Db, ids: string[]): Promise<Float32Array[]> {
  const key = `${ids.length}:${ids[0]}:${ids.at(-1)}`;
  const cached = cohorts.get(key);
  if (cached) return cached;
  const byId = await embeddingsOf(db, ids);
  const vectors = ids.flatMap((id) => {
    const unit = byId.get(id);
    return unit ? [unit] : [];
  });
  cohorts.set(key, vectors);
  for (const old of [...cohorts.keys()].slice(0, -2)) cohorts.delete(old);
  return vectors;
}

function statsAgainst(unit: Float32Array, cohort: Float32Array[], topN: number) {
  const similarities: number[] = [];
  for (const member of cohort) {
    const s = dot(unit, member);
    // the voice itself, when it is in the cohort
    if (s < 0.9999) similarities.push(s);
  }
  return topStats(similarities, topN);
}

/**
 * Each voice's AS-norm statistics against the calibration's cohort (its top-N impostor scores).
 * @example const [stats] = await asNormStats(db, calibration, [unit]);
 */
export async function asNormStats(
  db: Db,
  calibration: Calibration,
  units: readonly Float32Array[],
): Promise<{ mean: number; sd: number }[]> {
  const asNorm = requireCohort(calibration);
  const cohort = await cohortVectors(db, asNorm.cohortIds);
  return units.map((unit) => statsAgainst(unit, cohort, asNorm.topN));
}

function requireCohort(calibration: Calibration): NonNullable<Calibration['asNorm']> {
  if (!calibration.asNorm) {
    throw new ConflictError(
      'asNorm: the database has too few voiceprints for an impostor cohort yet; search without asNorm until it has',
    );
  }
  return calibration.asNorm;
}

/**
 * The AS-norm score and its FAR for each candidate (by id) against `query`.
 * @example const normalised = await asNormalise(db, calibration, queryUnit, [{ id, similarity: 0.61 }]);
 */
export async function asNormalise(
  db: Db,
  calibration: Calibration,
  query: Float32Array,
  candidates: readonly { id: string; similarity: number; unit?: Float32Array }[],
): Promise<Map<string, { normalisedScore: number; far: number }>> {
  const asNorm = requireCohort(calibration);
  const cohort = await cohortVectors(db, asNorm.cohortIds);
  const queryStats = statsAgainst(query, cohort, asNorm.topN);
  const missing = candidates.filter((c) => !c.unit).map((c) => c.id);
  const units = await embeddingsOf(db, missing);
  const out = new Map<string, { normalisedScore: number; far: number }>();
  for (const candidate of candidates) {
    const unit = candidate.unit ?? units.get(candidate.id);
    if (!unit) continue;
    const normalisedScore = asNormScore(candidate.similarity, queryStats, statsAgainst(unit, cohort, asNorm.topN));
    out.set(candidate.id, {
      normalisedScore: Math.round(normalisedScore * 1e4) / 1e4,
      far: asNorm.far(normalisedScore),
    });
  }
  return out;
}
