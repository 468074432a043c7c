import { alertSubject, raiseAlert } from '../../alerts/raise.ts';
import type { AnalysisStep } from '../../analysis/runner.ts';
import type { VoiceSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import type { Logger } from '../../log.ts';
import { DAY_MS } from '../../time.ts';
import { type Calibration, currentCalibration, SAME_VOICE_FAR, scoreOf } from '../calibration.ts';
import { callsOfIdentity, identitiesOfRecording } from './queries.ts';
import { reuseWindows } from './windows.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const VOICE_REUSE_STEP = 'voices.reuse';

/**
 * The analysis step that raises `voice_reuse` when a stored call makes its voice — an identity
 * that is not `staff` — heard on ≥ VOXTRACE_VOICE_REUSE_ACCOUNTS accounts among calls within
 * VOXTRACE_VOICE_REUSE_DAYS of each other, one of them the same voice as a call on each of the
 * others (windows.ts). Only windows that hold the new call are looked at (the calls within that
 * many days either side of it), the new call the one compared with the others; the alert's
 * recordings are that call and the calls it is the same voice as, and a later call that extends
 * the pattern adds to the same live alert.
 * @example const steps = [identityStep(settings), voiceReuseStep(settings)];
 */
export function voiceReuseStep(settings: VoiceSettings): AnalysisStep {
  return {
    name: VOICE_REUSE_STEP,
    async run({ tx, event, log }) {
      const identities = await identitiesOfRecording(tx, event.recordingId);
      const candidates = identities.filter((i) => i.kind !== 'staff');
      if (candidates.length === 0) return;
      const calibration = await currentCalibration(tx);
      for (const identity of candidates) {
        const around = { at: identity.at, recordingId: event.recordingId };
        await checkVoiceReuse(tx, settings, calibration, identity.identityId, around, log);
      }
    },
  };
}

/**
 * Raises (or adds to) the `voice_reuse` alert of one identity when its calls form a reuse window —
 * around a new call (`around`: its time and recording) when given, its calls the ones whose voice
 * is compared with the others (O(n), as every stored call pays it); anywhere in its history
 * otherwise, every call compared with every other (O(n²), for reclustering). Returns whether one did.
 */
export async function checkVoiceReuse(
  tx: Db,
  settings: VoiceSettings,
  calibration: Calibration,
  identityId: string,
  around: { at: number; recordingId: string } | undefined,
  log?: Logger,
): Promise<boolean> {
  const reach = settings.voiceReuseDays * DAY_MS;
  const range = around === undefined ? undefined : { from: around.at - reach, to: around.at + reach };
  const calls = await callsOfIdentity(tx, identityId, calibration.similarityAtFar(SAME_VOICE_FAR), {
    range,
    comparedRecordingId: around?.recordingId,
  });
  const rule = { accounts: settings.voiceReuseAccounts, days: settings.voiceReuseDays };
  const triggering = reuseWindows(calls, rule, around?.at);
  if (triggering.length === 0) return false;
  const raised = await raiseAlert(tx, {
    type: 'voice_reuse',
    subject: alertSubject.voiceReuse(identityId),
    identityId,
    recordingIds: [...new Set(triggering.map((c) => c.recordingId))],
    accountRefs: [...new Set(triggering.map((c) => c.accountRef))],
    evidence: triggering.map((c) => ({
      voiceprintId: c.voiceprintId,
      recordingId: c.recordingId,
      similarity: Math.round(c.similarity * 1e6) / 1e6,
      score: scoreOf(calibration.far(c.similarity)),
    })),
  });
  log?.info({ identityId, alertId: raised.alertId, outcome: raised.outcome }, 'voice reuse');
  return true;
}
