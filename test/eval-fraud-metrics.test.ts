import { describe, expect, it } from 'vitest';
import type { CorpusCall, CorpusVoiceprint, Role } from '../src/eval/voices/corpus.ts';
import {
  identityTruth,
  type Listing,
  voiceReuseScores,
  watchlistComparisons,
} from '../src/eval/voices/fraud-metrics.ts';
import type { AlertRow } from '../src/eval/voices/queries.ts';
import type { LoadedVoiceprint } from '../src/eval/voices/replay.ts';

/**
 * The voice-reuse scorer: an alert is right when its identity is mostly one fraudster's (the
 * targets' reading); `byEvidence` judges the same alert by the voiceprints its evidence shows.
 */

const DAY = 86_400_000;

function voiceprint(id: string, role: Role, speakerId: string, vector: number[] = []): LoadedVoiceprint {
  const base: CorpusVoiceprint = {
    speakerLabel: 'speaker_0',
    speakerId,
    role,
    noisy: false,
    vector,
    speechSeconds: 20,
    utteranceCount: 3,
    meanPSpoofed: 0,
    enrol: null,
    watchlist: null,
  };
  return { ...base, id, recordingId: `rec-${id}`, callKey: `call-${id}` };
}

describe('voiceReuseScores', () => {
  // one identity holding a customer's 5 calls on one account and a fraudster's 3 calls on 3 accounts
  const customer = [1, 2, 3, 4, 5].map((n) => voiceprint(`c${n}`, 'customer', 'customer-1'));
  const fraud = [1, 2, 3].map((n) => voiceprint(`f${n}`, 'fraudster', 'fraudster-1'));
  const loaded = [...customer, ...fraud];
  const assignments = new Map(loaded.map((vp) => [vp.id, { identityId: 'mixed', kind: 'unknown' }]));
  const truth = identityTruth(loaded, assignments, new Map());
  const calls: CorpusCall[] = fraud.map((vp, n) => ({
    key: vp.callKey,
    accountRef: `victim-${n}`,
    callAt: new Date(Date.UTC(2026, 0, 1) + n * DAY),
    channel: 'ivr',
    voiceprints: [vp],
  }));
  const alert = (evidence: LoadedVoiceprint[]): AlertRow => ({
    id: 'a1',
    type: 'voice_reuse',
    status: 'open',
    identityId: 'mixed',
    recordingIds: evidence.map((vp) => vp.recordingId),
    accountRefs: ['victim-0', 'victim-1', 'victim-2'],
    evidence: evidence.map((vp) => ({ voiceprintId: vp.id, recordingId: vp.recordingId })),
  });
  const rule = { accounts: 3, days: 30 };

  it('counts an alert on a mostly-customer identity wrong, and right by its evidence when that is the fraudster', () => {
    const scores = voiceReuseScores({
      alerts: [alert([...fraud, customer[0] as LoadedVoiceprint])],
      truth,
      calls,
      loaded,
      rule,
    });
    expect(scores).toMatchObject({ truePositives: 0, precision: 0, reusingFraudsters: 1, found: 0, recall: 0 });
    expect(scores.byEvidence).toEqual({ truePositives: 1, precision: 1, found: 1, recall: 1 });
  });

  it('counts it wrong by its evidence too when the evidence is mostly the customer', () => {
    const scores = voiceReuseScores({
      alerts: [alert([fraud[0] as LoadedVoiceprint, ...customer])],
      truth,
      calls,
      loaded,
      rule,
    });
    expect(scores.byEvidence).toEqual({ truePositives: 0, precision: 0, found: 0, recall: 0 });
  });
});

describe('watchlistComparisons', () => {
  // the listed identity: the fraudster's seed and a customer's voiceprint that joined it
  const seed = voiceprint('seed', 'fraudster', 'fraudster-1', [1, 0, 0]);
  const joined = voiceprint('joined', 'customer', 'customer-1', [0, 1, 0]);
  const stored = [
    voiceprint('fraudAgain', 'fraudster', 'fraudster-1', [0.9, 0.1, 0]),
    voiceprint('customerAgain', 'customer', 'customer-1', [0.1, 0.9, 0]),
    voiceprint('stranger', 'customer', 'customer-2', [0.8, 0, 0.2]),
    voiceprint('farAway', 'customer', 'customer-3', [0, 0, 1]),
  ];
  const loaded = [seed, joined, ...stored];
  const assignments = new Map([
    ['seed', { identityId: 'listed', kind: 'fraudster' }],
    ['joined', { identityId: 'listed', kind: 'fraudster' }],
  ]);
  const listing: Listing = {
    speakerId: 'fraudster-1',
    path: 'online',
    voiceprintId: 'seed',
    recordingId: seed.recordingId,
    identityId: 'listed',
    refused: null,
    movedOut: null,
    lookBack: null,
  };

  it('compares every listed voiceprint with every stored one outside the identity, and tells the false matches apart', () => {
    const figures = watchlistComparisons({
      listings: [listing],
      truth: identityTruth(loaded, assignments, new Map()),
      loaded,
      minSimilarity: 0.9,
    });
    // 2 members × 4 stored voiceprints; the fraudster's own call is never false
    expect(figures).toMatchObject({ comparisons: 8, falseMatches: 2, otherVoice: 1, memberOwnVoice: 1 });
    expect(figures.falseMatchesPerComparison).toBe(0.25);
  });

  it('counts nothing false when nothing outside the fraudster reaches the threshold', () => {
    const figures = watchlistComparisons({
      listings: [listing],
      truth: identityTruth(loaded, assignments, new Map()),
      loaded,
      minSimilarity: 0.999,
    });
    expect(figures).toMatchObject({ comparisons: 8, falseMatches: 0 });
  });
});
