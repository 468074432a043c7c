import { createRoute, z } from '@hono/zod-openapi';
import { identityKinds } from '../../db/schema.ts';
import { actorOf, requireScope } from '../../http/auth.ts';
import { cursorParam, limitParam } from '../../http/paging.ts';
import { problemResponses } from '../../http/problems.ts';
import { createRouter } from '../../http/router.ts';
import { decodeListCursor } from '../../recordings/queries.ts';
import { addToWatchlist, removeFromWatchlist, viewWatchlist } from './watchlist.ts';

export const watchlistEntrySchema = z
  .object({
    id: z.uuid(),
    identityId: z.uuid().openapi({ description: 'the listed identity (kind fraudster)' }),
    name: z.string().nullable(),
    kind: z.enum(identityKinds),
    reason: z.string(),
    voiceprintId: z.uuid().nullable().openapi({ description: 'the voiceprint the entry was made from' }),
    seedRecordingId: z.uuid().nullable().openapi({ description: "that voiceprint's recording: never a hit" }),
    lookBack: z
      .object({
        checked: z.number().int().openapi({ description: 'voiceprints compared with the listed voice' }),
        hits: z.number().int().openapi({ description: 'recordings alerted (watchlist_hit)' }),
      })
      .openapi({ description: 'the look-back over history that ran when the entry was added' }),
    createdAt: z.string(),
    keyId: z.uuid().nullable(),
  })
  .openapi('WatchlistEntry');
export type WatchlistEntryResponse = z.infer<typeof watchlistEntrySchema>;

const watchlistPageSchema = z
  .object({ items: z.array(watchlistEntrySchema), nextCursor: z.string().nullable() })
  .openapi('WatchlistPage');
export type WatchlistPageResponse = z.infer<typeof watchlistPageSchema>;

export const watchlistAddBodySchema = z
  .object({
    voiceprintId: z.string().min(1).optional().openapi({ format: 'uuid' }),
    identityId: z.string().min(1).optional().openapi({ format: 'uuid' }),
    reason: z.string().trim().min(1, 'say why this voice is listed (it is kept with the entry)').max(2000),
    name: z.string().trim().min(1).max(200).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if ((body.voiceprintId === undefined) === (body.identityId === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [body.voiceprintId === undefined ? 'voiceprintId' : 'identityId'],
        message: 'name exactly one of voiceprintId and identityId',
      });
    }
  })
  .openapi('WatchlistAdd');

const removeBodySchema = z
  .object({ reason: z.string().trim().min(1).max(2000).optional() })
  .strict()
  .openapi('WatchlistRemove');

const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });
const readScope = { security: [{ bearerAuth: [] }], middleware: requireScope('read'), tags: ['watchlist'] };
const writeScope = { security: [{ bearerAuth: [] }], middleware: requireScope('write'), tags: ['watchlist'] };

export const addToWatchlistRoute = createRoute({
  ...writeScope,
  method: 'post',
  path: '/v1/watchlist',
  operationId: 'addToWatchlist',
  summary: 'List a fraudster voice; answers after the look-back over history',
  description:
    'A voiceprint entry lists its identity (or a new one holding it) as a fraudster. Every stored recording of ' +
    'that identity, or matching any of its voiceprints at far ≤ VOXTRACE_WATCHLIST_FAR, gets a watchlist_hit ' +
    "alert — but not the entry's own recording; so does every recording stored later. 400 with less speech than " +
    'VOXTRACE_ENROL_MIN_SPEECH_S; 404 for an unknown id; 409 for a customer, staff, merged or retired identity. ' +
    'A voice already listed is answered 200 with its entry, and no new look-back.',
  request: { body: { required: true, content: json(watchlistAddBodySchema) } },
  responses: {
    201: { description: 'Listed; the look-back ran', content: json(watchlistEntrySchema) },
    200: { description: 'Already listed: the stored entry', content: json(watchlistEntrySchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export const listWatchlistRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/watchlist',
  operationId: 'listWatchlist',
  summary: 'The watchlist, newest entry first',
  request: { query: z.object({ limit: limitParam, cursor: cursorParam(decodeListCursor) }) },
  responses: {
    200: { description: 'One page', content: json(watchlistPageSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden'),
  },
});

export const removeFromWatchlistRoute = createRoute({
  ...writeScope,
  method: 'delete',
  path: '/v1/watchlist/{identityId}',
  operationId: 'removeFromWatchlist',
  summary: 'Take a voice off the watchlist',
  description:
    'The identity returns to unknown; its open watchlist_hit alerts are dismissed with the reason (JSON body ' +
    '`{reason}` or query `reason`; default "removed from the watchlist"). 404 when it is not listed.',
  request: {
    params: z.object({ identityId: z.string().openapi({ param: { name: 'identityId', in: 'path' }, format: 'uuid' }) }),
    query: z.object({ reason: z.string().trim().min(1).max(2000).optional() }),
    body: { required: false, content: json(removeBodySchema) },
  },
  responses: {
    204: { description: 'Removed' },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found'),
  },
});

export function watchlistRoutes() {
  return createRouter()
    .openapi(addToWatchlistRoute, async (c) => {
      const { created, ...entry } = await addToWatchlist(
        c.var.deps.db,
        c.var.deps.voices,
        c.req.valid('json'),
        actorOf(c),
      );
      c.var.log.info({ identityId: entry.identityId, lookBack: entry.lookBack, created }, 'watchlist entry');
      if (!created) return c.json(entry, 200);
      c.header('location', `/v1/identities/${entry.identityId}`);
      return c.json(entry, 201);
    })
    .openapi(listWatchlistRoute, async (c) => {
      const { cursor, limit } = c.req.valid('query');
      return c.json(await viewWatchlist(c.var.deps.db, actorOf(c), { limit, after: cursor }), 200);
    })
    .openapi(removeFromWatchlistRoute, async (c) => {
      const { identityId } = c.req.valid('param');
      const reason = c.req.valid('json').reason ?? c.req.valid('query').reason;
      const { dismissed } = await removeFromWatchlist(c.var.deps.db, identityId, { reason }, actorOf(c));
      c.var.log.info({ identityId, dismissed }, 'watchlist entry removed');
      return c.body(null, 204);
    });
}
