import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits until `check` answers something truthy, and answers it; fails naming `what` after
 * `timeoutMs`. Tests wait for conditions this way, never for a fixed time.
 * @example const token = await until('the token to be printed', () => /token: (\S+)/.exec(stdout)?.[1]);
 */
export async function until<T>(
  what: string,
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
