import { alertSubject, raiseAlerts } from '../../alerts/raise.ts';
import type { AnalysisStep } from '../../analysis/runner.ts';
import type { VoiceSettings } from '../../config.ts';
import type { AlertEvidence } from '../../db/schema.ts';
import { calibrationById, scoreOf } from '../calibration.ts';
import { checkState, lockWatchlist, recordingMatches } from './queries.ts';
import { bestPerVoiceprint } from './watchlist.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const WATCHLIST_STEP = 'voices.watchlist';

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
      const state = await checkState(tx);
      if (!state.anyLive) return;
      const calibration = await calibrationById(tx, state.calibrationId);
      const minSimilarity = calibration.similarityAtFar(settings.watchlistFar);
      const matches = await recordingMatches(tx, event.recordingId, minSimilarity);
      const byIdentity = new Map<string, { accountRef: string | null; evidence: AlertEvidence[] }>();
      for (const m of matches) {
        const hit = byIdentity.get(m.identityId) ?? { accountRef: m.accountRef, evidence: [] };
        hit.evidence.push({
          voiceprintId: m.voiceprintId,
          recordingId: m.recordingId,
          similarity: Math.round(m.similarity * 1e6) / 1e6,
          score: scoreOf(calibration.far(m.similarity)),
          ...(m.matchedVoiceprintId ? { matchedVoiceprintId: m.matchedVoiceprintId } : {}),
        });
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
