import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { Actor } from '../audit/audit.ts';
import type { ApiKeyScope } from '../db/schema.ts';
import { findActiveKey, scopeAllows } from '../keys/keys.ts';
import type { AppEnv } from './env.ts';
import { problem } from './problems.ts';

/**
 * Requires `Authorization: Bearer <key>` with at least `scope`. Unknown and revoked keys get the
 * same 401 so that answers do not reveal which keys exist.
 * @example createRoute({ ..., middleware: [requireScope('read')] })
 */
export function requireScope(scope: ApiKeyScope) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) return problem(c, 'unauthorized', 'send an API key as "Authorization: Bearer <key>"');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return problem(c, 'unauthorized', 'the Authorization header must be "Bearer <key>"');
    const key = await findActiveKey(c.var.deps.db, match[1] as string);
    if (!key) return problem(c, 'unauthorized', 'the API key is unknown or revoked');
    if (!scopeAllows(key.scope, scope)) {
      return problem(c, 'forbidden', `this needs a key with scope "${scope}"; this key has "${key.scope}"`);
    }
    c.set('apiKeyId', key.id);
    await next();
  });
}

/**
 * The actor behind an authenticated request, for services that audit what they answer: the key
 * `requireScope` found, and the request id that the logs carry too.
 * @example const detail = await viewRecording(c.var.deps.db, actorOf(c), id, include);
 */
export function actorOf(c: Context<AppEnv>): Actor {
  return { source: 'api', keyId: c.var.apiKeyId, requestId: c.var.requestId };
}
