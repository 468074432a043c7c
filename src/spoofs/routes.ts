import { createRoute, z } from '@hono/zod-openapi';
import { spoofClusterStatuses } from '../db/schema.ts';
import { actorOf, requireScope } from '../http/auth.ts';
import { cursorParam, limitParam } from '../http/paging.ts';
import { problemResponses } from '../http/problems.ts';
import { createRouter } from '../http/router.ts';
import { decodeListCursor } from '../recordings/queries.ts';
import { CLUSTER_CHANGE_IDS_MAX, labelCluster, mergeClusters, splitCluster } from './clusters/edits.ts';
import {
  GRAPH_MAX_MEMBERS,
  GRAPH_MIN_SIMILARITY,
  graphCsv,
  viewCluster,
  viewClusterGraph,
  viewClusterList,
  viewClusterMembers,
} from './clusters/views.ts';
import { searchSpoofs } from './search.ts';
import { spoofSearchSchema } from './search-request.ts';

/** The Spoofs API (CONVENTIONS "Spoofs API"): spoof search and the spoof-cluster views and changes. */

const method = z.enum(['hnsw', 'hnsw-iterative', 'exact']);

export const spoofSearchAnswerSchema = z
  .object({
    verdict: z.object({
      clusterId: z
        .uuid()
        .nullable()
        .openapi({ description: 'the cluster the query belongs to (a near miss: the one it sits inside)' }),
      novel: z.boolean().openapi({ description: 'spoofed, and in no cluster: possibly a new generator or campaign' }),
    }),
    clusters: z.array(
      z.object({
        clusterId: z.uuid(),
        label: z.string().nullable(),
        similarity: z.number().openapi({ description: 'cosine similarity of the query to its centroid' }),
        votes: z.number().int().openapi({ description: 'how many of the neighbours are its members' }),
        size: z.number().int(),
        firstSeenAt: z.string().nullable(),
        lastSeenAt: z.string().nullable(),
      }),
    ),
    neighbours: z.array(
      z.object({
        utteranceId: z.uuid(),
        recordingId: z.uuid(),
        accountRef: z.string().nullable(),
        channel: z.string().nullable(),
        callAt: z.string().nullable(),
        clusterId: z.uuid().nullable(),
        pSpoofed: z.number().nullable(),
        similarity: z.number(),
      }),
    ),
    plan: z.object({ method, efSearch: z.number().int().nullable(), ms: z.number() }),
  })
  .openapi('SpoofSearchAnswer');
export type SpoofSearchResponse = z.infer<typeof spoofSearchAnswerSchema>;

