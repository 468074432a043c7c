import { randomFillSync } from 'node:crypto';
import { DEEPFAKE_DIMENSIONS } from '../../src/db/schema.ts';
import { type RandomStream, randomStream } from '../../src/standin/voices.ts';
import { CHANNELS } from './voice-population.ts';

const CALLS_FROM = Date.UTC(2025, 0, 1);
const CALLS_TO = Date.UTC(2026, 11, 1);
/** Utterances per spoof generator family, on average (families are of very unequal size). */
const PER_FAMILY = 2_000;
/** Largest family ÷ smallest, by expected size (log-uniform in between). */
const FAMILY_SIZE_RATIO = 30;
/** A family's spread σ: the cosine of its utterances to its centre is about 1/√(1+σ²). */
const SPREAD_RANGE = [0.35, 1.5] as const;
/** Calls by a generator of no family (each its own, loosely tied, direction). */
const DIFFUSE_SHARE = 0.08;
const DIFFUSE_SPREAD = 1.2;
/** Of a family's spread, the part a call shares by all its utterances (the rest is per utterance). */
const CALL_SHARE = 0.6;
const MAX_UTTERANCES_PER_RECORDING = 5;

/**
 * Spoofed speech for the spoof-space benchmark, in typed arrays (a million 768-d utterances are
 * ~3 GB of float32): recordings of calls by spoof generators, each call 1–5 spoofed utterances.
 * Most calls come from one of a few hundred generator families — unit vectors clustered around the
 * family's direction, tight or loose (SPREAD_RANGE), large or small — and a call's utterances are
 * nearer each other than the rest of their family; DIFFUSE_SHARE of the calls come from a
 * generator of their own. Values are rounded to halves (Math.f16round), as the halfvec column
 * keeps them, so an exact search over these arrays is the truth PostgreSQL should find. Held-out
 * queries are one utterance of a new call of a family, never loaded.
 */
export type SpoofPopulation = {
  dimensions: number;
  count: number;
  /** count × dimensions, unit length before the rounding, in a SharedArrayBuffer */
  vectors: Float32Array;
  utteranceIds: Uint8Array;
  utteranceRecording: Int32Array;
  /** the generator family, −1 for a diffuse call */
  utteranceFamily: Int32Array;
  /** the utterance's number within its recording (its upstream id) */
  utteranceIndex: Uint8Array;
  pSpoofed: Float32Array;
  rawNorm: Float32Array;
  recordings: number;
  recordingIds: Uint8Array;
  recordingAccount: Int32Array;
  recordingChannel: Uint8Array;
  recordingCallAt: Float64Array;
  families: number;
  /** expected size and spread of each family */
  familyWeight: Float64Array;
  familySpread: Float64Array;
  queries: Float32Array;
  queryCount: number;
  queryFamily: Int32Array;
};

/** `out[offset…]` = a standard normal vector scaled to an expected norm of `scale`. */
function addIsotropic(random: RandomStream, out: Float64Array, scale: number) {
  const s = scale / Math.sqrt(out.length);
  for (let d = 0; d < out.length; d++) out[d] = (out[d] as number) + s * random.gaussian();
}

/** Unit-length, half-rounded copy of `values` into `target` at `offset`; returns the norm before. */
function roundedUnitInto(values: Float64Array, target: Float32Array, offset: number): number {
  let sum = 0;
  for (const x of values) sum += x * x;
  const norm = Math.sqrt(sum);
  for (let d = 0; d < values.length; d++) target[offset + d] = Math.f16round((values[d] as number) / norm);
  return norm;
}

function unit(random: RandomStream, dims: number): Float64Array {
  const v = new Float64Array(dims);
  addIsotropic(random, v, 1);
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  for (let d = 0; d < dims; d++) v[d] = (v[d] as number) / norm;
  return v;
}

/**
 * @example const p = generateSpoofPopulation({ utterances: 20_000, queries: 100, seed: 1 });
 */
