import { countAnalysisBacklog } from '../analysis/outbox.ts';
import type { Db } from '../db/client.ts';
import { countLiveIdentitiesByKind, countOpenWork, countRecordingsByStatus, countStoredRows } from './queries.ts';

export type Stats = {
  recordings: Awaited<ReturnType<typeof countRecordingsByStatus>>;
  /** Stored recordings whose analysis steps have not all run yet (`voxtrace analyze` drains them). */
  analysisPending: number;
  /** Stored recordings whose analysis gave up: a step kept failing. */
  analysisDead: number;
  utterances: number;
  voiceprints: number;
  unassignedVoiceprints: number;
  identities: Awaited<ReturnType<typeof countLiveIdentitiesByKind>>;
} & Awaited<ReturnType<typeof countOpenWork>>;

/**
 * The state of the whole store in counts: recordings per status, the analysis backlog, what is
 * stored, how many identities of each kind there are, and the open alerts, listed voices and staff proposals. No biometric data: not audited.
 * @example const { recordings, analysisPending } = await readStats(db);
 */
export async function readStats(db: Db): Promise<Stats> {
  const recordings = await countRecordingsByStatus(db);
  const backlog = await countAnalysisBacklog(db);
  const stored = await countStoredRows(db);
  const identities = await countLiveIdentitiesByKind(db);
  const work = await countOpenWork(db);
  return { recordings, analysisPending: backlog.pending, analysisDead: backlog.dead, ...stored, identities, ...work };
}
