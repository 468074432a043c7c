/**
 * Measures the statistics of the synthetic voice generator (voices.ts): cosine distributions of
 * same- and different-speaker calls, equal error rates, spoof family tightness, verdict error
 * rates. Shared by bench/generator.ts (which records them in bench/results/generator.json) and
 * test/voices.test.ts (which pins them), so both measure exactly the same thing.
 */
import { createVoiceModel, familyName, relativeOf, type VoiceModel } from './voices.ts';

// ---------------------------------------------------------------------------------------------
// Score statistics

/** Where a set of cosine scores lies: mean and percentiles (linear interpolation between ranks). */
export type ScoreSummary = {
  count: number;
  mean: number;
  min: number;
  p01: number;
  p05: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
};

/**
 * Mean and percentiles of scores (the input is left as it is).
 * @example summariseScores(Float64Array.of(0.2, 0.4, 0.6)); // { count: 3, mean: 0.4, p50: 0.4, … }
 */
export function summariseScores(scores: Float64Array): ScoreSummary {
  return summariseSorted(Float64Array.from(scores).sort());
}

function summariseSorted(sorted: Float64Array): ScoreSummary {
  if (sorted.length === 0) throw new RangeError('no scores to summarise');
  let sum = 0;
  for (const score of sorted) sum += score;
  const at = (fraction: number) => {
    const rank = fraction * (sorted.length - 1);
    const below = Math.floor(rank);
    const lower = sorted[below] as number;
    const upper = sorted[Math.min(below + 1, sorted.length - 1)] as number;
    return lower + (upper - lower) * (rank - below);
  };
  return {
    count: sorted.length,
    mean: round(sum / sorted.length),
    min: round(sorted[0] as number),
    p01: round(at(0.01)),
    p05: round(at(0.05)),
    p50: round(at(0.5)),
    p95: round(at(0.95)),
    p99: round(at(0.99)),
    max: round(sorted[sorted.length - 1] as number),
  };
}

/** Counts of scores in equal bins over [from, to); `below` and `above` count what falls outside. */
export type Histogram = { from: number; to: number; counts: number[]; below: number; above: number };

/**
 * Equal-width histogram of scores, by default 20 bins over [−0.2, 1] (0.06 wide).
 * @example histogram(Float64Array.of(0.1, 0.5, 0.55)).counts; // bin 5 [0.1, 0.16) holds 1, bin 11 [0.46, 0.52) 1, bin 12 1
 */
export function histogram(scores: Float64Array, bins = 20, from = -0.2, to = 1): Histogram {
  const counts = new Array<number>(bins).fill(0);
  let below = 0;
  let above = 0;
  const width = (to - from) / bins;
  for (const score of scores) {
    if (score < from) below++;
    else if (score >= to) above++;
    else {
      const bin = Math.min(bins - 1, Math.floor((score - from) / width));
      counts[bin] = (counts[bin] as number) + 1;
    }
  }
  return { from, to, counts, below, above };
}

/**
 * The equal error rate of accepting a pair when its score ≥ threshold, from a full ROC sweep:
 * every score is a candidate threshold; between the last threshold where the false rejection rate
 * (genuine pairs below) is under the false acceptance rate (impostor pairs at or above) and the
 * first where it is not, the crossing is interpolated linearly.
 * @example equalErrorRate(Float64Array.of(0.6, 0.7, 0.3), Float64Array.of(0.1, 0.2, 0.65)); // { eer: 0.333…, threshold: … }
 */
