import type { z } from 'zod';
import { InvalidInputError } from '../errors.ts';

/**
 * Parses a body with `schema`, throwing InvalidInputError whose errors name each wrong field by
 * its path (`query.embedding`, `filter.to`, …).
 * @example const request = parseRequest(voiceSearchSchema, body);
 */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(body)',
    message: issue.message,
  }));
  throw new InvalidInputError(errors.map((e) => `${e.path}: ${e.message}`).join('; '), errors);
}
