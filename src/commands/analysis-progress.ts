import type { DrainProgress } from '../analysis/drain.ts';
import type { PendingEventStates } from '../analysis/outbox.ts';

/**
 * Progress of a drain of the analysis backlog (`analyze`, `import`) for the person at the
 * terminal: nothing during the first `quietMs` (a short run just prints its summary), then one
 * plain line at most every `intervalMs`, e.g.
 * `analyze: 120 events done, 0 dead, 380 left (2 held by another runner, 1 waiting for a retry)`.
 * @example const progress = drainProgressLines('analyze', (line) => process.stderr.write(`${line}\n`));
 */
export function drainProgressLines(
  label: string,
  write: (line: string) => void,
  options: { quietMs?: number; intervalMs?: number; now?: () => number } = {},
): (progress: DrainProgress) => void {
  const now = options.now ?? Date.now;
  const started = now();
  const quietMs = options.quietMs ?? 2_000;
  const intervalMs = options.intervalMs ?? 2_000;
  let last = 0;
  return (progress) => {
    const at = now();
    if (at - started < quietMs || at - last < intervalMs) return;
    last = at;
    write(`${label}: ${progress.done} events done, ${progress.dead} dead, ${describeLeft(progress.left)}`);
  };
}

/** `3 left (2 held by another runner, 1 waiting for a retry)`; `0 left`. */
export function describeLeft(left: PendingEventStates): string {
  const parts = [
    left.held > 0 ? `${left.held} held by another runner` : null,
    left.retrying > 0 ? `${left.retrying} waiting for a retry` : null,
  ].filter(Boolean);
  return `${left.pending} left${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`;
}

/**
 * An AbortSignal that fires on the first SIGINT or SIGTERM while `fn` runs: a long drain stops,
 * releases what it holds, and still says what it did.
 */
export async function untilInterrupted<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