export function equalErrorRate(genuine: Float64Array, impostor: Float64Array): { eer: number; threshold: number } {
  if (genuine.length === 0 || impostor.length === 0) throw new RangeError('an EER needs genuine and impostor scores');
  const sortedGenuine = Float64Array.from(genuine).sort();
  const sortedImpostor = Float64Array.from(impostor).sort();
  let g = 0; // genuine scores below the current threshold
  let i = 0; // impostor scores below the current threshold
  let previous = { threshold: -Infinity, frr: 0, far: 1 };
  while (g < sortedGenuine.length || i < sortedImpostor.length) {
    const threshold = Math.min(sortedGenuine[g] ?? Infinity, sortedImpostor[i] ?? Infinity);
    const frr = g / sortedGenuine.length;
    const far = (sortedImpostor.length - i) / sortedImpostor.length;
    if (frr >= far) return interpolateCrossing(previous, { threshold, frr, far });
    previous = { threshold, frr, far };
    while (sortedGenuine[g] === threshold) g++;
    while (sortedImpostor[i] === threshold) i++;
  }
  // every genuine score is below every threshold tried: accept nothing
  return interpolateCrossing(previous, { threshold: Infinity, frr: 1, far: 0 });
}

type RocPoint = { threshold: number; frr: number; far: number };

/** Where FRR = FAR on the segment between two ROC points (FRR − FAR goes from < 0 to ≥ 0). */
function interpolateCrossing(before: RocPoint, after: RocPoint) {
  const gapBefore = before.far - before.frr; // > 0
  const gapAfter = after.frr - after.far; // ≥ 0
  const t = gapBefore + gapAfter === 0 ? 0 : gapBefore / (gapBefore + gapAfter);
  const eer = before.frr + t * (after.frr - before.frr);
  const threshold = Number.isFinite(before.threshold) ? before.threshold : after.threshold;
  return { eer, threshold: Number.isFinite(after.threshold) ? (threshold + after.threshold) / 2 : threshold };
}

// ---------------------------------------------------------------------------------------------
// Speaker space

/** Genuine (same speaker) and impostor (different speakers) cosine scores. */
export type TrialScores = { genuine: Float64Array; impostor: Float64Array };

export type SpeakerTrials = {
  /** every pair of normal calls: same speaker → genuine, different speakers → impostor */
  normal: TrialScores;
  /** each speaker's noisy call against every normal call (its own → genuine, others' → impostor) */
  hard: TrialScores;
  /** each speaker's cloned voice against the victim's normal calls */
  cloneToVictim: Float64Array;
  norms: { min: number; max: number };
  maxAbsComponent: number;
};

/**
 * Scores the speaker trials of a population: speakers `speaker-0…`, each heard on
 * `callsPerSpeaker` normal calls, one noisy call and one call by a voice clone of them.
 * @example const trials = speakerTrials(createVoiceModel(1), { speakers: 1000, callsPerSpeaker: 3 });
 */
