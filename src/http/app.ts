import { createRoute, z } from '@hono/zod-openapi';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { alertRoutes } from '../alerts/routes.ts';
import {
  ConflictError,
  InvalidInputError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaError,
} from '../errors.ts';
import { keyRoutes } from '../keys/routes.ts';
import { recordingRoutes } from '../recordings/routes.ts';
import { spoofRoutes } from '../spoofs/routes.ts';
import { statsRoutes } from '../stats/routes.ts';
import { accountRoutes } from '../voices/accounts/routes.ts';
import { identityRoutes } from '../voices/identities/routes.ts';
import { voiceRoutes } from '../voices/routes.ts';
import { staffRoutes } from '../voices/staff/routes.ts';
import { watchlistRoutes } from '../voices/watchlist/routes.ts';
import { mountDocs } from './docs.ts';
import type { AppDeps } from './env.ts';
import { type ProblemCode, problem, problemCodes, problemResponses } from './problems.ts';
import { createRouter } from './router.ts';

export const API_VERSION = '0.1.0';

const readyzRoute = createRoute({
  method: 'get',
  path: '/readyz',
  operationId: 'readiness',
  summary: 'Ready to serve: the database answers and is migrated',
  tags: ['health'],
  responses: {
    200: {
      description: 'Ready',
      content: { 'application/json': { schema: z.object({ status: z.literal('ready') }) } },
    },
    503: {
      description: 'Not ready',
      content: { 'application/json': { schema: z.object({ status: z.literal('unavailable') }) } },
    },
  },
});

const healthzRoute = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'health',
  summary: 'The process is up',
  tags: ['health'],
  responses: {
    200: { description: 'Up', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } },
    ...problemResponses('internal'),
  },
});

/**
 * The whole HTTP API: feature routers plugged into shared plumbing (request ids, problem+json
 * errors, OpenAPI document and /docs). Tests call `app.request(...)` on it without a socket.
 * @example const app = createApp({ db, log, ready: async () => true });
 */
export function createApp(deps: AppDeps) {
  const app = createRouter();
  app.use('*', requestId());
  app.use('*', async (c, next) => {
    const log = deps.log.child({ requestId: c.var.requestId });
    c.set('deps', deps);
    c.set('log', log);
    const started = performance.now();
    await next();
    log.debug(
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) },
      'request',
    );
  });

  app.openapi(healthzRoute, (c) => c.json({ status: 'ok' as const }, 200));
  app.openapi(readyzRoute, async (c) => {
    const ready = await deps.ready().catch(() => false);
    return ready ? c.json({ status: 'ready' as const }, 200) : c.json({ status: 'unavailable' as const }, 503);
  });
  app.route('/', recordingRoutes());
  app.route('/', keyRoutes());
  app.route('/', identityRoutes());
  app.route('/', voiceRoutes());
  app.route('/', staffRoutes());
  app.route('/', accountRoutes());
  app.route('/', watchlistRoutes());
  app.route('/', alertRoutes());
  app.route('/', spoofRoutes());
  app.route('/', statsRoutes());

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key from `voxtrace keys create` (scopes read ⊂ write ⊂ admin)',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'voxtrace API',
      version: API_VERSION,
      description:
        'Speaker re-identification and spoof-cluster search over Behavioral Signals embeddings. ' +
        'Errors are application/problem+json with a stable `type` per error.',
    },
  });
  mountDocs(app);

  app.notFound((c) => problem(c, 'not-found', `no route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    const mapped = mapError(error);
    if (mapped) return problem(c, mapped.code, mapped.detail, mapped.errors);
    (c.var.log ?? deps.log).error({ err: error, method: c.req.method, path: c.req.path }, 'unhandled error');
    return problem(c, 'internal', 'an internal error occurred; the request id identifies it in the server logs');
  });
  return app;
}
export type App = ReturnType<typeof createApp>;

function mapError(
  error: Error,
): { code: ProblemCode; detail: string; errors?: { path: string; message: string }[] } | null {
  if (error instanceof NotFoundError) return { code: 'not-found', detail: error.message };
  if (error instanceof ConflictError) return { code: 'conflict', detail: error.message };
  if (error instanceof InvalidInputError) return { code: 'validation', detail: error.message, errors: error.errors };
  if (error instanceof PayloadTooLargeError) return { code: 'payload-too-large', detail: error.message };
  if (error instanceof UnsupportedMediaError) return { code: 'unsupported-media-type', detail: error.message };
  if (error instanceof HTTPException) {
    const code = (Object.keys(problemCodes) as ProblemCode[]).find((k) => problemCodes[k].status === error.status);
    if (code && code !== 'internal') return { code, detail: error.message || problemCodes[code].title };
  }
  return null;
}