export function generateSpoofPopulation(options: {
  utterances: number;
  queries: number;
  seed: number;
  log?: (line: string) => void;
}): SpoofPopulation {
  const dims = DEEPFAKE_DIMENSIONS;
  const random = randomStream(options.seed, 'bench-spoofs-knn');
  const count = options.utterances;
  const families = Math.max(10, Math.round(count / PER_FAMILY));
  const centres: Float64Array[] = [];
  const familyWeight = new Float64Array(families);
  const familySpread = new Float64Array(families);
  const [low, high] = SPREAD_RANGE;
  for (let f = 0; f < families; f++) {
    centres.push(unit(random, dims));
    familyWeight[f] = Math.exp(random.uniform() * Math.log(FAMILY_SIZE_RATIO));
    familySpread[f] = low * (high / low) ** random.uniform();
  }
  const cumulative = new Float64Array(families);
  let total = 0;
  for (let f = 0; f < families; f++) cumulative[f] = total += familyWeight[f] as number;
  const pickFamily = () => {
    const u = random.uniform() * total;
    let lo = 0;
    let hi = families - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const channelOf = () => {
    let u = random.uniform();
    for (const [i, c] of CHANNELS.entries()) {
      if (u < c.share) return i;
      u -= c.share;
    }
    return 0;
  };

  const maxRecordings = count;
  const vectors = new Float32Array(new SharedArrayBuffer(count * dims * 4));
  const utteranceRecording = new Int32Array(count);
  const utteranceFamily = new Int32Array(count);
  const utteranceIndex = new Uint8Array(count);
  const pSpoofed = new Float32Array(count);
  const rawNorm = new Float32Array(count);
  const recordingAccount = new Int32Array(maxRecordings);
  const recordingChannel = new Uint8Array(maxRecordings);
  const recordingCallAt = new Float64Array(maxRecordings);
  // campaigns call on many accounts, some more than once
  const accounts = Math.max(1, Math.round(count / 5));

  /** A new call of `family` (−1: diffuse): its centre, and the spread left to each utterance. */
  const newCall = (family: number): { centre: Float64Array; spread: number } => {
    if (family < 0) {
      const centre = unit(random, dims);
      addIsotropic(random, centre, DIFFUSE_SPREAD * CALL_SHARE);
      return { centre, spread: DIFFUSE_SPREAD * Math.sqrt(1 - CALL_SHARE ** 2) };
    }
    const spread = familySpread[family] as number;
    const centre = Float64Array.from(centres[family] as Float64Array);
    addIsotropic(random, centre, spread * CALL_SHARE);
    return { centre, spread: spread * Math.sqrt(1 - CALL_SHARE ** 2) };
  };
  const utteranceOf = (call: { centre: Float64Array; spread: number }, target: Float32Array, offset: number) => {
    const v = Float64Array.from(call.centre);
    addIsotropic(random, v, call.spread);
    return roundedUnitInto(v, target, offset);
  };

  const started = performance.now();
  let u = 0;
  let r = 0;
  while (u < count) {
    const family = random.uniform() < DIFFUSE_SHARE ? -1 : pickFamily();
    const call = newCall(family);
    const n = Math.min(count - u, 1 + Math.floor(random.uniform() * MAX_UTTERANCES_PER_RECORDING));
    recordingAccount[r] = Math.floor(random.uniform() * accounts);
    recordingChannel[r] = channelOf();
    recordingCallAt[r] = CALLS_FROM + random.uniform() * (CALLS_TO - CALLS_FROM);
    for (let i = 0; i < n; i++, u++) {
      utteranceRecording[u] = r;
      utteranceFamily[u] = family;
      utteranceIndex[u] = i;
      pSpoofed[u] = 1 - 0.4 * random.uniform() ** 2;
      rawNorm[u] = utteranceOf(call, vectors, u * dims);
    }
    r++;
    if (options.log && r % 50_000 === 0) {
      options.log(
        `  generated ${u.toLocaleString('en')} utterances (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }

  const queryCount = options.queries;
  const queries = new Float32Array(queryCount * dims);
  const queryFamily = new Int32Array(queryCount);
  for (let q = 0; q < queryCount; q++) {
    const family = pickFamily();
    queryFamily[q] = family;
    utteranceOf(newCall(family), queries, q * dims);
  }

  return {
    dimensions: dims,
    count,
    vectors,
    utteranceIds: randomFillSync(new Uint8Array(count * 16)),
    utteranceRecording,
    utteranceFamily,
    utteranceIndex,
    pSpoofed,
    rawNorm,
    recordings: r,
    recordingIds: randomFillSync(new Uint8Array(r * 16)),
    recordingAccount: recordingAccount.slice(0, r),
    recordingChannel: recordingChannel.slice(0, r),
    recordingCallAt: recordingCallAt.slice(0, r),
    families,
    familyWeight,
    familySpread,
    queries,
    queryCount,
    queryFamily,
  };
}
