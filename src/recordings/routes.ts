import { createRoute, z } from '@hono/zod-openapi';
import { callVerdicts, identityKinds, recordingStatuses, upstreamApis } from '../db/schema.ts';
import { actorOf, requireScope } from '../http/auth.ts';
import { RECORDING_IDS_MAX } from '../http/limits.ts';
import { cursorParam, limitParam } from '../http/paging.ts';
import { problemResponses } from '../http/problems.ts';
import { createRouter } from '../http/router.ts';
import { isUuid } from '../ids.ts';
import { createRecording, retryRecording, UPLOAD_FIELDS } from './intake.ts';
import { decodeListCursor, isoInstant, listRecordings } from './queries.ts';
import { viewRecording } from './view.ts';

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
    identityId: z.uuid().nullable().openapi({ description: 'the identity this voice belongs to; null when in none' }),
    identityKind: z.enum(identityKinds).nullable(),
    embedding: z
      .array(z.number())
      .optional()
      .openapi({ description: '192 values, unit length; only with include=embeddings' }),
  })
  .openapi('Voiceprint');

export const recordingSummarySchema = z
  .object({
    id: z.uuid(),
    status: z.enum(recordingStatuses),
    source: z.enum(['upload', 'import']),
    sha256: z.string().nullable().openapi({ description: 'sha256 of the audio bytes; null for an imported document' }),
    accountRef: z.string().nullable(),
    channel: z.string().nullable(),
    callAt: z.string().nullable(),
    meta: z.record(z.string(), z.unknown()),
    fileName: z.string().nullable().openapi({ description: "the uploader's file name, for display only" }),
    audioFormat: z.enum(['wav', 'mp3']).nullable().openapi({ description: 'recognised from the content' }),
    audioBytes: z.number().int().nullable(),
    durationS: z.number().nullable().openapi({ description: 'seconds of audio, from the file itself' }),
    attempts: z.number().int().openapi({ description: 'failed tries of the current submission' }),
    error: z.string().nullable(),
    upstream: z.object({
      api: z.enum(upstreamApis).nullable(),
      cid: z.number().int().nullable(),
      pid: z.number().int().nullable(),
    }),
    createdAt: z.string(),
    updatedAt: z.string(),
    completedAt: z.string().nullable(),
  })
  .openapi('RecordingSummary');
export type RecordingSummaryResponse = z.infer<typeof recordingSummarySchema>;

const spoofSchema = z
  .object({
    verdict: z.enum(callVerdicts).openapi({
      description:
        'the call verdict over utterances of ≥ VOXTRACE_SPOOF_MIN_UTTERANCE_S with a label (docs/spoofs.md): spoofed, mixed, suspicious (near misses, no spoofed speech), bonafide, unknown (nothing judged)',
    }),
    spoofedShare: z.number().nullable().openapi({ description: 'spoofed speech time ÷ judged speech time' }),
    peakPSpoofed: z.number().nullable(),
    nearMisses: z.array(z.object({ utteranceId: z.uuid(), clusterId: z.uuid() })),
    clusterIds: z.array(z.uuid()),
    timeline: z.array(
      z.object({
        utteranceId: z.uuid(),
        speakerLabel: z.string().nullable(),
        start: z.number().nullable(),
        end: z.number().nullable(),
        pSpoofed: z.number().nullable(),
        label: z.string().nullable().openapi({ description: "the upstream's label" }),
        clusterId: z.uuid().nullable(),
        nearMiss: z.boolean(),
      }),
    ),
  })
  .nullable()
  .openapi('RecordingSpoof', { description: 'the spoof evidence of the call; null until it is analysed' });

export const recordingDetailSchema = recordingSummarySchema
  .extend({
    utterances: z.array(utteranceSchema),
    voiceprints: z.array(voiceprintSchema),
    spoof: spoofSchema,
    rawDocument: z
      .unknown()
      .optional()
      .openapi({ description: 'the upstream document as stored; only with include=document' }),
    rawBody: z.string().nullable().optional(),
  })
  .openapi('RecordingDetail');
export type RecordingDetailResponse = z.infer<typeof recordingDetailSchema>;

const recordingIdParams = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, format: 'uuid' }),
});

export const getRecordingRoute = createRoute({
  method: 'get',
  path: '/v1/recordings/{id}',
  operationId: 'getRecording',
  summary: 'Get a recording with its utterances and voiceprints',
  tags: ['recordings'],
  security: [{ bearerAuth: [] }],
  middleware: requireScope('read'),
  request: {
    params: recordingIdParams,
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

export const listRecordingsQuerySchema = z
  .object({
    status: z.enum(recordingStatuses).optional(),
    accountRef: z.string().min(1, 'must not be empty').optional(),
    channel: z.string().min(1, 'must not be empty').optional(),
    from: isoInstant.optional().openapi({ description: 'callAt at or after this instant', example: '2026-03-01' }),
    to: isoInstant
      .optional()
      .openapi({ description: 'callAt before this instant (exclusive)', example: '2026-04-01T00:00:00Z' }),
    limit: limitParam,
    cursor: cursorParam(decodeListCursor),
    ids: z
      .string()
      .transform((v) => v.split(',').map((id) => id.trim()))
      .refine(
        (ids) => ids.length <= RECORDING_IDS_MAX && ids.every((id) => isUuid(id)),
        `must be 1 to ${RECORDING_IDS_MAX} comma-separated recording ids`,
      )
      .optional()
      .openapi({
        description: `only these recordings (1 to ${RECORDING_IDS_MAX} ids, comma-separated): the states of many in one request`,
      }),
  })
  .superRefine((query, ctx) => {
    if (query.from && query.to && query.from > query.to) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'must not be before from' });
    }
  });

