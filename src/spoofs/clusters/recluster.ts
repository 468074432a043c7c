import { type Actor, CLI_ACTOR } from '../../audit/audit.ts';
import type { SpoofSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import { withSnapshotReaders } from '../../db/snapshot.ts';
import { withTransaction } from '../../db/transaction.ts';
import { rejudgeCalls } from '../rejudge.ts';
import { recordClusterEvent } from './history.ts';
import { lookBackNearMisses } from './near-misses.ts';
import { lockSpoofClusters, refreshClusterFigures } from './queries.ts';
import {
  activeClusterCount,
  carryLabel,
  carryNearMisses,
  endCluster,
  insertEmptyCluster,
  nearestSpoofedOf,
  type PoolPoint,
  reclusterPool,
  recomputeClusterSums,
  refreshUtteranceStatistics,
  type SpoofEdge,
  setMembership,
} from './recluster-queries.ts';
import {
  MIN_POINTS,
  MIN_RECORDINGS,
  MIN_VOTES,
  NEIGHBOUR_EF_SEARCH,
  NEIGHBOUR_K,
  NEIGHBOUR_SIMILARITY,
} from './rules.ts';
import { raiseNewCampaigns } from './step.ts';

/**
 * `recluster spoofs`: re-derives the spoof clusters from every spoofed utterance at once, as
 * DBSCAN over the kNN graph (each utterance's NEIGHBOUR_K nearest spoofed utterances of other
 * recordings, from the HNSW index, kept at ≥ NEIGHBOUR_SIMILARITY, made symmetric) — the online
 * rules of rules.ts applied to all points instead of in arrival order:
 * - a core point has ≥ MIN_POINTS − 1 neighbours from ≥ MIN_RECORDINGS − 1 other recordings (the
 *   online seed);
 * - two core neighbours that share a neighbour are one cluster (one chance edge merges nothing);
 * - a border point (not core) joins the cluster holding most of its core neighbours when they are
 *   at least MIN_VOTES (the online join's vote); it links nothing, so it never bridges two clusters;
 * - a point that votes for a cluster an analyst pinned (at least MIN_VOTES of its neighbours are
 *   members there, more than in any batch cluster) joins that cluster instead: recluster adds to
 *   an analyst's cluster and never takes from it;
 * - a cluster holds at least MIN_POINTS utterances of MIN_RECORDINGS recordings, as a seed does;
 * - the rest is noise.
 *
 * An analyst's decisions hold: clusters an analyst merged or split (`analyst_edited_at`) are not
 * re-derived — their members stay, nothing is taken from them or merged into them except new
 * members as above. Ids stay stable: each batch cluster takes the id of the old cluster it shares
 * most members with (greedy, one to one, largest overlap first), so re-running on the same data
 * changes nothing; an old cluster left without its id's successor is `merged` into the cluster that
 * took most of its members (its label carried when the survivor has none) or `retired`, with the
 * reason recorded. A cluster that is new raises `new_spoof_campaign`. Near misses follow their
 * cluster (moved to a merge's survivor, dropped for a retired one), bonafide speech is looked back
 * over for every active cluster, and the calls whose near misses changed are judged again. One
 * transaction, under the clusters' lock: the online step waits.
 */

export type SpoofReclusterSummary = {
  /** spoofed utterances re-derived (those outside pinned clusters) */
  utterances: number;
  /** active clusters after it, pinned ones included */
  clusters: number;
  created: string[];
  grown: string[];
  shrunk: string[];
  merged: string[];
  retired: string[];
  /** re-derived clusters that kept exactly their members */
  unchanged: number;
  /** utterances now in another cluster than before (or in one for the first time) */
  moved: number;
  /** utterances taken out of a cluster, now noise */
  unclustered: number;
  /** near misses flagged by the look-back */
  nearMisses: number;
  ms: number;
};

const GRAPH_BATCH = 200;
/**
 * Connections the kNN graph is walked on at once. Two: these machines' PostgreSQL has two cores and
 * the walk is all index reads; a bigger server would take more (left fixed until one needs it).
 */
const GRAPH_CONNECTIONS = 2;
const REASON = 'recluster spoofs';

/**
 * @example const summary = await reclusterSpoofs(db, config.spoofs, CLI_ACTOR);
 */
export async function reclusterSpoofs(
  db: Db,
  settings: SpoofSettings,
  actor: Actor = CLI_ACTOR,
  progress: (line: string) => void = () => {},
): Promise<SpoofReclusterSummary> {
  const started = performance.now();
  return withTransaction(db, async (tx) => {
    await lockSpoofClusters(tx);
    const pool = await reclusterPool(tx);
    progress(`${pool.length} spoofed utterances to recluster`);
    const edges = await kNNGraph(db, tx, pool, progress);
    const { clusters, pinnedJoins } = deriveSpoofClusters(pool, edges);
    const applied = await applyClusters(tx, pool, clusters, pinnedJoins, actor);
    const carried = await carryNearMisses(tx);
    const looked = await lookBackNearMisses(tx, 'all');
    await rejudgeCalls(tx, [...new Set([...carried, ...looked.map((n) => n.recordingId)])], settings);
    const raised = await raiseNewCampaigns(tx, applied.created);
    await refreshUtteranceStatistics(tx);
    progress(`${applied.clusters} clusters, ${raised.length} new campaign alerts, ${looked.length} near misses`);
    return { ...applied, nearMisses: looked.length, ms: Math.round(performance.now() - started) };
  });
}

/**
 * The kNN graph of the pool, its batches walked on GRAPH_CONNECTIONS connections at once (the
 * transaction's own and readers of its snapshot, withSnapshotReaders): the walks are independent
 * and each keeps one server core busy. The edges come back in pool order whatever finished first.
 */
async function kNNGraph(db: Db, tx: Db, pool: PoolPoint[], progress: (line: string) => void): Promise<SpoofEdge[]> {
  const batches: string[][] = [];
  for (let i = 0; i < pool.length; i += GRAPH_BATCH) batches.push(pool.slice(i, i + GRAPH_BATCH).map((p) => p.id));
  const found: SpoofEdge[][] = new Array(batches.length);
  let next = 0;
  let walked = 0;
  let reported = 0;
  const walk = async (connection: Db) => {
    for (let b = next++; b < batches.length; b = next++) {
      const ids = batches[b] as string[];
      // a few more than NEIGHBOUR_K: the own recording's utterances are dropped after the walk
      found[b] = await nearestSpoofedOf(connection, ids, {
        k: NEIGHBOUR_K + 4,
        minSimilarity: NEIGHBOUR_SIMILARITY,
        efSearch: NEIGHBOUR_EF_SEARCH,
      });
      walked += ids.length;
      if (walked - reported >= 20_000) {
        reported = walked;
        progress(`kNN graph: ${walked} of ${pool.length}`);
      }
    }
  };
  const readers = pool.length > GRAPH_BATCH ? GRAPH_CONNECTIONS - 1 : 0;
  await withSnapshotReaders(db, tx, readers, (others) => Promise.all([tx, ...others].map(walk)));
  return found.flat();
}

/**
 * The batch rules (above) over the pool and its graph: the clusters (each a sorted list of
 * utterance ids, in order of their first id), and the points that join a pinned cluster.
 * Pure, so that the rules are tested without a database.
 */
export function deriveSpoofClusters(
  pool: readonly PoolPoint[],
  edges: readonly SpoofEdge[],
): { clusters: string[][]; pinnedJoins: Map<string, string[]> } {
  const inPool = new Map(pool.map((p) => [p.id, p]));
  const adjacency = new Map<string, Map<string, number>>(pool.map((p) => [p.id, new Map()]));
  // votes for pinned clusters: neighbours outside the pool are members of a pinned cluster
  const pinnedVotes = new Map<string, Map<string, number>>();
  for (const edge of edges) {
    if (!inPool.has(edge.from)) continue;
    if (inPool.has(edge.to)) {
      adjacency.get(edge.from)?.set(edge.to, edge.similarity);
      adjacency.get(edge.to)?.set(edge.from, edge.similarity);
    } else if (edge.toClusterId) {
      const votes = pinnedVotes.get(edge.from) ?? new Map<string, number>();
      votes.set(edge.toClusterId, (votes.get(edge.toClusterId) ?? 0) + 1);
      pinnedVotes.set(edge.from, votes);
    }
  }
  const isCore = (id: string) => {
    const neighbours = adjacency.get(id) as Map<string, number>;
    if (neighbours.size < MIN_POINTS - 1) return false;
    const recordings = new Set([...neighbours.keys()].map((n) => (inPool.get(n) as PoolPoint).recordingId));
    return recordings.size >= MIN_RECORDINGS - 1;
  };
  const core = new Set(pool.filter((p) => isCore(p.id)).map((p) => p.id));

  const parent = new Map<string, string>([...core].map((id) => [id, id]));
  const find = (id: string): string => {
    let root = id;
    while (parent.get(root) !== root) root = parent.get(root) as string;
    for (let at = id; at !== root; ) {
      const next = parent.get(at) as string;
      parent.set(at, root);
      at = next;
    }
    return root;
  };
  for (const id of core) {
    const mine = adjacency.get(id) as Map<string, number>;
    for (const other of mine.keys()) {
      if (!core.has(other)) continue;
      const theirs = adjacency.get(other) as Map<string, number>;
      if (![...theirs.keys()].some((n) => n !== id && mine.has(n))) continue;
      const [a, b] = [find(id), find(other)];
      if (a === b) continue;
      // the smaller id is the root: the result does not depend on the order edges were seen in
      const [low, high] = a < b ? [a, b] : [b, a];
      parent.set(high, low);
    }
  }

  const members = new Map<string, string[]>();
  for (const id of core) members.set(find(id), [...(members.get(find(id)) ?? []), id]);
  const pinnedJoins = new Map<string, string[]>();
  for (const point of pool) {
    if (core.has(point.id)) continue;
    const votes = new Map<string, number>();
    for (const other of adjacency.get(point.id)?.keys() ?? []) {
      if (core.has(other)) votes.set(find(other), (votes.get(find(other)) ?? 0) + 1);
    }
    const batch = best(votes);
    const pinned = best(pinnedVotes.get(point.id) ?? new Map());
    if (pinned && pinned[1] >= MIN_VOTES && (!batch || pinned[1] > batch[1])) {
      pinnedJoins.set(pinned[0], [...(pinnedJoins.get(pinned[0]) ?? []), point.id]);
    } else if (batch && batch[1] >= MIN_VOTES) {
      members.get(batch[0])?.push(point.id);
    }
  }
  // a batch cluster most of whose members vote for one pinned cluster is more of that cluster
  for (const [root, list] of members) {
    const pinned = best(countBy(list.flatMap((id) => pinnedChoice(pinnedVotes.get(id)) ?? [])));
    if (!pinned || pinned[1] * 2 <= list.length) continue;
    pinnedJoins.set(pinned[0], [...(pinnedJoins.get(pinned[0]) ?? []), ...list]);
    members.delete(root);
  }
  // as online, a cluster holds at least MIN_POINTS utterances of MIN_RECORDINGS recordings: a core
  // point no other core shares a neighbour with is noise, not a cluster of its own
  const clusters = [...members.values()]
    .filter(
      (list) =>
        list.length >= MIN_POINTS &&
        new Set(list.map((id) => (inPool.get(id) as PoolPoint).recordingId)).size >= MIN_RECORDINGS,
    )
    .map((list) => list.sort())
    .sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1));
  return { clusters, pinnedJoins };
}

