import type { UpstreamApi } from '../db/schema.ts';
import type { CallManifest, ManifestSpeaker, ManifestUtterance } from './manifest.ts';
import type { StandinProcess } from './processes.ts';
import { between, seededRandom, seedFrom } from './random.ts';
import type { VoiceModel } from './voices.ts';
import { BEHAVIORAL_TASKS, OTHER_LANGUAGES, transcript } from './wording.ts';

/**
 * Results documents shaped exactly like the real API's: one item per (utterance, task) with the
 * eight wire keys, times and posteriors as strings, the speaker vector on each speaker's first
 * diarization item only, no features or verdicts for utterances under 2 s.
 */

/** How a results document is spoiled on purpose (fault injection), or null for a good one. */
export type DocumentSpoiler = 'trimmed' | 'wrong-dimensions' | 'nul-byte' | null;

type Prediction = { label: string | null; posterior: string | null; dominantInSegments: [] };
type ResultItem = {
  id: string;
  startTime: string;
  endTime: string;
  task: string;
  prediction: Prediction[];
  finalLabel: string | null;
  level: 'utterance';
  embedding: string | null;
};

/** Utterances shorter than this carry only asr, diarization and language. */
const MIN_FEATURE_SECONDS = 2;

/**
 * The results document of a completed process, as the JSON text the API sends.
 * @example const text = resultsDocumentText(process, createVoiceModel(1), { spoiler: null });
 */
export function resultsDocumentText(
  process: StandinProcess,
  model: VoiceModel,
  options: { spoiler: DocumentSpoiler },
): string {
  return JSON.stringify(resultsDocument(process, model, options));
}

/**
 * The results document of a completed process as a value (`{pid, cid, code: 2, message, results}`).
 * @example const doc = resultsDocument(process, model, { spoiler: null }); doc.results.length;
 */
export function resultsDocument(process: StandinProcess, model: VoiceModel, options: { spoiler: DocumentSpoiler }) {
  const { manifest } = process;
  const speakers = new Map(manifest.speakers.map((s) => [s.label, s]));
  const vectorText = vectorSerializer(options.spoiler);
  const voiced = new Set<string>();
  const results: ResultItem[] = [];
  manifest.utterances.forEach((utterance, index) => {
    const speaker = speakers.get(utterance.speakerLabel) as ManifestSpeaker;
    const id = String(index);
    const random = seededRandom(seedFrom(process.callKey, 'utterance', id));
    const item = (task: string, prediction: Prediction[], finalLabel: string | null, embedding: string | null) =>
      results.push({
        id,
        startTime: utterance.start.toFixed(3),
        endTime: utterance.end.toFixed(3),
        task,
        prediction,
        finalLabel,
        level: 'utterance',
        embedding,
      });
    // a clone sounds like its victim: the speaker model hears the victim's voice
    const voice = speaker.cloneOf ?? speaker.speakerId;
    const seconds = utterance.end - utterance.start;
    // "nul-byte": valid JSON ("\u0000") that PostgreSQL refuses in text and jsonb alike
    const text = `${transcript(random, speaker.role, seconds)}${options.spoiler === 'nul-byte' && index === 0 ? '\u0000' : ''}`;
    item('asr', [prediction(text, null)], text, null);

    let speakerVector: string | null = null;
    if (process.embeddings && !voiced.has(speaker.label)) {
      const vector = model.speakerEmbedding(voice, process.callKey, {
        noisy: speaker.noisy,
        cloned: speaker.cloneOf !== undefined,
      });
      const spoilDimensions = options.spoiler === 'wrong-dimensions' && voiced.size === 0;
      speakerVector = vectorText(spoilDimensions ? vector.slice(0, vector.length - 1) : vector);
    }
    voiced.add(speaker.label);
    item('diarization', [prediction(speaker.label, null)], speaker.label, speakerVector);

    const languages = languagePredictions(random);
    item('language', languages, languages[0]?.label ?? null, null);
    if (seconds < MIN_FEATURE_SECONDS) return;

    if (process.api === 'deepfake') {
      deepfakeItems({ process, model, utterance, speaker, voice, id, random, item, vectorText });
    } else {
      behavioralItems({ process, model, speaker, id, random, item, vectorText });
    }
  });
  return { pid: process.pid, cid: process.cid, code: 2, message: 'Processing Complete', results };
}

type ItemWriter = (task: string, prediction: Prediction[], finalLabel: string | null, embedding: string | null) => void;

function deepfakeItems(input: {
  process: StandinProcess;
  model: VoiceModel;
  utterance: ManifestUtterance;
  speaker: ManifestSpeaker;
  voice: string;
  id: string;
  random: () => number;
  item: ItemWriter;
  vectorText: (vector: number[]) => string;
}) {
  const { process, model, utterance, speaker, id, random, item } = input;
  if (process.embeddings) {
    const features = model.deepfakeEmbedding({
      speakerId: input.voice,
      callKey: process.callKey,
      utteranceId: id,
      spoofFamily: utterance.spoofFamily,
    });
    // the deepfake model emits float32 values: print them as the API does
    item('features', [prediction(null, null)], null, input.vectorText(features.map(Math.fround)));
  }
  const verdict = model.verdict({
    callKey: process.callKey,
    utteranceId: id,
    spoofFamily: utterance.spoofFamily,
    noisy: speaker.noisy,
  });
  const spoofed = Math.min(0.9999, Math.max(0.0001, Math.round(verdict.pSpoofed * 10_000) / 10_000));
  const bonafide = Math.round((1 - spoofed) * 10_000) / 10_000;
  const pair = [prediction('bonafide', posteriorText(bonafide)), prediction('spoofed', posteriorText(spoofed))];
  item('deepfake', spoofed > bonafide ? pair.reverse() : pair, verdict.label, null);
  // an extra task the stand-in's clients do not know: always with enable_generator_detection,
  // and now and then without it, so that clients prove they keep unknown tasks without failing
  if (process.generatorDetection || random() < 0.12) {
    const synthetic = verdict.label === 'spoofed';
    const top = synthetic ? between(random, 0.55, 0.97) : between(random, 0.7, 0.99);
    const second = (1 - top) * between(random, 0.5, 0.9);
    const generator = seedFrom(utterance.spoofFamily ?? '') % 2 === 0 ? 'tts' : 'voice_conversion';
    const [first, middle, last] = synthetic
      ? [generator, 'none', generator === 'tts' ? 'voice_conversion' : 'tts']
      : ['none', 'tts', 'voice_conversion'];
    const ranked = [
      prediction(first, posteriorText(top)),
      prediction(middle, posteriorText(second)),
      prediction(last, posteriorText(Math.max(0, 1 - top - second))),
    ];
    item('generator_detection', ranked, first, null);
  }
}

