import type { SpoofSettings } from '../config.ts';
import type { CallVerdict } from '../db/schema.ts';

/**
 * A call's spoof verdict from its utterances' upstream verdicts (docs/spoofs.md, "A call's
 * verdict"). Only utterances of at least `minUtteranceS` seconds are judged: the upstream's deepfake
 * model gives no embedding under ~2 s, and its labels on so little speech are mostly noise.
 *
 * - `unknown`: no judged utterance;
 * - `spoofed`: spoofed speech is at least `spoofedShare` of the judged speech time — of the call, or
 *   of one speaker's when the call holds a confident spoofed utterance (pSpoofed ≥ `confidentP`): a
 *   cloned caller answered by a genuine agent is a spoofed call, though half its speech is genuine;
 * - `mixed`: some spoofed speech, less than that, with a confident spoofed utterance — the
 *   upstream's false alarms on genuine speech are unsure (its misjudgements sit at 0.5–0.99) and
 *   alone neither make a call mixed nor one speaker's few utterances spoofed;
 * - `suspicious`: none of the above, but an utterance sits inside a known spoof cluster (a near miss);
 * - `bonafide`: otherwise.
 */

/** What the rule reads of an utterance: a timeline item (queries.ts) is one. */
export type JudgedUtterance = {
  speakerLabel: string | null;
  start: number | null;
  end: number | null;
  label: string | null;
  pSpoofed: number | null;
  nearMiss: boolean;
};

export type CallSpoofEvidence = {
  verdict: CallVerdict;
  /** spoofed speech time ÷ judged speech time; null when nothing was judged */
  spoofedShare: number | null;
  /** the highest pSpoofed among the judged utterances; null when none carries one */
  peakPSpoofed: number | null;
  judgedUtterances: number;
  judgedSeconds: number;
  spoofedSeconds: number;
  nearMisses: number;
};

/** @example const { verdict } = judgeCall(utterances, DEFAULT_SPOOF_SETTINGS); */
export function judgeCall(utterances: readonly JudgedUtterance[], rule: SpoofSettings): CallSpoofEvidence {
  let judgedUtterances = 0;
  let judgedSeconds = 0;
  let spoofedSeconds = 0;
  let peak: number | null = null;
  let confidentSpoof = false;
  let nearMisses = 0;
  const bySpeaker = new Map<string | null, { judged: number; spoofed: number }>();
  for (const u of utterances) {
    if (u.nearMiss) nearMisses++;
    const seconds = durationOf(u);
    if (seconds === null || seconds < rule.minUtteranceS) continue;
    if (u.label !== 'spoofed' && u.label !== 'bonafide') continue;
    judgedUtterances++;
    judgedSeconds += seconds;
    const speaker = bySpeaker.get(u.speakerLabel) ?? { judged: 0, spoofed: 0 };
    speaker.judged += seconds;
    bySpeaker.set(u.speakerLabel, speaker);
    if (u.pSpoofed !== null) peak = Math.max(peak ?? 0, u.pSpoofed);
    if (u.label === 'spoofed') {
      spoofedSeconds += seconds;
      speaker.spoofed += seconds;
      if (u.pSpoofed !== null && u.pSpoofed >= rule.confidentP) confidentSpoof = true;
    }
  }
  const spoofedShare = judgedSeconds > 0 ? spoofedSeconds / judgedSeconds : null;
  const speakerShare = Math.max(0, ...[...bySpeaker.values()].map((s) => s.spoofed / s.judged));
  const verdict: CallVerdict =
    spoofedShare === null
      ? 'unknown'
      : spoofedShare >= rule.spoofedShare || (confidentSpoof && speakerShare >= rule.spoofedShare)
        ? 'spoofed'
        : spoofedShare > 0 && confidentSpoof
          ? 'mixed'
          : nearMisses > 0
            ? 'suspicious'
            : 'bonafide';
  return {
    verdict,
    spoofedShare: spoofedShare === null ? null : round(spoofedShare),
    peakPSpoofed: peak,
    judgedUtterances,
    judgedSeconds: round(judgedSeconds),
    spoofedSeconds: round(spoofedSeconds),
    nearMisses,
  };
}

function durationOf(u: JudgedUtterance): number | null {
  if (u.start === null || u.end === null || !(u.end >= u.start)) return null;
  return u.end - u.start;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
