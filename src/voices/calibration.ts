import { sql } from 'drizzle-orm';
import pgvector from 'pgvector';
import { type Db, queryRows } from '../db/client.ts';
import { voiceCalibrations } from '../db/schema.ts';
import { dot } from '../vectors.ts';

/**
 * What a similarity means: the false-accept rate (FAR) of calling two voiceprints the same voice
 * at that similarity, read from an impostor cohort drawn from the database itself — voiceprint
 * pairs of different people (docs/voices.md, "Scores").
 *
 * The cohort: up to COHORT_SIZE voiceprints sampled at random, every pair among them compared,
 * leaving out pairs that may be the same person — same identity, same recording, same account —
 * and every voiceprint of a `staff` identity or of one proposed as staff (agents are heard on every
 * account; their pairs would be many and all alike). Voiceprints in no identity are counted as their own people:
 * among random pairs, two calls of one unassigned caller are rare, and the same-account rule
 * removes most of them.
 *
 * The model keeps the upper tail of the impostor similarities as points (similarity, log10 FAR)
 * from FAR 1 down to 1 / pairs, and a straight line in log10(FAR) fitted to the top of the tail
 * for similarities beyond the highest impostor pair (FAR below what the cohort can show).
 * While the database holds fewer than COHORT_MIN voiceprints usable as a cohort, the `prior`
 * stands in: a normal distribution of impostor similarities with the mean and spread of
 * different speakers in real upstream documents (observed 0.01–0.35, API-NOTES.md), as the
 * synthetic voice model reproduces them (mean 0.174, 5–95 % 0.005–0.339:
 * bench/results/generator.json).
 */

export const COHORT_SIZE = 2_000;
export const COHORT_MIN = 200;
/** Refresh when the voiceprints have grown by this factor since the calibration in use. */
export const REFRESH_GROWTH = 1.5;
export const PRIOR = { mean: 0.17, sd: 0.103 } as const;
/** `score` = −log10(far), capped here (CONVENTIONS): beyond it no cohort is large enough to tell. */
export const SCORE_CAP = 6;
export const FAR_FLOOR = 10 ** -SCORE_CAP;

export type Verdict = 'same' | 'likely' | 'unlikely';

export type Calibration = {
  /** its row in voice_calibrations; null for the prior while none is stored */
  id: string | null;
  method: 'cohort' | 'prior';
  /** voiceprints in the database when it was computed */
  voiceprintCount: number;
  cohortSize: number;
  pairCount: number;
  createdAt: Date | null;
  /** the false-accept rate at `similarity`, in [FAR_FLOOR, 1] */
  far(similarity: number): number;
  /** the lowest similarity whose FAR is ≤ `far` */
  similarityAtFar(far: number): number;
  /** adaptive score normalisation against the cohort (as-norm.ts); null for the prior */
  asNorm: { topN: number; cohortIds: string[]; far(normalisedScore: number): number } | null;
};

/** How many of a voice's nearest cohort members describe it in AS-norm (top-N). */
export const AS_NORM_TOP_N = 100;

/** The AS-norm part of a stored model: the cohort's ids and the tail of normalised impostor scores. */
type AsNormModel = { topN: number; cohortIds: string[]; tail: TailModel };

/** The tail model as stored in `voice_calibrations.model`. */
type TailModel = {
  /** similarities, descending, and their log10 FAR (ascending) */
  similarities: number[];
  logFars: number[];
  /** beyond the first point: log10 FAR = logFars[0] + slope × (similarity − similarities[0]) */
  slope: number;
  mean: number;
  sd: number;
};

export function scoreOf(far: number): number {
  return Math.round(Math.min(SCORE_CAP, -Math.log10(Math.max(far, FAR_FLOOR))) * 1000) / 1000;
}

/** The false-accept rate at or below which two voiceprints are the `same` voice. */
export const SAME_VOICE_FAR = 0.001;

