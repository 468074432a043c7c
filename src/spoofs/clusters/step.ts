import { alertSubject, raiseAlerts } from '../../alerts/raise.ts';
import type { AnalysisStep } from '../../analysis/runner.ts';
import { SYSTEM_ACTOR } from '../../audit/audit.ts';
import type { SpoofSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import type { Logger } from '../../log.ts';
import type { Neighbour } from '../../search/knn.ts';
import { rejudgeCalls } from '../rejudge.ts';
import { recordClusterEvent } from './history.ts';
import { flagNearMisses, lookBackNearMisses } from './near-misses.ts';
import { spoofedNeighbours, spoofedNeighboursOfEach, votesByCluster } from './neighbours.ts';
import {
  clusterEvidence,
  growClusterFigures,
  insertCluster,
  joinIfClose,
  lockSpoofClusters,
  placementWork,
  refreshClusterFigures,
  utteranceEmbedding,
} from './queries.ts';
import {
  ABSORB_MAX,
  CENTROID_SIMILARITY,
  GROWTH_WINDOW_MS,
  LOOK_BACK_GROWTH,
  MIN_POINTS,
  MIN_RECORDINGS,
  MIN_VOTES,
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
      const work = await placementWork(tx, event.recordingId);
      const { formed, lookBackDue } =
        work.seenAt && work.unplaced.length > 0
          ? await placeSpoofed(tx, event.recordingId, { seenAt: work.seenAt, unplaced: work.unplaced }, settings, log)
          : { formed: [], lookBackDue: [] };
      if (work.bonafideToCheck) {
        const nearMisses = await flagNearMisses(tx, event.recordingId);
        if (nearMisses.length > 0) log.info({ nearMisses }, 'near misses');
      }
      // a cluster formed here has its exact figures and was never looked back over
      const due = [...formed, ...lookBackDue];
      if (due.length > 0) {
        // the figures grown on each join are exact again here: the radius the look-back reaches by
        await refreshClusterFigures(tx, lookBackDue);
        const found = await lookBackNearMisses(tx, due);
        // this call's own verdict is the next step's: the others' are judged again here
        await rejudgeCalls(
          tx,
          [...new Set(found.map((n) => n.recordingId))].filter((id) => id !== event.recordingId),
          settings,
        );
        if (found.length > 0) log.info({ clusters: due, nearMisses: found.length }, 'near misses by look-back');
      }
    },
  };
}

/**
 * Where this call's placements put the utterances it moved (its own, the noise it seeded a cluster
 * with or absorbed): the neighbours walked before them still name their cluster as it was.
 */
type Placements = Map<string, string>;

/** A neighbour's cluster as it is now: one the call placed it in, else the one its walk read. */
function clusterOf(neighbour: Neighbour, placements: Placements): string | null {
  return placements.get(neighbour.id) ?? ((neighbour.clusterId as string | null) || null);
}

/**
 * Places the recording's spoofed utterances and raises the campaign alerts, under the clusters'
 * lock: the clusters it formed, and those it grew whose look-back is now due (LOOK_BACK_GROWTH).
 */
async function placeSpoofed(
  tx: Db,
  recordingId: string,
  work: { seenAt: Date; unplaced: { id: string; embedding: number[] }[] },
  settings: SpoofSettings,
  log: Logger,
): Promise<{ formed: string[]; lookBackDue: string[] }> {
  await lockSpoofClusters(tx);
  // every utterance's walk up front, under one estimate and SET LOCAL: the call's own recording is
  // left out of them, so no placement of this call changes who the neighbours are, only their
  // clusters, which `placements` tracks
  const walks = await spoofedNeighboursOfEach(
    tx,
    work.unplaced.map((u) => u.embedding),
    recordingId,
  );
  const placements: Placements = new Map();
  const formed = new Set<string>();
  // the utterances each existing cluster gained: its figures grow by theirs
  const joined = new Map<string, string[]>();
  for (const [i, utterance] of work.unplaced.entries()) {
    // a cluster that an earlier utterance formed or joined may have absorbed this one already
    if (placements.has(utterance.id)) continue;
    const placed = await place(tx, recordingId, utterance, walks[i] as Neighbour[], placements);
    if (!placed) continue;
    if (placed.formed) formed.add(placed.clusterId);
    else if (!formed.has(placed.clusterId)) {
      joined.set(placed.clusterId, [...(joined.get(placed.clusterId) ?? []), ...placed.members, ...placed.absorbed]);
    }
  }
  await refreshClusterFigures(tx, [...formed]);
  const lookBackDue: string[] = [];
  for (const [clusterId, members] of joined) {
    if ((await growClusterFigures(tx, clusterId, members, LOOK_BACK_GROWTH)).lookBackDue) lookBackDue.push(clusterId);
  }
  const grown = [...joined.keys()];
  const raised = [
    ...(await raiseNewCampaigns(tx, [...formed])),
    ...(await raiseGrowth(tx, grown, work.seenAt, settings)),
  ];
  if (raised.length > 0) log.info({ alerts: raised }, 'spoof cluster alerts');
  return { formed: [...formed], lookBackDue };
}

/**
 * Places one utterance, given its neighbours: the cluster it joined or formed (with the noise it
 * absorbed), or null (noise). Notes each utterance it moved in `placements`.
 */
