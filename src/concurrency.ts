/**
 * Runs `fn` over `items` with at most `limit` calls in flight, in order of the items. The first
 * call that throws stops new calls from starting; the ones in flight finish, and then that error
 * is thrown.
 * @example await forEachLimited(files, 4, (file) => upload(file));
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const runner = async () => {
    while (!failure && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, runner));
  if (failure) throw (failure as { error: unknown }).error;
}

/**
 * At most `limit` tasks at once; the others wait in order (the upstream client's calls in flight).
 * @example const slots = createSemaphore(8); await slots.run(() => send(request));
 */
export function createSemaphore(limit: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      // a finishing task hands its slot straight to the next waiter, so no newcomer can slip in between
      if (active < limit) active++;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        return await task();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
  };
}
