import type { Command } from 'commander';
import { type Config, loadConfig } from '../config.ts';
import { createContext } from '../context.ts';
import { upstreamClientFromConfig } from '../upstream/from-config.ts';
import { type ProcessingOverrides, startProcessing } from './processing.ts';
import { exitNow, out, untilSignal } from './support.ts';

export function registerWorker(program: Command) {
  program
    .command('worker')
    .description(
      'run an ingestion worker: submits queued recordings upstream, stores their results and analyses them (any number may run)',
    )
    .action(() => runWorkerProcess(loadConfig()));
}

/**
 * The `worker` command: the worker (and the analysis runner) until SIGINT or SIGTERM, then a clean
 * exit with every lease released. `overrides` (test switches, test steps) are passed only by the
 * crash tests' own entry point, test/support/worker-process.ts.
 */
export async function runWorkerProcess(config: Config, overrides: ProcessingOverrides = {}): Promise<never> {
  const ctx = await createContext(config);
  try {
    const client = upstreamClientFromConfig(config, ctx.log);
    const processing = startProcessing(ctx, client, overrides);
    out(
      `voxtrace worker ${processing.owner}: ${config.worker.concurrency} recordings in flight, database: ${ctx.database.description}`,
    );
    await untilSignal(ctx.log);
    await processing.stop();
    await client.destroy();
  } finally {
    await ctx.close();
  }
  exitNow();
}
