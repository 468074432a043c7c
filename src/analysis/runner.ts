import type { Db } from '../db/client.ts';
import { type Lease, LeaseLostError, newLeaseOwner, releaseAllLeases } from '../db/lease.ts';
import { recordingEvents } from '../db/schema.ts';
import { withTransaction } from '../db/transaction.ts';
import { startJobLoop } from '../job-loop.ts';
import type { Logger } from '../log.ts';
import { jobRetryDelayMs } from '../retry.ts';
import {
  type AnalysisEvent,
  claimEvents,
  markEventDead,
  markEventDone,
  markStepDone,
  scheduleEventRetry,
} from './outbox.ts';

/**
 * One analysis step: what a feature does with every stored recording (assign its voiceprints to
 * identities, check them against the watchlist, place its spoofs in campaigns, score its risk).
 * Steps run in the order they are registered (src/analysis/steps.ts), one after the other for each
 * recording, so a later step sees what the earlier ones wrote.
 */
export type AnalysisStep = {
  /** Stable and unique: it is stored in `steps_done`, and a renamed step runs again on every event. */
  name: string;
  /**
   * Runs inside the transaction that records the step as done: its writes commit once, with that
   * record, or roll back with it and run again later. It may run more than once before one commits
   * (a failure, a crash), so it must not act outside the database: a webhook is an outbox row of its
   * own, sent by its own consumer.
   */
  run(input: { tx: Db; event: AnalysisEvent; log: Logger }): Promise<void>;
};

export type AnalysisOptions = {
  db: Db;
  log: Logger;
  steps: AnalysisStep[];
  /** Events analysed at once by this process. */
  concurrency: number;
  /** How long a claim holds an event between steps (a step in progress holds its row lock). */
  leaseSeconds: number;
  /** Failures of an event's steps before it is `dead`. */
  maxAttempts: number;
  /** How long an idle runner waits before looking for pending events again. */
  idleMs?: number;
  /** First retry delay after a failed step (doubling, full jitter, capped at 5 min). */
  retryBaseMs?: number;
  /** Only the events of these recordings (an `import` analysing what it stored); default: every event. */
  recordingIds?: readonly string[];
};

/**
 * The consumer of the outbox: claims pending `stored` events and runs every step that has not run
 * for each, in order, each in its own transaction with the record that it ran. Any number of
 * runners (worker processes, `start`) share the events through the claim's leases; a replayed event
 * (its runner died, or its lease ran out) skips the steps already committed.
 * @example
 * const analysis = startAnalysis({ db, log, steps, concurrency: 4, leaseSeconds: 60, maxAttempts: 8 });
 * await analysis.stop();
 */
export function startAnalysis(options: AnalysisOptions) {
  const owner = newLeaseOwner();
  const log = options.log.child({ analysis: owner });
  const names = options.steps.map((step) => step.name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) throw new Error(`two analysis steps are named "${duplicate}": step names must be unique`);
  const stats = { events: 0, steps: 0, retried: 0, dead: 0 };

  async function analyse(event: AnalysisEvent) {
    const lease: Lease = { id: event.id, owner };
    const elog = log.child({ eventId: event.id, recordingId: event.recordingId });
    let current = '';
    try {
      for (const step of options.steps) {
        if (event.stepsDone.includes(step.name)) continue;
        current = step.name;
        await withTransaction(options.db, async (tx) => {
          await markStepDone(tx, lease, step.name, options.leaseSeconds);
          await step.run({ tx, event, log: elog });
        });
        stats.steps++;
      }
      await markEventDone(options.db, lease);
      stats.events++;
    } catch (error) {
      await recordFailure(event, lease, current, error, elog).catch((failure) => {
        if (failure instanceof LeaseLostError) elog.warn('lease lost to another runner; leaving the event to it');
        else elog.error({ err: failure }, 'could not record a failed step');
      });
    }
  }

  async function recordFailure(event: AnalysisEvent, lease: Lease, step: string, error: unknown, elog: Logger) {
    if (error instanceof LeaseLostError) throw error;
    const message = `step ${step}: ${error instanceof Error ? error.message : String(error)}`;
    const attempts = event.attempts + 1;
    if (attempts >= options.maxAttempts) {
      elog.error({ err: error, attempts }, 'analysis step keeps failing: event dead');
      stats.dead++;
      return markEventDead(options.db, lease, { attempts, error: message });
    }
    const delayMs = jobRetryDelayMs(attempts, options.retryBaseMs);
    elog.warn({ err: error, attempts, delayMs }, 'analysis step failed; will retry');
    stats.retried++;
    await scheduleEventRetry(options.db, lease, { attempts, error: message, delayMs });
  }

  const loop = startJobLoop({
    concurrency: options.concurrency,
    idleMs: options.idleMs ?? 500,
    log,
    claim: (limit) =>
      claimEvents(options.db, {
        owner,
        limit,
        leaseSeconds: options.leaseSeconds,
        recordingIds: options.recordingIds,
      }),
    run: analyse,
  });

  return {
    owner,
    stats,
    /** Looks for pending events now (the worker calls this when it has stored a recording). */
    wake: loop.wake,
    /** Stops claiming, gives events in flight `graceMs` to finish, then releases what it still holds. */
    async stop(graceMs = 5_000) {
      await loop.stop(graceMs);
      await releaseAllLeases(options.db, recordingEvents, owner);
      log.info(stats, 'analysis stopped');
    },
  };
}
export type Analysis = ReturnType<typeof startAnalysis>;
