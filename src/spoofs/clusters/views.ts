import { type Actor, recordAudit } from '../../audit/audit.ts';
import type { Db } from '../../db/client.ts';
import type { SpoofClusterStatus } from '../../db/schema.ts';
import { NotFoundError } from '../../errors.ts';
import { isUuid } from '../../ids.ts';
import type { ListPosition, Page } from '../../recordings/queries.ts';
import {
  type ClusterHistoryItem,
  type ClusterMember,
  type ClusterSort,
  type ClusterSummary,
  clusterAccountRefs,
  clusterGraph,
  clusterHistory,
  clusterMembers,
  clusterSummary,
  clusterTimeline,
  listClusters,
} from './view-queries.ts';

/**
 * What an analyst sees of spoof clusters (CONVENTIONS "Spoofs API"): the list, one cluster with
 * its daily timeline, accounts and history, its members, and their similarity graph. Members are
 * utterances of customers' calls, so each read leaves an audit entry before it is answered.
 */

export type ClusterView = ClusterSummary & {
  timeline: { day: string; utterances: number; recordings: number }[];
  accountRefs: string[];
  history: ClusterHistoryItem[];
};

/** Members the graph holds at most: 500 nodes are ~125,000 pairs, compared in one statement. */
export const GRAPH_MAX_MEMBERS = 500;
/** Pairs below this similarity are left out of the graph unless asked otherwise. */
export const GRAPH_MIN_SIMILARITY = 0.5;

/** One cluster as a change answers it (the change is audited); NotFoundError for an unknown id. */
export async function clusterView(db: Db, id: string): Promise<ClusterView> {
  const summary = isUuid(id) ? await clusterSummary(db, id) : null;
  if (!summary) throw new NotFoundError(`no spoof cluster ${id}`);
  const [timeline, accountRefs, history] = await Promise.all([
    clusterTimeline(db, id),
    clusterAccountRefs(db, id),
    clusterHistory(db, id),
  ]);
  return { ...summary, timeline, accountRefs, history };
}

export async function viewCluster(db: Db, actor: Actor, id: string): Promise<ClusterView> {
  const view = await clusterView(db, id);
  await recordAudit(db, actor, { action: 'spoof_cluster.view', targetIds: [view.id], params: { id }, resultCount: 1 });
  return view;
}

export async function viewClusterList(
  db: Db,
  actor: Actor,
  options: { sort: ClusterSort; status: SpoofClusterStatus | 'all'; limit?: number; after?: ListPosition },
): Promise<Page<ClusterSummary>> {
  const page = await listClusters(db, options);
  await recordAudit(db, actor, {
    action: 'spoof_cluster.list',
    targetIds: page.items.map((c) => c.id),
    params: options,
    resultCount: page.items.length,
  });
  return page;
}

export async function viewClusterMembers(
  db: Db,
  actor: Actor,
  id: string,
  options: { limit?: number; after?: ListPosition },
): Promise<Page<ClusterMember>> {
  await requireCluster(db, id);
  const page = await clusterMembers(db, id, options);
  await recordAudit(db, actor, {
    action: 'spoof_cluster.members',
    targetIds: [id, ...page.items.map((m) => m.utteranceId)],
    params: { id, ...options },
    resultCount: page.items.length,
  });
  return page;
}

export type ClusterGraph = {
  clusterId: string;
  /** members in the cluster; nodes holds at most maxMembers of them, nearest the centroid */
  size: number;
  truncated: boolean;
  minSimilarity: number;
  nodes: { utteranceId: string; recordingId: string; accountRef: string | null; similarity: number }[];
  edges: { source: string; target: string; similarity: number }[];
};

export async function viewClusterGraph(
  db: Db,
  actor: Actor,
  id: string,
  options: { maxMembers?: number; minSimilarity?: number } = {},
): Promise<ClusterGraph> {
  const summary = await requireCluster(db, id);
  const maxMembers = options.maxMembers ?? GRAPH_MAX_MEMBERS;
  const minSimilarity = options.minSimilarity ?? GRAPH_MIN_SIMILARITY;
  const graph = await clusterGraph(db, id, { maxMembers, minSimilarity });
  await recordAudit(db, actor, {
    action: 'spoof_cluster.graph',
    targetIds: [id, ...graph.nodes.map((n) => n.utteranceId)],
    params: { id, maxMembers, minSimilarity },
    resultCount: graph.edges.length,
  });
  return { clusterId: id, size: summary.size, truncated: summary.size > graph.nodes.length, minSimilarity, ...graph };
}

/** The graph's edges as CSV (`source,target,similarity`), for analysts' own graph tools. */
export function graphCsv(graph: ClusterGraph): string {
  const rows = graph.edges.map((e) => `${e.source},${e.target},${e.similarity}`);
  return `${['source,target,similarity', ...rows].join('\n')}\n`;
}

async function requireCluster(db: Db, id: string): Promise<ClusterSummary> {
  const summary = isUuid(id) ? await clusterSummary(db, id) : null;
  if (!summary) throw new NotFoundError(`no spoof cluster ${id}`);
  return summary;
}
