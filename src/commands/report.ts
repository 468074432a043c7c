import { VoxtraceError } from '../errors.ts';

/**
 * The one place where a command's failure becomes what the person sees: an error written for them
 * (any VoxtraceError: bad config, a busy database, an unknown id, a conflict, bad input) is one
 * message, `voxtrace <command>: <message>`, without a stack; anything else is a bug and keeps its
 * stack. Either way the exit code is 1.
 * @example try { await run(); } catch (error) { process.exitCode = reportError(error, 'keys revoke'); }
 */
export function reportError(error: unknown, command: string | null): number {
  const prefix = command ? `voxtrace ${command}` : 'voxtrace';
  const text = error instanceof VoxtraceError ? error.message : ((error as Error)?.stack ?? String(error));
  process.stderr.write(`${prefix}: ${text}\n`);
  return 1;
}
