/**
 * The one seeded generator of synthetic voices, shared by the stand-in, the tests, the demo and
 * the benchmarks. It makes the two embeddings the upstream returns (192-d speaker, 768-d
 * deepfake `features`) and its deepfake verdicts, with the statistics observed in real upstream
 * documents (see /work/shared/upstream/API-NOTES.md, "Embeddings, as observed in real documents").
 * The figures it produces are measured by `voice-stats.ts`, recorded by `bench/generator.ts` in
 * bench/results/generator.json and pinned by test/voices.test.ts: retuning a constant below is a
 * deliberate change that must re-record them.
 *
 * Every value is drawn from a PRNG seeded with a hash of (seed, what is drawn, ids), never from
 * Math.random and never from shared mutable state, so one call's vectors do not depend on which
 * calls were generated before it. The caches below only save recomputation.
 */

const SPEAKER_DIMENSIONS = 192;
const DEEPFAKE_DIMENSIONS = 768;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/** Uniform and standard-normal draws from one seeded stream. */
export type RandomStream = {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal (Box–Muller). */
  gaussian(): number;
};

/**
 * A PRNG stream (sfc32) seeded with a 128-bit hash (cyrb128) of the seed and the labels; the
 * same arguments always give the same stream. Labels are joined unambiguously (as a JSON array),
 * so ('a-b', 'c') and ('a', 'b-c') are different streams.
 * @example const random = randomStream(1, 'utterance-length', callKey); const seconds = 2 + 8 * random.uniform();
 */
export function randomStream(seed: number, ...labels: string[]): RandomStream {
  let [a, b, c, d] = hash128(JSON.stringify([seed, ...labels]));
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // sfc32's first outputs still show the structure of the seed words
  for (let i = 0; i < 12; i++) next();
  let spare: number | null = null;
  return {
    uniform: next,
    gaussian() {
      if (spare !== null) {
        const value = spare;
        spare = null;
        return value;
      }
      const radius = Math.sqrt(-2 * Math.log(1 - next())); // 1 − u ∈ (0, 1]: no log(0)
      const angle = 2 * Math.PI * next();
      spare = radius * Math.sin(angle);
      return radius * Math.cos(angle);
    },
  };
}

/** cyrb128: four well-mixed 32-bit words from a string, enough to seed sfc32. */
function hash128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** `dimensions` independent N(0, 1/dimensions) draws: a random direction of expected squared length 1. */
export function isotropic(random: RandomStream, dimensions: number): Float64Array {
  const scale = 1 / Math.sqrt(dimensions);
  const vector = new Float64Array(dimensions);
  for (let i = 0; i < dimensions; i++) vector[i] = random.gaussian() * scale;
  return vector;
}

/** target += weight × source */
export function addScaled(target: Float64Array, source: Float64Array, weight: number) {
  for (let i = 0; i < target.length; i++) target[i] = (target[i] as number) + weight * (source[i] as number);
}

/** The vector rescaled to length `norm`, as a plain array (what the upstream's JSON holds). */
function withNorm(vector: Float64Array, norm: number): number[] {
  let sum = 0;
  for (const v of vector) sum += v * v;
  const scale = norm / Math.sqrt(sum);
  // a plain loop: Array.from over a typed array with a map function is several times slower in V8
  const scaled: number[] = [];
  for (let i = 0; i < vector.length; i++) scaled.push((vector[i] as number) * scale);
  return scaled;
}

/**
 * Components beyond ±knee compressed towards ±limit (slope 1 at the knee, never reaching the
 * limit), like a saturating output layer.
 */
function withSoftLimit(vector: number[], knee: number, limit: number): number[] {
  const room = limit - knee;
  return vector.map((v) =>
    Math.abs(v) <= knee ? v : Math.sign(v) * (knee + room * Math.tanh((Math.abs(v) - knee) / room)),
  );
}

/** Recomputable values kept for the most recently used keys; the oldest goes first when full. */
function boundedCache<T>(limit: number, compute: (key: string) => T): (key: string) => T {
  const entries = new Map<string, T>();
  return (key) => {
    const cached = entries.get(key);
    if (cached !== undefined) {
      entries.delete(key); // re-insert: Map order is the recency order
      entries.set(key, cached);
      return cached;
    }
    const value = compute(key);
    entries.set(key, value);
    if (entries.size > limit) entries.delete(entries.keys().next().value as string);
    return value;
  };
}

