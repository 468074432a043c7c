/**
 * When voxtrace proposes a voice as a member of staff: an agent answers calls on many accounts, in
 * two-speaker calls (the agent and the caller), on the contact centre's channel, day after day. A
 * voice meets the rule when, among its calls in the STAFF_WINDOW_DAYS up to its latest one, it is
 * heard on at least STAFF_MIN_ACCOUNTS accounts, at least STAFF_TWO_SPEAKER_SHARE of those calls
 * have exactly two speakers, and at least STAFF_CHANNEL_SHARE of them are on one channel. A
 * fraudster working through victims' accounts reaches a few accounts in such a window (the
 * voice-reuse alert's concern), an agent dozens; the share rules keep a voice that calls the IVR
 * alone, or from every channel, out. A proposal is only that: an analyst confirms or rejects it.
 */

export const STAFF_WINDOW_DAYS = 30;
export const STAFF_MIN_ACCOUNTS = 10;
export const STAFF_TWO_SPEAKER_SHARE = 0.8;
export const STAFF_CHANNEL_SHARE = 0.8;

export type StaffCall = { recordingId: string; accountRef: string | null; channel: string | null; speakers: number };

export type StaffEvidence = {
  calls: number;
  accounts: number;
  twoSpeakerShare: number;
  channel: string | null;
  channelShare: number;
  windowDays: number;
};

/**
 * The figures of the rule over one voice's calls in the window, and whether they meet it.
 * @example const { proposed, evidence } = staffRule(calls);
 */
export function staffRule(calls: readonly StaffCall[]): { proposed: boolean; evidence: StaffEvidence } {
  const accounts = new Set(calls.flatMap((c) => (c.accountRef === null ? [] : [c.accountRef]))).size;
  const twoSpeaker = calls.filter((c) => c.speakers === 2).length;
  const byChannel = new Map<string | null, number>();
  for (const c of calls) byChannel.set(c.channel, (byChannel.get(c.channel) ?? 0) + 1);
  const [channel, onChannel] = [...byChannel].sort((a, b) => b[1] - a[1])[0] ?? [null, 0];
  const share = (n: number) => (calls.length === 0 ? 0 : Math.round((n / calls.length) * 1000) / 1000);
  const evidence: StaffEvidence = {
    calls: calls.length,
    accounts,
    twoSpeakerShare: share(twoSpeaker),
    channel,
    channelShare: share(onChannel),
    windowDays: STAFF_WINDOW_DAYS,
  };
  const proposed =
    accounts >= STAFF_MIN_ACCOUNTS &&
    evidence.twoSpeakerShare >= STAFF_TWO_SPEAKER_SHARE &&
    evidence.channelShare >= STAFF_CHANNEL_SHARE;
  return { proposed, evidence };
}
