import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { listen } from '../http/serve.ts';
import { createLogger, type Logger } from '../log.ts';
import { controlRoutes, type StandinStats } from './control.ts';
import { createWaits } from './delivery.ts';
import { createFaultInjector, type FaultPlan, parseFaultPlan, type RequestKind, requestKinds } from './faults.ts';
import { createProcessStore } from './processes.ts';
import { type StandinEnv, type StandinState, upstreamRoutes } from './routes.ts';
import { createVoiceModel } from './voices.ts';
import { apiError } from './wire.ts';

export type { StandinStats } from './control.ts';
export type { FaultPlan, FaultRule } from './faults.ts';

export type StartStandinOptions = {
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** The X-Auth-Token clients must send; generated when absent. */
  token?: string;
  /** Processing seconds per audio second; 0 completes at once. Default 0.05. */
  speed?: number;
  faults?: FaultPlan;
  /** Seeds the voice model and the fault plan's rate draws. Default 1. */
  seed?: number;
  log?: Logger;
};

export type Standin = {
  /** Base URL including /v5, e.g. http://127.0.0.1:8751/v5 */
  url: string;
  token: string;
  close(): Promise<void>;
  /** Replaces the fault plan (validated; counters start again). */
  setFaults(plan: FaultPlan): void;
  /** Lets every response withheld by a `hold` fault go; answers how many. */
  release(): number;
  stats(): StandinStats;
};

/**
 * Starts a local stand-in of the Behavioral Signals API (Deepfake Detection API under
 * /v5/detection, Behavioral API without it), indistinguishable on the wire from the real one:
 * streamed uploads, processes that complete over time, results documents with synthetic but
 * realistic embeddings, and injectable faults. Throws FaultPlanError for a bad plan.
 * @example
 * const standin = await startStandin({ speed: 0 });
 * await fetch(`${standin.url}/auth`, { headers: { 'X-Auth-Token': standin.token, 'X-Auth-Client': '1' } });
 * await standin.close();
 */
export async function startStandin(options: StartStandinOptions = {}): Promise<Standin> {
  const seed = options.seed ?? 1;
  const plan = parseFaultPlan(options.faults ?? { rules: [] });
  const log = (options.log ?? createLogger('silent')).child({ component: 'standin' });
  const waits = createWaits();
  const state: StandinState = {
    token: options.token ?? `vxs_${randomBytes(24).toString('base64url')}`,
    seed,
    store: createProcessStore({ speed: options.speed ?? 0.05 }),
    model: createVoiceModel(seed),
    log,
    faults: createFaultInjector(plan, seed),
    waits,
    requests: Object.fromEntries(requestKinds.map((kind) => [kind, 0])) as Record<RequestKind, number>,
    submissions: new Map(),
  };
  const setFaults = (next: unknown) => {
    state.faults = createFaultInjector(parseFaultPlan(next), seed);
  };
  const stats = (): StandinStats => ({
    requests: { ...state.requests },
    submissions: Object.fromEntries(state.submissions),
    processes: state.store.size(),
    held: waits.held(),
  });

  const app = new Hono<StandinEnv>();
  app.route('/', controlRoutes(state, { setFaults, stats, release: waits.release }));
  app.route('/', upstreamRoutes(state));
  app.notFound((c) => apiError(c, 404, `no route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    log.error({ err: error, method: c.req.method, path: c.req.path }, 'stand-in error');
    return apiError(c, 500, 'internal error in the stand-in');
  });

  // listen() only calls app.fetch, which every Hono app has; its parameter is typed for the API app
  const server = await listen(app, {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
  });
  log.info(
    { url: `${server.url}/v5`, speed: options.speed ?? 0.05, faultRules: plan.rules.length },
    'stand-in listening',
  );
  return {
    url: `${server.url}/v5`,
    token: state.token,
    async close() {
      // held and slow responses would keep their sockets (and close()) waiting
      waits.closeAll();
      await server.close();
    },
    setFaults,
    release: waits.release,
    stats,
  };
}