// 10,000 speakers × 192 floats ≈ 15 MB (× 768 for the deepfake-space ones ≈ 61 MB): enough for
// a benchmark's whole population, bounded for a long-running stand-in.
const SPEAKER_CACHE_LIMIT = 10_000;

// ---------------------------------------------------------------------------------------------
// Speaker space (192-d, ECAPA-style)

/**
 * A joint-factor-analysis picture of speaker embeddings (eigenvoices and eigenchannels, as in
 * i-vector/PLDA models), as relative energies (expected squared lengths; the sum is rescaled to
 * the observed norms at the end):
 *
 *   call = mean + eigenvoices·y + speakerResidual             (the speaker's centroid, cached)
 *        + √quality · (eigenchannels·x + callResidual)        (this call: line, content, length)
 *
 * - `mean` (0.17): every ECAPA vector shares one direction, which is why different speakers score
 *   ≈ 0.17 (5–95 %: 0.0–0.34, observed 0.01–0.35) rather than around 0.
 * - eigenvoices (48 factors, 0.42): speakers differ along few directions. This low effective
 *   dimension widens the different-speaker spread; with 192 independent directions the two
 *   distributions barely overlap and the EER would be ≈ 0.01 %, not the 1–2 % of ECAPA systems.
 * - quality: a log-normal per-call factor on the channel energy (σ of ln 0.6: ×0.37–×2.7 for 90 %
 *   of calls): the few bad calls make the low tail of same-speaker scores (5–95 %: 0.48–0.84,
 *   mean 0.67, observed 0.5–0.85), and with it the EER ≈ 1.3 %.
 *
 * Tuned on seed 1, 1,000 speakers × 3 calls; seeds 2 and 3 give EERs of 1.5 % and 1.4 %. The
 * measured values are in bench/results/generator.json.
 */
const SPEAKER_MODEL = {
  meanEnergy: 0.17,
  eigenvoices: 48,
  eigenvoiceEnergy: 0.42,
  speakerResidualEnergy: 0.08,
  eigenchannels: 24,
  eigenchannelEnergy: 0.17,
  callResidualEnergy: 0.13,
  qualitySpread: 0.6,
  /** a noisy line or a few seconds of speech: 3.5 × the channel energy (same speaker ≈ 0.52, EER ≈ 5 %) */
  noisyChannelFactor: 3.5,
  /** a voice clone's imitation error, isotropic: it scores ≈ 0.63 against the victim's calls (genuine ≈ 0.67) */
  cloneErrorEnergy: 0.15,
  /** raw norms: speaker base 180–232 × call jitter 0.93–1.07 → 167–248 (observed 165–250) */
  speakerNormRange: [180, 232],
  callNormJitter: 0.07,
  /**
   * Components are observed within about ±60, but 192 gaussian components of a 250-long vector
   * reach ±75 somewhere in a few thousand calls; beyond ±45 they are compressed smoothly towards
   * ±60 (about 0.3 % of components, which moves cosines by < 0.001).
   */
  componentKnee: 45,
  componentLimit: 60,
} as const;

type SpeakerSpace = {
  mean: Float64Array;
  eigenvoices: Float64Array[];
  eigenchannels: Float64Array[];
};

function speakerSpace(seed: number): SpeakerSpace {
  const random = randomStream(seed, 'speaker-space');
  // unit length exactly: the different-speaker mean (≈ meanEnergy) should not vary with the seed
  const mean = isotropic(random, SPEAKER_DIMENSIONS);
  const meanLength = Math.hypot(...mean);
  return {
    mean: mean.map((v) => v / meanLength),
    eigenvoices: Array.from({ length: SPEAKER_MODEL.eigenvoices }, () => isotropic(random, SPEAKER_DIMENSIONS)),
    eigenchannels: Array.from({ length: SPEAKER_MODEL.eigenchannels }, () => isotropic(random, SPEAKER_DIMENSIONS)),
  };
}

/** The speaker's centroid (before rescaling) and the base of its raw norm. */
type SpeakerCentroid = { centroid: Float64Array; baseNorm: number };

