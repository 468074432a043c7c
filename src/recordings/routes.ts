import { createRoute, z } from '@hono/zod-openapi';
import { recordingStatuses, upstreamApis } from '../db/schema.ts';
import { requireScope } from '../http/auth.ts';
import { problemResponses } from '../http/problems.ts';
import { createRouter } from '../http/router.ts';
import { getRecordingDetail } from './queries.ts';

const includeValues = ['embeddings', 'document'] as const;

const utteranceSchema = z
  .object({
    id: z.uuid(),
    upstreamId: z.string().openapi({ description: 'the upstream utterance id ("0", "1", …)' }),
    startS: z.number().nullable(),
    endS: z.number().nullable(),
    speakerLabel: z.string().nullable(),
    transcript: z.string().nullable(),
    language: z.string().nullable(),
    deepfakeLabel: z.string().nullable().openapi({ example: 'bonafide' }),
    pSpoofed: z.number().nullable(),
    deepfakeEmbedding: z
      .array(z.number())
      .nullable()
      .optional()
      .openapi({ description: '768 values, unit length (halfvec precision); only with include=embeddings' }),
    deepfakeRawNorm: z.number().nullable().optional(),
  })
  .openapi('Utterance');

const voiceprintSchema = z
  .object({
    id: z.uuid(),
    speakerLabel: z.string(),
    rawNorm: z.number().openapi({ description: 'norm of the upstream vector; embedding × rawNorm gives it back' }),
    speechSeconds: z.number(),
    utteranceCount: z.number().int(),
    meanPSpoofed: z.number().nullable(),
    embedding: z
      .array(z.number())
      .optional()
      .openapi({ description: '192 values, unit length; only with include=embeddings' }),
  })
  .openapi('Voiceprint');

export const recordingDetailSchema = z
  .object({
    id: z.uuid(),
    status: z.enum(recordingStatuses),
    source: z.enum(['upload', 'import']),
    sha256: z.string().nullable(),
    accountRef: z.string().nullable(),
    channel: z.string().nullable(),
    callAt: z.string().nullable(),
    meta: z.record(z.string(), z.unknown()),
    upstream: z.object({
      api: z.enum(upstreamApis).nullable(),
      cid: z.number().int().nullable(),
      pid: z.number().int().nullable(),
    }),
    error: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    completedAt: z.string().nullable(),
    utterances: z.array(utteranceSchema),
    voiceprints: z.array(voiceprintSchema),
    rawDocument: z
      .unknown()
      .optional()
      .openapi({ description: 'the upstream document as stored; only with include=document' }),
    rawBody: z.string().nullable().optional(),
  })
  .openapi('RecordingDetail');
export type RecordingDetailResponse = z.infer<typeof recordingDetailSchema>;

export const getRecordingRoute = createRoute({
  method: 'get',
  path: '/v1/recordings/{id}',
  operationId: 'getRecording',
  summary: 'Get a recording with its utterances and voiceprints',
  tags: ['recordings'],
  security: [{ bearerAuth: [] }],
  middleware: requireScope('read'),
  request: {
    params: z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }) }),
    query: z.object({
      include: z
        .string()
        .optional()
        .refine((v) => !v || v.split(',').every((part) => (includeValues as readonly string[]).includes(part.trim())), {
          message: `a comma-separated list of: ${includeValues.join(', ')}`,
        })
        .openapi({
          description: 'embeddings: vectors as number arrays; document: the raw upstream document',
          example: 'embeddings',
        }),
    }),
  },
  responses: {
    200: { description: 'The recording', content: { 'application/json': { schema: recordingDetailSchema } } },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'not-found'),
  },
});

export function recordingRoutes() {
  return createRouter().openapi(getRecordingRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { include } = c.req.valid('query');
    const parts = new Set((include ?? '').split(',').map((p) => p.trim()));
    const detail = await getRecordingDetail(c.var.deps.db, id, {
      embeddings: parts.has('embeddings'),
      document: parts.has('document'),
    });
    return c.json(recordingDetailSchema.parse(detail), 200);
  });
}
