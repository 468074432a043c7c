import { z } from 'zod';
import { DEEPFAKE_DIMENSIONS } from '../db/schema.ts';
import { K_MAX } from '../search/knn.ts';

/**
 * The request shape of spoof search (CONVENTIONS "Spoofs API"), parsed once here for the HTTP
 * route, the CLI and the benchmarks alike; `parseRequest` (src/search/parse-request.ts) turns its
 * issues into errors naming each field.
 */

const embedding = z.union([
  z.array(z.number()).length(DEEPFAKE_DIMENSIONS, `must hold ${DEEPFAKE_DIMENSIONS} numbers`),
  z
    .string()
    .trim()
    .regex(/^\[.*\]$/s, 'must be a JSON array literal "[…]" or an array of numbers'),
]);

export const spoofQuerySchema = z.union([
  z.object({ utteranceId: z.string() }).strict(),
  z.object({ recordingId: z.string() }).strict(),
  z.object({ embedding }).strict(),
]);
export type SpoofQuery = z.infer<typeof spoofQuerySchema>;

const isoInstant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 instant, e.g. 2026-01-31T12:00:00Z' });
const list = z.array(z.string().min(1)).min(1, 'must not be empty (leave it out to filter nothing)').max(1000);

export const spoofFilterSchema = z
  .object({
    accountRefs: list.optional(),
    channels: list.optional(),
    from: isoInstant.optional(),
    to: isoInstant.optional(),
    minPSpoofed: z.number().min(0).max(1).optional(),
  })
  .strict();

/** Most clusters one answer lists. */
export const CLUSTERS_MAX = 100;

export const spoofSearchSchema = z
  .object({
    query: spoofQuerySchema,
    k: z.number().int().min(1).max(K_MAX).default(10),
    clusters: z.number().int().min(0).max(CLUSTERS_MAX).default(5),
    filter: spoofFilterSchema.optional(),
    exact: z.boolean().default(false),
    efSearch: z.number().int().min(1).max(1000).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    const f = body.filter;
    if (f?.from && f.to && Date.parse(f.from) > Date.parse(f.to)) {
      ctx.addIssue({ code: 'custom', path: ['filter', 'to'], message: 'must not be before filter.from' });
    }
  });
export type SpoofSearchBody = z.input<typeof spoofSearchSchema>;
export type SpoofSearchRequest = z.output<typeof spoofSearchSchema>;
