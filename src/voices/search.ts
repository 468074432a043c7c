import { type Actor, recordAudit } from '../audit/audit.ts';
import type { Db } from '../db/client.ts';
import type { IdentityKind } from '../db/schema.ts';
import { withTransaction } from '../db/transaction.ts';
import { type KnnFilter, type KnnPlan, nearestNeighbours, speakerSpace } from '../search/knn.ts';
import { parseRequest } from '../search/parse-request.ts';
import { dot } from '../vectors.ts';
import { asNormalise } from './as-norm.ts';
import { type Calibration, currentCalibration, scoreOf, type Verdict, verdictOf } from './calibration.ts';
import { anyStaffIdentity, embeddingsOf } from './queries.ts';
import { type ResolvedVoice, resolveVoiceQuery } from './resolve.ts';
import {
  type VoiceCompareRequest,
  type VoiceQuery,
  type VoiceSearchRequest,
  voiceCompareSchema,
  voiceSearchSchema,
} from './search-request.ts';

/**
 * "Who else sounds like this?": the voiceprints nearest a voice query (CONVENTIONS "Voices API",
 * `POST /v1/voices/search`), scored against the impostor cohort, audited.
 */

export type VoiceMatch = {
  voiceprintId: string;
  recordingId: string;
  speakerLabel: string;
  accountRef: string | null;
  channel: string | null;
  callAt: string | null;
  identityId: string | null;
  identityKind: IdentityKind | null;
  similarity: number;
  score: number;
  far: number;
  verdict: Verdict;
  /** with `asNorm`: the AS-norm score that `far` and `score` were read from */
  normalisedScore?: number;
};

export type VoiceSearchAnswer = {
  items: VoiceMatch[];
  plan: KnnPlan;
  /** how `far` was estimated: the cohort's size, or the prior while the database is small */
  calibration: { method: Calibration['method']; cohortSize: number; pairCount: number };
};

/**
 * Searches the voiceprints nearest `body`'s query (a raw request body: it is parsed here).
 * @example const { items, plan } = await searchVoices(db, { query: { voiceprintId }, k: 10 }, actor);
 */
export async function searchVoices(db: Db, body: unknown, actor: Actor): Promise<VoiceSearchAnswer> {
  const request = parseRequest(voiceSearchSchema, body);
  return withTransaction(db, async (tx) => {
    const positives =
      'positive' in request.query
        ? await resolveAll(tx, request.query.positive, 'query.positive')
        : [await resolveVoiceQuery(tx, request.query, 'query')];
    const negatives =
      'positive' in request.query ? await resolveAll(tx, request.query.negative ?? [], 'query.negative') : [];
    const target = centroidOf(positives.map((p) => p.unit));
    const filter = await knnFilter(tx, request, [...positives, ...negatives]);
    const calibration = await currentCalibration(tx);
    const found = await searchWithNegatives(tx, target, negatives, request, filter);
    const normalised = request.asNorm ? await asNormalise(tx, calibration, target, found.neighbours) : null;
    // score falls with similarity (AS-norm aside), so minScore keeps a prefix of the k nearest
    const items = found.neighbours
      .map((n) => toMatch(n, calibration, normalised?.get(n.id)))
      .filter((m) => request.minScore === undefined || m.score >= request.minScore)
      .sort((a, b) => b.score - a.score || b.similarity - a.similarity);
    await recordAudit(tx, actor, {
      action: 'voice.search',
      targetIds: [...positives, ...negatives]
        .flatMap((v) => (v.voiceprintId ? [v.voiceprintId] : []))
        .concat(items.map((i) => i.voiceprintId)),
      params: { ...request, query: [...positives, ...negatives].map((v) => v.reference) },
      resultCount: items.length,
    });
    return {
      items,
      plan: found.plan,
      calibration: { method: calibration.method, cohortSize: calibration.cohortSize, pairCount: calibration.pairCount },
    };
  });
}

/**
 * How alike two voices are (`POST /v1/voices/compare`).
 * @example const { similarity, verdict } = await compareVoices(db, { a: { voiceprintId: x }, b: { embedding } }, actor);
 */
export async function compareVoices(
  db: Db,
  body: unknown,
  actor: Actor,
): Promise<{ similarity: number; score: number; far: number; verdict: Verdict; normalisedScore?: number }> {
  const request: VoiceCompareRequest = parseRequest(voiceCompareSchema, body);
  return withTransaction(db, async (tx) => {
    const a = await resolveVoiceQuery(tx, request.a, 'a');
    const b = await resolveVoiceQuery(tx, request.b, 'b');
    const similarity = round(dot(a.unit, b.unit));
    const calibration = await currentCalibration(tx);
    const normalised = request.asNorm
      ? (await asNormalise(tx, calibration, a.unit, [{ id: 'b', similarity, unit: b.unit }])).get('b')
      : undefined;
    const far = normalised ? normalised.far : calibration.far(similarity);
    await recordAudit(tx, actor, {
      action: 'voice.compare',
      targetIds: [a, b].flatMap((v) => (v.voiceprintId ? [v.voiceprintId] : [])),
      params: { a: a.reference, b: b.reference },
      resultCount: 1,
    });
    return {
      similarity,
      score: scoreOf(far),
      far: roundFar(far),
      verdict: verdictOf(far),
      ...(normalised ? { normalisedScore: normalised.normalisedScore } : {}),
    };
  });
}