async function place(
  tx: Db,
  recordingId: string,
  utterance: { id: string; embedding: number[] },
  near: readonly Neighbour[],
  placements: Placements,
): Promise<{ clusterId: string; formed: boolean; members: string[]; absorbed: string[] } | null> {
  const now = near.map((n) => ({ ...n, clusterId: clusterOf(n, placements) }));
  const placed = await joinOrSeed(tx, recordingId, utterance, now);
  if (!placed) return null;
  for (const id of placed.members) placements.set(id, placed.clusterId);
  // the utterance's own neighbours are known: only the members it brings need a walk of their own
  const absorbed = await absorbNoise(tx, placed.clusterId, placed.members, new Map([[utterance.id, now]]), placements);
  return { ...placed, absorbed };
}

/** The rules of rules.ts for one utterance and its neighbours: join, seed, or nothing (noise). */
async function joinOrSeed(
  tx: Db,
  recordingId: string,
  utterance: { id: string; embedding: number[] },
  near: Neighbour[],
): Promise<{ clusterId: string; formed: boolean; members: string[] } | null> {
  const [best, count] = [...votesByCluster(near)].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0] ?? [
    null,
    0,
  ];
  if (best && count >= MIN_VOTES) {
    if (await joinIfClose(tx, best, utterance.id, CENTROID_SIMILARITY)) {
      return { clusterId: best, formed: false, members: [utterance.id] };
    }
  }
  const noise = near.filter((n) => !n.clusterId);
  const recordings = new Set([recordingId, ...noise.map((n) => n.recordingId)]);
  if (noise.length + 1 >= MIN_POINTS && recordings.size >= MIN_RECORDINGS) {
    const members = [utterance.id, ...noise.map((n) => n.id)];
    const clusterId = await insertCluster(tx, members, 'online');
    await recordClusterEvent(tx, {
      clusterId,
      action: 'created',
      utteranceIds: members,
      reason: 'online: noise of several calls formed a cluster',
      actor: SYSTEM_ACTOR,
    });
    return { clusterId, formed: true, members };
  }
  return null;
}

/**
 * Grows a cluster over the noise its new members reach: the noise that waited before the cluster
 * formed (or before a member arrived that reaches it) is a neighbour of a member at ≥
 * NEIGHBOUR_SIMILARITY and within CENTROID_SIMILARITY of the centroid, and joins; its own noise
 * neighbours are looked at in turn, at most ABSORB_MAX utterances for one placement. Returns those it absorbed.
 */
async function absorbNoise(
  tx: Db,
  clusterId: string,
  members: readonly string[],
  known: ReadonlyMap<string, readonly Neighbour[]>,
  placements: Placements,
): Promise<string[]> {
  const queue = [...members];
  const seen = new Set(members);
  const absorbed: string[] = [];
  const neighboursOf = async (id: string) => {
    const given = known.get(id);
    if (given) return given;
    const member = await utteranceEmbedding(tx, id);
    return member ? spoofedNeighbours(tx, member.embedding, member.recordingId) : [];
  };
  while (queue.length > 0 && absorbed.length < ABSORB_MAX) {
    for (const n of await neighboursOf(queue.shift() as string)) {
      if (clusterOf(n, placements) || seen.has(n.id) || absorbed.length >= ABSORB_MAX) continue;
      seen.add(n.id);
      if (!(await joinIfClose(tx, clusterId, n.id, CENTROID_SIMILARITY))) continue;
      placements.set(n.id, clusterId);
      absorbed.push(n.id);
      queue.push(n.id);
    }
  }
  return absorbed;
}

type ClusterMember = Awaited<ReturnType<typeof clusterEvidence>>[number];

/** A campaign alert on a cluster: its recordings, accounts, and each member with its similarity to the centroid. */
function clusterAlert(
  type: 'new_spoof_campaign' | 'spoof_cluster_growth',
  clusterId: string,
  members: ClusterMember[],
) {
  return {
    type,
    subject: alertSubject.cluster(clusterId),
    clusterId,
    recordingIds: members.map((m) => m.recordingId),
    accountRefs: members.flatMap((m) => (m.accountRef ? [m.accountRef] : [])),
    evidence: members.map((m) => ({
      utteranceId: m.utteranceId,
      recordingId: m.recordingId,
      similarity: round(m.similarity),
    })),
  };
}

/** `new_spoof_campaign`: each cluster this call formed, with all its members. */
export async function raiseNewCampaigns(tx: Db, clusterIds: string[]) {
  const raises = [];
  for (const clusterId of clusterIds) {
    raises.push(clusterAlert('new_spoof_campaign', clusterId, await clusterEvidence(tx, clusterId)));
  }
  return raiseAlerts(tx, raises);
}

/** `spoof_cluster_growth`: a cluster holding ≥ growthPerDay recordings from the 24 hours up to this call. */
async function raiseGrowth(tx: Db, clusterIds: string[], until: Date, settings: SpoofSettings) {
  if (clusterIds.length === 0) return [];
  const since = new Date(until.getTime() - GROWTH_WINDOW_MS);
  const raises = [];
  for (const clusterId of clusterIds) {
    const recent = await clusterEvidence(tx, clusterId, { since, until });
    if (new Set(recent.map((m) => m.recordingId)).size < settings.growthPerDay) continue;
    raises.push(clusterAlert('spoof_cluster_growth', clusterId, recent));
  }
  return raiseAlerts(tx, raises);
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
