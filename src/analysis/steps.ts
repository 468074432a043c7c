import type { AnalysisStep } from './runner.ts';

/**
 * The analysis steps every stored recording goes through, in this order (docs/architecture.md).
 * A feature adds its step here, after the steps whose results it reads; `worker` and `start` run
 * the list, and start no runner while it is empty, so that events wait for the first step rather
 * than being marked done without one.
 */
export function analysisSteps(): AnalysisStep[] {
  return [];
}