async function resolveAll(tx: Db, queries: readonly VoiceQuery[], path: string): Promise<ResolvedVoice[]> {
  const resolved: ResolvedVoice[] = [];
  for (const [i, query] of queries.entries()) resolved.push(await resolveVoiceQuery(tx, query, `${path}.${i}`));
  return resolved;
}

/**
 * The search filter: the request's, the recordings of every example left out, and staff left out
 * unless asked for (only when a staff identity exists: otherwise there is nothing to leave out, and
 * the unfiltered index walk answers).
 */
async function knnFilter(tx: Db, request: VoiceSearchRequest, examples: ResolvedVoice[]): Promise<KnnFilter> {
  const f = request.filter ?? {};
  const excludeRecordingIds = [
    ...new Set([...(f.excludeRecordingIds ?? []), ...examples.flatMap((v) => (v.recordingId ? [v.recordingId] : []))]),
  ];
  const excludeStaff = !request.includeStaff && (await anyStaffIdentity(tx));
  return {
    ...(f.accountRefs ? { accountRefs: f.accountRefs } : {}),
    ...(f.excludeAccountRefs ? { excludeAccountRefs: f.excludeAccountRefs } : {}),
    ...(f.channels ? { channels: f.channels } : {}),
    ...(f.from ? { from: new Date(f.from) } : {}),
    ...(f.to ? { to: new Date(f.to) } : {}),
    ...(f.identityKinds ? { identityKinds: f.identityKinds } : {}),
    ...(excludeStaff ? { excludeIdentityKinds: ['staff'] as IdentityKind[] } : {}),
    ...(excludeRecordingIds.length > 0 ? { excludeRecordingIds } : {}),
  };
}

/**
 * Nearest to the positives' centroid; with negatives, a candidate closer to any negative than to
 * that centroid is dropped (it sounds more like what the analyst ruled out), and the search asks
 * for more candidates until k remain or the candidates run out.
 */
async function searchWithNegatives(
  tx: Db,
  target: Float32Array,
  negatives: ResolvedVoice[],
  request: VoiceSearchRequest,
  filter: KnnFilter,
) {
  const options = {
    filter,
    exact: request.exact,
    ...(request.groupBy ? { groupBy: request.groupBy } : {}),
    ...(request.efSearch ? { efSearch: request.efSearch } : {}),
  };
  if (negatives.length === 0) return nearestNeighbours(tx, speakerSpace, target, { ...options, k: request.k });
  let fetch = request.k * 4;
  for (;;) {
    const found = await nearestNeighbours(tx, speakerSpace, target, { ...options, k: Math.min(fetch, 4 * 1000) });
    const units = await embeddingsOf(
      tx,
      found.neighbours.map((n) => n.id),
    );
    const kept = found.neighbours.filter((n) => {
      const unit = units.get(n.id);
      return unit !== undefined && negatives.every((negative) => dot(unit, negative.unit) < n.similarity);
    });
    if (kept.length >= request.k || found.neighbours.length < fetch || fetch >= 4 * 1000) {
      return { neighbours: kept.slice(0, request.k), plan: found.plan };
    }
    fetch *= 4;
  }
}

function toMatch(
  n: Record<string, unknown> & { similarity: number },
  calibration: Calibration,
  normalised?: { normalisedScore: number; far: number },
): VoiceMatch {
  const similarity = round(n.similarity);
  const far = normalised ? normalised.far : calibration.far(similarity);
  return {
    voiceprintId: String(n.id),
    recordingId: String(n.recordingId),
    speakerLabel: String(n.speakerLabel),
    accountRef: (n.accountRef as string | null) ?? null,
    channel: (n.channel as string | null) ?? null,
    callAt: n.callAt instanceof Date ? n.callAt.toISOString() : null,
    identityId: (n.identityId as string | null) ?? null,
    identityKind: (n.identityKind as IdentityKind | null) ?? null,
    similarity,
    score: scoreOf(far),
    far: roundFar(far),
    verdict: verdictOf(far),
    ...(normalised ? { normalisedScore: normalised.normalisedScore } : {}),
  };
}

function centroidOf(units: Float32Array[]): Float32Array {
  const first = units[0] as Float32Array;
  if (units.length === 1) return first;
  const sum = new Float32Array(first.length);
  for (const unit of units) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (unit[i] as number);
  const norm = Math.hypot(...sum);
  return sum.map((v) => v / norm);
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

function roundFar(far: number): number {
  return Number(far.toPrecision(4));
}