export function speakerTrials(
  model: VoiceModel,
  { speakers, callsPerSpeaker }: { speakers: number; callsPerSpeaker: number },
): SpeakerTrials {
  if (speakers < 2 || callsPerSpeaker < 2) throw new RangeError('trials need ≥ 2 speakers with ≥ 2 calls each');
  const norms = { min: Infinity, max: -Infinity };
  let maxAbsComponent = 0;
  const unitRows = (vectors: number[][]) => {
    const dimensions = vectors[0]?.length ?? 0;
    const rows = new Float64Array(vectors.length * dimensions);
    vectors.forEach((vector, index) => {
      const norm = Math.hypot(...vector);
      norms.min = Math.min(norms.min, norm);
      norms.max = Math.max(norms.max, norm);
      for (const [k, value] of vector.entries()) {
        maxAbsComponent = Math.max(maxAbsComponent, Math.abs(value));
        rows[index * dimensions + k] = value / norm;
      }
    });
    return { rows, dimensions };
  };
  const ids = Array.from({ length: speakers }, (_, s) => `speaker-${s}`);
  const normal = unitRows(
    ids.flatMap((id, s) =>
      Array.from({ length: callsPerSpeaker }, (_, c) => model.speakerEmbedding(id, `call-${s}-${c}`)),
    ),
  );
  const noisy = unitRows(ids.map((id, s) => model.speakerEmbedding(id, `call-${s}-noisy`, { noisy: true })));
  const cloned = unitRows(ids.map((id, s) => model.speakerEmbedding(id, `call-${s}-clone`, { cloned: true })));
  const dot = (a: Float64Array, i: number, b: Float64Array, j: number, dimensions: number) => {
    let sum = 0;
    for (let k = 0, x = i * dimensions, y = j * dimensions; k < dimensions; k++, x++, y++) {
      sum += (a[x] as number) * (b[y] as number);
    }
    return sum;
  };
  const d = normal.dimensions;
  const calls = speakers * callsPerSpeaker;

  const genuine = new Float64Array((speakers * callsPerSpeaker * (callsPerSpeaker - 1)) / 2);
  const impostor = new Float64Array((calls * (calls - 1)) / 2 - genuine.length);
  let nGenuine = 0;
  let nImpostor = 0;
  for (let i = 0; i < calls; i++) {
    const speaker = Math.floor(i / callsPerSpeaker);
    for (let j = i + 1; j < calls; j++) {
      const score = dot(normal.rows, i, normal.rows, j, d);
      if (j < (speaker + 1) * callsPerSpeaker) genuine[nGenuine++] = score;
      else impostor[nImpostor++] = score;
    }
  }

  const hardGenuine = new Float64Array(calls);
  const hardImpostor = new Float64Array(speakers * (calls - callsPerSpeaker));
  const cloneToVictim = new Float64Array(calls);
  nImpostor = 0;
  for (let s = 0; s < speakers; s++) {
    for (let j = 0; j < calls; j++) {
      const score = dot(noisy.rows, s, normal.rows, j, d);
      if (Math.floor(j / callsPerSpeaker) === s) {
        hardGenuine[s * callsPerSpeaker + (j % callsPerSpeaker)] = score;
        cloneToVictim[j] = dot(cloned.rows, s, normal.rows, j, d);
      } else hardImpostor[nImpostor++] = score;
    }
  }
  return {
    normal: { genuine, impostor },
    hard: { genuine: hardGenuine, impostor: hardImpostor },
    cloneToVictim,
    norms,
    maxAbsComponent,
  };
}

// ---------------------------------------------------------------------------------------------
// Deepfake space

/** How the spoof-family and bonafide utterances of `deepfakeSample` are laid out. */
export const DEEPFAKE_SAMPLE = {
  families: 12,
  callsPerFamily: 8,
  bonafideSpeakers: 60,
  bonafideCallsPerSpeaker: 2,
  utterancesPerCall: 5,
} as const;

/** One generated utterance: `family` is the index into the sample's families, −1 for bonafide. */
type Utterance = { family: number; parent: number; speaker: number; call: number; vector: Float64Array };

/** Cosine scores between the utterances of a deepfake sample, grouped by how the two relate. */
export type DeepfakeScores = {
  /** two utterances of one family (any calls) */
  withinFamily: Float64Array;
  /** each family's mean within-family score, in family order */
  withinFamilyMeans: number[];
  /** a relative family's utterance against its parent family's */
  relatives: Float64Array;
  /** utterances of two unrelated families */
  unrelated: Float64Array;
  bonafideSameCall: Float64Array;
  bonafideSameSpeakerOtherCall: Float64Array;
  bonafideDifferentSpeakers: Float64Array;
  spoofToBonafide: Float64Array;
  /** share of spoofed utterances whose nearest spoofed utterance from another call is of their family */
  nearestOtherCallSameFamily: number;
  norms: { min: number; max: number };
};

/**
 * Generates DEEPFAKE_SAMPLE's utterances (spoof calls `spoof-<family>-<c>` imitating
 * `speaker-<c>`, bonafide calls `bonafide-<s>-<c>` of `speaker-<s>`) and scores every pair.
 * @example deepfakeScores(createVoiceModel(1)).withinFamilyMeans; // one mean per family-00…family-11
 */
