import { it } from 'vitest';
import { engine } from './db.ts';

/**
 * A test that cannot run on PGlite. The reason goes into the skipped test's title as
 * `[pglite skip: <reason>]` so that `./voxtrace test` can print it, and fail the run when the
 * reason is anything but `multi-process` (PGlite serves one process).
 */
export function itNotOnPglite(reason: string, title: string, fn: () => Promise<void>, timeout?: number) {
  if (engine === 'pglite') it.skip(`${title} [pglite skip: ${reason}]`, fn);
  else it(title, fn, timeout);
}