export function verdictOf(far: number): Verdict {
  if (far <= SAME_VOICE_FAR) return 'same';
  if (far <= 0.01) return 'likely';
  return 'unlikely';
}

/**
 * The calibration in use: the newest cohort, or the prior while there is none.
 * @example const calibration = await currentCalibration(db); calibration.far(0.62);
 */
export async function currentCalibration(db: Db): Promise<Calibration> {
  const [newest] = await queryRows<{ id: string | null }>(db, sql`select ${newestCalibrationId} as id`);
  return calibrationById(db, newest?.id ?? null);
}

/**
 * The newest calibration's id (null while there is none), as a scalar subquery: a statement that
 * reads something else can carry it, and save the analysis step a round trip.
 */
export const newestCalibrationId = sql`(select id from voice_calibrations order by created_at desc limit 1)`;

/** The calibration stored as `id` (what `newestCalibrationId` read), or the prior when null. */
export async function calibrationById(db: Db, id: string | null): Promise<Calibration> {
  if (!id) return priorCalibration(0);
  // a stored calibration never changes: read and parse its model once per process (every analysed
  // recording asks for it), keyed by its id
  const cached = parsedCalibrations.get(id);
  if (cached) return cached;
  const [row] = await db.select().from(voiceCalibrations).where(sql`${voiceCalibrations.id} = ${id}`);
  if (!row) return priorCalibration(0);
  const calibration = fromModel(row.model as unknown as TailModel & { asNorm?: AsNormModel }, {
    id: row.id,
    method: row.method,
    voiceprintCount: row.voiceprintCount,
    cohortSize: row.cohortSize,
    pairCount: row.pairCount,
    createdAt: row.createdAt,
  });
  if (parsedCalibrations.size >= 8) parsedCalibrations.clear();
  parsedCalibrations.set(id, calibration);
  return calibration;
}

const parsedCalibrations = new Map<string, Calibration>();

/**
 * Draws a new cohort and stores its calibration (the prior's, when the cohort is too small);
 * `counted` is the voiceprint count when the caller has just read it.
 * @example const calibration = await refreshCalibration(db);
 */
export async function refreshCalibration(db: Db, counted?: number): Promise<Calibration> {
  const voiceprintCount = counted ?? (await countVoiceprints(db));
  const cohort = await sampleCohort(db, voiceprintCount);
  if (cohort.length < COHORT_MIN) {
    const id = await storeCalibration(db, 'prior', voiceprintCount, cohort.length, 0, priorModel());
    return { ...priorCalibration(voiceprintCount), id };
  }
  const matrix = impostorMatrix(cohort);
  const impostors = upperTriangle(matrix, cohort.length);
  const model = { ...tailModel(impostors), asNorm: asNormModel(cohort, matrix) };
  const id = await storeCalibration(db, 'cohort', voiceprintCount, cohort.length, impostors.length, model);
  return fromModel(model, {
    id,
    method: 'cohort',
    voiceprintCount,
    cohortSize: cohort.length,
    pairCount: impostors.length,
    createdAt: new Date(),
  });
}

/**
 * Refreshes when no calibration exists yet or the voiceprints have grown by REFRESH_GROWTH since
 * (from the planner's row count: no scan), so that the cohort follows the data as it grows.
 * @example await refreshCalibrationIfStale(tx);
 */
export async function refreshCalibrationIfStale(db: Db): Promise<boolean> {
  const current = await currentCalibration(db);
  const count = await countVoiceprints(db);
  const stale =
    current.createdAt === null ||
    (current.method === 'prior' && count >= COHORT_MIN) ||
    count >= Math.max(COHORT_MIN, current.voiceprintCount * REFRESH_GROWTH);
  if (!stale) return false;
  await refreshCalibration(db, count);
  return true;
}

type CohortMember = {
  id: string;
  recordingId: string;
  accountRef: string | null;
  identityId: string | null;
  unit: Float32Array;
};