export function deepfakeScores(model: VoiceModel): DeepfakeScores {
  const sample = DEEPFAKE_SAMPLE;
  const families = Array.from({ length: sample.families }, (_, k) => familyName(k));
  const utterances: Utterance[] = [];
  const norms = { min: Infinity, max: -Infinity };
  let calls = 0;
  const addCall = (family: number, speaker: number, callKey: string) => {
    const spoofFamily = families[family] ?? null;
    const parentName = spoofFamily === null ? null : relativeOf(spoofFamily);
    const parent = parentName === null ? -1 : families.indexOf(parentName);
    for (let u = 0; u < sample.utterancesPerCall; u++) {
      const raw = model.deepfakeEmbedding({
        speakerId: `speaker-${speaker}`,
        callKey,
        utteranceId: String(u),
        spoofFamily,
      });
      const norm = Math.hypot(...raw);
      norms.min = Math.min(norms.min, norm);
      norms.max = Math.max(norms.max, norm);
      utterances.push({ family, parent, speaker, call: calls, vector: Float64Array.from(raw, (v) => v / norm) });
    }
    calls++;
  };
  for (const [k, family] of families.entries()) {
    for (let c = 0; c < sample.callsPerFamily; c++) addCall(k, c, `spoof-${family}-${c}`);
  }
  for (let s = 0; s < sample.bonafideSpeakers; s++) {
    for (let c = 0; c < sample.bonafideCallsPerSpeaker; c++) addCall(-1, s, `bonafide-${s}-${c}`);
  }

  const groups = {
    withinFamily: [] as number[],
    relatives: [] as number[],
    unrelated: [] as number[],
    bonafideSameCall: [] as number[],
    bonafideSameSpeakerOtherCall: [] as number[],
    bonafideDifferentSpeakers: [] as number[],
    spoofToBonafide: [] as number[],
  };
  const familySums = families.map(() => 0);
  // the nearest spoofed utterance from another call, per utterance: its score and family
  const nearestScore = utterances.map(() => -Infinity);
  const nearestFamily = utterances.map(() => -1);
  const keepNearest = (i: number, score: number, family: number) => {
    if (score > (nearestScore[i] as number)) {
      nearestScore[i] = score;
      nearestFamily[i] = family;
    }
  };
  for (const [i, a] of utterances.entries()) {
    for (let j = i + 1; j < utterances.length; j++) {
      const b = utterances[j] as Utterance;
      const score = cosineOfUnits(a.vector, b.vector);
      if (a.family >= 0 && b.family >= 0) {
        if (a.call !== b.call) {
          keepNearest(i, score, b.family);
          keepNearest(j, score, a.family);
        }
        if (a.family === b.family) {
          groups.withinFamily.push(score);
          familySums[a.family] = (familySums[a.family] as number) + score;
        } else if (a.parent === b.family || b.parent === a.family) groups.relatives.push(score);
        else groups.unrelated.push(score);
      } else if (a.family < 0 && b.family < 0) {
        if (a.call === b.call) groups.bonafideSameCall.push(score);
        else if (a.speaker === b.speaker) groups.bonafideSameSpeakerOtherCall.push(score);
        else groups.bonafideDifferentSpeakers.push(score);
      } else groups.spoofToBonafide.push(score);
    }
  }
  const utterancesPerFamily = sample.callsPerFamily * sample.utterancesPerCall;
  const pairsPerFamily = (utterancesPerFamily * (utterancesPerFamily - 1)) / 2;
  const spoofs = utterances.flatMap((u, i) => (u.family >= 0 ? [i] : []));
  return {
    withinFamily: Float64Array.from(groups.withinFamily),
    withinFamilyMeans: familySums.map((sum) => sum / pairsPerFamily),
    relatives: Float64Array.from(groups.relatives),
    unrelated: Float64Array.from(groups.unrelated),
    bonafideSameCall: Float64Array.from(groups.bonafideSameCall),
    bonafideSameSpeakerOtherCall: Float64Array.from(groups.bonafideSameSpeakerOtherCall),
    bonafideDifferentSpeakers: Float64Array.from(groups.bonafideDifferentSpeakers),
    spoofToBonafide: Float64Array.from(groups.spoofToBonafide),
    nearestOtherCallSameFamily: spoofs.filter((i) => nearestFamily[i] === utterances[i]?.family).length / spoofs.length,
    norms,
  };
}

