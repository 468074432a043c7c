import fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  equalErrorRate,
  type GeneratorFigures,
  histogram,
  measureVoiceModel,
  summariseScores,
} from '../src/standin/voice-stats.ts';
import { createVoiceModel, familyName, randomStream, relativeOf } from '../src/standin/voices.ts';

/**
 * The generator's statistics are frozen: these tests measure them again and compare them with
 * bench/results/generator.json, so a retuning of src/standin/voices.ts fails here until
 * `node bench/generator.ts` records the new figures (and the diff is reviewed).
 */
const recordedFile = new URL('../bench/results/generator.json', import.meta.url);
const recorded = JSON.parse(fs.readFileSync(recordedFile, 'utf8')) as { figures: GeneratorFigures };
const population = { seed: 1, speakers: 1_000, callsPerSpeaker: 3 };

describe('voice model: determinism', () => {
  const utterance = { speakerId: 'alice', callKey: 'call-1', utteranceId: '3' };

  it('gives identical vectors and verdicts for the same inputs, from separate models', () => {
    const [a, b] = [createVoiceModel(7), createVoiceModel(7)];
    expect(a.speakerEmbedding('alice', 'call-1')).toEqual(b.speakerEmbedding('alice', 'call-1'));
    expect(a.speakerEmbedding('alice', 'call-1', { noisy: true, cloned: true })).toEqual(
      b.speakerEmbedding('alice', 'call-1', { noisy: true, cloned: true }),
    );
    for (const spoofFamily of [null, familyName(3)]) {
      expect(a.deepfakeEmbedding({ ...utterance, spoofFamily })).toEqual(
        b.deepfakeEmbedding({ ...utterance, spoofFamily }),
      );
      expect(a.verdict({ ...utterance, spoofFamily })).toEqual(b.verdict({ ...utterance, spoofFamily }));
    }
    expect(a.otherEmbedding('intermediate_features', 'call-1', '3')).toEqual(
      b.otherEmbedding('intermediate_features', 'call-1', '3'),
    );
  });

  it('does not depend on call order or on what the caches hold', () => {
    const first = createVoiceModel(1);
    const expected = ['alice', 'bob', 'carol'].map((id) => first.speakerEmbedding(id, `${id}-call`));
    const second = createVoiceModel(1);
    const reversed = ['carol', 'bob', 'alice'].map((id) => second.speakerEmbedding(id, `${id}-call`)).reverse();
    expect(reversed).toEqual(expected);
    // more speakers than the centroid cache keeps: alice's centroid is computed again
    for (let s = 0; s < 10_001; s++) second.speakerEmbedding(`filler-${s}`, 'call');
    expect(second.speakerEmbedding('alice', 'alice-call')).toEqual(expected[0]);
  });

  it('gives different vectors for different seeds, calls and conditions', () => {
    const [one, two] = [createVoiceModel(1), createVoiceModel(2)];
    expect(one.speakerEmbedding('alice', 'call-1')).not.toEqual(two.speakerEmbedding('alice', 'call-1'));
    expect(one.deepfakeEmbedding({ ...utterance, spoofFamily: null })).not.toEqual(
      two.deepfakeEmbedding({ ...utterance, spoofFamily: null }),
    );
    expect(one.speakerEmbedding('alice', 'call-1')).not.toEqual(one.speakerEmbedding('alice', 'call-2'));
    expect(one.speakerEmbedding('alice', 'call-1')).not.toEqual(
      one.speakerEmbedding('alice', 'call-1', { noisy: true }),
    );
    expect(createVoiceModel().seed).toBe(1);
  });

  it('keeps its random streams apart by every label', () => {
    expect(randomStream(1, 'a-b', 'c').uniform()).not.toBe(randomStream(1, 'a', 'b-c').uniform());
    const draws = Array.from({ length: 20_000 }, randomStream(1, 'gaussian').gaussian);
    const mean = draws.reduce((sum, x) => sum + x, 0) / draws.length;
    const variance = draws.reduce((sum, x) => sum + (x - mean) ** 2, 0) / draws.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(variance).toBeCloseTo(1, 1);
  });

  it('names spoof families canonically, every fourth a relative of the one before', () => {
    expect(familyName(0)).toBe('family-00');
    expect(familyName(12)).toBe('family-12');
    expect(() => familyName(-1)).toThrow(RangeError);
    expect(relativeOf('family-03')).toBe('family-02');
    expect(relativeOf('family-07')).toBe('family-06');
    expect(relativeOf('family-02')).toBeNull();
    expect(relativeOf('campaign-x')).toBeNull();
  });
});

