/**
 * Voice reuse (CONVENTIONS "Voices API"): one voice heard on at least `accounts` distinct accounts
 * among calls whose times lie within `days` of each other. Pure: the calls come from queries.ts.
 */

export type VoiceCall = {
  voiceprintId: string;
  recordingId: string;
  accountRef: string;
  /** the call's time (`call_at`, else when it was stored), ms since the epoch */
  at: number;
  similarity: number;
};

const DAY_MS = 86_400_000;

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
      for (let i = start; i < end; i++) chosen.add(i);
    }
    const leaving = first.accountRef;
    const left = (inWindow.get(leaving) ?? 1) - 1;
    if (left === 0) inWindow.delete(leaving);
    else inWindow.set(leaving, left);
  }
  return [...chosen].sort((a, b) => a - b).map((i) => sorted[i] as VoiceCall);
}
