import type { RecordingStatus } from '../../db/schema.ts';

/** What a run knows of one recording: its last known state, and the files of this run with its bytes. */
export type RecordingState = {
  id: string;
  status: RecordingStatus;
  error: string | null;
  /** The files of this run with these bytes (usually one). */
  files: string[];
};

type Bucket = 'queued' | 'submitted' | 'done' | 'failed';

const TERMINAL_STATUSES = new Set<RecordingStatus>(['complete', 'failed', 'dead']);

function bucketOf(status: RecordingStatus): Bucket {
  if (status === 'complete') return 'done';
  if (status === 'failed' || status === 'dead') return 'failed';
  if (status === 'queued') return 'queued';
  return 'submitted';
}

/**
 * What the run knows: recordings by id, and counts of files per progress bucket, kept incrementally
 * (a run of 100,000 files does not recount on every update).
 * @example const tracker = createTracker(); tracker.see(summary, file); tracker.pending();
 */
export function createTracker() {
  const byId = new Map<string, RecordingState>();
  const counts: Record<Bucket, number> & { rejected: number } = {
    queued: 0,
    submitted: 0,
    done: 0,
    failed: 0,
    rejected: 0,
  };
  return {
    counts,
    /** Records what the API said about a recording, for `file` when the file is new to it. */
    see(recording: { id: string; status: RecordingStatus; error: string | null }, file?: string) {
      let state = byId.get(recording.id);
      if (!state) {
        state = { id: recording.id, status: recording.status, error: recording.error, files: [] };
        byId.set(recording.id, state);
      } else {
        counts[bucketOf(state.status)] -= state.files.length;
      }
      if (file) state.files.push(file);
      state.status = recording.status;
      state.error = recording.error;
      counts[bucketOf(state.status)] += state.files.length;
    },
    pending: () => [...byId.values()].filter((r) => !TERMINAL_STATUSES.has(r.status)),
    recordings: () => [...byId.values()],
    /** Files whose recording is known (not rejected at upload). */
    filesWithRecordings: () => counts.queued + counts.submitted + counts.done + counts.failed,
  };
}
export type Tracker = ReturnType<typeof createTracker>;
