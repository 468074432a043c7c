import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * The wire conventions of the upstream API that every stand-in route shares: errors are any
 * non-200 status with `{code, message}` (code = the HTTP status), success is exactly 200.
 */
export type ErrorBody = { code: number; message: string };

/**
 * An error response in the upstream's shape.
 * @example return apiError(c, 404, 'no process 42 for client 7');
 */
export function apiError(c: Context, status: ContentfulStatusCode, message: string, headers?: Record<string, string>) {
  return c.json({ code: status, message } satisfies ErrorBody, status, headers);
}

/**
 * Reads a boolean flag as the SDK and curl send it: true/True/1 or false/False/0 (any case);
 * undefined when absent; throws FlagError for anything else.
 * @example const embeddings = parseFlag('embeddings', form.get('embeddings')) ?? false;
 */
export function parseFlag(name: string, value: unknown): boolean | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'boolean') return value;
  const text = String(value).trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new FlagError(`${name} must be true or false (or 1 or 0), got ${JSON.stringify(value)}`);
}

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

/**
 * Compares a presented token with the expected one in constant time (hashing first makes the
 * lengths equal, so the comparison leaks neither content nor length).
 * @example if (!tokenMatches(c.req.header('x-auth-token'), token)) return apiError(c, 401, '…');
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (!presented) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * The client id of a path, when it is a whole number the API could have issued.
 * @example const cid = parseCid(c.req.param('cid')); if (cid === null) return apiError(c, 400, '…');
 */
export function parseCid(text: string | undefined): number | null {
  if (!text || !/^\d{1,15}$/.test(text)) return null;
  return Number(text);
}
