import { setTimeout as sleep } from 'node:timers/promises';
import { type PendingEventStates, pendingEventStates } from './outbox.ts';
import { type AnalysisOptions, startAnalysis } from './runner.ts';

export type DrainOptions = Omit<AnalysisOptions, 'idleMs'> & {
  /**
   * false: stop once no event is due for this runner (what other runners hold, and failed steps
   * waiting for their retry, are left). true: stop only when no event is pending at all, taking
   * over held events whose lease runs out and retrying failed steps as they come due.
   */
  wait: boolean;
  /** How often the backlog is looked at (and the runner looks for due events when idle). */
  pollMs?: number;
  /** Called after every look at the backlog, with what this run did so far. */
  onProgress?: (progress: DrainProgress) => void;
  /** Stops the drain early (SIGINT); what it holds is released, and the summary says what is left. */
  signal?: AbortSignal;
};

export type DrainProgress = { done: number; dead: number; left: PendingEventStates };

export type DrainSummary = DrainProgress & {
  steps: string[];
  /** Failed steps that were scheduled for another try during this run. */
  retried: number;
  interrupted: boolean;
};

/**
 * Runs the analysis steps over the pending events (all of them, or `recordingIds`' only) with a
 * runner of its own, until none is left for it, and says what it did. The runner shares events
 * with any other runner (a `worker`, `start`) through the claim's leases, so draining while they
 * run is safe; each step still commits once per event.
 * @example const summary = await drainAnalysis({ db, log, steps, concurrency: 4, leaseSeconds: 60, maxAttempts: 8, wait: true });
 */
export async function drainAnalysis(options: DrainOptions): Promise<DrainSummary> {
  const { wait, onProgress, signal, pollMs = 200, ...analysis } = options;
  const runner = startAnalysis({ ...analysis, idleMs: pollMs });
  const look = () => pendingEventStates(options.db, { owner: runner.owner, recordingIds: options.recordingIds });
  let interrupted = false;
  try {
    for (;;) {
      const left = await look();
      onProgress?.({ done: runner.stats.events, dead: runner.stats.dead, left });
      if (wait ? left.pending === 0 : left.due === 0) break;
      if (signal?.aborted || !(await pause(pollMs, signal))) {
        interrupted = true;
        break;
      }
    }
  } finally {
    await runner.stop();
  }
  // after stop: the events this runner held, if interrupted, are counted as what they are now
  const left = await look();
  return {
    steps: options.steps.map((step) => step.name),
    done: runner.stats.events,
    dead: runner.stats.dead,
    retried: runner.stats.retried,
    left,
    interrupted,
  };
}

/** Waits `ms`; false when `signal` aborted it. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch (error) {
    if ((error as Error).name === 'AbortError') return false;
    throw error;
  }
}