describe('voice statistics: measuring functions', () => {
  it('finds the EER by a full ROC sweep, interpolating the crossing', () => {
    const separated = equalErrorRate(Float64Array.of(0.6, 0.7, 0.8), Float64Array.of(0.1, 0.2, 0.3));
    expect(separated.eer).toBe(0);
    expect(separated.threshold).toBeGreaterThan(0.3);
    expect(separated.threshold).toBeLessThanOrEqual(0.6);
    // one genuine pair of four below one impostor pair of four: FRR = FAR = 1/4
    const overlapping = equalErrorRate(Float64Array.of(0.2, 0.6, 0.7, 0.8), Float64Array.of(0.1, 0.3, 0.4, 0.65));
    expect(overlapping.eer).toBeCloseTo(0.25, 10);
    const identical = equalErrorRate(Float64Array.of(0.5, 0.5), Float64Array.of(0.5, 0.5));
    expect(identical.eer).toBeCloseTo(0.5, 10);
  });

  it('summarises scores by interpolated percentiles and counts them in bins', () => {
    const scores = Float64Array.from({ length: 101 }, (_, i) => i / 100);
    const summary = summariseScores(scores);
    expect(summary).toMatchObject({ count: 101, mean: 0.5, min: 0, p01: 0.01, p05: 0.05, p50: 0.5, p99: 0.99, max: 1 });
    const bins = histogram(Float64Array.of(-0.5, -0.2, 0.1, 0.99, 1));
    expect(bins).toMatchObject({ from: -0.2, to: 1, below: 1, above: 1 });
    expect(bins.counts).toHaveLength(20);
    expect(bins.counts[0]).toBe(1);
    expect(bins.counts[5]).toBe(1);
    expect(bins.counts[19]).toBe(1);
  });
});

