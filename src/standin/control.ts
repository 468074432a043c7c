import { Hono } from 'hono';
import { FaultPlanError } from './faults.ts';
import type { StandinEnv, StandinState } from './routes.ts';
import { apiError, tokenMatches } from './wire.ts';

export type StandinStats = {
  /** Requests received per kind (auth, submit, submit-url, list, status, results), refused ones included. */
  requests: Record<string, number>;
  /** Processes created per process name. */
  submissions: Record<string, number>;
  processes: number;
  /** Responses withheld by a `hold` fault that a client is still waiting for. */
  held: number;
};

/**
 * The stand-in's own controls under /v5/__standin (same X-Auth-Token as the protocol):
 * GET/POST/DELETE faults, GET stats, POST release.
 * @example app.route('/', controlRoutes(state, { setFaults, stats, release }));
 */
export function controlRoutes(
  state: StandinState,
  controls: { setFaults(plan: unknown): void; stats(): StandinStats; release(): number },
): Hono<StandinEnv> {
  const app = new Hono<StandinEnv>();
  app.use('/v5/__standin/*', async (c, next) => {
    if (!tokenMatches(c.req.header('x-auth-token'), state.token)) {
      return apiError(c, 401, 'missing or invalid X-Auth-Token');
    }
    await next();
  });
  app.get('/v5/__standin/faults', (c) => c.json(state.faults.plan, 200));
  app.post('/v5/__standin/faults', async (c) => {
    const text = await c.req.text();
    try {
      controls.setFaults(text);
    } catch (error) {
      if (error instanceof FaultPlanError) return apiError(c, 400, error.message);
      throw error;
    }
    state.log.info({ rules: state.faults.plan.rules.length }, 'stand-in fault plan replaced');
    return c.json(state.faults.plan, 200);
  });
  app.delete('/v5/__standin/faults', (c) => {
    controls.setFaults({ rules: [] });
    return c.json(state.faults.plan, 200);
  });
  app.get('/v5/__standin/stats', (c) => c.json(controls.stats(), 200));
  app.post('/v5/__standin/release', (c) => c.json({ released: controls.release() }, 200));
  return app;
}
