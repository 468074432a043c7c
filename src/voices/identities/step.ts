import type { AnalysisStep } from '../../analysis/runner.ts';
import type { VoiceSettings } from '../../config.ts';
import { type AssignmentOutcome, assignVoiceprint } from './assign.ts';
import { lockIdentityAssignment, pointsById, recordingPoints } from './clustering-queries.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const IDENTITY_STEP = 'voices.identity';

/**
 * The analysis step that places every voiceprint of a stored recording in an identity, or leaves
 * it unassigned until enough close neighbours exist (assign.ts). It takes the assignment lock first,
 * so that concurrent workers take turns; the other voiceprints of the same recording are never
 * neighbours of each other (two speakers of one call are two people).
 * @example const steps = [identityStep(DEFAULT_VOICE_SETTINGS)];
 */
export function identityStep(settings: VoiceSettings): AnalysisStep {
  return {
    name: IDENTITY_STEP,
    async run({ tx, event, log }) {
      await lockIdentityAssignment(tx);
      const outcomes: Partial<Record<AssignmentOutcome, number>> = {};
      for (const listed of await recordingPoints(tx, event.recordingId)) {
        // read again once a group has grown: it may have taken this one along as a border point of
        // another recording's core
        const grown = (outcomes.seeded ?? 0) + (outcomes.extended ?? 0) + (outcomes.border ?? 0) > 0;
        const [point] = grown ? await pointsById(tx, [listed.id]) : [listed];
        if (!point) continue;
        const outcome = await assignVoiceprint(tx, settings, point);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
      log.debug({ outcomes }, 'voiceprints assigned to identities');
    },
  };
}