describe('voice model: statistics, pinned to bench/results/generator.json', () => {
  let figures: GeneratorFigures;
  beforeAll(() => {
    figures = measureVoiceModel(population);
  });

  it('was recorded with the population this test measures', () => {
    const { seed, speakers, callsPerSpeaker } = recorded.figures;
    expect(
      { seed, speakers, callsPerSpeaker },
      'bench/results/generator.json must come from `node bench/generator.ts` with its defaults',
    ).toEqual(population);
  });

  it('matches every recorded figure (retuning the generator means re-recording them)', () => {
    // figures are rounded alike on both sides and deterministic: any difference is a change
    expect(differences(figures, recorded.figures, 1e-9)).toEqual([]);
    const pinned = (actual: number, expected: number) => expect(actual).toBeCloseTo(expected, 4);
    const { speaker, deepfake, verdicts } = recorded.figures;
    pinned(figures.speaker.normal.eer, speaker.normal.eer);
    pinned(figures.speaker.hard.eer, speaker.hard.eer);
    pinned(figures.speaker.normal.genuine.mean, speaker.normal.genuine.mean);
    pinned(figures.speaker.normal.impostor.mean, speaker.normal.impostor.mean);
    pinned(figures.deepfake.withinFamily.mean, deepfake.withinFamily.mean);
    pinned(figures.deepfake.relatives.mean, deepfake.relatives.mean);
    pinned(figures.deepfake.unrelated.mean, deepfake.unrelated.mean);
    pinned(figures.verdicts.missRate, verdicts.missRate);
    pinned(figures.verdicts.falseAlarmRate, verdicts.falseAlarmRate);
  });

  it('separates speakers like an ECAPA-style system: EER 1–2 %, hard cases worse', () => {
    const { normal, hard, clones } = figures.speaker;
    expect(normal.genuine.count).toBe(3_000);
    expect(normal.impostor.count).toBe(4_495_500);
    expect(normal.eer).toBeGreaterThanOrEqual(0.01);
    expect(normal.eer).toBeLessThanOrEqual(0.02);
    expect(hard.eer).toBeGreaterThan(2 * normal.eer);
    // same speaker typically 0.5–0.85, different speakers 0.01–0.35 with a positive mean
    expect(normal.genuine.mean).toBeGreaterThan(0.6);
    expect(normal.genuine.p05).toBeGreaterThan(0.45);
    expect(normal.genuine.p95).toBeLessThan(0.87);
    expect(normal.impostor.mean).toBeGreaterThan(0.1);
    expect(normal.impostor.p05).toBeGreaterThan(-0.02);
    expect(normal.impostor.p95).toBeLessThan(0.36);
    expect(hard.genuine.mean).toBeLessThan(normal.genuine.mean - 0.1);
    // a clone stays near its victim, a little further than the victim's own calls
    expect(clones.toVictim.mean).toBeLessThan(normal.genuine.mean);
    expect(clones.toVictim.mean).toBeGreaterThan(normal.genuine.mean - 0.1);
    expect(clones.acceptedAtNormalThreshold).toBeGreaterThan(0.9);
  });

  it('keeps raw speaker vectors at the observed norms and component range', () => {
    expect(figures.speaker.norms.min).toBeGreaterThanOrEqual(165);
    expect(figures.speaker.norms.max).toBeLessThanOrEqual(250);
    expect(figures.speaker.maxAbsComponent).toBeLessThanOrEqual(60);
  });

  it('makes spoof families tight, relatives closer than strangers, and bonafide speech spread', () => {
    const d = figures.deepfake;
    expect(d.norms.min).toBeGreaterThanOrEqual(5.8);
    expect(d.norms.max).toBeLessThanOrEqual(7.8);
    expect(d.withinFamilyMeans.min).toBeGreaterThanOrEqual(0.7);
    expect(d.withinFamilyMeans.max).toBeLessThanOrEqual(0.95);
    expect(d.relatives.p05).toBeGreaterThan(d.unrelated.p95 + 0.2);
    expect(d.relatives.mean).toBeLessThan(d.withinFamilyMeans.min - 0.1);
    expect(d.unrelated.mean).toBeLessThan(0.15);
    expect(d.bonafideDifferentSpeakers.mean).toBeLessThan(0.15);
    expect(d.bonafideSameSpeakerOtherCall.mean).toBeGreaterThan(d.bonafideDifferentSpeakers.mean);
    // utterances of one call: 0.25–0.97 observed
    expect(d.bonafideSameCall.p01).toBeGreaterThan(0.25);
    expect(d.bonafideSameCall.max).toBeLessThan(0.98);
    expect(d.nearestOtherCallSameFamily).toBeGreaterThan(0.95);
  });

  it('misses some spoofs and raises a few false alarms, more on noisy lines', () => {
    const v = figures.verdicts;
    expect(v.consistent).toBe(true);
    expect(v.missRate).toBeGreaterThanOrEqual(0.05);
    expect(v.missRate).toBeLessThanOrEqual(0.12);
    expect(v.missRateNoisy).toBeGreaterThan(v.missRate);
    expect(v.falseAlarmRate).toBeGreaterThanOrEqual(0.01);
    expect(v.falseAlarmRate).toBeLessThanOrEqual(0.02);
    expect(v.falseAlarmRateNoisy).toBeGreaterThan(v.falseAlarmRate);
    // relative families (variants tuned to evade) are missed more often
    const rate = (family: string) => v.missRateByFamily[family] as number;
    expect(rate('family-03')).toBeGreaterThan(rate('family-02'));
    expect(Math.max(...Object.values(v.missRateByFamily))).toBeGreaterThan(0.12);
    expect(v.medianPSpoofed.spoofed).toBeGreaterThan(0.99);
    expect(v.medianPSpoofed.bonafide).toBeLessThan(0.01);
  });
});

/** Paths where two JSON-like values differ (numbers by more than `tolerance`). */
function differences(actual: unknown, expected: unknown, tolerance: number, path = 'figures'): string[] {
  if (typeof actual === 'number' && typeof expected === 'number') {
    return Math.abs(actual - expected) <= tolerance ? [] : [`${path}: ${actual} (recorded ${expected})`];
  }
  if (actual && expected && typeof actual === 'object' && typeof expected === 'object') {
    const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
    return [...keys].flatMap((key) =>
      differences(
        (actual as Record<string, unknown>)[key],
        (expected as Record<string, unknown>)[key],
        tolerance,
        `${path}.${key}`,
      ),
    );
  }
  return actual === expected ? [] : [`${path}: ${JSON.stringify(actual)} (recorded ${JSON.stringify(expected)})`];
}
