import { type Actor, recordAudit } from '../../audit/audit.ts';
import type { Db } from '../../db/client.ts';
import { withTransaction } from '../../db/transaction.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../../errors.ts';
import { isUuid } from '../../ids.ts';
import { recordClusterEvent } from './history.ts';
import { lockSpoofClusters, refreshClusterFigures } from './queries.ts';
import {
  carryLabel,
  endCluster,
  insertEmptyCluster,
  lockClusterRows,
  membersOf,
  moveNearMisses,
  pinClusters,
  recomputeClusterSums,
  setLabelAndNotes,
  setMembership,
} from './recluster-queries.ts';
import { type ClusterView, clusterView } from './views.ts';

/**
 * An analyst's changes to spoof clusters: label and notes, merge, split. Each is audited and kept
 * in the cluster's history; a merge or split pins the clusters it shapes (`analyst_edited_at`), so
 * that `recluster spoofs` never undoes it. Bad input changes nothing: 400 naming the field, 404
 * for an unknown cluster, 409 for a cluster that is merged or retired.
 */

/** Most utterances one split names, and most clusters one merge takes. */
export const CLUSTER_CHANGE_IDS_MAX = 1000;

/**
 * Sets a cluster's label and/or notes (null clears one).
 * @example const view = await labelCluster(db, id, { label: 'voice-clone campaign, March' }, actor);
 */
export async function labelCluster(
  db: Db,
  id: string,
  change: { label?: string | null; notes?: string | null },
  actor: Actor,
): Promise<ClusterView> {
  if (change.label === undefined && change.notes === undefined) {
    throw invalid('json', 'give label, notes or both');
  }
  return withTransaction(db, async (tx) => {
    await requireActive(tx, [requireClusterId(id, 'id')], 'id');
    await setLabelAndNotes(tx, id, change);
    await recordClusterEvent(tx, {
      clusterId: id,
      action: 'labelled',
      reason: change.label === undefined ? 'notes changed' : `label: ${change.label ?? '(cleared)'}`,
      actor,
    });
    await recordAudit(tx, actor, {
      action: 'spoof_cluster.label',
      targetIds: [id],
      params: { id, ...change },
      resultCount: 1,
    });
    return clusterView(tx, id);
  });
}

/**
 * Moves the members (and near misses) of `from` into cluster `id`; they end `merged` into it.
 * @example const view = await mergeClusters(db, targetId, { from: [otherId], reason: 'one generator' }, actor);
 */
export async function mergeClusters(
  db: Db,
  id: string,
  input: { from: readonly string[]; reason: string },
  actor: Actor,
): Promise<ClusterView> {
  const targetId = requireClusterId(id, 'id');
  const from = distinctIds(input.from, 'json.from', 'cluster');
  if (from.includes(targetId)) throw invalid('json.from', `cluster ${targetId} cannot be merged into itself`);
  const reason = requireReason(input.reason);
  return withTransaction(db, async (tx) => {
    // the online step's lock first, as every writer of membership takes it: no deadlock between them
    await lockSpoofClusters(tx);
    await requireActive(tx, [targetId], 'id');
    await requireActive(tx, from, 'json.from');
    const members = (await membersOf(tx, from)).map((m) => m.id);
    await setMembership(tx, targetId, members);
    await moveNearMisses(tx, from, targetId);
    await recordClusterEvent(tx, {
      clusterId: targetId,
      action: 'merged',
      utteranceIds: members,
      relatedClusterIds: from,
      reason,
      actor,
    });
    for (const source of from) {
      await endCluster(tx, source, { status: 'merged', into: targetId, reason });
      await carryLabel(tx, source, targetId);
      await recordClusterEvent(tx, {
        clusterId: source,
        action: 'merged_into',
        relatedClusterIds: [targetId],
        reason,
        actor,
      });
    }
    await recomputeClusterSums(tx, [targetId]);
    await refreshClusterFigures(tx, [targetId]);
    await pinClusters(tx, [targetId, ...from]);
    await recordAudit(tx, actor, {
      action: 'spoof_cluster.merge',
      targetIds: [targetId, ...from],
      params: { id: targetId, ...input },
      resultCount: 1,
    });
    return clusterView(tx, targetId);
  });
}

