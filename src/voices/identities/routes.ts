import { createRoute, z } from '@hono/zod-openapi';
import { assignmentSources, identityKinds, identityOrigins } from '../../db/schema.ts';
import { actorOf, requireScope } from '../../http/auth.ts';
import { cursorParam, limitParam } from '../../http/paging.ts';
import { problemResponses } from '../../http/problems.ts';
import { createRouter } from '../../http/router.ts';
import { decodeListCursor } from '../../recordings/queries.ts';
import { enrolIdentity, mergeIdentities, moveIntoIdentity, splitIdentity } from './edits.ts';
import { viewIdentity, viewIdentityHistory, viewIdentityList, viewIdentityVoiceprints } from './views.ts';

/** Most ids one change may name: far more than an analyst selects, few enough for one statement. */
export const IDENTITY_CHANGE_IDS_MAX = 1000;

export const identitySummarySchema = z
  .object({
    id: z.uuid(),
    kind: z.enum(identityKinds),
    name: z.string().nullable(),
    accountRef: z.string().nullable().openapi({ description: 'the account a customer is enrolled for' }),
    accountRefs: z
      .array(z.string())
      .openapi({ description: 'the accounts of its recordings, and its own account, sorted' }),
    recordingCount: z.number().int(),
    voiceprintCount: z.number().int(),
    firstSeenAt: z.string().openapi({
      description: 'its earliest call (callAt; else when it was stored); else when the identity was created',
    }),
    lastSeenAt: z.string(),
    watchlisted: z.boolean().openapi({ description: 'on the watchlist (GET /v1/watchlist)' }),
    origin: z
      .enum(identityOrigins)
      .openapi({ description: 'who created it: an analyst, online assignment, reclustering' }),
    analystEditedAt: z
      .string()
      .nullable()
      .openapi({ description: 'when an analyst last changed it; reclustering leaves such identities alone' }),
    mergedInto: z.uuid().nullable().openapi({ description: 'the identity it was merged into (then it is retired)' }),
    retiredAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    staffProposal: z
      .object({
        status: z.enum(['proposed', 'confirmed', 'rejected']),
        proposedAt: z.string(),
        evidence: z.object({
          calls: z.number().int(),
          accounts: z.number().int(),
          twoSpeakerShare: z.number(),
          channel: z.string().nullable(),
          channelShare: z.number(),
          windowDays: z.number(),
        }),
      })
      .optional()
      .openapi({ description: 'with proposed=staff: why voxtrace proposes this voice' }),
  })
  .openapi('IdentitySummary');

export const identityViewSchema = identitySummarySchema
  .extend({
    nearest: z
      .array(z.object({ identityId: z.uuid(), similarity: z.number() }))
      .openapi({ description: 'the 5 live identities with the most similar centroids (cosine), itself left out' }),
  })
  .openapi('Identity');
export type IdentityResponse = z.infer<typeof identityViewSchema>;

const identityPageSchema = z
  .object({ items: z.array(identitySummarySchema), nextCursor: z.string().nullable() })
  .openapi('IdentityPage');
export type IdentityPageResponse = z.infer<typeof identityPageSchema>;

const identityVoiceprintSchema = z
  .object({
    voiceprintId: z.uuid(),
    recordingId: z.uuid(),
    speakerLabel: z.string(),
    accountRef: z.string().nullable(),
    channel: z.string().nullable(),
    callAt: z.string().nullable(),
    speechSeconds: z.number(),
    meanPSpoofed: z.number().nullable(),
    assignedBy: z.enum(assignmentSources).nullable(),
    assignedAt: z.string().nullable(),
  })
  .openapi('IdentityVoiceprint');
const identityVoiceprintPageSchema = z
  .object({ items: z.array(identityVoiceprintSchema), nextCursor: z.string().nullable() })
  .openapi('IdentityVoiceprintPage');
export type IdentityVoiceprintPageResponse = z.infer<typeof identityVoiceprintPageSchema>;

const identityEventSchema = z
  .object({
    id: z.uuid(),
    action: z.string().openapi({
      example: 'merged',
      description: 'created, split, merged, merged_into, moved_in, moved_out, joined, …',
    }),
    voiceprintIds: z.array(z.uuid()),
    relatedIdentityIds: z.array(z.uuid()),
    reason: z.string().nullable(),
    source: z.enum(['api', 'cli', 'system']),
    keyId: z.uuid().nullable().openapi({ description: 'the API key that made the change' }),
    requestId: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('IdentityEvent');
const identityHistoryPageSchema = z
  .object({ items: z.array(identityEventSchema), nextCursor: z.string().nullable() })
  .openapi('IdentityHistoryPage');
export type IdentityHistoryPageResponse = z.infer<typeof identityHistoryPageSchema>;

const idParams = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }) });
const pageQuery = z.object({ limit: limitParam, cursor: cursorParam(decodeListCursor) });

