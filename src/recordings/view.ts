import { type Actor, recordAudit } from '../audit/audit.ts';
import type { Db } from '../db/client.ts';
import { callSpoofEvidence } from '../spoofs/evidence.ts';
import { getRecordingDetail, type RecordingInclude } from './queries.ts';

/**
 * A recording as a caller asked to see it. Its vectors and its raw upstream document are biometric
 * data: a view that includes either leaves an audit entry (`recording.view`, naming the recording
 * and its voiceprints) before it is answered. `spoof` is its spoof evidence (src/spoofs/), null
 * until analysed. Throws NotFoundError for an unknown id.
 * @example const detail = await viewRecording(db, actor, id, { embeddings: true });
 */
export async function viewRecording(db: Db, actor: Actor, id: string, include: RecordingInclude) {
  const found = await getRecordingDetail(db, id, include);
  const detail = { ...found, spoof: await callSpoofEvidence(db, found.id) };
  if (include.embeddings || include.document) {
    await recordAudit(db, actor, {
      action: 'recording.view',
      targetIds: [detail.id, ...detail.voiceprints.map((v) => v.id)],
      params: { include: { embeddings: Boolean(include.embeddings), document: Boolean(include.document) } },
      resultCount: 1,
    });
  }
  return detail;
}
