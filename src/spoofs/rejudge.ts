import type { SpoofSettings } from '../config.ts';
import type { Db } from '../db/client.ts';
import { analysedRecordings, spoofTimeline, storeCallVerdict } from './queries.ts';
import { judgeCall } from './verdict.ts';

/**
 * Judges calls again after their near misses changed outside their own analysis (a cluster's
 * look-back, a recluster, an analyst's merge or split): only calls the `spoofs.verdict` step has
 * judged already — the others get their verdict when their step runs.
 * @example await rejudgeCalls(tx, recordingIds, settings.spoofs);
 */
export async function rejudgeCalls(tx: Db, recordingIds: readonly string[], settings: SpoofSettings): Promise<void> {
  for (const recordingId of await analysedRecordings(tx, recordingIds)) {
    await storeCallVerdict(tx, recordingId, judgeCall(await spoofTimeline(tx, recordingId), settings));
  }
}
