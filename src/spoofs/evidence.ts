import type { Db } from '../db/client.ts';
import type { CallVerdict } from '../db/schema.ts';
import { type SpoofTimelineItem, spoofTimeline, storedCallVerdict } from './queries.ts';

/**
 * A recording's spoof evidence as `GET /v1/recordings/{id}` shows it (CONVENTIONS "Spoofs API"):
 * the stored call verdict and its figures, the near misses, the clusters its utterances belong to,
 * and the per-utterance timeline. Null until the analysis step `spoofs.verdict` has run on it.
 * @example const spoof = await callSpoofEvidence(db, recordingId);
 */
export async function callSpoofEvidence(db: Db, recordingId: string): Promise<CallSpoofView | null> {
  const [stored, timeline] = await Promise.all([storedCallVerdict(db, recordingId), spoofTimeline(db, recordingId)]);
  if (!stored) return null;
  return {
    ...stored,
    nearMisses: timeline.flatMap((t) =>
      t.nearMiss && t.clusterId ? [{ utteranceId: t.utteranceId, clusterId: t.clusterId }] : [],
    ),
    clusterIds: [...new Set(timeline.flatMap((t) => (t.clusterId ? [t.clusterId] : [])))],
    timeline,
  };
}

export type CallSpoofView = {
  verdict: CallVerdict;
  spoofedShare: number | null;
  peakPSpoofed: number | null;
  nearMisses: { utteranceId: string; clusterId: string }[];
  clusterIds: string[];
  timeline: SpoofTimelineItem[];
};
