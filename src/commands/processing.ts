import fs from 'node:fs';
import { type AnalysisStep, startAnalysis } from '../analysis/runner.ts';
import { analysisSteps } from '../analysis/steps.ts';
import type { Context } from '../context.ts';
import { startWorker, type WorkerOptions } from '../ingest/worker.ts';
import { spoolDirFor } from '../recordings/spool.ts';
import type { UpstreamClient } from '../upstream/client.ts';

/** What only the crash tests change: the worker's test switches, and steps of their own. */
export type ProcessingOverrides = { switches?: WorkerOptions['unsafe']; steps?: AnalysisStep[] };

/**
 * The background work of a `worker` or `start` process: the ingestion worker, and the analysis
 * runner over the outbox when any analysis step is registered (it is woken each time the worker
 * stores a recording). Stops in that order, each releasing its leases.
 * @example const processing = startProcessing(ctx, client); …; await processing.stop();
 */
export function startProcessing(ctx: Context, client: UpstreamClient, overrides: ProcessingOverrides = {}) {
  const { config, log, db } = ctx;
  const spoolDir = spoolDirFor(config.dataDir);
  fs.mkdirSync(spoolDir, { recursive: true });
  const steps = overrides.steps ?? analysisSteps(config.voices, config.spoofs);
  const analysis =
    steps.length > 0
      ? startAnalysis({
          db,
          log,
          steps,
          concurrency: config.worker.concurrency,
          leaseSeconds: config.worker.leaseSeconds,
          maxAttempts: config.worker.maxAttempts,
        })
      : null;
  const worker = startWorker({
    db,
    client,
    log,
    spoolDir,
    concurrency: config.worker.concurrency,
    leaseSeconds: config.worker.leaseSeconds,
    maxAttempts: config.worker.maxAttempts,
    keepAudio: config.keepAudio,
    onStored: analysis ? () => analysis.wake() : undefined,
    unsafe: overrides.switches,
  });
  return {
    owner: worker.owner,
    spoolDir,
    analysisSteps: steps.map((step) => step.name),
    async stop() {
      await worker.stop();
      await analysis?.stop();
    },
  };
}