/**
 * Takes `utteranceIds` out of cluster `id` into a new cluster (origin `analyst`), which it answers.
 * @example const created = await splitCluster(db, id, { utteranceIds: [a, b], reason: 'a second generator' }, actor);
 */
export async function splitCluster(
  db: Db,
  id: string,
  input: { utteranceIds: readonly string[]; reason: string },
  actor: Actor,
): Promise<ClusterView> {
  const sourceId = requireClusterId(id, 'id');
  const utteranceIds = distinctIds(input.utteranceIds, 'json.utteranceIds', 'utterance');
  const reason = requireReason(input.reason);
  return withTransaction(db, async (tx) => {
    await lockSpoofClusters(tx);
    await requireActive(tx, [sourceId], 'id');
    const members = new Set((await membersOf(tx, [sourceId])).map((m) => m.id));
    const strangers = utteranceIds.filter((u) => !members.has(u));
    if (strangers.length > 0) {
      throw invalid('json.utteranceIds', `not members of cluster ${sourceId}: ${strangers.slice(0, 10).join(', ')}`);
    }
    if (utteranceIds.length === members.size) {
      throw invalid('json.utteranceIds', `names every member of cluster ${sourceId}: a split must leave it some`);
    }
    const createdId = await insertEmptyCluster(tx, 'analyst');
    await setMembership(tx, createdId, utteranceIds);
    await recordClusterEvent(tx, {
      clusterId: sourceId,
      action: 'split',
      utteranceIds,
      relatedClusterIds: [createdId],
      reason,
      actor,
    });
    await recordClusterEvent(tx, {
      clusterId: createdId,
      action: 'split_from',
      utteranceIds,
      relatedClusterIds: [sourceId],
      reason,
      actor,
    });
    await recomputeClusterSums(tx, [sourceId, createdId]);
    await refreshClusterFigures(tx, [sourceId, createdId]);
    await pinClusters(tx, [sourceId, createdId]);
    await recordAudit(tx, actor, {
      action: 'spoof_cluster.split',
      targetIds: [sourceId, createdId, ...utteranceIds],
      params: { id: sourceId, ...input },
      resultCount: 1,
    });
    return clusterView(tx, createdId);
  });
}

function requireClusterId(id: string, path: string): string {
  if (!isUuid(id)) throw new NotFoundError(`no spoof cluster ${id}${path === 'id' ? '' : ` (${path})`}`);
  return id;
}

/** Every named cluster exists and is active: 404 naming the unknown ones, 409 for merged or retired ones. */
async function requireActive(tx: Db, ids: readonly string[], path: string): Promise<void> {
  const found = await lockClusterRows(tx, ids);
  const missing = ids.filter((id) => !found.some((f) => f.id === id));
  if (missing.length > 0) {
    throw new NotFoundError(`no spoof cluster ${missing.join(', ')}${path === 'id' ? '' : ` (${path})`}`);
  }
  const ended = found.filter((f) => f.status !== 'active');
  if (ended.length > 0) {
    throw new ConflictError(
      ended
        .map((f) =>
          f.status === 'merged'
            ? `spoof cluster ${f.id} is merged into ${f.mergedInto} (${path}): use that one`
            : `spoof cluster ${f.id} is retired (${path})`,
        )
        .join('; '),
    );
  }
}

function distinctIds(ids: readonly string[], path: string, what: string): string[] {
  if (ids.length === 0) throw invalid(path, `name at least one ${what}`);
  if (ids.length > CLUSTER_CHANGE_IDS_MAX) throw invalid(path, `at most ${CLUSTER_CHANGE_IDS_MAX} ids`);
  const bad = ids.filter((id) => !isUuid(id));
  if (bad.length > 0) throw invalid(path, `not ${what} ids (uuid): ${bad.slice(0, 5).join(', ')}`);
  const distinct = [...new Set(ids)];
  if (distinct.length !== ids.length) throw invalid(path, 'names an id twice');
  return distinct;
}

function requireReason(reason: string): string {
  const trimmed = (reason ?? '').trim();
  if (!trimmed) throw invalid('json.reason', 'say why (it is kept in the history)');
  return trimmed;
}

function invalid(path: string, message: string) {
  return new InvalidInputError(`${path}: ${message}`, [{ path, message }]);
}