function behavioralItems(input: {
  process: StandinProcess;
  model: VoiceModel;
  speaker: ManifestSpeaker;
  id: string;
  random: () => number;
  item: ItemWriter;
  vectorText: (vector: number[]) => string;
}) {
  const { process, model, speaker, id, random, item } = input;
  for (const kind of ['features', 'intermediate_features']) {
    if (!process.embeddings) continue;
    const vector = model.otherEmbedding(kind, process.callKey, id).map(Math.fround);
    item(kind, [prediction(null, null)], null, input.vectorText(vector));
  }
  for (const task of BEHAVIORAL_TASKS) {
    const draw = task.perSpeaker ? seededRandom(seedFrom(speaker.cloneOf ?? speaker.speakerId, task.task)) : random;
    const ranked = rankedPosteriors(draw, task.labels, task.perSpeaker ? 6 : 2);
    item(task.task, ranked, ranked[0]?.label ?? null, null);
  }
}

function prediction(label: string | null, posterior: string | null): Prediction {
  return { label, posterior, dominantInSegments: [] };
}

/** Posteriors over labels, highest first; `sharpness` makes the winner more certain. */
function rankedPosteriors(random: () => number, labels: string[], sharpness: number): Prediction[] {
  const weights = labels.map((label, i) => ({ label, weight: Math.exp(random() * sharpness - i * 0.3) }));
  const total = weights.reduce((sum, w) => sum + w.weight, 0);
  return weights
    .map((w) => ({ label: w.label, p: Math.round((w.weight / total) * 10_000) / 10_000 }))
    .sort((a, b) => b.p - a.p)
    .map((w) => prediction(w.label, posteriorText(w.p)));
}

/** Top-3 languages, English first, with float16-looking posteriors like the real documents. */
function languagePredictions(random: () => number): Prediction[] {
  const first = 1 - 10 ** between(random, -3.5, -1.2);
  const second = (1 - first) * between(random, 0.3, 0.8);
  const third = (1 - first - second) * between(random, 0.1, 0.6);
  const start = Math.floor(random() * OTHER_LANGUAGES.length);
  return [
    prediction('en', float16Text(first)),
    prediction(OTHER_LANGUAGES[start] as string, float16Text(second)),
    prediction(OTHER_LANGUAGES[(start + 1) % OTHER_LANGUAGES.length] as string, float16Text(third)),
  ];
}

/**
 * A posterior as the API writes it: four decimals ("0.9999", "0.16", "1.0", "0.0"), and values
 * below 0.001 in exponent form ("1e-04").
 * @example posteriorText(0.0001); // '1e-04'
 */
export function posteriorText(p: number): string {
  const rounded = Math.round(p * 10_000) / 10_000;
  if (Number.isInteger(rounded)) return rounded.toFixed(1);
  if (rounded < 0.001) return `${Math.round(rounded * 10_000)}e-04`;
  return String(rounded);
}

/** A probability rounded to half precision, printed in full ("0.9990234375"). */
function float16Text(p: number): string {
  if (p <= 0) return '0.0';
  const step = 2 ** (Math.floor(Math.log2(p)) - 10);
  return String(Math.round(p / step) * step);
}

/** Vectors as JSON array text in a string; "trimmed" writes them like the vendor's docs example. */
function vectorSerializer(spoiler: DocumentSpoiler): (vector: number[]) => string {
  if (spoiler === 'trimmed') return (v) => `[${v[0]}, ${v[1]}, ..., ${v[v.length - 1]}]`;
  // the same text as v.join(', '), ~40% faster: JSON.stringify has a fast path for number arrays
  return (v) => JSON.stringify(v).replaceAll(',', ', ');
}

/**
 * What the stand-in would answer for this call, without running it: the results document of a
 * completed process. For tests and benchmarks that need realistic documents in bulk.
 * @example const doc = documentForCall(manifest, { pid: 7, model: createVoiceModel(1) });
 */
export function documentForCall(
  manifest: CallManifest,
  options: { pid: number; cid?: number; api?: UpstreamApi; model: VoiceModel; embeddings?: boolean },
) {
  const process: StandinProcess = {
    pid: options.pid,
    cid: options.cid ?? 1,
    api: options.api ?? 'deepfake',
    name: manifest.callId,
    meta: null,
    createdAt: 0,
    durationS: manifest.durationS,
    manifest,
    // the server keys a call's vectors by the sha256 of its bytes; the call id is as unique here
    callKey: manifest.callId,
    embeddings: options.embeddings ?? true,
    generatorDetection: false,
    outcome: 'complete',
    failureReason: null,
    pendingUntil: 0,
    doneAt: 0,
  };
  return resultsDocument(process, options.model, { spoiler: null });
}
