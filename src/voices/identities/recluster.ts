import { type Actor, CLI_ACTOR } from '../../audit/audit.ts';
import type { VoiceSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import { withTransaction } from '../../db/transaction.ts';
import { dot } from '../../vectors.ts';
import { joinsCentroid, meanDirection } from './assign.ts';
import {
  type ClusterPoint,
  identitiesOf,
  lockIdentityAssignment,
  nearestVoiceprintsOf,
  reclusterPool,
} from './clustering-queries.ts';
import { createIdentity, moveVoiceprints, unassignVoiceprints } from './membership.ts';
import {
  BATCH_MARGIN_JOIN,
  CLUSTER_EF_SEARCH,
  MIN_NEIGHBOURS,
  NEIGHBOUR_K,
  NEIGHBOUR_SIMILARITY,
} from './thresholds.ts';

/**
 * `recluster voices`: re-derives the `unknown` identities from scratch, as DBSCAN over the kNN
 * graph of the voiceprints (each one's NEIGHBOUR_K nearest from the HNSW index, kept when at least
 * NEIGHBOUR_SIMILARITY, the graph made symmetric): core points (≥ MIN_NEIGHBOURS neighbours and
 * the minimum of speech) linked through core–core edges whose ends share a neighbour make a cluster; a border point joins the
 * cluster of its most similar core neighbour and links nothing; what is left joins the cluster whose
 * centroid it clears as the online step's join does (joinsCentroid with BATCH_MARGIN_JOIN; attachByCentroid); the rest are unassigned. The same
 * rules as the online step, applied to every voiceprint at once instead of in arrival order.
 *
 * What an analyst made is left alone: identities of kind customer/fraudster/staff, identities an
 * analyst created or edited, and voiceprints an analyst placed are neither re-derived nor counted.
 * Ids stay stable: each new cluster takes the id of the old identity it shares most voiceprints with
 * (greedy, one to one, largest overlap first), so re-running on the same data changes nothing; the
 * others get new identities, and old identities left with no member are retired. It runs in one
 * transaction under the assignment lock (online steps wait), every change through membership.ts.
 */

export type ReclusterSummary = {
  /** voiceprints re-derived (in no identity, or in an unknown identity clustering made) */
  voiceprints: number;
  clusters: number;
  created: string[];
  grown: string[];
  shrunk: string[];
  retired: string[];
  /** identities that kept exactly their members */
  unchanged: number;
  /** voiceprints placed in an identity other than the one they were in (or none) */
  moved: number;
  /** voiceprints taken out of an identity, now in none */
  unassigned: number;
  ms: number;
};

const GRAPH_BATCH = 200;

/**
 * @example const summary = await reclusterVoices(db, DEFAULT_VOICE_SETTINGS);
 */
export async function reclusterVoices(
  db: Db,
  settings: VoiceSettings,
  actor: Actor = CLI_ACTOR,
): Promise<ReclusterSummary> {
  const started = performance.now();
  return withTransaction(db, async (tx) => {
    await lockIdentityAssignment(tx);
    const pool = await reclusterPool(tx);
    const clusters = await deriveClusters(tx, pool, settings);
    const summary = await applyClusters(tx, pool, clusters, actor);
    return { ...summary, ms: Math.round(performance.now() - started) };
  });
}

/** The clusters of `pool` (each a sorted list of voiceprint ids), in order of their first id. */
export async function deriveClusters(tx: Db, pool: ClusterPoint[], settings: VoiceSettings): Promise<string[][]> {
  const byId = new Map(pool.map((p) => [p.id, p]));
  const adjacency = new Map<string, Map<string, number>>(pool.map((p) => [p.id, new Map()]));
  for (let i = 0; i < pool.length; i += GRAPH_BATCH) {
    const ids = pool.slice(i, i + GRAPH_BATCH).map((p) => p.id);
    const edges = await nearestVoiceprintsOf(tx, ids, {
      k: NEIGHBOUR_K + 4,
      minSimilarity: NEIGHBOUR_SIMILARITY,
      efSearch: CLUSTER_EF_SEARCH,
    });
    for (const edge of edges) {
      const a = byId.get(edge.from);
      const b = byId.get(edge.to);
      if (!a || !b || a.spoofed !== b.spoofed) continue;
      adjacency.get(a.id)?.set(b.id, edge.similarity);
      adjacency.get(b.id)?.set(a.id, edge.similarity);
    }
  }
  const core = new Set(
    pool
      .filter((p) => p.speechSeconds >= settings.enrolMinSpeechS && (adjacency.get(p.id)?.size ?? 0) >= MIN_NEIGHBOURS)
      .map((p) => p.id),
  );

  const parent = new Map<string, string>();
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
  for (const id of core) parent.set(id, id);
  for (const id of core) {
    const mine = adjacency.get(id) as Map<string, number>;
    for (const other of mine.keys()) {
      if (!core.has(other)) continue;
      // linked only through a shared neighbour: one chance edge between two people merges nothing
      const theirs = adjacency.get(other) as Map<string, number>;
      if (![...theirs.keys()].some((n) => n !== id && mine.has(n))) continue;
      const [a, b] = [find(id), find(other)];
      // the smaller id is the root: the result does not depend on the order edges were seen in
      if (a === b) continue;
      const [low, high] = a < b ? [a, b] : [b, a];
      parent.set(high, low);
    }
  }
  const members = new Map<string, string[]>();
  const add = (root: string, id: string) => {
    const list = members.get(root);
    if (list) list.push(id);
    else members.set(root, [id]);
  };
  for (const id of core) add(find(id), id);
  for (const point of pool) {
    if (core.has(point.id)) continue;
    let best: { id: string; similarity: number } | null = null;
    for (const [other, similarity] of adjacency.get(point.id) ?? []) {
      if (!core.has(other)) continue;
      if (!best || similarity > best.similarity || (similarity === best.similarity && other < best.id)) {
        best = { id: other, similarity };
      }
    }
    if (best) add(find(best.id), point.id);
  }
  attachByCentroid(pool, members);
  return [...members.values()]
    .map((list) => list.sort())
    .sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1));
}

