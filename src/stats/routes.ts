import { createRoute, z } from '@hono/zod-openapi';
import { alertTypes, identityKinds, recordingStatuses } from '../db/schema.ts';
import { requireScope } from '../http/auth.ts';
import { problemResponses } from '../http/problems.ts';
import { createRouter } from '../http/router.ts';
import { readStats } from './stats.ts';

const count = z.number().int().nonnegative();
const countsOf = <K extends string>(keys: readonly K[]) =>
  z.object(Object.fromEntries(keys.map((k) => [k, count])) as Record<K, typeof count>);

export const statsSchema = z
  .object({
    recordings: countsOf(recordingStatuses).openapi({ description: 'recordings in each status, 0 included' }),
    analysisPending: count.openapi({
      description: 'stored recordings whose analysis steps have not all run (voxtrace analyze drains them)',
    }),
    analysisDead: count.openapi({ description: 'stored recordings whose analysis gave up: a step kept failing' }),
    utterances: count,
    voiceprints: count,
    unassignedVoiceprints: count.openapi({ description: 'voiceprints in no identity' }),
    identities: countsOf(identityKinds).openapi({
      description: 'identities in use (not merged, not retired) of each kind',
    }),
    openAlerts: countsOf(alertTypes).openapi({ description: 'open alerts of each type, 0 included' }),
    watchlisted: count.openapi({ description: 'voices on the watchlist' }),
    staffProposals: count.openapi({ description: 'voices proposed as staff that nobody has decided on' }),
  })
  .openapi('Stats');
export type StatsResponse = z.infer<typeof statsSchema>;

export const getStatsRoute = createRoute({
  method: 'get',
  path: '/v1/stats',
  operationId: 'getStats',
  summary: 'Counts of the whole store: recordings per status, the analysis backlog, voiceprints, identities',
  tags: ['stats'],
  security: [{ bearerAuth: [] }],
  middleware: requireScope('read'),
  responses: {
    200: { description: 'The counts', content: { 'application/json': { schema: statsSchema } } },
    ...problemResponses('unauthorized', 'forbidden'),
  },
});

export function statsRoutes() {
  return createRouter().openapi(getStatsRoute, async (c) => c.json(await readStats(c.var.deps.db), 200));
}