function speakerCentroid(seed: number, space: SpeakerSpace, speakerId: string): SpeakerCentroid {
  const m = SPEAKER_MODEL;
  const random = randomStream(seed, 'speaker', speakerId);
  const centroid = new Float64Array(SPEAKER_DIMENSIONS);
  addScaled(centroid, space.mean, Math.sqrt(m.meanEnergy));
  const factorWeight = Math.sqrt(m.eigenvoiceEnergy / m.eigenvoices);
  for (const eigenvoice of space.eigenvoices) addScaled(centroid, eigenvoice, factorWeight * random.gaussian());
  addScaled(centroid, isotropic(random, SPEAKER_DIMENSIONS), Math.sqrt(m.speakerResidualEnergy));
  const [low, high] = m.speakerNormRange;
  return { centroid, baseNorm: low + (high - low) * random.uniform() };
}

// ---------------------------------------------------------------------------------------------
// Deepfake `features` space (768-d)

/**
 * Energies of the deepfake model's `features`, before rescaling to the observed norms 5.8–7.8.
 *
 * Bonafide speech = shared + speaker + call + utterance·r, r log-uniform in [0.03, 3] per
 * utterance (short or unusual utterances move further): two utterances of one call score
 * 1/√((1+r₁)(1+r₂)) of their shared part, ≈ 0.25–0.97 as observed, while different speakers
 * share only the small common part (≈ 0.08): the bonafide cloud is widely spread; one speaker's
 * calls score ≈ 0.28 (the mild speaker dependence).
 *
 * Spoofed speech = shared + family + call + utterance·spread, spread 0.05–0.3 per family: one
 * family's utterances score ≈ 0.74–0.91 with each other (family means). Family relatives: a
 * canonical family `family-NN` with NN % 4 = 3 (family-03, family-07, …) is a fine-tuned variant
 * of family NN−1 (family-02, family-06, …): its direction is 0.6 × the parent's + 0.8 × its own,
 * so relatives score ≈ 0.5 across families, unrelated families ≈ 0.1 (the shared part only). Any
 * other family name is an unrelated family of its own.
 */
const DEEPFAKE_MODEL = {
  sharedEnergy: 0.1,
  bonafideSpeakerEnergy: 0.3,
  bonafideCallEnergy: 0.6,
  /** r range of the bonafide utterance energy (log-uniform) */
  bonafideUtteranceRange: [0.03, 3],
  familyEnergy: 0.8,
  spoofCallEnergy: 0.05,
  /** per-family utterance spread range (uniform per family) */
  familySpreadRange: [0.05, 0.3],
  /** cosine between a relative family's direction and its parent's */
  relativeToParent: 0.6,
  /** raw norms: N(6.8, 0.3) clipped to the observed 5.8–7.8 */
  norm: { mean: 6.8, sd: 0.3, min: 5.8, max: 7.8 },
} as const;

const CANONICAL_FAMILY = /^family-(\d+)$/;

/**
 * The canonical name of spoof generator family `index` (0-based): campaigns in the demo data,
 * the stand-in and the benchmarks use these names.
 * @example familyName(3); // 'family-03' (a relative of 'family-02', see relativeOf)
 */
export function familyName(index: number): string {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`a family index is a whole number ≥ 0, got ${index}`);
  return `family-${String(index).padStart(2, '0')}`;
}

/**
 * The family that `family` is a close relative (fine-tuned variant) of, or null: family-NN with
 * NN % 4 = 3 derives from family-(NN−1); no other family has a parent.
 * @example relativeOf('family-07'); // 'family-06'; relativeOf('family-06'); // null
 */
export function relativeOf(family: string): string | null {
  const match = CANONICAL_FAMILY.exec(family);
  if (!match) return null;
  const index = Number(match[1]);
  return index % 4 === 3 ? familyName(index - 1) : null;
}

function familyDirection(seed: number, family: string): Float64Array {
  const own = isotropic(randomStream(seed, 'family', family), DEEPFAKE_DIMENSIONS);
  const parent = relativeOf(family);
  if (parent === null) return own;
  const rho = DEEPFAKE_MODEL.relativeToParent;
  const direction = new Float64Array(DEEPFAKE_DIMENSIONS);
  addScaled(direction, familyDirection(seed, parent), rho);
  addScaled(direction, own, Math.sqrt(1 - rho * rho));
  return direction;
}

function deepfakeNorm(random: RandomStream): number {
  const { mean, sd, min, max } = DEEPFAKE_MODEL.norm;
  return Math.min(max, Math.max(min, mean + sd * random.gaussian()));
}

// ---------------------------------------------------------------------------------------------
// Verdicts