/** The pinned cluster a point votes for (at least MIN_VOTES), or null. */
function pinnedChoice(votes: Map<string, number> | undefined): string | null {
  const top = votes ? best(votes) : null;
  return top && top[1] >= MIN_VOTES ? top[0] : null;
}

/** The entry with the most votes (ties: the smaller id), or null. */
function best(votes: Map<string, number>): [string, number] | null {
  let top: [string, number] | null = null;
  for (const entry of votes) {
    if (!top || entry[1] > top[1] || (entry[1] === top[1] && entry[0] < top[0])) top = entry;
  }
  return top;
}

async function applyClusters(
  tx: Db,
  pool: PoolPoint[],
  clusters: string[][],
  pinnedJoins: Map<string, string[]>,
  actor: Actor,
): Promise<Omit<SpoofReclusterSummary, 'ms' | 'nearMisses'>> {
  const before = new Map(pool.map((p) => [p.id, p.clusterId]));
  const oldMembers = new Map<string, Set<string>>();
  for (const point of pool) {
    if (!point.clusterId) continue;
    const set = oldMembers.get(point.clusterId) ?? new Set<string>();
    set.add(point.id);
    oldMembers.set(point.clusterId, set);
  }
  const idOfCluster = matchByOverlap(clusters, before);

  const created: string[] = [];
  const grown: string[] = [];
  const touched = new Set<string>();
  let moved = 0;
  const after = new Map<string, string>();
  for (const [index, members] of clusters.entries()) {
    let clusterId = idOfCluster.get(index);
    if (!clusterId) {
      clusterId = await insertEmptyCluster(tx, 'recluster');
      created.push(clusterId);
      await recordClusterEvent(tx, { clusterId, action: 'created', utteranceIds: members, reason: REASON, actor });
    }
    for (const id of members) after.set(id, clusterId);
    const arriving = members.filter((id) => before.get(id) !== clusterId);
    if (arriving.length === 0) continue;
    await setMembership(tx, clusterId, arriving);
    touched.add(clusterId);
    moved += arriving.length;
    if (idOfCluster.get(index)) {
      grown.push(clusterId);
      await recordClusterEvent(tx, { clusterId, action: 'reclustered', utteranceIds: arriving, reason: REASON, actor });
    }
  }
  for (const [clusterId, arriving] of pinnedJoins) {
    for (const id of arriving) after.set(id, clusterId);
    await setMembership(tx, clusterId, arriving);
    touched.add(clusterId);
    moved += arriving.length;
    grown.push(clusterId);
    await recordClusterEvent(tx, { clusterId, action: 'reclustered', utteranceIds: arriving, reason: REASON, actor });
  }
  const leaving = pool.filter((p) => p.clusterId && !after.has(p.id)).map((p) => p.id);
  await setMembership(tx, null, leaving);

  const shrunk: string[] = [];
  const merged: string[] = [];
  const retired: string[] = [];
  let unchanged = 0;
  const surviving = new Set(idOfCluster.values());
  for (const [clusterId, members] of oldMembers) {
    if (surviving.has(clusterId)) {
      if ([...members].some((id) => after.get(id) !== clusterId)) {
        shrunk.push(clusterId);
        touched.add(clusterId);
      } else if (!grown.includes(clusterId)) unchanged++;
      continue;
    }
    const successor = best(countBy([...members].flatMap((id) => after.get(id) ?? [])));
    if (successor && successor[1] * 2 >= members.size) {
      const reason = `${REASON}: ${successor[1]} of its ${members.size} members are in cluster ${successor[0]}`;
      await endCluster(tx, clusterId, { status: 'merged', into: successor[0], reason });
      await carryLabel(tx, clusterId, successor[0]);
      await recordClusterEvent(tx, {
        clusterId,
        action: 'merged_into',
        relatedClusterIds: [successor[0]],
        reason,
        actor,
      });
      merged.push(clusterId);
    } else {
      const reason = `${REASON}: ${members.size - (successor?.[1] ?? 0)} of its ${members.size} members no longer form a cluster`;
      await endCluster(tx, clusterId, { status: 'retired', reason });
      await recordClusterEvent(tx, { clusterId, action: 'retired', reason, actor });
      retired.push(clusterId);
    }
  }
  await recomputeClusterSums(tx, [...touched]);
  await refreshClusterFigures(tx, [...touched]);
  return {
    utterances: pool.length,
    clusters: await activeClusterCount(tx),
    created,
    grown: [...new Set(grown)].filter((id) => !created.includes(id)).sort(),
    shrunk: shrunk.sort(),
    merged: merged.sort(),
    retired: retired.sort(),
    unchanged,
    moved,
    unclustered: leaving.length,
  };
}

/** Old cluster ids for the new clusters: by member overlap, largest first, one to one. */
function matchByOverlap(clusters: string[][], before: Map<string, string | null>): Map<number, string> {
  const overlaps: { clusterId: string; index: number; shared: number }[] = [];
  clusters.forEach((members, index) => {
    for (const [clusterId, shared] of countBy(members.flatMap((id) => before.get(id) ?? []))) {
      overlaps.push({ clusterId, index, shared });
    }
  });
  overlaps.sort((a, b) => b.shared - a.shared || (a.clusterId < b.clusterId ? -1 : 1) || a.index - b.index);
  const idOfCluster = new Map<number, string>();
  const taken = new Set<string>();
  for (const o of overlaps) {
    if (idOfCluster.has(o.index) || taken.has(o.clusterId)) continue;
    idOfCluster.set(o.index, o.clusterId);
    taken.add(o.clusterId);
  }
  return idOfCluster;
}

function countBy(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}
