import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';

/**
 * How a response leaves the stand-in when a fault says it should not simply be sent: withheld
 * until released, sent late, or cut off halfway. Every wait can be ended at once, so closing the
 * stand-in never hangs on a held or slow response; a wait whose client has gone (`signal`
 * aborted) ends too, so `held()` counts only responses someone is still waiting for.
 */
export type Waits = {
  /** Resolves when release() (or closeAll()) is called, or the client goes away. */
  hold(signal?: AbortSignal): Promise<void>;
  /** Resolves after `ms`, or earlier on closeAll() or when the client goes away. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Lets every held response go; answers how many there were. */
  release(): number;
  held(): number;
  /** Ends every hold and sleep (on close). */
  closeAll(): void;
};

/**
 * The waiting rooms for held and slow responses.
 * @example const waits = createWaits(); await waits.hold(); // until waits.release()
 */
export function createWaits(): Waits {
  const holds = new Set<() => void>();
  const sleeps = new Map<NodeJS.Timeout, () => void>();
  return {
    hold: (signal) =>
      new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const done = () => {
          holds.delete(done);
          resolve();
        };
        holds.add(done);
        signal?.addEventListener('abort', done, { once: true });
      }),
    sleep: (ms, signal) =>
      new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const timer = setTimeout(() => done(), ms);
        const done = () => {
          clearTimeout(timer);
          sleeps.delete(timer);
          resolve();
        };
        sleeps.set(timer, done);
        signal?.addEventListener('abort', done, { once: true });
      }),
    release() {
      const waiting = [...holds];
      for (const done of waiting) done();
      return waiting.length;
    },
    held: () => holds.size,
    closeAll() {
      for (const done of [...holds]) done();
      for (const done of [...sleeps.values()]) done();
    },
  };
}

/**
 * Sends 200, the headers and the first half of `body` (announcing its full length), then
 * destroys the socket: the client sees a good start and then a broken connection.
 * @example return dropAfterPart(c, JSON.stringify(item));
 */
export function dropAfterPart(c: Context<{ Bindings: HttpBindings }>, body: string): Response {
  const outgoing = c.env.outgoing;
  const bytes = Buffer.from(body, 'utf8');
  outgoing.writeHead(200, { 'content-type': 'application/json', 'content-length': String(bytes.length) });
  outgoing.write(bytes.subarray(0, Math.max(1, Math.floor(bytes.length / 2))), () => {
    outgoing.socket?.destroy();
  });
  return RESPONSE_ALREADY_SENT;
}