/**
 * The upstream's deepfake verdicts, chosen to look like a good but imperfect detector:
 * - spoofed speech is missed (judged bonafide) 4–10 % of the time depending on the family
 *   (uniform per family), 12–18 % for relative families (variants tuned to evade), +5 points on a
 *   noisy line;
 * - bonafide speech raises a false alarm 1.5 % of the time, 4 % on a noisy line;
 * - pSpoofed is confident when right (median 0.001 from 0 or 1, 80 % within 0.01, as real
 *   posteriors like "1e-04") and less sure when wrong (0.5–0.99 towards the wrong label).
 */
const VERDICT_MODEL = {
  missRateRange: [0.04, 0.1],
  relativeMissBonus: 0.08,
  noisyMissBonus: 0.05,
  falseAlarmRate: 0.015,
  noisyFalseAlarmRate: 0.04,
} as const;

/** pSpoofed 10^−e away from the side it leans to: e ∈ (0.302, 4] when confident, (0.302, 2] when not. */
export function posterior(random: RandomStream, towardsSpoofed: boolean, confident: boolean): number {
  // confident answers lean to the far end (√u)
  const decades = confident ? 0.302 + 3.698 * Math.sqrt(random.uniform()) : 0.302 + 1.698 * random.uniform();
  const distance = 10 ** -decades;
  return towardsSpoofed ? 1 - distance : distance;
}

/** The miss rate of one spoof family on a normal line. */
function familyMissRate(seed: number, family: string): number {
  const [low, high] = VERDICT_MODEL.missRateRange;
  const base = low + (high - low) * randomStream(seed, 'family-miss-rate', family).uniform();
  return relativeOf(family) === null ? base : base + VERDICT_MODEL.relativeMissBonus;
}

// ---------------------------------------------------------------------------------------------
// The model

export type VoiceModel = {
  readonly seed: number;
  /** Raw (unnormalised) 192-d speaker embedding of `speakerId` as heard in one call. Deterministic in (seed, speakerId, callKey, options): same inputs → same vector, regardless of call order. `noisy`: a hard case (noisy line / short speech) — lower similarity to the same speaker's other calls. `cloned`: a synthetic voice imitating `speakerId` (a voice clone of the victim) — still near the victim in speaker space, a bit further than a genuine call. */
  speakerEmbedding(speakerId: string, callKey: string, options?: { noisy?: boolean; cloned?: boolean }): number[];
  /** Raw 768-d deepfake-model `features` vector of one utterance. spoofFamily null = bonafide speech (widely spread; mildly dependent on the speaker), otherwise generated by that spoof generator family (tight within a family). */
  deepfakeEmbedding(input: {
    speakerId: string;
    callKey: string;
    utteranceId: string;
    spoofFamily: string | null;
  }): number[];
  /** The upstream's deepfake verdict for that utterance, with realistic misses (spoofed judged bonafide) and false alarms. pSpoofed in [0,1]. */
  verdict(input: { callKey: string; utteranceId: string; spoofFamily: string | null; noisy?: boolean }): {
    label: 'bonafide' | 'spoofed';
    pSpoofed: number;
  };
  /** Another 768-d vector for tasks voxtrace does not store (Behavioral API `features`, `intermediate_features`): deterministic noise in its own space. */
  otherEmbedding(kind: string, callKey: string, utteranceId: string): number[];
};

/**
 * The synthetic voice population of `seed` (default 1): speakers, spoof families and verdicts.
 * Two models with the same seed give identical vectors; cheap to create, it caches per-speaker
 * centroids as it goes.
 * @example
 * const voices = createVoiceModel(1);
 * const enrolled = voices.speakerEmbedding('alice', 'call-1');
 * const clone = voices.speakerEmbedding('alice', 'call-2', { cloned: true }); // near `enrolled`
 * const features = voices.deepfakeEmbedding({ speakerId: 'alice', callKey: 'call-2', utteranceId: '0', spoofFamily: familyName(0) });
 */