function cosineOfUnits(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let k = 0; k < a.length; k++) sum += (a[k] as number) * (b[k] as number);
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Verdicts

/** How many verdicts `verdictRates` draws: per family and line condition, and bonafide per condition. */
export const VERDICT_SAMPLE = { families: 12, spoofedPerFamily: 2_000, bonafide: 24_000 } as const;

export type VerdictRates = {
  /** spoofed utterances judged bonafide, normal lines */
  missRate: number;
  missRateNoisy: number;
  /** per family, normal lines */
  missRateByFamily: Record<string, number>;
  /** bonafide utterances judged spoofed */
  falseAlarmRate: number;
  falseAlarmRateNoisy: number;
  /** median pSpoofed of spoofed and of bonafide utterances (normal lines) */
  medianPSpoofed: { spoofed: number; bonafide: number };
  /** every label agrees with its pSpoofed (spoofed ⇔ pSpoofed > 0.5) and pSpoofed ∈ [0, 1] */
  consistent: boolean;
};

/**
 * Error rates of the model's deepfake verdicts over VERDICT_SAMPLE.
 * @example verdictRates(createVoiceModel(1)).falseAlarmRate; // ≈ 0.015
 */
export function verdictRates(model: VoiceModel): VerdictRates {
  let consistent = true;
  const run = (spoofFamily: string | null, noisy: boolean, count: number) => {
    let spoofedLabels = 0;
    const pSpoofed = new Float64Array(count);
    for (let u = 0; u < count; u++) {
      const callKey = `verdict-${spoofFamily ?? 'bonafide'}-${Math.floor(u / 10)}`;
      const verdict = model.verdict({ callKey, utteranceId: String(u % 10), spoofFamily, noisy });
      if (verdict.label === 'spoofed') spoofedLabels++;
      pSpoofed[u] = verdict.pSpoofed;
      const valid = verdict.pSpoofed >= 0 && verdict.pSpoofed <= 1;
      if (!valid || (verdict.label === 'spoofed') !== verdict.pSpoofed > 0.5) consistent = false;
    }
    return { spoofedShare: spoofedLabels / count, pSpoofed };
  };
  const families = Array.from({ length: VERDICT_SAMPLE.families }, (_, k) => familyName(k));
  const missRateByFamily: Record<string, number> = {};
  const spoofedPSpoofed: Float64Array[] = [];
  let missNoisy = 0;
  for (const family of families) {
    const normal = run(family, false, VERDICT_SAMPLE.spoofedPerFamily);
    missRateByFamily[family] = round(1 - normal.spoofedShare, 5);
    spoofedPSpoofed.push(normal.pSpoofed);
    missNoisy += 1 - run(family, true, VERDICT_SAMPLE.spoofedPerFamily).spoofedShare;
  }
  const bonafide = run(null, false, VERDICT_SAMPLE.bonafide);
  const bonafideNoisy = run(null, true, VERDICT_SAMPLE.bonafide);
  const median = (values: Float64Array) => summariseScores(values).p50;
  const missRates = Object.values(missRateByFamily);
  return {
    missRate: round(missRates.reduce((sum, rate) => sum + rate, 0) / missRates.length, 5),
    missRateNoisy: round(missNoisy / families.length, 5),
    missRateByFamily,
    falseAlarmRate: round(bonafide.spoofedShare, 5),
    falseAlarmRateNoisy: round(bonafideNoisy.spoofedShare, 5),
    medianPSpoofed: {
      spoofed: median(Float64Array.from(spoofedPSpoofed.flatMap((values) => [...values]))),
      bonafide: median(bonafide.pSpoofed),
    },
    consistent,
  };
}

// ---------------------------------------------------------------------------------------------
// Everything, as recorded in bench/results/generator.json

export type GeneratorFigures = ReturnType<typeof measureVoiceModel>;

/**
 * Every statistic of the generator for one seed and population, rounded for the record: the
 * `figures` of bench/results/generator.json.
 * @example const figures = measureVoiceModel({ seed: 1, speakers: 1000, callsPerSpeaker: 3 }); figures.speaker.normal.eer; // ≈ 0.015
 */
