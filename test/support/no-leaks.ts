import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll } from 'vitest';

/**
 * A test file that leaves a worker, a pool, a server, a child process or a timer running fails.
 * Registered for every file (vitest.config.ts `setupFiles`) before the file's own hooks, so it runs
 * after all of them, and allows a moment for sockets that are closing:
 * - sockets, servers and child processes: Node's active resources, against what was there before
 *   the file was loaded (a pg pool left open shows as its sockets);
 * - timers: every `setTimeout`/`setInterval` made while the file ran that is still pending and
 *   keeps the process alive (a worker loop left running shows as its idle timer or its heartbeat).
 *   Node reports timers in groups, not one by one, so they are followed from here instead.
 */
const WATCHED = ['TCPServerWrap', 'TCPSocketWrap', 'PipeServerWrap', 'ProcessWrap'];
const GRACE_MS = 3_000;

const pendingTimers = new Set<NodeJS.Timeout>();
const real = {
  setTimeout: globalThis.setTimeout,
  setInterval: globalThis.setInterval,
  clearTimeout: globalThis.clearTimeout,
  clearInterval: globalThis.clearInterval,
};
globalThis.setTimeout = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const timer: NodeJS.Timeout = real.setTimeout(
    (...callArgs: unknown[]) => {
      pendingTimers.delete(timer);
      callback(...callArgs);
    },
    ms,
    ...args,
  );
  pendingTimers.add(timer);
  return timer;
}) as typeof globalThis.setTimeout;
globalThis.setInterval = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const timer = real.setInterval(callback, ms, ...args);
  pendingTimers.add(timer);
  return timer;
}) as typeof globalThis.setInterval;
globalThis.clearTimeout = ((timer?: NodeJS.Timeout | string | number) => {
  pendingTimers.delete(timer as NodeJS.Timeout);
  real.clearTimeout(timer);
}) as typeof globalThis.clearTimeout;
globalThis.clearInterval = ((timer?: NodeJS.Timeout | string | number) => {
  pendingTimers.delete(timer as NodeJS.Timeout);
  real.clearInterval(timer);
}) as typeof globalThis.clearInterval;

function counts(): Map<string, number> {
  const all = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    if (WATCHED.includes(type)) all.set(type, (all.get(type) ?? 0) + 1);
  }
  return all;
}

const baseline = counts();

function leaks(): string[] {
  const left = [...counts()]
    .filter(([type, n]) => n > (baseline.get(type) ?? 0))
    .map(([type, n]) => `${n - (baseline.get(type) ?? 0)} × ${type}`);
  const timers = [...pendingTimers].filter((timer) => timer.hasRef()).length;
  if (timers > 0) left.push(`${timers} × timer`);
  return left;
}

afterAll(async () => {
  const deadline = Date.now() + GRACE_MS;
  let left = leaks();
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(50);
    left = leaks();
  }
  if (left.length > 0) {
    throw new Error(
      `this test file left running: ${left.join(', ')} (a worker, pool, server, timer or child process not stopped in afterEach/afterAll)`,
    );
  }
}, GRACE_MS + 5_000);
