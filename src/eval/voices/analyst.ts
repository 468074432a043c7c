import { CLI_ACTOR } from '../../audit/audit.ts';
import type { VoiceSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import { ConflictError, VoxtraceError } from '../../errors.ts';
import { enrolIdentity } from '../../voices/identities/edits.ts';
import { confirmStaff, rejectStaff } from '../../voices/staff/decisions.ts';
import { addToWatchlist } from '../../voices/watchlist/watchlist.ts';
import type { Listing } from './fraud-metrics.ts';
import type { ProposalRow } from './queries.ts';
import type { LoadedVoiceprint } from './replay.ts';

/**
 * The simulated analyst's actions on the fraud features, through the product's own services (as
 * the API's handlers call them): listing a fraudster's voiceprint on the watchlist, and deciding
 * staff proposals. What the analyst knows (which voiceprint is a fraudster's, whether a proposed
 * voice is an agent) comes from the corpus' marks and the scorer; the product only sees the actions.
 */

/**
 * Lists a voiceprint on the watchlist (`addToWatchlist`, which runs the look-back). When the
 * product refuses because the voiceprint sits in a customer's or an agent's identity (409), the
 * analyst takes that one voiceprint out into a fraudster identity of its own
 * (`enrolIdentity`, = `POST /v1/identities {kind: "fraudster"}`) and lists it again; any other
 * refusal is recorded, not thrown.
 */
export async function listVoiceprint(db: Db, settings: VoiceSettings, vp: LoadedVoiceprint): Promise<Listing> {
  const listing = {
    speakerId: vp.speakerId,
    path: vp.watchlist ?? 'online',
    voiceprintId: vp.id,
    recordingId: vp.recordingId,
  };
  const reason = 'eval: confirmed fraud on this call';
  let movedOut: string | null = null;
  try {
    const add = () => addToWatchlist(db, settings, { voiceprintId: vp.id, reason }, CLI_ACTOR);
    const answer = await add().catch(async (error) => {
      if (!(error instanceof ConflictError)) throw error;
      movedOut = error.message;
      await enrolIdentity(db, settings, { kind: 'fraudster', voiceprintIds: [vp.id], reason }, CLI_ACTOR);
      return add();
    });
    return { ...listing, identityId: answer.identityId, refused: null, movedOut, lookBack: answer.lookBack };
  } catch (error) {
    if (!(error instanceof VoxtraceError)) throw error;
    return { ...listing, identityId: null, refused: error.message, movedOut, lookBack: null };
  }
}

/**
 * Decides every pending staff proposal: confirms those the analyst knows are an agent's voice
 * (`isStaff`), rejects the others. A proposal the product no longer takes (its identity merged,
 * retired, or neither unknown nor a customer's) is counted as refused.
 */
export async function decideStaffProposals(
  db: Db,
  proposals: readonly ProposalRow[],
  isStaff: (identityId: string) => boolean,
) {
  const counts = { confirmed: 0, rejected: 0, refused: 0, voiceReuseAlertsDismissed: 0 };
  for (const p of proposals) {
    if (p.status !== 'proposed') continue;
    try {
      if (isStaff(p.identityId)) {
        const view = await confirmStaff(db, p.identityId, { note: 'eval: an agent' }, CLI_ACTOR);
        counts.confirmed++;
        counts.voiceReuseAlertsDismissed += view.dismissedAlerts;
      } else {
        await rejectStaff(db, p.identityId, { note: 'eval: not an agent' }, CLI_ACTOR);
        counts.rejected++;
      }
    } catch (error) {
      if (!(error instanceof VoxtraceError)) throw error;
      counts.refused++;
    }
  }
  return counts;
}
