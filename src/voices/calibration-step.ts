import type { AnalysisStep } from '../analysis/runner.ts';
import { refreshCalibrationIfStale } from './calibration.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const CALIBRATION_STEP = 'voices.calibration';

/**
 * Keeps the impostor cohort in step with the data: after the identities of a new recording are
 * settled, draws a new cohort when none exists or the voiceprints have grown by half since the last
 * (calibration.ts, REFRESH_GROWTH) — a few times over a database's life, each under a second at the
 * cohort's 2,000 voiceprints; every other event costs two small reads.
 * @example const steps = [identityStep(settings), calibrationStep()];
 */
export function calibrationStep(): AnalysisStep {
  return {
    name: CALIBRATION_STEP,
    async run({ tx, log }) {
      if (await refreshCalibrationIfStale(tx)) log.info('impostor cohort redrawn: voice scores follow the grown data');
    },
  };
}
