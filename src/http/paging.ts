import { z } from '@hono/zod-openapi';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX } from './limits.ts';

const LIMIT_MESSAGE = `must be a whole number from 1 to ${LIST_LIMIT_MAX}`;

/**
 * The `limit` query parameter of every list (CONVENTIONS.md: default 50, max 500), as a number.
 * @example const query = z.object({ limit: limitParam, cursor: cursorParam(decodeListCursor) });
 */
export const limitParam = z
  .string()
  .regex(/^\d{1,6}$/, LIMIT_MESSAGE)
  .transform(Number)
  .refine((n) => n >= 1 && n <= LIST_LIMIT_MAX, LIMIT_MESSAGE)
  .optional()
  .openapi({ description: `page size (default ${LIST_LIMIT_DEFAULT})`, example: String(LIST_LIMIT_DEFAULT) });

/**
 * The `cursor` query parameter of a list, decoded by that list's own `decode` (null for anything
 * it did not give out), so that the handler and the query receive a position, never a string.
 */
export function cursorParam<T>(decode: (cursor: string) => T | null) {
  return z
    .string()
    .transform((value, ctx) => {
      const position = decode(value);
      if (position === null) {
        ctx.addIssue({ code: 'custom', message: 'not a cursor from this list: pass nextCursor unchanged' });
        return z.NEVER;
      }
      return position;
    })
    .optional()
    .openapi({ type: 'string', description: 'nextCursor of the previous page' });
}
