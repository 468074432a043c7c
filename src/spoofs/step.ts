import type { AnalysisStep } from '../analysis/runner.ts';
import type { SpoofSettings } from '../config.ts';
import { spoofTimeline, storeCallVerdict } from './queries.ts';
import { judgeCall } from './verdict.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const SPOOF_VERDICT_STEP = 'spoofs.verdict';

/**
 * The analysis step that decides each stored recording's spoof verdict (verdict.ts) and stores it
 * with the figures it was decided on, in the step's transaction (a replay rewrites the same row).
 * @example const steps = [...voiceSteps, spoofVerdictStep(settings.spoofs)];
 */
export function spoofVerdictStep(settings: SpoofSettings): AnalysisStep {
  return {
    name: SPOOF_VERDICT_STEP,
    async run({ tx, event }) {
      const timeline = await spoofTimeline(tx, event.recordingId);
      await storeCallVerdict(tx, event.recordingId, judgeCall(timeline, settings));
    },
  };
}