const recordingPageSchema = z
  .object({ items: z.array(recordingSummarySchema), nextCursor: z.string().nullable() })
  .openapi('RecordingPage');
export type RecordingPageResponse = z.infer<typeof recordingPageSchema>;

export const listRecordingsRoute = createRoute({
  method: 'get',
  path: '/v1/recordings',
  operationId: 'listRecordings',
  summary: 'List recordings, newest first, with filters',
  tags: ['recordings'],
  security: [{ bearerAuth: [] }],
  middleware: requireScope('read'),
  request: { query: listRecordingsQuerySchema },
  responses: {
    200: {
      description: 'One page; nextCursor is null on the last',
      content: {
        'application/json': { schema: recordingPageSchema },
      },
    },
    ...problemResponses('validation', 'unauthorized', 'forbidden'),
  },
});

export const retryRecordingRoute = createRoute({
  method: 'post',
  path: '/v1/recordings/{id}/retry',
  operationId: 'retryRecording',
  summary: 'Queue a failed or dead recording again',
  description:
    'Resets attempts and error and submits the spooled audio again. 409 for any other status, for an imported ' +
    'recording (it has no audio) and when the audio is no longer in the spool.',
  tags: ['recordings'],
  security: [{ bearerAuth: [] }],
  middleware: requireScope('write'),
  request: { params: recordingIdParams },
  responses: {
    200: { description: 'The recording, queued', content: { 'application/json': { schema: recordingSummarySchema } } },
    ...problemResponses('unauthorized', 'forbidden', 'not-found', 'conflict'),
  },
});

// Documentation only: @hono/zod-openapi would validate (and so buffer) a body declared through
// `openapi()`. This body is streamed to disk by the intake service instead; see recordingRoutes.
const createRecordingDoc = createRoute({
  method: 'post',
  path: '/v1/recordings',
  operationId: 'createRecording',
  summary: 'Upload a call recording (WAV or MP3) for analysis',
  description:
    'Streams the audio into the spool and queues it. The sha256 of the bytes makes this idempotent: 202 with a ' +
    'new recording, 200 with the existing one when the same bytes were uploaded before. The format is recognised ' +
    'from the content, not the file name. The size limit is VOXTRACE_MAX_UPLOAD_MB.',
  tags: ['recordings'],
  security: [{ bearerAuth: [] }],
  request: {
    body: {
      required: true,
      content: {
        'multipart/form-data': {
          schema: z
            .object({
              file: z.string().openapi({ type: 'string', format: 'binary', description: 'the audio: WAV or MP3' }),
              accountRef: z.string().max(200).optional().openapi({ example: 'ACC-1042' }),
              channel: z.string().max(200).optional().openapi({ example: 'phone' }),
              callAt: z.string().optional().openapi({
                description: 'ISO-8601 date-time with a time zone, or a date (midnight UTC); default: now',
                example: '2026-03-01T09:30:00Z',
              }),
              meta: z
                .string()
                .optional()
                .openapi({ description: 'a JSON object, as text', example: '{"agent":"A-17","queue":"cards"}' }),
              enrolCustomer: z
                .enum(['true', 'false'])
                .optional()
                .openapi({
                  description:
                    "true: after analysis the call's non-staff speaker becomes (or joins) the account's customer " +
                    'identity — for a call authenticated by other means; needs accountRef',
                }),
            })
            .openapi('RecordingUpload', { description: `fields: ${UPLOAD_FIELDS.join(', ')}; no others` }),
        },
      },
    },
  },
  responses: {
    200: {
      description: 'The same audio was uploaded before: that recording',
      content: { 'application/json': { schema: recordingSummarySchema } },
    },
    202: {
      description: 'Accepted and queued: the new recording',
      content: { 'application/json': { schema: recordingSummarySchema } },
    },
    ...problemResponses('validation', 'unauthorized', 'forbidden', 'payload-too-large', 'unsupported-media-type'),
  },
});

export function recordingRoutes() {
  const router = createRouter();
  router.openAPIRegistry.registerPath(createRecordingDoc);
  router.post('/v1/recordings', requireScope('write'), async (c) => {
    const { created, recording } = await createRecording(c.var.deps.db, c.var.deps.intake, {
      body: c.req.raw.body,
      contentType: c.req.header('content-type'),
      contentLength: c.req.header('content-length'),
    });
    c.var.log.info(
      { recordingId: recording.id, created, audioBytes: recording.audioBytes, sha256: recording.sha256 },
      created ? 'recording queued' : 'recording already uploaded',
    );
    c.header('location', `/v1/recordings/${recording.id}`);
    return c.json(recording, created ? 202 : 200);
  });
  router.openapi(listRecordingsRoute, async (c) => {
    const { cursor, ...filters } = c.req.valid('query');
    const page = await listRecordings(c.var.deps.db, { ...filters, after: cursor });
    return c.json(page, 200);
  });
  router.openapi(retryRecordingRoute, async (c) => {
    const { id } = c.req.valid('param');
    const recording = await retryRecording(c.var.deps.db, c.var.deps.intake, id);
    c.var.log.info({ recordingId: id }, 'recording queued again');
    return c.json(recording, 200);
  });
  router.openapi(getRecordingRoute, async (c) => {
    const { id } = c.req.valid('param');
    const { include } = c.req.valid('query');
    const parts = new Set((include ?? '').split(',').map((p) => p.trim()));
    const detail = await viewRecording(c.var.deps.db, actorOf(c), id, {
      embeddings: parts.has('embeddings'),
      document: parts.has('document'),
    });
    return c.json(recordingDetailSchema.parse(detail), 200);
  });
  return router;
}
