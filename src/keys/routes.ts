import { createRoute, z } from '@hono/zod-openapi';
import { apiKeyScopes } from '../db/schema.ts';
import { actorOf, requireScope } from '../http/auth.ts';
import { problemResponses } from '../http/problems.ts';
import { createRouter } from '../http/router.ts';
import { createApiKey, listApiKeys, revokeApiKeyById } from './keys.ts';

export const apiKeySchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    scope: z.enum(apiKeyScopes),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi('ApiKey');

export const createdApiKeySchema = apiKeySchema
  .extend({ key: z.string().openapi({ description: 'the secret; shown only in this response' }) })
  .openapi('CreatedApiKey');

export const createApiKeyBodySchema = z
  .object({
    scope: z.enum(apiKeyScopes),
    name: z.string().trim().min(1).max(200).optional(),
  })
  .strict()
  .openapi('CreateApiKey');

const adminOnly = { security: [{ bearerAuth: [] }], middleware: requireScope('admin'), tags: ['keys'] };

export const listKeysRoute = createRoute({
  ...adminOnly,
  method: 'get',
  path: '/v1/keys',
  operationId: 'listKeys',
  summary: 'List API keys (never their secrets)',
  responses: {
    200: {
      description: 'All keys, oldest first',
      content: { 'application/json': { schema: z.object({ items: z.array(apiKeySchema) }) } },
    },
    ...problemResponses('unauthorized', 'forbidden'),
  },
});

export const createKeyRoute = createRoute({
  ...adminOnly,
  method: 'post',
  path: '/v1/keys',
  operationId: 'createKey',
  summary: 'Create an API key',
  request: { body: { required: true, content: { 'application/json': { schema: createApiKeyBodySchema } } } },
  responses: {
    201: {
      description: 'The new key, with its secret',
      content: { 'application/json': { schema: createdApiKeySchema } },
    },
    ...problemResponses('validation', 'unauthorized', 'forbidden'),
  },
});

export const revokeKeyRoute = createRoute({
  ...adminOnly,
  method: 'post',
  path: '/v1/keys/{id}/revoke',
  operationId: 'revokeKey',
  summary: 'Revoke an API key',
  request: { params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }) }) },
  responses: {
    200: { description: 'The revoked key', content: { 'application/json': { schema: apiKeySchema } } },
    ...problemResponses('unauthorized', 'forbidden', 'not-found'),
  },
});

export function keyRoutes() {
  return createRouter()
    .openapi(listKeysRoute, async (c) => c.json({ items: await listApiKeys(c.var.deps.db, actorOf(c)) }, 200))
    .openapi(createKeyRoute, async (c) => {
      const created = await createApiKey(c.var.deps.db, c.req.valid('json'), actorOf(c));
      c.var.log.info({ keyId: created.id, scope: created.scope }, 'API key created');
      return c.json(created, 201);
    })
    .openapi(revokeKeyRoute, async (c) => {
      const revoked = await revokeApiKeyById(c.var.deps.db, c.req.valid('param').id, actorOf(c));
      c.var.log.info({ keyId: revoked.id }, 'API key revoked');
      return c.json(revoked, 200);
    });
}
