import type { Logger } from './log.ts';

export type JobLoop = {
  /** Jobs being run right now. */
  readonly inFlight: number;
  /** Looks for due jobs now instead of at the end of the idle wait. */
  wake(): void;
  /**
   * Stops claiming and waits up to `graceMs` for the jobs in flight. Resolves then even if some are
   * still running: the caller releases their leases, which is safe (see each job's repository).
   */
  stop(graceMs: number): Promise<void>;
};

/**
 * The loop of a worker over a leased job table (the ingestion worker, the analysis runner): keeps up
 * to `concurrency` jobs in flight, claims as many as there are free slots, waits `idleMs` when
 * nothing was due or every slot is busy, and looks again as soon as a job ends. `run` handles its
 * own errors; one that escapes is logged, never fatal to the loop.
 * @example const loop = startJobLoop({ concurrency: 4, idleMs: 500, log, claim: (n) => claimRecordings(db, …), run: runStep });
 */
export function startJobLoop<J extends { id: string }>(options: {
  concurrency: number;
  idleMs: number;
  log: Logger;
  claim: (limit: number) => Promise<J[]>;
  run: (job: J) => Promise<void>;
  /** Runs once before the first claim (housekeeping); a failure is logged. */
  beforeFirstClaim?: () => Promise<void>;
}): JobLoop {
  const inFlight = new Map<string, Promise<void>>();
  let stopping = false;
  // a wake-up that comes while the loop is claiming (not waiting) is remembered, not lost: the claim
  // may have looked before the job it announces was committed, and the wait would then be idleMs
  let wokenSinceClaim = false;
  const remember = () => {
    wokenSinceClaim = true;
  };
  let wake: () => void = remember;

  async function loop() {
    await options.beforeFirstClaim?.().catch((error) => options.log.warn({ err: error }, 'housekeeping failed'));
    while (!stopping) {
      wokenSinceClaim = false;
      const free = options.concurrency - inFlight.size;
      let claimed: J[] = [];
      if (free > 0) {
        try {
          claimed = await options.claim(free);
        } catch (error) {
          options.log.error({ err: error }, 'claim failed; retrying');
        }
      }
      for (const job of claimed) {
        const running = options
          .run(job)
          .catch((error) => options.log.error({ err: error, id: job.id }, 'job failed unexpectedly'))
          .finally(() => {
            inFlight.delete(job.id);
            wake();
          });
        inFlight.set(job.id, running);
      }
      if ((claimed.length === 0 || inFlight.size >= options.concurrency) && !wokenSinceClaim && !stopping) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.idleMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = remember;
      }
    }
  }

  const running = loop();
  return {
    get inFlight() {
      return inFlight.size;
    },
    wake: () => wake(),
    async stop(graceMs) {
      stopping = true;
      wake();
      await running;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(inFlight.values()),
        new Promise((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}
