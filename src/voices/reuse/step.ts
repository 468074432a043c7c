import { alertSubject, raiseAlert } from '../../alerts/raise.ts';
import type { AnalysisStep } from '../../analysis/runner.ts';
import type { VoiceSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import type { Logger } from '../../log.ts';
import { type Calibration, currentCalibration, scoreOf } from '../calibration.ts';
import { callsOfIdentity, identitiesOfRecording } from './queries.ts';
import { reuseWindows } from './windows.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const VOICE_REUSE_STEP = 'voices.reuse';

const DAY_MS = 86_400_000;

/**
 * The analysis step that raises `voice_reuse` when a stored call makes its voice — an identity
 * that is not `staff` — heard on ≥ VOXTRACE_VOICE_REUSE_ACCOUNTS accounts among calls within
 * VOXTRACE_VOICE_REUSE_DAYS of each other. Only windows that hold the new call are looked at (the
 * calls within that many days either side of it); the alert's recordings are those windows'
 * calls, and a later call that extends the pattern adds to the same live alert.
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
        await checkVoiceReuse(tx, settings, calibration, identity.identityId, identity.at, log);
      }
    },
  };
}

/**
 * Raises (or adds to) the `voice_reuse` alert of one identity when its calls form a reuse window —
 * around the time `around` when given, anywhere in its history otherwise. Returns whether one did.
 */
export async function checkVoiceReuse(
  tx: Db,
  settings: VoiceSettings,
  calibration: Calibration,
  identityId: string,
  around: number | undefined,
  log?: Logger,
): Promise<boolean> {
  const reach = settings.voiceReuseDays * DAY_MS;
  const range = around === undefined ? undefined : { from: around - reach, to: around + reach };
  const calls = await callsOfIdentity(tx, identityId, range);
  const rule = { accounts: settings.voiceReuseAccounts, days: settings.voiceReuseDays };
  const triggering = reuseWindows(calls, rule, around);
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
