import { loadConfig } from '../config.ts';
import { type Context, createContext } from '../context.ts';
import { VoxtraceError } from '../errors.ts';
import type { Logger } from '../log.ts';

/** What every command shares: output, the context's lifecycle, waiting for a signal. */

/** A line of command output on stdout (keys, summaries, `--json`); logs go to stderr. */
export const out = (line: string) => process.stdout.write(`${line}\n`);
/** A line for the person at the terminal on stderr (progress, rejected files). */
export const err = (line: string) => process.stderr.write(`${line}\n`);

/** A mistake in the command line that commander cannot see (a flag's value out of range). */
export class UsageError extends VoxtraceError {}

/**
 * Runs `fn` with a context built from the environment (the database open and migrated when
 * allowed), and closes it however `fn` ends.
 * @example await withContext(async (ctx) => out(JSON.stringify(await listApiKeys(ctx.db, CLI_ACTOR))));
 */
export async function withContext<T>(
  fn: (ctx: Context) => Promise<T>,
  options: { migrate?: boolean } = {},
): Promise<T> {
  const ctx = await createContext(loadConfig(), options);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

/** Resolves with the signal's name on the first SIGINT or SIGTERM (a long-running command's end). */
export function untilSignal(log: Logger): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      log.info({ signal }, 'shutting down');
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * Ends a long-running command's process once it has shut down: steps abandoned at shutdown (their
 * leases released) may still hold sockets open that would keep Node running.
 */
export function exitNow(): never {
  process.exit(process.exitCode ?? 0);
}
