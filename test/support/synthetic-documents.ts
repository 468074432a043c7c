/**
 * A small seeded generator of Deepfake API results documents, shaped like the real ones (string
 * times and posteriors, the speaker vector on each speaker's first diarization item only, no
 * features/deepfake under 2 s). Enough for storage tests and the import benchmark; it makes no
 * claim about realistic voice statistics.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

export function randomVector(random: () => number, dimensions: number, norm: number): number[] {
  const v = Array.from({ length: dimensions }, () => gaussian(random));
  const length = Math.hypot(...v);
  return v.map((x) => (x / length) * norm);
}

const serialize = (v: number[]) => `[${v.map((x) => Number(x.toPrecision(8))).join(', ')}]`;

export type SyntheticDocumentOptions = {
  seed: number;
  pid?: number;
  cid?: number;
  speakers?: number;
  utterances?: number;
};

export function syntheticDeepfakeDocument(options: SyntheticDocumentOptions) {
  const random = seededRandom(options.seed);
  const speakers = options.speakers ?? 2;
  const count = options.utterances ?? 10;
  const results: Record<string, unknown>[] = [];
  const seen = new Set<number>();
  let t = 0.2 + random();
  for (let i = 0; i < count; i++) {
    // every fifth utterance is short: no features, no deepfake verdict
    const duration = i % 5 === 4 ? 0.5 + random() : 2 + random() * 8;
    const speaker = i % speakers;
    const item = (task: string, prediction: unknown[], finalLabel: string | null, embedding: string | null) => ({
      id: String(i),
      startTime: t.toFixed(3),
      endTime: (t + duration).toFixed(3),
      task,
      prediction,
      finalLabel,
      level: 'utterance',
      embedding,
    });
    const p = (label: string | null, posterior: string | null) => ({ label, posterior, dominantInSegments: [] });
    const label = `SPEAKER_${String(speaker).padStart(2, '0')}`;
    results.push(item('asr', [p(` utterance ${i}`, null)], ` utterance ${i}`, null));
    results.push(
      item(
        'diarization',
        [p(label, null)],
        label,
        seen.has(speaker) ? null : serialize(randomVector(random, 192, 165 + random() * 85)),
      ),
    );
    seen.add(speaker);
    results.push(item('language', [p('en', '0.98'), p('es', '0.01')], 'en', null));
    if (duration >= 2) {
      results.push(item('features', [p(null, null)], null, serialize(randomVector(random, 768, 5.8 + random() * 2))));
      const spoofed = random() < 0.2;
      const ps = spoofed ? 0.9 + random() * 0.0999 : random() * 0.01;
      results.push(
        item(
          'deepfake',
          [p('bonafide', (1 - ps).toPrecision(4)), p('spoofed', ps.toPrecision(4))],
          spoofed ? 'spoofed' : 'bonafide',
          null,
        ),
      );
    }
    t += duration + 0.3 + random();
  }
  return {
    pid: options.pid ?? options.seed,
    cid: options.cid ?? 1234,
    code: 2,
    message: 'Processing Complete',
    results,
  };
}