async function applyClusters(
  tx: Db,
  pool: ClusterPoint[],
  clusters: string[][],
  actor: Actor,
): Promise<Omit<ReclusterSummary, 'ms'>> {
  const before = new Map(pool.map((p) => [p.id, p.identityId]));
  const oldMembers = new Map<string, Set<string>>();
  for (const point of pool) {
    if (!point.identityId) continue;
    const set = oldMembers.get(point.identityId) ?? new Set<string>();
    set.add(point.id);
    oldMembers.set(point.identityId, set);
  }

  // old ↔ new by member overlap, largest first, one to one
  const overlaps: { identityId: string; cluster: number; shared: number }[] = [];
  clusters.forEach((members, cluster) => {
    const counts = new Map<string, number>();
    for (const id of members) {
      const old = before.get(id);
      if (old) counts.set(old, (counts.get(old) ?? 0) + 1);
    }
    for (const [identityId, shared] of counts) overlaps.push({ identityId, cluster, shared });
  });
  overlaps.sort((a, b) => b.shared - a.shared || (a.identityId < b.identityId ? -1 : 1) || a.cluster - b.cluster);
  const idOfCluster = new Map<number, string>();
  const taken = new Set<string>();
  for (const o of overlaps) {
    if (idOfCluster.has(o.cluster) || taken.has(o.identityId)) continue;
    idOfCluster.set(o.cluster, o.identityId);
    taken.add(o.identityId);
  }

  const reason = 'recluster voices';
  const created: string[] = [];
  const grown: string[] = [];
  let moved = 0;
  const clustered = new Set<string>();
  for (const [index, members] of clusters.entries()) {
    for (const id of members) clustered.add(id);
    const identityId = idOfCluster.get(index);
    if (identityId) {
      const arriving = members.filter((id) => before.get(id) !== identityId);
      if (arriving.length === 0) continue;
      await moveVoiceprints(tx, identityId, arriving, {
        assignedBy: 'recluster',
        action: 'reclustered',
        actor,
        reason,
      });
      grown.push(identityId);
      moved += arriving.length;
    } else {
      const id = await createIdentity(tx, {
        kind: 'unknown',
        origin: 'recluster',
        voiceprintIds: members,
        assignedBy: 'recluster',
        action: 'seeded',
        actor,
        reason,
      });
      created.push(id);
      moved += members.length;
    }
  }
  const leaving = pool.filter((p) => p.identityId && !clustered.has(p.id)).map((p) => p.id);
  await unassignVoiceprints(tx, leaving, { actor, reason, action: 'unclustered' });

  const newOf = new Map<string, string>();
  for (const [index, members] of clusters.entries()) {
    const identityId = idOfCluster.get(index);
    if (identityId) for (const id of members) newOf.set(id, identityId);
  }
  const shrunk: string[] = [];
  let unchanged = 0;
  for (const [identityId, members] of oldMembers) {
    const lost = [...members].some((id) => newOf.get(id) !== identityId);
    if (lost) shrunk.push(identityId);
    else if (!grown.includes(identityId)) unchanged++;
  }
  const states = await identitiesOf(tx, [...oldMembers.keys()]);
  const retired = states.filter((s) => s.memberCount === 0).map((s) => s.id);
  return {
    voiceprints: pool.length,
    clusters: clusters.length,
    created,
    grown: grown.sort(),
    shrunk: shrunk.sort().filter((id) => !retired.includes(id)),
    retired: retired.sort(),
    unchanged,
    moved,
    unassigned: leaving.length,
  };
}

/**
 * What the graph left out joins the cluster whose centroid it is most similar to (same spoof kind),
 * when that clears joinsCentroid against the runner-up: as the online step joins by centroid, so
 * that a call too far from every single call of its speaker still finds them.
 */
function attachByCentroid(pool: ClusterPoint[], members: Map<string, string[]>) {
  const byId = new Map(pool.map((p) => [p.id, p]));
  const clusters = [...members.entries()].map(([root, ids]) => {
    const centroid = meanDirection(ids.map((id) => (byId.get(id) as ClusterPoint).unit));
    return { root, centroid: Float64Array.from(centroid), spoofed: (byId.get(root) as ClusterPoint).spoofed };
  });
  const clustered = new Set([...members.values()].flat());
  for (const point of pool) {
    if (clustered.has(point.id)) continue;
    let best: { root: string; similarity: number } | null = null;
    let runnerUp: number | null = null;
    for (const cluster of clusters) {
      if (cluster.spoofed !== point.spoofed) continue;
      const similarity = dot(cluster.centroid, point.unit);
      if (!best || similarity > best.similarity) {
        if (best) runnerUp = best.similarity;
        best = { root: cluster.root, similarity };
      } else if (runnerUp === null || similarity > runnerUp) runnerUp = similarity;
    }
    // the pool's clusters are all `unknown`: analysts' identities are not re-derived
    if (best && joinsCentroid({ similarity: best.similarity, kind: 'unknown' }, runnerUp, BATCH_MARGIN_JOIN))
      members.get(best.root)?.push(point.id);
  }
}
