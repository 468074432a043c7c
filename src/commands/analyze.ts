import type { Command } from 'commander';
import { drainAnalysis } from '../analysis/drain.ts';
import { countAnalysisBacklog } from '../analysis/outbox.ts';
import type { AnalysisStep } from '../analysis/runner.ts';
import { analysisSteps } from '../analysis/steps.ts';
import { describeLeft, drainProgressLines, untilInterrupted } from './analysis-progress.ts';
import { err, out, withContext } from './support.ts';

/** What only tests change: steps of their own instead of the registered ones (test/support/steps-cli.ts). */
export type AnalysisOverrides = { steps?: AnalysisStep[] };

/** What `analyze --json` prints: this run's work, and the backlog it leaves. */
export type AnalyzeSummary = {
  steps: string[];
  /** Events whose every step ran in this run. */
  done: number;
  /** Events this run gave up on (a step kept failing). */
  dead: number;
  /** Failed steps scheduled for another try in this run. */
  retried: number;
  /** Pending events left; `held` of them by another runner's live lease, `retrying` waiting for a retry. */
  left: number;
  held: number;
  retrying: number;
  /** The whole outbox afterwards: pending events, and dead ones (this run's and earlier). */
  backlog: { pending: number; dead: number };
  interrupted: boolean;
};

export function registerAnalyze(program: Command, overrides: AnalysisOverrides = {}) {
  program
    .command('analyze')
    .description(
      'run the analysis steps over the stored recordings waiting for them (the analysis backlog), then exit ' +
        'saying what was done (exit 1 when an event ended dead)',
    )
    .option(
      '--wait',
      'also wait for events another runner holds (taking them over when its lease runs out) and for failed steps ' +
        'waiting for their retry, until the backlog is 0',
    )
    .option('--json', 'the summary as one JSON object on stdout')
    .action(async (opts: { wait?: boolean; json?: boolean }) => {
      const summary = await withContext(async (ctx) => {
        const steps = overrides.steps ?? analysisSteps(ctx.config.voices, ctx.config.spoofs);
        if (steps.length === 0) return { ...noSteps(), backlog: await countAnalysisBacklog(ctx.db) };
        const drained = await untilInterrupted((signal) =>
          drainAnalysis({
            db: ctx.db,
            log: ctx.log,
            steps,
            concurrency: ctx.config.worker.concurrency,
            leaseSeconds: ctx.config.worker.leaseSeconds,
            maxAttempts: ctx.config.worker.maxAttempts,
            wait: Boolean(opts.wait),
            onProgress: drainProgressLines('analyze', err),
            signal,
          }),
        );
        const { left, ...rest } = drained;
        return {
          ...rest,
          left: left.pending,
          held: left.held,
          retrying: left.retrying,
          backlog: await countAnalysisBacklog(ctx.db),
        };
      });
      if (opts.json) out(JSON.stringify(summary));
      else for (const line of formatAnalyzeSummary(summary, Boolean(opts.wait))) out(line);
      if (summary.interrupted) process.exitCode = 130;
      else if (summary.dead > 0) process.exitCode = 1;
    });
}

function noSteps(): Omit<AnalyzeSummary, 'backlog'> {
  return { steps: [], done: 0, dead: 0, retried: 0, left: 0, held: 0, retrying: 0, interrupted: false };
}

/** The summary for the person at the terminal. */
export function formatAnalyzeSummary(summary: AnalyzeSummary, wait: boolean): string[] {
  if (summary.steps.length === 0) {
    return [
      `analyze: no analysis step is registered; nothing was run ` +
        `(${summary.backlog.pending} events wait for the first step)`,
    ];
  }
  const left = describeLeft({
    pending: summary.left,
    held: summary.held,
    retrying: summary.retrying,
    due: summary.left - summary.held - summary.retrying,
  });
  const lines = [
    `analyze: ${summary.done} events done, ${summary.dead} dead, ${left}${summary.interrupted ? ', interrupted' : ''} ` +
      `(steps: ${summary.steps.join(', ')})`,
  ];
  if (summary.left > 0 && !wait && !summary.interrupted) lines.push('analyze: --wait waits for the events left');
  if (summary.backlog.dead > 0) {
    lines.push(`analyze: ${summary.backlog.dead} dead events in all (a step kept failing; its error is on the event)`);
  }
  return lines;
}
