import { alertSubject, raiseAlerts } from '../../alerts/raise.ts';
import type { AnalysisStep } from '../../analysis/runner.ts';
import type { SpoofSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import type { Logger } from '../../log.ts';
import { deepfakeSpace, nearestNeighbours } from '../../search/knn.ts';
import { flagNearMisses } from './near-misses.ts';
import {
  addToCluster,
  clusterEvidence,
  insertCluster,
  lockSpoofClusters,
  recordingTime,
  refreshClusterFigures,
  similarityToCentroid,
  unplacedSpoofedUtterances,
} from './queries.ts';
import {
  CENTROID_SIMILARITY,
  GROWTH_WINDOW_MS,
  MIN_POINTS,
  MIN_RECORDINGS,
  MIN_VOTES,
  NEIGHBOUR_K,
  NEIGHBOUR_SIMILARITY,
} from './rules.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const SPOOF_CLUSTER_STEP = 'spoofs.clusters';

/**
 * The analysis step that places each spoofed utterance of a stored recording (rules.ts): into the
 * cluster its neighbours vote for, into a new cluster seeded with the noise around it, or left as
 * noise; then flags its bonafide-labelled utterances that sit inside a cluster (near-misses.ts). Raises `new_spoof_campaign` for a cluster it forms and `spoof_cluster_growth` for one that
 * gained ≥ VOXTRACE_SPOOF_GROWTH_PER_DAY recordings within 24 hours of this call, in the step's
 * transaction. Runs before `spoofs.verdict`, which reads what it placed.
 * @example const steps = [spoofClusterStep(settings.spoofs), spoofVerdictStep(settings.spoofs)];
 */
export function spoofClusterStep(settings: SpoofSettings): AnalysisStep {
  return {
    name: SPOOF_CLUSTER_STEP,
    async run({ tx, event, log }) {
      const unplaced = await unplacedSpoofedUtterances(tx, event.recordingId);
      if (unplaced.length > 0) await placeSpoofed(tx, event.recordingId, unplaced, settings, log);
      const nearMisses = await flagNearMisses(tx, event.recordingId);
      if (nearMisses.length > 0) log.info({ nearMisses }, 'near misses');
    },
  };
}

/** Places the recording's spoofed utterances and raises the campaign alerts, under the clusters' lock. */
async function placeSpoofed(
  tx: Db,
  recordingId: string,
  unplaced: { id: string; embedding: number[] }[],
  settings: SpoofSettings,
  log: Logger,
): Promise<void> {
  await lockSpoofClusters(tx);
  const formed = new Set<string>();
  const joined = new Set<string>();
  for (const utterance of unplaced) {
    const placed = await place(tx, recordingId, utterance);
    if (placed?.formed) formed.add(placed.clusterId);
    else if (placed) joined.add(placed.clusterId);
  }
  await refreshClusterFigures(tx, [...formed, ...joined]);
  const grown = [...joined].filter((id) => !formed.has(id));
  const raised = [
    ...(await raiseNewCampaigns(tx, [...formed])),
    ...(await raiseGrowth(tx, grown, recordingId, settings)),
  ];
  if (raised.length > 0) log.info({ alerts: raised }, 'spoof cluster alerts');
}

/** Places one utterance: the cluster it joined or formed, or null (noise). */
async function place(
  tx: Db,
  recordingId: string,
  utterance: { id: string; embedding: number[] },
): Promise<{ clusterId: string; formed: boolean } | null> {
  const { neighbours } = await nearestNeighbours(tx, deepfakeSpace, utterance.embedding, {
    k: NEIGHBOUR_K,
    filter: { excludeRecordingIds: [recordingId] },
  });
  const near = neighbours.filter((n) => n.similarity >= NEIGHBOUR_SIMILARITY);
  const votes = new Map<string, number>();
  for (const n of near) {
    const clusterId = n.clusterId as string | null;
    if (clusterId) votes.set(clusterId, (votes.get(clusterId) ?? 0) + 1);
  }
  const [best, count] = [...votes].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0] ?? [null, 0];
  if (best && count >= MIN_VOTES) {
    const similarity = await similarityToCentroid(tx, best, utterance.embedding);
    if (similarity !== null && similarity >= CENTROID_SIMILARITY) {
      await addToCluster(tx, best, [utterance.id]);
      return { clusterId: best, formed: false };
    }
  }
  const noise = near.filter((n) => !n.clusterId);
  const recordings = new Set([recordingId, ...noise.map((n) => n.recordingId)]);
  if (noise.length + 1 >= MIN_POINTS && recordings.size >= MIN_RECORDINGS) {
    const clusterId = await insertCluster(tx, [utterance.id, ...noise.map((n) => n.id)], 'online');
    return { clusterId, formed: true };
  }
  return null;
}

async function raiseNewCampaigns(tx: Db, clusterIds: string[]) {
  const raises = [];
  for (const clusterId of clusterIds) {
    const members = await clusterEvidence(tx, clusterId);
    raises.push({
      type: 'new_spoof_campaign' as const,
      subject: alertSubject.cluster(clusterId),
      clusterId,
      recordingIds: members.map((m) => m.recordingId),
      accountRefs: members.flatMap((m) => (m.accountRef ? [m.accountRef] : [])),
      evidence: members.map((m) => ({
        utteranceId: m.utteranceId,
        recordingId: m.recordingId,
        similarity: round(m.similarity),
      })),
    });
  }
  return raiseAlerts(tx, raises);
}

/** `spoof_cluster_growth`: a cluster holding ≥ growthPerDay recordings from the 24 hours up to this call. */
async function raiseGrowth(tx: Db, clusterIds: string[], recordingId: string, settings: SpoofSettings) {
  if (clusterIds.length === 0) return [];
  const until = await recordingTime(tx, recordingId);
  const since = new Date(until.getTime() - GROWTH_WINDOW_MS);
  const raises = [];
  for (const clusterId of clusterIds) {
    const recent = await clusterEvidence(tx, clusterId, { since, until });
    if (new Set(recent.map((m) => m.recordingId)).size < settings.growthPerDay) continue;
    raises.push({
      type: 'spoof_cluster_growth' as const,
      subject: alertSubject.cluster(clusterId),
      clusterId,
      recordingIds: recent.map((m) => m.recordingId),
      accountRefs: recent.flatMap((m) => (m.accountRef ? [m.accountRef] : [])),
      evidence: recent.map((m) => ({
        utteranceId: m.utteranceId,
        recordingId: m.recordingId,
        similarity: round(m.similarity),
      })),
    });
  }
  return raiseAlerts(tx, raises);
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
