import type { UpstreamApi } from '../db/schema.ts';
import { DAY_MS } from '../time.ts';
import type { CallManifest } from './manifest.ts';

/**
 * The stand-in's in-memory process store. A process's status is a function of time: pending
 * for the first fifth of its processing time, processing for the rest, then its outcome; the
 * processing time is the audio duration × speed (speed 0: done at once).
 */
export type ProcessOutcome = 'complete' | 'fail' | 'insufficient-credits';

export type StandinProcess = {
  pid: number;
  cid: number;
  api: UpstreamApi;
  name: string;
  meta: string | null;
  createdAt: number;
  durationS: number;
  manifest: CallManifest;
  /** What makes this audio's embeddings its own: the sha256 of the bytes (or of the URL). */
  callKey: string;
  embeddings: boolean;
  generatorDetection: boolean;
  outcome: ProcessOutcome;
  failureReason: string | null;
  pendingUntil: number;
  doneAt: number;
};

/** The process item of the wire protocol, exactly its eight fields. */
export type ProcessItem = {
  pid: number;
  cid: number;
  name: string;
  status: number;
  statusmsg: string;
  duration: number;
  datetime: string;
  meta: string | null;
};

export type ListQuery = {
  page: number;
  pageSize: number;
  sort: 'asc' | 'desc';
  /** YYYY-MM-DD, inclusive (UTC days). */
  startDate?: string;
  endDate?: string;
};

export type NewProcess = Omit<StandinProcess, 'pid' | 'createdAt' | 'pendingUntil' | 'doneAt'>;

export type ProcessStore = {
  add(input: NewProcess): StandinProcess;
  get(api: UpstreamApi, cid: number, pid: number): StandinProcess | undefined;
  list(api: UpstreamApi, cid: number, query: ListQuery): StandinProcess[];
  size(): number;
};

/**
 * A process store whose pids start from the clock (seconds since 2020 × 1000), so a restarted
 * stand-in does not hand out pids that a database already holds for other audio.
 * @example const store = createProcessStore({ speed: 0.05 }); const p = store.add({...});
 */
export function createProcessStore(options: { speed: number; now?: () => number }): ProcessStore {
  const now = options.now ?? Date.now;
  const processes: StandinProcess[] = [];
  const byPid = new Map<number, StandinProcess>();
  let nextPid = (Math.floor(now() / 1000) - 1_577_836_800) * 1000;
  return {
    add(input) {
      const createdAt = now();
      const processingMs = input.durationS * options.speed * 1000;
      const process: StandinProcess = {
        ...input,
        pid: nextPid++,
        createdAt,
        pendingUntil: createdAt + processingMs * 0.2,
        doneAt: createdAt + processingMs,
      };
      processes.push(process);
      byPid.set(process.pid, process);
      return process;
    },
    get(api, cid, pid) {
      const process = byPid.get(pid);
      return process && process.api === api && process.cid === cid ? process : undefined;
    },
    list(api, cid, query) {
      const from = query.startDate ? Date.parse(`${query.startDate}T00:00:00Z`) : -Infinity;
      const to = query.endDate ? Date.parse(`${query.endDate}T00:00:00Z`) + DAY_MS : Infinity;
      const matching = processes.filter(
        (p) => p.api === api && p.cid === cid && p.createdAt >= from && p.createdAt < to,
      );
      // processes are kept in creation (= pid) order
      if (query.sort === 'desc') matching.reverse();
      return matching.slice(query.page * query.pageSize, (query.page + 1) * query.pageSize);
    },
    size: () => processes.length,
  };
}

/**
 * The status code and message of a process at `at` (ms since the epoch).
 * @example processStatus(process, Date.now()); // { status: 1, statusmsg: 'Processing' }
 */
export function processStatus(process: StandinProcess, at: number): { status: number; statusmsg: string } {
  if (process.outcome === 'insufficient-credits' && at >= process.pendingUntil) {
    return { status: -2, statusmsg: 'Insufficient credits' };
  }
  if (at < process.pendingUntil) return { status: 0, statusmsg: 'Pending' };
  if (at < process.doneAt) return { status: 1, statusmsg: 'Processing' };
  if (process.outcome === 'fail') {
    return {
      status: -1,
      statusmsg: `Processing failed: ${process.failureReason ?? 'the audio could not be processed'}`,
    };
  }
  return { status: 2, statusmsg: 'Processing Complete' };
}

/**
 * The wire form of a process at `at`.
 * @example c.json(processItem(process, Date.now()));
 */
export function processItem(process: StandinProcess, at: number): ProcessItem {
  return {
    pid: process.pid,
    cid: process.cid,
    name: process.name,
    ...processStatus(process, at),
    duration: Math.round(process.durationS * 1000) / 1000,
    datetime: new Date(process.createdAt).toISOString(),
    meta: process.meta,
  };
}
