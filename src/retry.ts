import { setTimeout as sleep } from 'node:timers/promises';

/** How often and how patiently to try again. */
export type RetryPolicy = { maxAttempts: number; baseDelayMs: number; maxDelayMs: number };

/**
 * The wait before try `attempt + 1`: full-jitter exponential backoff (a random share of
 * `baseDelayMs × 2^(attempt-1)`, capped at `maxDelayMs`), so that clients that failed together do
 * not retry together; never shorter than a server's Retry-After, and never longer than the cap.
 * @example const delayMs = backoffDelay({ baseDelayMs: 250, maxDelayMs: 30_000 }, attempt, retryAfterMs);
 */
export function backoffDelay(
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  attempt: number,
  retryAfterMs: number | null = null,
): number {
  const backoff = Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.min(policy.maxDelayMs, Math.max(backoff, retryAfterMs ?? 0));
}

/** What one try came to: a result, or a failure that another try may mend. */
export type TryOutcome<T> =
  | { done: T }
  | {
      /** Why this try failed, for the log and `onRetry`. */
      failed: string;
      retryAfterMs?: number | null;
      /** What the caller gets when no try is left: the last answer, or an error thrown. */
      giveUp: () => T;
    };

/**
 * Runs `attempt(1)`, `attempt(2)`, … until one is done or `policy.maxAttempts` have failed, waiting
 * `backoffDelay` between them. A try that must not be repeated answers `done` (a value, or throws).
 * @example
 * const answer = await withRetries(policy, async () => {
 *   const response = await send();
 *   return response.status < 500 ? { done: response } : { failed: `HTTP ${response.status}`, giveUp: () => response };
 * });
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  attempt: (n: number) => Promise<TryOutcome<T>>,
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void,
): Promise<T> {
  for (let n = 1; ; n++) {
    const outcome = await attempt(n);
    if ('done' in outcome) return outcome.done;
    if (n >= policy.maxAttempts) return outcome.giveUp();
    const delayMs = backoffDelay(policy, n, outcome.retryAfterMs);
    onRetry?.({ attempt: n, delayMs, reason: outcome.failed });
    await sleep(delayMs);
  }
}

/** A job's first retry waits up to this long (full jitter), doubling after each failure. */
export const JOB_RETRY_BASE_MS = 1_000;
const JOB_RETRY_MAX_MS = 5 * 60_000;

/**
 * How long a leased job (a recording, an analysis event) waits before try `attempts + 1`: full
 * jitter from `baseMs`, doubling per attempt, capped at 5 minutes; whole milliseconds.
 * @example await scheduleRetry(db, lease, { attempts, error, delayMs: jobRetryDelayMs(attempts) });
 */
export function jobRetryDelayMs(attempts: number, baseMs = JOB_RETRY_BASE_MS): number {
  return Math.round(backoffDelay({ baseDelayMs: baseMs, maxDelayMs: JOB_RETRY_MAX_MS }, attempts));
}
