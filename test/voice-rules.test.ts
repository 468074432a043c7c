import { describe, expect, it } from 'vitest';
import { mergeEvidence } from '../src/alerts/raise.ts';
import { reuseWindows, type VoiceCall } from '../src/voices/reuse/windows.ts';
import { STAFF_MIN_ACCOUNTS, staffRule } from '../src/voices/staff/rule.ts';

const DAY = 86_400_000;
const call = (day: number, accountRef: string, id = `${accountRef}@${day}`): VoiceCall => ({
  voiceprintId: `v-${id}`,
  recordingId: `r-${id}`,
  accountRef,
  at: day * DAY,
  similarity: 0.9,
  sameVoice: [],
});
/** Calls of one voice: each the same voice as every other. */
const oneVoice = (calls: VoiceCall[]): VoiceCall[] =>
  calls.map((c) => ({ ...c, sameVoice: calls.filter((o) => o !== c).map((o) => o.voiceprintId) }));
const rule = { accounts: 3, days: 30 };
const ids = (calls: VoiceCall[]) => calls.map((c) => c.recordingId);
const windows = (calls: VoiceCall[], around?: number) => reuseWindows(oneVoice(calls), rule, around);

describe('reuseWindows', () => {
  it('finds 3 accounts within 30 days, and only the calls of such windows', () => {
    const calls = [call(0, 'a'), call(100, 'x'), call(110, 'b'), call(120, 'c'), call(125, 'b')];
    expect(ids(windows(calls))).toEqual(['r-x@100', 'r-b@110', 'r-c@120', 'r-b@125']);
  });

  it('counts accounts, not calls: one account called often is no reuse', () => {
    const calls = Array.from({ length: 20 }, (_, i) => call(i, 'a'));
    expect(windows(calls)).toEqual([]);
    expect(windows([...calls, call(5, 'b')])).toEqual([]);
  });

  it('takes exactly 30 days as within, and 30 days and a moment as not', () => {
    expect(windows([call(0, 'a'), call(15, 'b'), call(30, 'c')])).toHaveLength(3);
    const late = { ...call(30, 'c'), at: 30 * DAY + 1 };
    expect(windows([call(0, 'a'), call(15, 'b'), late])).toEqual([]);
  });

  it('needs one call that is the same voice as a call on each other account, not a chain through the identity', () => {
    const [a, b, c] = [call(0, 'a'), call(5, 'b'), call(10, 'c')] as [VoiceCall, VoiceCall, VoiceCall];
    // a is b's voice and b is c's, but a is not c's: three people the identity chained together
    const chain = [
      { ...a, sameVoice: [b.voiceprintId] },
      { ...b, sameVoice: [a.voiceprintId, c.voiceprintId] },
      { ...c, sameVoice: [b.voiceprintId] },
    ];
    // b is the same voice as a call on each of the others: one voice on 3 accounts
    expect(ids(reuseWindows(chain, rule))).toEqual(['r-a@0', 'r-b@5', 'r-c@10']);
    const pairs = [{ ...a, sameVoice: [b.voiceprintId] }, { ...b, sameVoice: [a.voiceprintId] }, c];
    expect(reuseWindows(pairs, rule)).toEqual([]);
    // the alert shows the call that links them and the calls it links, not the window's others
    const d = { ...call(7, 'a', 'a-noisy'), sameVoice: [] };
    const hub = { ...call(3, 'd'), sameVoice: [a.voiceprintId, b.voiceprintId, c.voiceprintId] };
    expect(ids(reuseWindows([a, b, c, d, hub], rule))).toEqual(['r-a@0', 'r-d@3', 'r-b@5', 'r-c@10']);
  });

  it('with `around`, only windows holding that time', () => {
    const calls = [call(0, 'a'), call(10, 'b'), call(20, 'c'), call(200, 'd')];
    expect(windows(calls, 200 * DAY)).toEqual([]);
    expect(ids(windows(calls, 20 * DAY))).toEqual(['r-a@0', 'r-b@10', 'r-c@20']);
  });
});

describe('staffRule', () => {
  const calls = (n: number, overrides: Partial<{ speakers: number; channel: string | null; accounts: number }> = {}) =>
    Array.from({ length: n }, (_, i) => ({
      recordingId: `r${i}`,
      accountRef: `acc-${i % (overrides.accounts ?? n)}`,
      channel: overrides.channel === undefined ? 'contact-centre' : overrides.channel,
      speakers: overrides.speakers ?? 2,
    }));

  it('proposes a two-speaker voice on many accounts on one channel', () => {
    const { proposed, evidence } = staffRule(calls(STAFF_MIN_ACCOUNTS));
    expect(proposed).toBe(true);
    expect(evidence).toMatchObject({
      accounts: STAFF_MIN_ACCOUNTS,
      twoSpeakerShare: 1,
      channel: 'contact-centre',
      channelShare: 1,
    });
  });

  it('does not propose too few accounts, lone callers, or a voice on every channel', () => {
    expect(staffRule(calls(30, { accounts: STAFF_MIN_ACCOUNTS - 1 })).proposed).toBe(false);
    expect(staffRule(calls(30, { speakers: 1 })).proposed).toBe(false);
    const spread = calls(30).map((c, i) => ({ ...c, channel: ['ivr', 'app', 'contact-centre'][i % 3] as string }));
    expect(staffRule(spread).proposed).toBe(false);
    expect(staffRule([]).proposed).toBe(false);
  });
});

describe('mergeEvidence', () => {
  it('keeps one item per recording and voiceprint, the closer match, and counts what is new', () => {
    const a = { recordingId: 'r1', voiceprintId: 'v1', similarity: 0.7 };
    const b = { recordingId: 'r2', voiceprintId: 'v2', similarity: 0.8 };
    expect(mergeEvidence([a], [{ ...a, similarity: 0.9 }, b])).toEqual({
      merged: [{ ...a, similarity: 0.9 }, b],
      added: 1,
    });
    expect(mergeEvidence([a, b], [a])).toEqual({ merged: [a, b], added: 0 });
  });
});