const ids = (what: string) =>
  z
    .array(z.string().min(1))
    .min(1, `name at least one ${what}`)
    .max(IDENTITY_CHANGE_IDS_MAX, `at most ${IDENTITY_CHANGE_IDS_MAX} ids`);
const reason = z.string().trim().min(1, 'say why (it is kept in the history)').max(2000);

export const createIdentityBodySchema = z
  .object({
    kind: z.enum(['customer', 'fraudster', 'staff']),
    name: z.string().trim().min(1).max(200).optional(),
    accountRef: z.string().trim().min(1).max(200).optional().openapi({ description: 'required for a customer' }),
    voiceprintIds: ids('voiceprint').openapi({
      description: 'together at least VOXTRACE_ENROL_MIN_SPEECH_S seconds of speech; taken from any identity',
    }),
    reason: z.string().trim().max(2000).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.kind === 'customer' && !body.accountRef) {
      ctx.addIssue({
        code: 'custom',
        path: ['accountRef'],
        message: 'a customer identity needs the account it is enrolled for',
      });
    }
  })
  .openapi('CreateIdentity');
export type CreateIdentityBody = z.infer<typeof createIdentityBodySchema>;

export const mergeIdentitiesBodySchema = z
  .object({ from: ids('identity').openapi({ description: 'identities whose voiceprints move into this one' }), reason })
  .strict()
  .openapi('MergeIdentities');
export const voiceprintChangeBodySchema = z
  .object({ voiceprintIds: ids('voiceprint'), reason })
  .strict()
  .openapi('IdentityVoiceprintChange');

const readScope = { security: [{ bearerAuth: [] }], middleware: requireScope('read'), tags: ['identities'] };
const writeScope = { security: [{ bearerAuth: [] }], middleware: requireScope('write'), tags: ['identities'] };
const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });

export const listIdentitiesRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/identities',
  operationId: 'listIdentities',
  summary: 'List identities, newest first',
  description: 'Merged and retired identities are left out unless includeRetired=true.',
  request: {
    query: pageQuery.extend({
      kind: z.enum(identityKinds).optional(),
      accountRef: z
        .string()
        .min(1, 'must not be empty')
        .optional()
        .openapi({ description: 'identities enrolled for this account or heard on it' }),
      includeRetired: z.enum(['true', 'false']).optional(),
      proposed: z
        .enum(['staff'], { error: 'the only proposals are staff' })
        .optional()
        .openapi({
          description:
            'staff: the voices voxtrace proposes as members of staff (many accounts, two-speaker calls, one channel, ' +
            'a short window) that nobody has confirmed or rejected; each item carries its staffProposal',
        }),
    }),
  },
  responses: {
    200: { description: 'One page; nextCursor is null on the last', content: json(identityPageSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden'),
  },
});

export const getIdentityRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/identities/{id}',
  operationId: 'getIdentity',
  summary: 'One identity, with its nearest identities',
  request: { params: idParams },
  responses: {
    200: { description: 'The identity (a merged one says mergedInto)', content: json(identityViewSchema) },
    ...problemResponses('unauthorized', 'forbidden', 'not-found'),
  },
});

export const identityVoiceprintsRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/identities/{id}/voiceprints',
  operationId: 'listIdentityVoiceprints',
  summary: "An identity's voiceprints, latest call first",
  request: { params: idParams, query: pageQuery },
  responses: {
    200: { description: 'One page', content: json(identityVoiceprintPageSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found'),
  },
});

