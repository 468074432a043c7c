import type { VoiceSettings } from '../config.ts';
import { calibrationStep } from '../voices/calibration-step.ts';
import { identityStep } from '../voices/identities/step.ts';
import type { AnalysisStep } from './runner.ts';

/** The voice settings' defaults (VOXTRACE_ENROL_MIN_SPEECH_S), for callers without a config. */
const DEFAULT_VOICE_SETTINGS: VoiceSettings = { enrolMinSpeechS: 8 };

/**
 * The analysis steps every stored recording goes through, in this order (docs/architecture.md).
 * A feature adds its step here, after the steps whose results it reads; `worker` and `start` run
 * the list, and start no runner while it is empty, so that events wait for the first step rather
 * than being marked done without one.
 * @example const steps = analysisSteps(config.voices);
 */
export function analysisSteps(voices: VoiceSettings = DEFAULT_VOICE_SETTINGS): AnalysisStep[] {
  return [identityStep(voices), calibrationStep()];
}