async function sampleCohort(db: Db, total: number): Promise<CohortMember[]> {
  // a Bernoulli sample a little larger than needed, so that one scan of a large table suffices
  const percent = total <= COHORT_SIZE ? 100 : Math.min(100, ((COHORT_SIZE * 1.3) / total) * 100);
  const rows = await queryRows<{
    id: string;
    recordingId: string;
    accountRef: string | null;
    identityId: string | null;
    embedding: string;
  }>(
    db,
    sql`select v.id, v.recording_id as "recordingId", r.account_ref as "accountRef", v.identity_id as "identityId",
               v.embedding::text as embedding
        from voiceprints v tablesample bernoulli (${sql.raw(percent.toFixed(6))})
        join recordings r on r.id = v.recording_id
        left join identities i on i.id = v.identity_id
        where i.kind is distinct from 'staff'
          and not exists (select 1 from staff_proposals p where p.identity_id = v.identity_id and p.status = 'proposed')
        order by random()
        limit ${COHORT_SIZE}`,
  );
  return rows.map((row) => ({ ...row, unit: Float32Array.from(pgvector.fromSql(row.embedding) as number[]) }));
}

/**
 * Every cohort pair's similarity as a full n × n matrix (n = 2,000: 16 MB), NaN where the pair may
 * be one person (and on the diagonal): computed once for the raw tail and for AS-norm.
 */
function impostorMatrix(cohort: readonly CohortMember[]): Float32Array {
  const n = cohort.length;
  const matrix = new Float32Array(n * n).fill(Number.NaN);
  for (let i = 0; i < n; i++) {
    const a = cohort[i] as CohortMember;
    for (let j = i + 1; j < n; j++) {
      const b = cohort[j] as CohortMember;
      if (!surelyTwoPeople(a, b)) continue;
      const s = dot(a.unit, b.unit);
      matrix[i * n + j] = s;
      matrix[j * n + i] = s;
    }
  }
  return matrix;
}