export function measureVoiceModel({
  seed,
  speakers,
  callsPerSpeaker,
}: {
  seed: number;
  speakers: number;
  callsPerSpeaker: number;
}) {
  const model = createVoiceModel(seed);
  const trials = speakerTrials(model, { speakers, callsPerSpeaker });
  const normal = equalErrorRate(trials.normal.genuine, trials.normal.impostor);
  const hard = equalErrorRate(trials.hard.genuine, trials.hard.impostor);
  let clonesAccepted = 0;
  for (const score of trials.cloneToVictim) if (score >= normal.threshold) clonesAccepted++;
  const deepfake = deepfakeScores(model);
  const withinFamilyMeans = deepfake.withinFamilyMeans.map((mean) => round(mean));
  return {
    seed,
    speakers,
    callsPerSpeaker,
    speaker: {
      normal: {
        eer: round(normal.eer, 5),
        threshold: round(normal.threshold),
        genuine: summariseScores(trials.normal.genuine),
        impostor: summariseScores(trials.normal.impostor),
      },
      hard: {
        eer: round(hard.eer, 5),
        threshold: round(hard.threshold),
        genuine: summariseScores(trials.hard.genuine),
        impostor: summariseScores(trials.hard.impostor),
      },
      clones: {
        toVictim: summariseScores(trials.cloneToVictim),
        /** clone-vs-victim pairs that the normal EER threshold accepts as the victim */
        acceptedAtNormalThreshold: round(clonesAccepted / trials.cloneToVictim.length, 5),
      },
      norms: { min: round(trials.norms.min, 2), max: round(trials.norms.max, 2) },
      maxAbsComponent: round(trials.maxAbsComponent, 2),
      histograms: {
        genuine: histogram(trials.normal.genuine),
        impostor: histogram(trials.normal.impostor),
        hardGenuine: histogram(trials.hard.genuine),
        hardImpostor: histogram(trials.hard.impostor),
        cloneToVictim: histogram(trials.cloneToVictim),
      },
    },
    deepfake: {
      sample: DEEPFAKE_SAMPLE,
      /** relative family → its parent */
      relativeFamilies: Object.fromEntries(
        Array.from({ length: DEEPFAKE_SAMPLE.families }, (_, k) => familyName(k)).flatMap((family) => {
          const parent = relativeOf(family);
          return parent === null ? [] : [[family, parent]];
        }),
      ),
      withinFamily: summariseScores(deepfake.withinFamily),
      withinFamilyMeans: { min: Math.min(...withinFamilyMeans), max: Math.max(...withinFamilyMeans) },
      relatives: summariseScores(deepfake.relatives),
      unrelated: summariseScores(deepfake.unrelated),
      bonafideSameCall: summariseScores(deepfake.bonafideSameCall),
      bonafideSameSpeakerOtherCall: summariseScores(deepfake.bonafideSameSpeakerOtherCall),
      bonafideDifferentSpeakers: summariseScores(deepfake.bonafideDifferentSpeakers),
      spoofToBonafide: summariseScores(deepfake.spoofToBonafide),
      nearestOtherCallSameFamily: round(deepfake.nearestOtherCallSameFamily, 5),
      norms: { min: round(deepfake.norms.min, 3), max: round(deepfake.norms.max, 3) },
      histograms: {
        withinFamily: histogram(deepfake.withinFamily),
        relatives: histogram(deepfake.relatives),
        unrelated: histogram(deepfake.unrelated),
        bonafideSameCall: histogram(deepfake.bonafideSameCall),
        bonafideDifferentSpeakers: histogram(deepfake.bonafideDifferentSpeakers),
      },
    },
    verdicts: { sample: VERDICT_SAMPLE, ...verdictRates(model) },
  };
}

/** Rounded for the record: 4 decimals for cosines, more where a rate needs them. */
function round(value: number, digits = 4): number {
  return Number(value.toFixed(digits));
}
