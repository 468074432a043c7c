import { createRoute, z } from '@hono/zod-openapi';
import { identityKinds } from '../db/schema.ts';
import { actorOf, requireScope } from '../http/auth.ts';
import { problemResponses } from '../http/problems.ts';
import { createRouter } from '../http/router.ts';
import { compareVoices, searchVoices } from './search.ts';
import { voiceCompareSchema, voiceSearchSchema } from './search-request.ts';

const verdict = z.enum(['same', 'likely', 'unlikely']);

export const voiceMatchSchema = z
  .object({
    voiceprintId: z.uuid(),
    recordingId: z.uuid(),
    speakerLabel: z.string(),
    accountRef: z.string().nullable(),
    channel: z.string().nullable(),
    callAt: z.string().nullable(),
    identityId: z.uuid().nullable(),
    identityKind: z.enum(identityKinds).nullable(),
    similarity: z.number().openapi({ description: 'cosine similarity of the voiceprints, −1…1' }),
    score: z.number().openapi({ description: '−log10(far), capped at 6' }),
    far: z.number().openapi({ description: 'false-accept rate at this similarity, from the impostor cohort' }),
    verdict,
    normalisedScore: z.number().optional().openapi({ description: 'with asNorm: the AS-norm score far was read from' }),
  })
  .openapi('VoiceMatch');

export const voiceSearchAnswerSchema = z
  .object({
    items: z.array(voiceMatchSchema),
    plan: z.object({
      method: z.enum(['hnsw', 'hnsw-iterative', 'exact']),
      efSearch: z.number().int().nullable(),
      ms: z.number(),
      estimatedRows: z.number().int().nullable(),
    }),
    calibration: z.object({
      method: z.enum(['cohort', 'prior']),
      cohortSize: z.number().int(),
      pairCount: z.number().int(),
    }),
  })
  .openapi('VoiceSearchAnswer');
export type VoiceSearchResponse = z.infer<typeof voiceSearchAnswerSchema>;

export const voiceCompareAnswerSchema = z
  .object({
    similarity: z.number(),
    score: z.number(),
    far: z.number(),
    verdict,
    normalisedScore: z.number().optional(),
  })
  .openapi('VoiceCompareAnswer');
export type VoiceCompareResponse = z.infer<typeof voiceCompareAnswerSchema>;

const readScope = { security: [{ bearerAuth: [] }], middleware: requireScope('read'), tags: ['voices'] };

export const searchVoicesRoute = createRoute({
  ...readScope,
  method: 'post',
  path: '/v1/voices/search',
  operationId: 'searchVoices',
  summary: 'Voiceprints that sound like a voice: by voiceprint, recording, embedding, or examples',
  description:
    'Complete under any filter: items hold min(k, matching voiceprints) (groups with groupBy), ordered by score, then similarity. The recordings of the query are left out; staff unless includeStaff.',
  request: { body: { required: true, content: { 'application/json': { schema: voiceSearchSchema } } } },
  responses: {
    200: {
      description: 'The nearest voiceprints, and how they were found',
      content: { 'application/json': { schema: voiceSearchAnswerSchema } },
    },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export const compareVoicesRoute = createRoute({
  ...readScope,
  method: 'post',
  path: '/v1/voices/compare',
  operationId: 'compareVoices',
  summary: 'How alike two voices are',
  request: { body: { required: true, content: { 'application/json': { schema: voiceCompareSchema } } } },
  responses: {
    200: {
      description: 'Similarity and what it means',
      content: { 'application/json': { schema: voiceCompareAnswerSchema } },
    },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

export function voiceRoutes() {
  return createRouter()
    .openapi(searchVoicesRoute, async (c) =>
      c.json(await searchVoices(c.var.deps.db, c.req.valid('json'), actorOf(c)), 200),
    )
    .openapi(compareVoicesRoute, async (c) =>
      c.json(await compareVoices(c.var.deps.db, c.req.valid('json'), actorOf(c)), 200),
    );
}
