import { type Actor, SYSTEM_ACTOR } from '../../audit/audit.ts';
import type { VoiceSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import type { IdentityKind } from '../../db/schema.ts';
import { nearestNeighbours, speakerSpace } from '../../search/knn.ts';
import { type CentroidCandidate, type ClusterPoint, nearestCentroids, pointsById } from './clustering-queries.ts';
import { createIdentity, moveVoiceprints } from './membership.ts';
import {
  CLUSTER_EF_SEARCH,
  EXTEND_SIMILARITY,
  GENUINE_KINDS,
  IDENTITY_CANDIDATES,
  JOIN_SIMILARITY,
  MIN_NEIGHBOURS,
  NEIGHBOUR_K,
  NEIGHBOUR_SIMILARITY,
  ONLINE_MARGIN_JOIN,
} from './thresholds.ts';

/**
 * Online assignment of one new voiceprint to an identity (the analysis step, step.ts), in the
 * caller's transaction and under the assignment lock:
 *
 * 1. it joins the live identity whose centroid is most similar, when that reaches JOIN_SIMILARITY,
 *    or ONLINE_MARGIN_JOIN well ahead of the next centroid (`joinsCentroid`), and the identity
 *    may take it (the spoof rule, `mayJoin`);
 * 2. otherwise, as DBSCAN over the voiceprints seen so far (radius NEIGHBOUR_SIMILARITY, minPts
 *    MIN_NEIGHBOURS + 1), with Immich's online rules: when it is a core point it extends the
 *    identity of a core neighbour, or seeds an `unknown` identity with its unassigned neighbours;
 *    its arrival may also make an unassigned neighbour core, which then does the same (taking the new
 *    voiceprint along as a border point); a border point joins the identity of a core neighbour but
 *    never links two groups, so one noisy call between two people cannot chain them; a newly seeded
 *    identity sweeps in the unassigned voiceprints near its centroid that clear JOIN_SIMILARITY;
 * 3. otherwise it stays unassigned, until enough neighbours arrive.
 * Only a voiceprint with at least `enrolMinSpeechS` of speech can be a core point (seed or extend).
 * Voiceprints of the same recording are never each other's neighbours.
 */

export type AssignmentOutcome = 'kept' | 'joined' | 'extended' | 'seeded' | 'border' | 'unassigned';

type Neighbour = ClusterPoint & { similarity: number };

/** The kinds of identity a voiceprint joins by centroid only at JOIN_SIMILARITY (joinsCentroid). */
export const CLEAR_MATCH_KINDS: readonly IdentityKind[] = ['staff', 'fraudster'];

/**
 * Whether a voiceprint joins the identity of its most similar centroid (`best`), given the next most
 * similar centroid's similarity (`runnerUp`, null when there is none): at JOIN_SIMILARITY, or at
 * `rule.similarity` with a lead of `rule.margin` over the runner-up (ONLINE_MARGIN_JOIN,
 * BATCH_MARGIN_JOIN) — never below JOIN_SIMILARITY into a `staff` or a `fraudster` identity
 * (CLEAR_MATCH_KINDS). An agent's centroid, drawn from calls on every account, sits close to many
 * customers, and a customer's call placed there drops out of search (staff are excluded); a
 * customer's call placed in a fraudster's identity makes every later call of that customer a
 * watchlist hit as a member, when the identity is listed. Both take only clear matches.
 */
export function joinsCentroid(
  best: { similarity: number; kind: IdentityKind },
  runnerUp: number | null,
  rule: MarginJoin,
): boolean {
  if (best.similarity >= JOIN_SIMILARITY) return true;
  if (CLEAR_MATCH_KINDS.includes(best.kind) || runnerUp === null) return false;
  return best.similarity >= rule.similarity && best.similarity - runnerUp >= rule.margin;
}

export type MarginJoin = { readonly similarity: number; readonly margin: number };

/** Whether a voiceprint of this spoof class may be placed in this identity. */
export function mayJoin(spoofed: boolean, identity: { kind: IdentityKind; spoofed: boolean }): boolean {
  if (spoofed) {
    if ((GENUINE_KINDS as readonly string[]).includes(identity.kind)) return false;
    return identity.kind !== 'unknown' || identity.spoofed;
  }
  return identity.kind !== 'unknown' || !identity.spoofed;
}

/**
 * Assigns one voiceprint (see above); a voiceprint already in an identity is kept where it is, so a
 * replayed event assigns nothing twice.
 * @example const outcome = await assignVoiceprint(tx, settings, point);
 */
export async function assignVoiceprint(
  tx: Db,
  settings: VoiceSettings,
  point: ClusterPoint,
  actor: Actor = SYSTEM_ACTOR,
): Promise<AssignmentOutcome> {
  if (point.identityId) return 'kept';
  const context = assignmentContext(tx, settings, actor);

  const candidates = await context.centroidsOf(point);
  const best = candidates.find((c) => mayJoin(point.spoofed, c));
  const runnerUp = candidates.find((c) => c !== best)?.similarity ?? null;
  if (best && joinsCentroid(best, runnerUp, ONLINE_MARGIN_JOIN)) {
    await context.place(best.identityId, [point.id], 'joined', `centroid similarity ${best.similarity.toFixed(3)}`);
    return 'joined';
  }

  const neighbours = await context.neighboursOf(point);
  if (context.isCore(point, neighbours)) {
    const outcome = await context.grow(point, neighbours);
    if (outcome !== 'unassigned') return outcome;
  } else {
    // the new voiceprint may have made an unassigned neighbour core: that one grows and takes it along
    for (const other of neighbours) {
      if (context.assigned.has(point.id)) break;
      if (other.identityId || context.assigned.has(other.id) || !context.mayBeCore(other)) continue;
      const theirs = await context.neighboursOf(other);
      if (context.isCore(other, theirs)) await context.grow(other, theirs);
    }
  }
  if (context.assigned.has(point.id)) return 'border';

  // a border point joins a core neighbour's identity
  const core = await context.nearestCoreMember(point, neighbours, false);
  if (core) {
    await context.place(core.identityId, [point.id], 'joined', `border of ${core.id}`);
    return 'border';
  }
  return 'unassigned';
}

/** What one assignment tracks: the voiceprints it placed; and its moves, all through membership.ts. */
function assignmentContext(tx: Db, settings: VoiceSettings, actor: Actor) {
  const assigned = new Map<string, string>();
  const mayBeCore = (point: ClusterPoint) => point.speechSeconds >= settings.enrolMinSpeechS;
  const isCore = (point: ClusterPoint, neighbours: Neighbour[]) =>
    mayBeCore(point) && neighbours.length >= MIN_NEIGHBOURS;
  const identityOf = (point: ClusterPoint) => assigned.get(point.id) ?? point.identityId;
  const centroids = new Map<string, CentroidCandidate[]>();

  /** The nearest live identity centroids of `point` (looked up once per assignment). */
  async function centroidsOf(point: ClusterPoint): Promise<CentroidCandidate[]> {
    const known = centroids.get(point.id);
    if (known) return known;
    const found = await nearestCentroids(tx, point.unit, IDENTITY_CANDIDATES);
    centroids.set(point.id, found);
    return found;
  }

  /**
   * The voiceprints within the radius of `point`: other recordings, the same spoof class, nearest
   * first, as they are now (the kNN builder, then their rows).
   */
  async function neighboursOf(point: ClusterPoint): Promise<Neighbour[]> {
    const { neighbours } = await nearestNeighbours(tx, speakerSpace, point.unit, {
      // a recording holds a few voiceprints: asking for a few more leaves k once its own are dropped
      k: NEIGHBOUR_K + 4,
      efSearch: CLUSTER_EF_SEARCH,
    });
    const near = neighbours.filter((n) => n.recordingId !== point.recordingId && n.similarity >= NEIGHBOUR_SIMILARITY);
    const similarity = new Map(near.map((n) => [n.id, n.similarity]));
    const rows = await pointsById(tx, [...similarity.keys()]);
    return rows
      .filter((row) => row.spoofed === point.spoofed)
      .map((row) => ({ ...row, similarity: similarity.get(row.id) as number }))
      .sort((a, b) => b.similarity - a.similarity || a.id.localeCompare(b.id))
      .slice(0, NEIGHBOUR_K);
  }

  /**
   * The nearest neighbour that is in an identity `point` may join and is itself a core point (its
   * own neighbours counted): the one a border point joins. When `point` is a core point linking to
   * it (`linking`), the two must also share a neighbour: two calls of one person have the person's
   * other calls around them both, while a chance match between two people has none in common, so a
   * single edge between two people does not merge them.
   */
  async function nearestCoreMember(point: ClusterPoint, neighbours: Neighbour[], linking: boolean) {
    const mine = new Set(neighbours.map((n) => n.id));
    for (const neighbour of neighbours) {
      const identityId = identityOf(neighbour);
      if (!identityId) continue;
      if (neighbour.identityKind && !mayJoin(point.spoofed, { kind: neighbour.identityKind, spoofed: point.spoofed })) {
        continue;
      }
      const theirs = await neighboursOf(neighbour);
      if (!isCore(neighbour, theirs)) continue;
      if (linking && !theirs.some((n) => n.id !== point.id && mine.has(n.id))) continue;
      if (linking) {
        const centroid = (await centroidsOf(point)).find((c) => c.identityId === identityId);
        if (!centroid || centroid.similarity < EXTEND_SIMILARITY) continue;
      }
      return { id: neighbour.id, identityId };
    }
    return null;
  }

  /**
   * A new identity also takes the unassigned voiceprints that clear JOIN_SIMILARITY against its
   * centroid: calls of the voice that arrived before it had an identity, too far from any single
   * call to be a neighbour, would otherwise wait for the next recluster.
   */
  async function sweep(identityId: string, core: ClusterPoint, members: ClusterPoint[]) {
    const centroid = meanDirection(members.map((m) => m.unit));
    const found = await nearestNeighbours(tx, speakerSpace, centroid, {
      k: NEIGHBOUR_K + 4,
      efSearch: CLUSTER_EF_SEARCH,
    });
    const near = found.neighbours.filter((n) => n.similarity >= JOIN_SIMILARITY && !assigned.has(n.id));
    const rows = await pointsById(
      tx,
      near.map((n) => n.id),
    );
    const taken = rows.filter((r) => !r.identityId && r.spoofed === core.spoofed).map((r) => r.id);
    if (taken.length > 0) await place(identityId, taken, 'joined', `near the centroid seeded by ${core.id}`);
  }

  async function place(identityId: string, voiceprintIds: string[], action: string, reason: string) {
    await moveVoiceprints(tx, identityId, voiceprintIds, { assignedBy: 'online', action, actor, reason });
    for (const id of voiceprintIds) assigned.set(id, identityId);
  }

  /**
   * A core point's group: it and its unassigned neighbours that agree with the group (coherentGroup)
   * extend a core neighbour's identity, or seed one.
   */
  async function grow(core: ClusterPoint, neighbours: Neighbour[]): Promise<AssignmentOutcome> {
    const free = coherentGroup(
      core,
      neighbours.filter((p) => !identityOf(p)),
    );
    const target = await nearestCoreMember(core, neighbours, true);
    if (target) {
      await place(target.identityId, free, 'joined', `core neighbour of ${target.id}`);
      return 'extended';
    }
    if (free.length < 2) return 'unassigned';
    const identityId = await createIdentity(tx, {
      kind: 'unknown',
      origin: 'online',
      voiceprintIds: free,
      assignedBy: 'online',
      action: 'seeded',
      actor,
      reason: `core voiceprint ${core.id} with ${neighbours.length} neighbours`,
    });
    for (const id of free) assigned.set(id, identityId);
    await sweep(
      identityId,
      core,
      [core, ...neighbours].filter((p) => free.includes(p.id)),
    );
    return 'seeded';
  }

  return {
    centroidsOf,
    assigned,
    mayBeCore,
    isCore,
    neighboursOf,
    nearestCoreMember,
    place,
    grow,
  };
}

/**
 * The core point and those of `others` whose similarity to the mean of the rest of the group
 * reaches JOIN_SIMILARITY (the ids, core first): a neighbour within the radius by chance — another
 * person — sits far from the mean of the group's genuine calls, and is left out of it.
 */
export function coherentGroup(core: ClusterPoint, others: ClusterPoint[]): string[] {
  const members = [core, ...others];
  const sum = new Float64Array(core.unit.length);
  for (const m of members) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (m.unit[i] as number);
  const kept = others.filter((m) => {
    let dot = 0;
    let norm = 0;
    for (let i = 0; i < sum.length; i++) {
      const rest = (sum[i] as number) - (m.unit[i] as number);
      dot += rest * (m.unit[i] as number);
      norm += rest * rest;
    }
    return norm > 0 && dot / Math.sqrt(norm) >= JOIN_SIMILARITY;
  });
  return [core.id, ...kept.map((m) => m.id)];
}

/** The unit direction of the mean of unit vectors. */
export function meanDirection(units: readonly (readonly number[])[]): number[] {
  const sum = new Array<number>((units[0] as readonly number[]).length).fill(0);
  for (const u of units) for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (u[i] as number);
  const norm = Math.hypot(...sum);
  return sum.map((v) => v / norm);
}
