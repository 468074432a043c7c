import { z } from 'zod';
import { identityKinds, SPEAKER_DIMENSIONS } from '../db/schema.ts';
import { K_MAX } from '../search/knn.ts';

/**
 * The request shapes of voice search and compare (CONVENTIONS "Voices API"), parsed once here for
 * the HTTP routes, the CLI and the benchmarks alike.
 */

const embedding = z.union([
  z.array(z.number()).length(SPEAKER_DIMENSIONS, `must hold ${SPEAKER_DIMENSIONS} numbers`),
  z
    .string()
    .trim()
    .regex(/^\[.*\]$/s, 'must be a JSON array literal "[…]" or an array of numbers'),
]);

export const voiceQuerySchema = z.union([
  z.object({ voiceprintId: z.string() }).strict(),
  z.object({ recordingId: z.string(), speakerLabel: z.string().min(1).optional() }).strict(),
  z.object({ embedding }).strict(),
]);
export type VoiceQuery = z.infer<typeof voiceQuerySchema>;

export const examplesSchema = z
  .object({
    positive: z.array(voiceQuerySchema).min(1, 'needs at least one example').max(100),
    negative: z.array(voiceQuerySchema).max(100).optional(),
  })
  .strict();

const isoInstant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 instant, e.g. 2026-01-31T12:00:00Z' });
const list = z.array(z.string().min(1)).min(1, 'must not be empty (leave it out to filter nothing)').max(1000);

export const voiceFilterSchema = z
  .object({
    accountRefs: list.optional(),
    excludeAccountRefs: list.optional(),
    channels: list.optional(),
    from: isoInstant.optional(),
    to: isoInstant.optional(),
    identityKinds: z.array(z.enum(identityKinds)).min(1).optional(),
    excludeRecordingIds: z.array(z.uuid('must be recording ids (uuid)')).max(1000).optional(),
  })
  .strict();

export const voiceSearchSchema = z
  .object({
    query: z.union([voiceQuerySchema, examplesSchema]),
    k: z.number().int().min(1).max(K_MAX).default(10),
    minScore: z.number().min(0).max(6).optional(),
    groupBy: z.enum(['account', 'identity']).optional(),
    exact: z.boolean().default(false),
    includeStaff: z.boolean().default(false),
    filter: voiceFilterSchema.optional(),
    efSearch: z.number().int().min(1).max(1000).optional(),
    asNorm: z.boolean().default(false),
  })
  .strict()
  .superRefine((body, ctx) => {
    const f = body.filter;
    if (!f) return;
    if (f.from && f.to && Date.parse(f.from) > Date.parse(f.to)) {
      ctx.addIssue({ code: 'custom', path: ['filter', 'to'], message: 'must not be before filter.from' });
    }
    if (f.accountRefs && f.excludeAccountRefs) {
      const excluded = new Set(f.excludeAccountRefs);
      if (f.accountRefs.every((ref) => excluded.has(ref))) {
        ctx.addIssue({
          code: 'custom',
          path: ['filter', 'excludeAccountRefs'],
          message: 'excludes every account of filter.accountRefs: nothing could match',
        });
      }
    }
    if (f.identityKinds?.includes('staff') && !body.includeStaff) {
      ctx.addIssue({
        code: 'custom',
        path: ['filter', 'identityKinds'],
        message: 'asks for staff while staff are excluded: set includeStaff: true',
      });
    }
  });
export type VoiceSearchBody = z.input<typeof voiceSearchSchema>;
export type VoiceSearchRequest = z.output<typeof voiceSearchSchema>;

export const voiceCompareSchema = z
  .object({ a: voiceQuerySchema, b: voiceQuerySchema, asNorm: z.boolean().default(false) })
  .strict();
export type VoiceCompareRequest = z.infer<typeof voiceCompareSchema>;
