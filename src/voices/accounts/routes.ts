import { createRoute, z } from '@hono/zod-openapi';
import { identityKinds } from '../../db/schema.ts';
import { actorOf, requireScope } from '../../http/auth.ts';
import { cursorParam, limitParam } from '../../http/paging.ts';
import { problemResponses } from '../../http/problems.ts';
import { createRouter } from '../../http/router.ts';
import { decodeListCursor } from '../../recordings/queries.ts';
import { viewAccountVoices } from './view.ts';

const accountVoiceSchema = z
  .object({
    identityId: z.uuid().nullable().openapi({ description: 'null for a voiceprint in no identity' }),
    kind: z.enum(identityKinds).nullable(),
    name: z.string().nullable(),
    watchlisted: z.boolean(),
    voiceprintIds: z.array(z.uuid()).openapi({ description: 'its voiceprints on this account, earliest first' }),
    recordingCount: z.number().int().openapi({ description: 'recordings of this account it is heard on' }),
    firstSeenAt: z.string(),
    lastSeenAt: z.string(),
    otherAccountRefs: z.array(z.string()).openapi({ description: 'the other accounts it is heard on (all of them)' }),
  })
  .openapi('AccountVoice');
const accountVoicesPageSchema = z
  .object({ items: z.array(accountVoiceSchema), nextCursor: z.string().nullable() })
  .openapi('AccountVoicePage');
export type AccountVoicesPageResponse = z.infer<typeof accountVoicesPageSchema>;

export const accountVoicesRoute = createRoute({
  method: 'get',
  path: '/v1/accounts/{ref}/voices',
  operationId: 'listAccountVoices',
  summary: 'Every voice heard on an account, most recently heard first',
  description:
    'One item per identity heard on the account and one per voiceprint in no identity; otherAccountRefs flags ' +
    'the voices also heard on other accounts. An account with no recordings answers an empty page.',
  tags: ['accounts'],
  security: [{ bearerAuth: [] }],
  middleware: requireScope('read'),
  request: {
    params: z.object({
      ref: z
        .string()
        .min(1)
        .max(200)
        .openapi({ param: { name: 'ref', in: 'path' } }),
    }),
    query: z.object({ limit: limitParam, cursor: cursorParam(decodeListCursor) }),
  },
  responses: {
    200: { description: 'One page', content: { 'application/json': { schema: accountVoicesPageSchema } } },
    ...problemResponses('validation', 'unauthorized', 'forbidden'),
  },
});

export function accountRoutes() {
  return createRouter().openapi(accountVoicesRoute, async (c) => {
    const { ref } = c.req.valid('param');
    const { cursor, limit } = c.req.valid('query');
    return c.json(await viewAccountVoices(c.var.deps.db, actorOf(c), ref, { limit, after: cursor }), 200);
  });
}
