import { describe, expect, it } from 'vitest';
import { DEFAULT_SPOOF_SETTINGS } from '../src/config.ts';
import { type JudgedUtterance, judgeCall } from '../src/spoofs/verdict.ts';

/** The call verdict rule (docs/spoofs.md), on utterances laid out by hand. */

const utterance = (
  start: number,
  end: number,
  label: string | null,
  pSpoofed: number | null,
  nearMiss = false,
  speakerLabel = 'speaker_0',
): JudgedUtterance => ({ speakerLabel, start, end, label, pSpoofed, nearMiss });
const judge = (utterances: JudgedUtterance[]) => judgeCall(utterances, DEFAULT_SPOOF_SETTINGS);

describe('judgeCall', () => {
  it('says unknown when no utterance of at least 2 s carries a label', () => {
    expect(judge([])).toMatchObject({
      verdict: 'unknown',
      spoofedShare: null,
      peakPSpoofed: null,
      judgedUtterances: 0,
    });
    const short = judge([utterance(0, 1.9, 'spoofed', 0.9999), utterance(2, 10, null, null)]);
    expect(short).toMatchObject({ verdict: 'unknown', judgedUtterances: 0, spoofedSeconds: 0 });
  });

  it('says spoofed from half of the judged speech time on, weighing utterances by their length', () => {
    const call = judge([utterance(0, 6, 'spoofed', 0.9999), utterance(6, 10, 'bonafide', 0.0001)]);
    expect(call).toMatchObject({ verdict: 'spoofed', spoofedShare: 0.6, peakPSpoofed: 0.9999, judgedSeconds: 10 });
    expect(judge([utterance(0, 5, 'spoofed', 0.6), utterance(5, 10, 'bonafide', 0.01)]).verdict).toBe('spoofed');
    // two short spoofed utterances against one long genuine one: a share under one half
    const minority = judge([
      utterance(0, 2, 'spoofed', 0.9999),
      utterance(2, 4, 'spoofed', 0.9999),
      utterance(4, 20, 'bonafide', 0),
    ]);
    expect(minority).toMatchObject({ verdict: 'mixed', spoofedShare: 0.2 });
  });

  it('says spoofed when one speaker is mostly spoofed speech with a confident utterance: a cloned caller and a genuine agent', () => {
    const clone = [
      utterance(0, 5, 'spoofed', 0.9999, false, 'speaker_0'),
      utterance(5, 20, 'bonafide', 0.0001, false, 'speaker_1'),
      utterance(20, 25, 'spoofed', 0.9995, false, 'speaker_0'),
      utterance(25, 27, 'bonafide', 0.001, false, 'speaker_0'),
    ];
    expect(judge(clone).verdict).toBe('spoofed');
    expect(judge(clone).spoofedShare).toBeCloseTo(10 / 27, 5);
    // the same speaker share from unsure labels alone: the agent's genuine speech decides
    const unsure = clone.map((u) => (u.label === 'spoofed' ? { ...u, pSpoofed: 0.8 } : u));
    expect(judge(unsure).verdict).toBe('bonafide');
    // a speaker whose one judged utterance is a false alarm, however short the speaker's part
    const lone = [
      utterance(0, 30, 'bonafide', 0.0001, false, 'speaker_0'),
      utterance(30, 33, 'spoofed', 0.7, false, 'speaker_1'),
    ];
    expect(judge(lone).verdict).toBe('bonafide');
  });

  it('says mixed only with a confident spoofed utterance: a lone unsure false alarm leaves a call bonafide', () => {
    const sure = judge([utterance(0, 3, 'spoofed', 0.995), utterance(3, 30, 'bonafide', 0.0002)]);
    expect(sure.verdict).toBe('mixed');
    const unsure = judge([utterance(0, 3, 'spoofed', 0.7), utterance(3, 30, 'bonafide', 0.0002)]);
    expect(unsure).toMatchObject({ verdict: 'bonafide', spoofedShare: 0.1, peakPSpoofed: 0.7 });
  });

  it('says suspicious for a near miss in a call with no spoofed speech of its own, else bonafide', () => {
    const nearMiss = judge([utterance(0, 8, 'bonafide', 0.001, true), utterance(8, 20, 'bonafide', 0.0001)]);
    expect(nearMiss).toMatchObject({ verdict: 'suspicious', nearMisses: 1 });
    expect(judge([utterance(0, 8, 'bonafide', 0.001), utterance(8, 20, 'bonafide', 0.0001)])).toMatchObject({
      verdict: 'bonafide',
      spoofedShare: 0,
      peakPSpoofed: 0.001,
    });
  });

  it('skips utterances with no times or reversed ones, and follows the configured thresholds', () => {
    const odd: JudgedUtterance[] = [
      { speakerLabel: 'speaker_0', start: null, end: 5, label: 'spoofed', pSpoofed: 1, nearMiss: false },
      utterance(9, 4, 'spoofed', 1),
      utterance(0, 4, 'bonafide', 0.01),
    ];
    expect(judge(odd)).toMatchObject({ verdict: 'bonafide', judgedUtterances: 1 });
    const calls = [utterance(0, 3, 'spoofed', 0.95), utterance(3, 10, 'bonafide', 0)];
    expect(judge(calls).verdict).toBe('bonafide');
    expect(judgeCall(calls, { ...DEFAULT_SPOOF_SETTINGS, confidentP: 0.9 }).verdict).toBe('mixed');
    expect(judgeCall(calls, { ...DEFAULT_SPOOF_SETTINGS, spoofedShare: 0.3 }).verdict).toBe('spoofed');
    expect(judgeCall(calls, { ...DEFAULT_SPOOF_SETTINGS, minUtteranceS: 4 }).verdict).toBe('bonafide');
  });
});
