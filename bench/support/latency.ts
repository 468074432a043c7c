/** Nearest-rank percentile of ascending-sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export const round3 = (n: number) => Math.round(n * 1000) / 1000;

/** p50, p99, mean and max of latencies in milliseconds. */
export function latencySummary(ms: readonly number[]) {
  const sorted = [...ms].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length);
  return {
    p50Ms: round3(percentile(sorted, 50)),
    p99Ms: round3(percentile(sorted, 99)),
    meanMs: round3(mean),
    maxMs: round3(sorted.at(-1) ?? Number.NaN),
  };
}
