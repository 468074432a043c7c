import { alertSubject, raiseAlerts } from '../../alerts/raise.ts';
import type { AnalysisStep } from '../../analysis/runner.ts';
import type { VoiceSettings } from '../../config.ts';
import type { AlertEvidence } from '../../db/schema.ts';
import { type Calibration, calibrationById, currentCalibration } from '../calibration.ts';
import { lockWatchlist, recordingMatches } from './queries.ts';
import { bestPerVoiceprint, hitEvidence } from './watchlist.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const WATCHLIST_STEP = 'voices.watchlist';

/** The calibration of this process's last check (any database: the check compares its id). */
let lastCalibration: Calibration | null = null;

/**
 * The analysis step that checks a stored recording against the watchlist, after identity
 * assignment (so that a voiceprint that joined a listed identity is a hit as a member): one
 * `watchlist_hit` per listed identity it matches, raised in the step's transaction, so a replayed
 * event raises nothing twice.
 * @example const steps = [identityStep(settings), watchlistStep(settings)];
 */
export function watchlistStep(settings: VoiceSettings): AnalysisStep {
  return {
    name: WATCHLIST_STEP,
    async run({ tx, event, log }) {
      await lockWatchlist(tx, 'shared');
      // the calibration the last check used, which the comparison confirms is still the newest (a
      // new one is drawn each time the voiceprints grow by half): one round trip, not two
      let calibration = lastCalibration ?? (await currentCalibration(tx));
      const threshold = () => calibration.similarityAtFar(settings.watchlistFar);
      let found = await recordingMatches(tx, event.recordingId, threshold());
      if (found.calibrationId !== calibration.id) {
        calibration = await calibrationById(tx, found.calibrationId);
        found = await recordingMatches(tx, event.recordingId, threshold());
      }
      lastCalibration = calibration;
      const matches = found.matches;
      const byIdentity = new Map<string, { accountRef: string | null; evidence: AlertEvidence[] }>();
      for (const m of matches) {
        const hit = byIdentity.get(m.identityId) ?? { accountRef: m.accountRef, evidence: [] };
        hit.evidence.push(hitEvidence(calibration, m.voiceprintId, m.recordingId, m.similarity, m.matchedVoiceprintId));
        byIdentity.set(m.identityId, hit);
      }
      const raised = await raiseAlerts(
        tx,
        [...byIdentity].map(([identityId, hit]) => ({
          type: 'watchlist_hit' as const,
          subject: alertSubject.watchlistHit(identityId, event.recordingId),
          identityId,
          recordingIds: [event.recordingId],
          accountRefs: hit.accountRef ? [hit.accountRef] : [],
          evidence: bestPerVoiceprint(hit.evidence),
        })),
      );
      if (raised.length > 0) log.info({ alerts: raised }, 'watchlist hits');
    },
  };
}
