import { DAY_MS } from '../../time.ts';

/**
 * Voice reuse (CONVENTIONS "Voices API"): one voice heard on at least `accounts` distinct accounts
 * among calls whose times lie within `days` of each other — the same voice call to call: one call
 * of the window is the same voice (FAR ≤ SAME_VOICE_FAR) as a call on each of the other accounts.
 * An identity alone is not enough: one that has taken in two or three people's calls (each joined
 * its centroid, none another's call) is one voice on as many accounts only by that chain. Pure:
 * the calls come from queries.ts.
 */

export type VoiceCall = {
  voiceprintId: string;
  recordingId: string;
  accountRef: string;
  /** the call's time (`call_at`, else when it was stored), ms since the epoch */
  at: number;
  similarity: number;
  /** the voiceprints of the identity's other calls that are the same voice as this one */
  sameVoice: readonly string[];
};

/**
 * The calls that lie in some window of `days` holding at least `accounts` distinct accounts —
 * every such window, or only those containing the time `around` (a new call's) when given. Empty
 * when there is none. Two pointers over the calls in time order: O(n).
 * @example const triggering = reuseWindows(calls, { accounts: 3, days: 30 });
 */
export function reuseWindows(
  calls: readonly VoiceCall[],
  rule: { accounts: number; days: number },
  around?: number,
): VoiceCall[] {
  const sorted = [...calls].sort((a, b) => a.at - b.at || a.recordingId.localeCompare(b.recordingId));
  const width = rule.days * DAY_MS;
  const inWindow = new Map<string, number>();
  const chosen = new Set<number>();
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    const first = sorted[start] as VoiceCall;
    while (end < sorted.length && (sorted[end] as VoiceCall).at - first.at <= width) {
      const account = (sorted[end] as VoiceCall).accountRef;
      inWindow.set(account, (inWindow.get(account) ?? 0) + 1);
      end++;
    }
    const covers = around === undefined || (first.at <= around && around <= first.at + width);
    if (covers && inWindow.size >= rule.accounts) {
      for (const i of corroborated(sorted, start, end, rule.accounts)) chosen.add(i);
    }
    const leaving = first.accountRef;
    const left = (inWindow.get(leaving) ?? 1) - 1;
    if (left === 0) inWindow.delete(leaving);
    else inWindow.set(leaving, left);
  }
  return [...chosen].sort((a, b) => a - b).map((i) => sorted[i] as VoiceCall);
}

/**
 * The calls of the window [start, end) that show one voice on `accounts` accounts: the call that is
 * the same voice as calls on the most other accounts, with those calls; none when even that one
 * reaches fewer accounts.
 */
function corroborated(sorted: readonly VoiceCall[], start: number, end: number, accounts: number): number[] {
  let best: number[] = [];
  let bestAccounts = 0;
  for (let hub = start; hub < end; hub++) {
    const call = sorted[hub] as VoiceCall;
    const same = new Set(call.sameVoice);
    const linked = [hub];
    const reached = new Set([call.accountRef]);
    for (let other = start; other < end; other++) {
      const candidate = sorted[other] as VoiceCall;
      if (other === hub || !same.has(candidate.voiceprintId)) continue;
      linked.push(other);
      reached.add(candidate.accountRef);
    }
    if (reached.size > bestAccounts) {
      best = linked;
      bestAccounts = reached.size;
    }
  }
  return bestAccounts >= accounts ? best : [];
}