const clusterSummarySchema = z
  .object({
    id: z.uuid(),
    label: z.string().nullable(),
    notes: z.string().nullable(),
    status: z.enum(spoofClusterStatuses),
    size: z.number().int().openapi({ description: 'member utterances' }),
    recordingCount: z.number().int(),
    accountCount: z.number().int(),
    channels: z.array(z.string()),
    firstSeenAt: z.string().nullable(),
    lastSeenAt: z.string().nullable(),
    meanPSpoofed: z.number().nullable(),
    medoidUtteranceId: z.uuid().nullable(),
    growth: z.number().int().openapi({ description: 'recordings it gained within the last 24 hours' }),
    radius: z.number().openapi({ description: 'the largest cosine distance of a member to the centroid' }),
    origin: z.string().openapi({ description: 'online, recluster or analyst (a split)' }),
    mergedInto: z.uuid().nullable(),
    statusReason: z.string().nullable().openapi({ description: 'why it is merged or retired' }),
    analystEditedAt: z
      .string()
      .nullable()
      .openapi({ description: 'when an analyst merged or split it: recluster leaves its members alone' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('SpoofClusterSummary');

const clusterViewSchema = clusterSummarySchema
  .extend({
    timeline: z.array(z.object({ day: z.string(), utterances: z.number().int(), recordings: z.number().int() })),
    accountRefs: z.array(z.string()),
    history: z.array(
      z.object({
        action: z.string(),
        utteranceIds: z.array(z.uuid()),
        relatedClusterIds: z.array(z.uuid()),
        reason: z.string().nullable(),
        source: z.string(),
        keyId: z.uuid().nullable(),
        createdAt: z.string(),
      }),
    ),
  })
  .openapi('SpoofCluster');
export type SpoofClusterResponse = z.infer<typeof clusterViewSchema>;

const clusterPageSchema = z
  .object({ items: z.array(clusterSummarySchema), nextCursor: z.string().nullable() })
  .openapi('SpoofClusterPage');
export type SpoofClusterPageResponse = z.infer<typeof clusterPageSchema>;

const memberPageSchema = z
  .object({
    items: z.array(
      z.object({
        utteranceId: z.uuid(),
        recordingId: z.uuid(),
        accountRef: z.string().nullable(),
        channel: z.string().nullable(),
        callAt: z.string().nullable(),
        speakerLabel: z.string().nullable(),
        start: z.number().nullable(),
        end: z.number().nullable(),
        pSpoofed: z.number().nullable(),
        similarity: z.number().openapi({ description: 'cosine similarity to the centroid' }),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .openapi('SpoofClusterMemberPage');
export type SpoofClusterMemberPageResponse = z.infer<typeof memberPageSchema>;

const graphSchema = z
  .object({
    clusterId: z.uuid(),
    size: z.number().int(),
    truncated: z.boolean().openapi({ description: `true when the cluster has more members than maxMembers` }),
    minSimilarity: z.number(),
    nodes: z.array(
      z.object({
        utteranceId: z.uuid(),
        recordingId: z.uuid(),
        accountRef: z.string().nullable(),
        similarity: z.number(),
      }),
    ),
    edges: z.array(z.object({ source: z.uuid(), target: z.uuid(), similarity: z.number() })),
  })
  .openapi('SpoofClusterGraph');
export type SpoofClusterGraphResponse = z.infer<typeof graphSchema>;

const idParams = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }) });
const pageQuery = z.object({ limit: limitParam, cursor: cursorParam(decodeListCursor) });
const reason = z.string().trim().min(1, 'say why (it is kept in the history)').max(2000);
const ids = (what: string) =>
  z
    .array(z.string().min(1))
    .min(1, `name at least one ${what}`)
    .max(CLUSTER_CHANGE_IDS_MAX, `at most ${CLUSTER_CHANGE_IDS_MAX} ids`);

export const labelClusterBodySchema = z
  .object({
    label: z.string().trim().min(1).max(200).nullable().optional(),
    notes: z.string().trim().max(10_000).nullable().optional(),
  })
  .strict()
  .refine((b) => b.label !== undefined || b.notes !== undefined, { message: 'give label, notes or both' })
  .openapi('LabelSpoofCluster');
export const mergeClustersBodySchema = z
  .object({ from: ids('cluster').openapi({ description: 'clusters whose members move into this one' }), reason })
  .strict()
  .openapi('MergeSpoofClusters');
export const splitClusterBodySchema = z
  .object({ utteranceIds: ids('utterance'), reason })
  .strict()
  .openapi('SplitSpoofCluster');

const readScope = { security: [{ bearerAuth: [] }], middleware: requireScope('read'), tags: ['spoofs'] };
const writeScope = { security: [{ bearerAuth: [] }], middleware: requireScope('write'), tags: ['spoofs'] };
const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });

export const searchSpoofsRoute = createRoute({
  ...readScope,
  method: 'post',
  path: '/v1/spoofs/search',
  operationId: 'searchSpoofs',
  summary: 'The spoof clusters and spoofed utterances nearest an utterance, a recording or an embedding',
  description:
    'neighbours: min(k, matching) spoofed utterances (upstream label) under the filter, nearest first, the ' +
    "query's own recording left out; clusters: the active clusters nearest by centroid, with the neighbours' votes; " +
    'verdict: the cluster the query belongs to, and whether it is a spoof of no known cluster (novel).',
  request: { body: { required: true, content: json(spoofSearchSchema) } },
  responses: {
    200: { description: 'The nearest clusters and utterances', content: json(spoofSearchAnswerSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found'),
  },
});

export const listClustersRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/spoof-clusters',
  operationId: 'listSpoofClusters',
  summary: 'Spoof clusters: largest, fastest-growing or most recently seen first',
  request: {
    query: pageQuery.extend({
      sort: z.enum(['size', 'growth', 'recent']).default('size'),
      status: z
        .enum([...spoofClusterStatuses, 'all'])
        .default('active')
        .openapi({ description: 'active (default), merged, retired or all' }),
    }),
  },
  responses: {
    200: { description: 'One page; nextCursor is null on the last', content: json(clusterPageSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden'),
  },
});

export const getClusterRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/spoof-clusters/{id}',
  operationId: 'getSpoofCluster',
  summary: 'One spoof cluster, with its daily timeline, accounts and history',
  request: { params: idParams },
  responses: {
    200: { description: 'The cluster (a merged one says mergedInto)', content: json(clusterViewSchema) },
    ...problemResponses('unauthorized', 'forbidden', 'not-found'),
  },
});

export const clusterMembersRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/spoof-clusters/{id}/members',
  operationId: 'listSpoofClusterMembers',
  summary: "A cluster's member utterances, latest call first",
  request: { params: idParams, query: pageQuery },
  responses: {
    200: { description: 'One page', content: json(memberPageSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found'),
  },
});

export const clusterGraphRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/spoof-clusters/{id}/graph',
  operationId: 'getSpoofClusterGraph',
  summary: "The members' pairwise-similarity graph, as JSON or CSV",
  description:
    `Nodes: the maxMembers (default and at most ${GRAPH_MAX_MEMBERS}) members nearest the centroid; edges: every pair ` +
    `of them at ≥ minSimilarity (default ${GRAPH_MIN_SIMILARITY}). format=csv answers the edges as text/csv ` +
    '(source,target,similarity).',
  request: {
    params: idParams,
    query: z.object({
      format: z.enum(['json', 'csv']).default('json'),
      maxMembers: z
        .string()
        .regex(/^\d{1,4}$/, `must be a whole number from 2 to ${GRAPH_MAX_MEMBERS}`)
        .transform(Number)
        .refine((n) => n >= 2 && n <= GRAPH_MAX_MEMBERS, `must be a whole number from 2 to ${GRAPH_MAX_MEMBERS}`)
        .optional(),
      minSimilarity: z
        .string()
        .regex(/^-?\d+(\.\d+)?$/, 'must be a number from -1 to 1')
        .transform(Number)
        .refine((n) => n >= -1 && n <= 1, 'must be a number from -1 to 1')
        .optional(),
    }),
  },
  responses: {
    200: {
      description: 'The graph',
      content: { ...json(graphSchema), 'text/csv': { schema: z.string() } },
    },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found'),
  },
});

export const labelClusterRoute = createRoute({
  ...writeScope,
  method: 'patch',
  path: '/v1/spoof-clusters/{id}',
  operationId: 'labelSpoofCluster',
  summary: "Set a cluster's label and notes (null clears one)",
  request: { params: idParams, body: { required: true, content: json(labelClusterBodySchema) } },
  responses: {
    200: { description: 'The cluster', content: json(clusterViewSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export const mergeClustersRoute = createRoute({
  ...writeScope,
  method: 'post',
  path: '/v1/spoof-clusters/{id}/merge',
  operationId: 'mergeSpoofClusters',
  summary: 'Merge clusters into this one',
  description:
    'Their members and near misses move here; they end merged with mergedInto = this id, their label carried when ' +
    'this one has none. 400 for a merge into itself, 404 for an unknown cluster, 409 when one is merged or retired. ' +
    'Recluster never undoes it.',
  request: { params: idParams, body: { required: true, content: json(mergeClustersBodySchema) } },
  responses: {
    200: { description: 'This cluster after the merge', content: json(clusterViewSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export const splitClusterRoute = createRoute({
  ...writeScope,
  method: 'post',
  path: '/v1/spoof-clusters/{id}/split',
  operationId: 'splitSpoofCluster',
  summary: 'Split member utterances off into a new cluster',
  description:
    '400 when an utterance is not a member, or the split names every member; 409 when the cluster is merged or ' +
    'retired. Recluster never undoes it.',
  request: { params: idParams, body: { required: true, content: json(splitClusterBodySchema) } },
  responses: {
    201: { description: 'The new cluster', content: json(clusterViewSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export function spoofRoutes() {
  return createRouter()
    .openapi(searchSpoofsRoute, async (c) =>
      c.json(await searchSpoofs(c.var.deps.db, c.req.valid('json'), actorOf(c)), 200),
    )
    .openapi(listClustersRoute, async (c) => {
      const { sort, status, limit, cursor } = c.req.valid('query');
      return c.json(await viewClusterList(c.var.deps.db, actorOf(c), { sort, status, limit, after: cursor }), 200);
    })
    .openapi(getClusterRoute, async (c) =>
      c.json(await viewCluster(c.var.deps.db, actorOf(c), c.req.valid('param').id), 200),
    )
    .openapi(clusterMembersRoute, async (c) => {
      const { limit, cursor } = c.req.valid('query');
      const page = await viewClusterMembers(c.var.deps.db, actorOf(c), c.req.valid('param').id, {
        limit,
        after: cursor,
      });
      return c.json(page, 200);
    })
    .openapi(clusterGraphRoute, async (c) => {
      const { format, maxMembers, minSimilarity } = c.req.valid('query');
      const graph = await viewClusterGraph(c.var.deps.db, actorOf(c), c.req.valid('param').id, {
        ...(maxMembers ? { maxMembers } : {}),
        ...(minSimilarity !== undefined ? { minSimilarity } : {}),
      });
      if (format === 'csv') return c.body(graphCsv(graph), 200, { 'content-type': 'text/csv; charset=utf-8' });
      return c.json(graph, 200);
    })
    .openapi(labelClusterRoute, async (c) => {
      const view = await labelCluster(c.var.deps.db, c.req.valid('param').id, c.req.valid('json'), actorOf(c));
      return c.json(view, 200);
    })
    .openapi(mergeClustersRoute, async (c) => {
      const body = c.req.valid('json');
      const view = await mergeClusters(c.var.deps.db, c.req.valid('param').id, body, actorOf(c));
      c.var.log.info({ clusterId: view.id, from: body.from }, 'spoof clusters merged');
      return c.json(view, 200);
    })
    .openapi(splitClusterRoute, async (c) => {
      const { id } = c.req.valid('param');
      const view = await splitCluster(c.var.deps.db, id, c.req.valid('json'), actorOf(c));
      c.var.log.info({ clusterId: id, newClusterId: view.id }, 'spoof cluster split');
      c.header('location', `/v1/spoof-clusters/${view.id}`);
      return c.json(view, 201);
    });
}