export const identityHistoryRoute = createRoute({
  ...readScope,
  method: 'get',
  path: '/v1/identities/{id}/history',
  operationId: 'getIdentityHistory',
  summary: "An identity's history, newest first: every change, who made it, why",
  request: { params: idParams, query: pageQuery },
  responses: {
    200: { description: 'One page', content: json(identityHistoryPageSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found'),
  },
});

export const createIdentityRoute = createRoute({
  ...writeScope,
  method: 'post',
  path: '/v1/identities',
  operationId: 'createIdentity',
  summary: 'Enrol a customer, fraudster or staff identity from voiceprints',
  description:
    'The voiceprints move out of any identity that held them. 400 when they hold less speech than ' +
    'VOXTRACE_ENROL_MIN_SPEECH_S; 409 when a customer or staff identity would get a mostly spoofed voiceprint ' +
    '(mean pSpoofed ≥ 0.5); 404 for an unknown voiceprint.',
  request: { body: { required: true, content: json(createIdentityBodySchema) } },
  responses: {
    201: { description: 'The new identity', content: json(identityViewSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export const mergeIdentitiesRoute = createRoute({
  ...writeScope,
  method: 'post',
  path: '/v1/identities/{id}/merge',
  operationId: 'mergeIdentities',
  summary: 'Merge identities into this one',
  description:
    "Their voiceprints move here; they are retired with mergedInto = this id. This identity's kind, name and " +
    'account are kept. Unknown identities merge into any; a confirmed one only into one of its kind (a customer: ' +
    'of the same account), never into an unknown one (409).',
  request: { params: idParams, body: { required: true, content: json(mergeIdentitiesBodySchema) } },
  responses: {
    200: { description: 'This identity after the merge', content: json(identityViewSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export const splitIdentityRoute = createRoute({
  ...writeScope,
  method: 'post',
  path: '/v1/identities/{id}/split',
  operationId: 'splitIdentity',
  summary: 'Split voiceprints off into a new identity of the same kind',
  description: '409 when a voiceprint is not in this identity, or when the split would leave it empty.',
  request: { params: idParams, body: { required: true, content: json(voiceprintChangeBodySchema) } },
  responses: {
    201: { description: 'The new identity', content: json(identityViewSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export const moveVoiceprintsRoute = createRoute({
  ...writeScope,
  method: 'post',
  path: '/v1/identities/{id}/voiceprints',
  operationId: 'moveVoiceprintsIntoIdentity',
  summary: 'Move voiceprints into this identity (from any identity, or none)',
  description:
    '409 when one is already here, when the move would empty the identity it leaves (merge that one instead), ' +
    'or when a customer or staff identity would get a mostly spoofed voiceprint.',
  request: { params: idParams, body: { required: true, content: json(voiceprintChangeBodySchema) } },
  responses: {
    200: { description: 'This identity after the move', content: json(identityViewSchema) },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export function identityRoutes() {
  return createRouter()
    .openapi(listIdentitiesRoute, async (c) => {
      const { cursor, includeRetired, kind, accountRef, limit, proposed } = c.req.valid('query');
      const page = await viewIdentityList(c.var.deps.db, actorOf(c), {
        kind,
        accountRef,
        proposedStaff: proposed === 'staff',
        includeRetired: includeRetired === 'true',
        limit,
        after: cursor,
      });
      return c.json(page, 200);
    })
    .openapi(getIdentityRoute, async (c) =>
      c.json(await viewIdentity(c.var.deps.db, actorOf(c), c.req.valid('param').id), 200),
    )
    .openapi(identityVoiceprintsRoute, async (c) => {
      const { cursor, limit } = c.req.valid('query');
      const page = await viewIdentityVoiceprints(c.var.deps.db, actorOf(c), c.req.valid('param').id, {
        limit,
        after: cursor,
      });
      return c.json(page, 200);
    })
    .openapi(identityHistoryRoute, async (c) => {
      const { cursor, limit } = c.req.valid('query');
      const page = await viewIdentityHistory(c.var.deps.db, actorOf(c), c.req.valid('param').id, {
        limit,
        after: cursor,
      });
      return c.json(page, 200);
    })
    .openapi(createIdentityRoute, async (c) => {
      const view = await enrolIdentity(c.var.deps.db, c.var.deps.voices, c.req.valid('json'), actorOf(c));
      c.var.log.info({ identityId: view.id, kind: view.kind }, 'identity created');
      c.header('location', `/v1/identities/${view.id}`);
      return c.json(view, 201);
    })
    .openapi(mergeIdentitiesRoute, async (c) => {
      const body = c.req.valid('json');
      const view = await mergeIdentities(c.var.deps.db, c.req.valid('param').id, body, actorOf(c));
      c.var.log.info({ identityId: view.id, from: body.from }, 'identities merged');
      return c.json(view, 200);
    })
    .openapi(splitIdentityRoute, async (c) => {
      const { id } = c.req.valid('param');
      const view = await splitIdentity(c.var.deps.db, id, c.req.valid('json'), actorOf(c));
      c.var.log.info({ identityId: id, newIdentityId: view.id }, 'identity split');
      c.header('location', `/v1/identities/${view.id}`);
      return c.json(view, 201);
    })
    .openapi(moveVoiceprintsRoute, async (c) => {
      const body = c.req.valid('json');
      const view = await moveIntoIdentity(c.var.deps.db, c.req.valid('param').id, body, actorOf(c));
      c.var.log.info({ identityId: view.id, voiceprints: body.voiceprintIds.length }, 'voiceprints moved');
      return c.json(view, 200);
    });
}
