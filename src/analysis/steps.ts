import { DEFAULT_SPOOF_SETTINGS, DEFAULT_VOICE_SETTINGS, type SpoofSettings, type VoiceSettings } from '../config.ts';
import { spoofClusterStep } from '../spoofs/clusters/step.ts';
import { spoofVerdictStep } from '../spoofs/step.ts';
import { calibrationStep } from '../voices/calibration-step.ts';
import { enrolCustomerStep } from '../voices/identities/enrol-customer.ts';
import { identityStep } from '../voices/identities/step.ts';
import { voiceReuseStep } from '../voices/reuse/step.ts';
import { staffProposalStep } from '../voices/staff/step.ts';
import { watchlistStep } from '../voices/watchlist/step.ts';
import type { AnalysisStep } from './runner.ts';

/**
 * The analysis steps every stored recording goes through, in this order (docs/architecture.md).
 * A feature adds its step here, after the steps whose results it reads; `worker` and `start` run
 * the list, and start no runner while it is empty, so that events wait for the first step rather
 * than being marked done without one.
 * @example const steps = analysisSteps(config.voices, config.spoofs);
 */
export function analysisSteps(
  voices: VoiceSettings = DEFAULT_VOICE_SETTINGS,
  spoofs: SpoofSettings = DEFAULT_SPOOF_SETTINGS,
): AnalysisStep[] {
  return [
    identityStep(voices),
    staffProposalStep(),
    enrolCustomerStep(voices),
    watchlistStep(voices),
    voiceReuseStep(voices),
    spoofClusterStep(spoofs),
    spoofVerdictStep(spoofs),
    calibrationStep(),
  ];
}