export function createVoiceModel(seed = 1): VoiceModel {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`the seed is a whole number, got ${seed}`);
  const space = speakerSpace(seed);
  const centroidOf = boundedCache(SPEAKER_CACHE_LIMIT, (speakerId) => speakerCentroid(seed, space, speakerId));

  const deepfakeShared = isotropic(randomStream(seed, 'deepfake-shared'), DEEPFAKE_DIMENSIONS);
  const bonafideSpeakerOf = boundedCache(SPEAKER_CACHE_LIMIT, (speakerId) =>
    isotropic(randomStream(seed, 'deepfake-speaker', speakerId), DEEPFAKE_DIMENSIONS),
  );
  // the call's channel, shared by its utterances whoever speaks; a stand-in makes one call's
  // utterances together, so a few hundred calls cover it (1,000 × 768 floats ≈ 6 MB)
  const callChannelOf = boundedCache(1_000, (callKey) =>
    isotropic(randomStream(seed, 'deepfake-call', callKey), DEEPFAKE_DIMENSIONS),
  );
  const familyOf = boundedCache(1_000, (family) => {
    const [low, high] = DEEPFAKE_MODEL.familySpreadRange;
    return {
      direction: familyDirection(seed, family),
      spread: low + (high - low) * randomStream(seed, 'family-spread', family).uniform(),
    };
  });

  return {
    seed,

    speakerEmbedding(speakerId, callKey, options = {}) {
      const m = SPEAKER_MODEL;
      const { noisy = false, cloned = false } = options;
      const { centroid, baseNorm } = centroidOf(speakerId);
      const kind = `${cloned ? 'cloned' : 'genuine'}/${noisy ? 'noisy' : 'normal'}`;
      const random = randomStream(seed, 'speaker-call', speakerId, callKey, kind);
      const vector = Float64Array.from(centroid);
      if (cloned) addScaled(vector, isotropic(random, SPEAKER_DIMENSIONS), Math.sqrt(m.cloneErrorEnergy));
      const quality = Math.exp(m.qualitySpread * random.gaussian()) * (noisy ? m.noisyChannelFactor : 1);
      const factorWeight = Math.sqrt((quality * m.eigenchannelEnergy) / m.eigenchannels);
      for (const eigenchannel of space.eigenchannels) addScaled(vector, eigenchannel, factorWeight * random.gaussian());
      addScaled(vector, isotropic(random, SPEAKER_DIMENSIONS), Math.sqrt(quality * m.callResidualEnergy));
      const jitter = 1 + m.callNormJitter * (2 * random.uniform() - 1);
      return withSoftLimit(withNorm(vector, baseNorm * jitter), m.componentKnee, m.componentLimit);
    },

    deepfakeEmbedding({ speakerId, callKey, utteranceId, spoofFamily }) {
      const m = DEEPFAKE_MODEL;
      const random = randomStream(seed, 'deepfake-utterance', callKey, utteranceId, speakerId, spoofFamily ?? '');
      const call = callChannelOf(callKey);
      const vector = new Float64Array(DEEPFAKE_DIMENSIONS);
      addScaled(vector, deepfakeShared, Math.sqrt(m.sharedEnergy));
      if (spoofFamily === null) {
        const [low, high] = m.bonafideUtteranceRange;
        const r = low * (high / low) ** random.uniform();
        addScaled(vector, bonafideSpeakerOf(speakerId), Math.sqrt(m.bonafideSpeakerEnergy));
        addScaled(vector, call, Math.sqrt(m.bonafideCallEnergy));
        addScaled(vector, isotropic(random, DEEPFAKE_DIMENSIONS), Math.sqrt(r));
      } else {
        const family = familyOf(spoofFamily);
        addScaled(vector, family.direction, Math.sqrt(m.familyEnergy));
        addScaled(vector, call, Math.sqrt(m.spoofCallEnergy));
        addScaled(vector, isotropic(random, DEEPFAKE_DIMENSIONS), Math.sqrt(family.spread));
      }
      return withNorm(vector, deepfakeNorm(random));
    },

    verdict({ callKey, utteranceId, spoofFamily, noisy = false }) {
      const v = VERDICT_MODEL;
      const random = randomStream(seed, 'verdict', callKey, utteranceId, spoofFamily ?? '', noisy ? 'noisy' : 'normal');
      const spoofed = spoofFamily !== null;
      const errorRate = spoofed
        ? familyMissRate(seed, spoofFamily) + (noisy ? v.noisyMissBonus : 0)
        : noisy
          ? v.noisyFalseAlarmRate
          : v.falseAlarmRate;
      const wrong = random.uniform() < errorRate;
      const saysSpoofed = spoofed !== wrong;
      const pSpoofed = posterior(random, saysSpoofed, !wrong);
      return { label: saysSpoofed ? 'spoofed' : 'bonafide', pSpoofed };
    },

    otherEmbedding(kind, callKey, utteranceId) {
      const random = randomStream(seed, 'other', kind, callKey, utteranceId);
      return withNorm(isotropic(random, DEEPFAKE_DIMENSIONS), deepfakeNorm(random));
    },
  };
}