/** The impostor similarities: each pair once. */
function upperTriangle(matrix: Float32Array, n: number): Float32Array {
  const out = new Float32Array((n * (n - 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const s = matrix[i * n + j] as number;
      if (!Number.isNaN(s)) out[k++] = s;
    }
  }
  return out.subarray(0, k);
}

function surelyTwoPeople(a: CohortMember, b: CohortMember): boolean {
  if (a.recordingId === b.recordingId) return false;
  if (a.identityId !== null && a.identityId === b.identityId) return false;
  return a.accountRef === null || a.accountRef !== b.accountRef;
}

/**
 * A voice's AS-norm statistics: mean and spread of its AS_NORM_TOP_N highest similarities to the
 * cohort (the impostors most like it).
 */
export function topStats(similarities: Float32Array | number[], topN = AS_NORM_TOP_N): { mean: number; sd: number } {
  const top = Float32Array.from(similarities).sort().reverse().subarray(0, Math.min(topN, similarities.length));
  let mean = 0;
  for (const s of top) mean += s;
  mean /= Math.max(1, top.length);
  let variance = 0;
  for (const s of top) variance += (s - mean) ** 2;
  return { mean, sd: Math.max(1e-3, Math.sqrt(variance / Math.max(1, top.length))) };
}

/** The symmetric AS-norm score of similarity `s` between voices with statistics `a` and `b`. */
export function asNormScore(s: number, a: { mean: number; sd: number }, b: { mean: number; sd: number }): number {
  return 0.5 * ((s - a.mean) / a.sd + (s - b.mean) / b.sd);
}

/**
 * The cohort's own impostor pairs, AS-normalised (each member's statistics from the other members
 * that are surely someone else), and their tail: what a normalised score's FAR is read from.
 */
function asNormModel(cohort: readonly CohortMember[], matrix: Float32Array): AsNormModel {
  const n = cohort.length;
  const stats = Array.from({ length: n }, (_, i) =>
    topStats(matrix.subarray(i * n, (i + 1) * n).filter((s) => !Number.isNaN(s))),
  );
  const normalised = new Float32Array((n * (n - 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const a = stats[i] as { mean: number; sd: number };
    for (let j = i + 1; j < n; j++) {
      const s = matrix[i * n + j] as number;
      if (!Number.isNaN(s)) normalised[k++] = asNormScore(s, a, stats[j] as { mean: number; sd: number });
    }
  }
  return { topN: AS_NORM_TOP_N, cohortIds: cohort.map((m) => m.id), tail: tailModel(normalised.subarray(0, k)) };
}

/**
 * Points of the empirical tail at log10 FAR steps of 0.05 from 0 down to −log10(pairs), and a
 * line through the top decade of the tail (FAR 10/pairs … 1/pairs) for beyond.
 */
export function tailModel(impostors: Float32Array): TailModel {
  const sorted = Float32Array.from(impostors).sort().reverse();
  const n = sorted.length;
  const similarities: number[] = [];
  const logFars: number[] = [];
  const lowest = -Math.log10(n);
  for (let logFar = lowest; logFar <= 0 + 1e-9; logFar += 0.05) {
    // FAR f at similarity s: the share of impostor pairs scoring ≥ s; rank ⌈f·n⌉ − 1 in descending order
    const rank = Math.min(n - 1, Math.max(0, Math.ceil(10 ** logFar * n) - 1));
    similarities.push(round(sorted[rank] as number));
    logFars.push(round(logFar));
  }
  let mean = 0;
  for (const s of sorted) mean += s;
  mean /= n;
  let variance = 0;
  for (const s of sorted) variance += (s - mean) ** 2;
  const sd = Math.sqrt(variance / n);
  // the top decade: from FAR 10/n to 1/n (points 0 … 20), least squares of log FAR on similarity
  const top = Math.min(similarities.length, 21);
  const slope =
    fitSlope(similarities.slice(0, top), logFars.slice(0, top)) ?? gaussianSlope(similarities[0] ?? 0, mean, sd);
  return { similarities, logFars, slope, mean: round(mean), sd: round(sd) };
}

function fitSlope(xs: number[], ys: number[]): number | null {
  if (xs.length < 3) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    sxx += ((xs[i] as number) - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : null;
  // a tail must fall: a flat or rising fit (ties in a tiny cohort) is no model
  return slope !== null && slope < -1 ? slope : null;
}

/** The slope of log10 Q((s − mean) / sd) at s: how fast a normal tail falls there. */
function gaussianSlope(s: number, mean: number, sd: number): number {
  const z = Math.max(1, (s - mean) / sd);
  return -(z / sd) / Math.LN10;
}

function fromModel(
  model: TailModel & { asNorm?: AsNormModel },
  meta: Omit<Calibration, 'far' | 'similarityAtFar' | 'asNorm'>,
): Calibration {
  const curve = tailCurve(model);
  const asNorm = model.asNorm
    ? { topN: model.asNorm.topN, cohortIds: model.asNorm.cohortIds, far: tailCurve(model.asNorm.tail).far }
    : null;
  return { ...meta, ...curve, asNorm };
}

/** Reading a tail model: FAR at a score, and the score at a FAR. */
function tailCurve(model: TailModel): Pick<Calibration, 'far' | 'similarityAtFar'> {
  const { similarities, logFars, slope } = model;
  const top = similarities[0] as number;
  const far = (similarity: number): number => {
    if (!Number.isFinite(similarity)) return 1;
    let logFar: number;
    if (similarity >= top) {
      logFar = (logFars[0] as number) + slope * (similarity - top);
    } else {
      // similarities descend: find the first point below `similarity` and interpolate
      let i = 1;
      while (i < similarities.length && (similarities[i] as number) > similarity) i++;
      if (i >= similarities.length) return 1;
      const s0 = similarities[i - 1] as number;
      const s1 = similarities[i] as number;
      const l0 = logFars[i - 1] as number;
      const l1 = logFars[i] as number;
      logFar = s0 === s1 ? l1 : l1 + ((similarity - s1) / (s0 - s1)) * (l0 - l1);
    }
    return Math.min(1, Math.max(FAR_FLOOR, 10 ** logFar));
  };
  const similarityAtFar = (target: number): number => {
    const logTarget = Math.log10(Math.max(target, FAR_FLOOR));
    if (logTarget < (logFars[0] as number)) return top + (logTarget - (logFars[0] as number)) / slope;
    for (let i = 1; i < logFars.length; i++) {
      if ((logFars[i] as number) >= logTarget) {
        const l0 = logFars[i - 1] as number;
        const l1 = logFars[i] as number;
        const s0 = similarities[i - 1] as number;
        const s1 = similarities[i] as number;
        return l1 === l0 ? s1 : s0 + ((logTarget - l0) / (l1 - l0)) * (s1 - s0);
      }
    }
    return similarities[similarities.length - 1] as number;
  };
  return { far, similarityAtFar };
}

/** The prior as a tail model: the normal distribution's tail at the same log10 FAR steps. */
function priorModel(): TailModel {
  const similarities: number[] = [];
  const logFars: number[] = [];
  for (let logFar = -SCORE_CAP; logFar <= 1e-9; logFar += 0.05) {
    similarities.push(round(PRIOR.mean + PRIOR.sd * normalQuantileUpper(10 ** logFar)));
    logFars.push(round(logFar));
  }
  const top = similarities[0] as number;
  return { similarities, logFars, slope: gaussianSlope(top, PRIOR.mean, PRIOR.sd), mean: PRIOR.mean, sd: PRIOR.sd };
}

function priorCalibration(voiceprintCount: number): Calibration {
  return fromModel(priorModel(), {
    id: null,
    method: 'prior',
    voiceprintCount,
    cohortSize: 0,
    pairCount: 0,
    createdAt: null,
  });
}

/** z with P(Z ≥ z) = p (Acklam's rational approximation of the normal quantile, |error| < 1.2e-9). */
function normalQuantileUpper(p: number): number {
  const q = 1 - Math.min(Math.max(p, 1e-15), 1 - 1e-15);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  if (q < low) {
    const t = Math.sqrt(-2 * Math.log(q));
    return (((((c0 * t + c1) * t + c2) * t + c3) * t + c4) * t + c5) / ((((d0 * t + d1) * t + d2) * t + d3) * t + 1);
  }
  if (q > 1 - low) {
    const t = Math.sqrt(-2 * Math.log(1 - q));
    return -(((((c0 * t + c1) * t + c2) * t + c3) * t + c4) * t + c5) / ((((d0 * t + d1) * t + d2) * t + d3) * t + 1);
  }
  const t = q - 0.5;
  const r = t * t;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * t) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

async function countVoiceprints(db: Db): Promise<number> {
  // the planner's count once the table is large (no scan); an exact count while it is small
  const [estimate] = await queryRows<{ n: number | string }>(
    db,
    sql`select greatest(reltuples, 0)::bigint as n from pg_class where oid = 'voiceprints'::regclass`,
  );
  const estimated = Number(estimate?.n ?? 0);
  if (estimated > 10_000) return estimated;
  const [exact] = await queryRows<{ n: number | string }>(db, sql`select count(*)::bigint as n from voiceprints`);
  return Number(exact?.n ?? 0);
}

async function storeCalibration(
  db: Db,
  method: 'cohort' | 'prior',
  voiceprintCount: number,
  cohortSize: number,
  pairCount: number,
  model: TailModel & { asNorm?: AsNormModel },
): Promise<string> {
  const [row] = await db
    .insert(voiceCalibrations)
    .values({ method, voiceprintCount, cohortSize, pairCount, model })
    .returning({ id: voiceCalibrations.id });
  if (!row) throw new Error('storing a calibration returned no row');
  return row.id;
}

function round(value: number): number {
  return Math.round(value * 1e5) / 1e5;
}
