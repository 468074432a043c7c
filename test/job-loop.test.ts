import { describe, expect, it } from 'vitest';
import { startJobLoop } from '../src/job-loop.ts';
import { createLogger } from '../src/log.ts';
import { until } from './support/until.ts';

/** The job loop's wake-ups (the worker's `onStored` wakes the analysis runner this way). */

describe('startJobLoop', () => {
  it('keeps a wake-up that arrives while it is claiming: the job it announces runs at once, not after idleMs', async () => {
    const ran: string[] = [];
    let claims = 0;
    let releaseFirstClaim: () => void = () => {};
    const firstClaimStarted = new Promise<void>((started) => {
      releaseFirstClaim = started;
    });
    let finishFirstClaim: (jobs: { id: string }[]) => void = () => {};
    const loop = startJobLoop<{ id: string }>({
      concurrency: 1,
      idleMs: 60_000,
      log: createLogger('silent'),
      claim: async () => {
        claims++;
        if (claims === 1) {
          // the first claim looks before the job is committed, and answers nothing
          releaseFirstClaim();
          return new Promise((resolve) => {
            finishFirstClaim = resolve;
          });
        }
        return claims === 2 ? [{ id: 'job-1' }] : [];
      },
      run: async (job) => {
        ran.push(job.id);
      },
    });
    try {
      await firstClaimStarted;
      loop.wake();
      finishFirstClaim([]);
      await until('the announced job ran', () => ran.length === 1, 2_000);
      expect(ran).toEqual(['job-1']);
    } finally {
      await loop.stop(1_000);
    }
  });
});
