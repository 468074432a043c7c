import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './env.ts';
import { fieldErrors, problem } from './problems.ts';

/**
 * Every router of the API comes from here, so request validation answers the same
 * `validation` problem everywhere.
 * @example export const routes = createRouter().openapi(route, handler);
 */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const errors = fieldErrors(result.error.issues, result.target);
        const summary = errors.map((e) => `${e.path}: ${e.message}`).join('; ');
        return problem(c, 'validation', summary, errors);
      }
    },
  });
}
