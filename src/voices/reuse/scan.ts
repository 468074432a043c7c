import type { VoiceSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import { withTransaction } from '../../db/transaction.ts';
import { currentCalibration } from '../calibration.ts';
import { identitiesOfKinds } from './queries.ts';
import { checkVoiceReuse } from './step.ts';

/**
 * Voice reuse over the whole history of some identities: what `recluster voices` runs on the
 * identities it created or grew, whose calls no analysis step saw together (the step looks only at
 * windows around each new call, as the identity was then). Staff and identities that are gone are
 * skipped. Returns the identities with a voice_reuse alert raised or added to.
 * @example const alerted = await scanVoiceReuse(db, settings, [...summary.created, ...summary.grown]);
 */
export async function scanVoiceReuse(
  db: Db,
  settings: VoiceSettings,
  identityIds: readonly string[],
): Promise<string[]> {
  return withTransaction(db, async (tx) => {
    const calibration = await currentCalibration(tx);
    const alerted: string[] = [];
    for (const identityId of await identitiesOfKinds(tx, identityIds, ['unknown', 'fraudster', 'customer'])) {
      if (await checkVoiceReuse(tx, settings, calibration, identityId, undefined)) alerted.push(identityId);
    }
    return alerted;
  });
}
