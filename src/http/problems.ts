import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { FieldError } from '../errors.ts';

/** The closed list of problem codes (CONVENTIONS.md); `type` is `/problems/<code>`. */
export const problemCodes = {
  validation: { status: 400, title: 'The request is not valid' },
  unauthorized: { status: 401, title: 'A valid API key is required' },
  forbidden: { status: 403, title: 'The API key lacks the scope this needs' },
  'not-found': { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict with the current state' },
  'payload-too-large': { status: 413, title: 'The upload is too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  upstream: { status: 502, title: 'The upstream API failed' },
  internal: { status: 500, title: 'Internal error' },
} as const;
export type ProblemCode = keyof typeof problemCodes;

export const problemSchema = z
  .object({
    type: z.string().openapi({ example: '/problems/not-found' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    requestId: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');
export type Problem = z.infer<typeof problemSchema>;

/** OpenAPI response entries for the problems a route can answer. */
export function problemResponses(...codes: ProblemCode[]) {
  return Object.fromEntries(
    codes.map((code) => [
      problemCodes[code].status,
      {
        description: problemCodes[code].title,
        content: { 'application/problem+json': { schema: problemSchema } },
      },
    ]),
  );
}

/**
 * Answers an RFC 9457 problem. Every error response of the API goes through here.
 * @example return problem(c, 'not-found', `no recording ${id}`);
 */
export function problem(c: Context, code: ProblemCode, detail: string, errors?: FieldError[]): Response {
  const { status, title } = problemCodes[code];
  const body: Problem = {
    type: `/problems/${code}`,
    title,
    status,
    detail,
    requestId: (c.get('requestId' as never) as string | undefined) ?? '',
    ...(errors ? { errors } : {}),
  };
  // c.body keeps headers set earlier in the chain (x-request-id)
  return c.body(JSON.stringify(body), status, {
    'content-type': 'application/problem+json',
    ...(code === 'unauthorized' ? { 'www-authenticate': 'Bearer' } : {}),
  });
}

/** zod issues as `{path, message}` with a dotted path (`query.limit`, `body.meta`). */
export function fieldErrors(issues: readonly z.core.$ZodIssue[], prefix?: string): FieldError[] {
  return issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(root)',
    message: issue.message,
  }));
}
