import { createApiClient } from '../../client/api.ts';
import type { RecordingStatus } from '../../db/schema.ts';
import { VoxtraceError } from '../../errors.ts';
import { findAudioFiles } from './files.ts';
import { createProgressDisplay, type ProgressStream } from './progress.ts';
import { createTracker, type RecordingState } from './tracker.ts';
import { type RejectedFile, uploadFiles } from './upload.ts';
import { refreshWhileUploading, waitForRecordings } from './wait.ts';

/**
 * `voxtrace ingest`: uploads a tree of call recordings through the API (never the database), a few
 * at a time, and optionally waits until every recording it touched is processed. Re-running is
 * safe and cheap: the API answers 200 for audio it already has (same sha256), so an interrupted
 * run picks up where it stopped.
 */

export type IngestOptions = {
  /** The API's base URL, e.g. http://127.0.0.1:8750 (VOXTRACE_API_URL or --url). */
  apiUrl: string;
  /** A key with the write scope (VOXTRACE_API_KEY or --key); checked here so the message names both. */
  apiKey: string | undefined;
  /** Files and directories; directories are walked recursively for .wav/.mp3 files. */
  paths: string[];
  /** One account reference for every file (--account). */
  accountRef?: string;
  /** The account reference is each file's parent directory name (--account-from-dir). */
  accountFromDir?: boolean;
  channel?: string;
  /** Poll the touched recordings until each is complete, failed or dead. */
  wait?: boolean;
  /** Uploads in flight at once; default 4. */
  concurrency?: number;
  /** Where progress goes (stderr in the CLI): a live bar when it is a TTY, plain lines otherwise. */
  progress?: ProgressStream;
  /** Pause between two polls of --wait; default 1 s. */
  pollIntervalMs?: number;
  /** How many of the oldest pending recordings a poll looks up by id; default 500. */
  pendingWindow?: number;
  /** Tries per request on 5xx, 429 and network errors; default 4, first backoff 500 ms. */
  retry?: { attempts?: number; baseDelayMs?: number };
};

export type IngestResult = {
  /** Audio files found (and tried). */
  files: number;
  /** Files in the given directories that are not .wav/.mp3. */
  skipped: number;
  created: number;
  alreadyKnown: number;
  rejected: RejectedFile[];
  /** Every recording this run uploaded or found, in its last known state. */
  recordings: RecordingState[];
  waited: boolean;
};

const DEFAULT_CONCURRENCY = 4;
// while files upload, --wait refreshes the counts this many times less often than it polls afterwards
const UPLOAD_POLL_FACTOR = 5;
// how many of the oldest pending recordings a round of --wait looks up by id
const DEFAULT_PENDING_WINDOW = 500;

/**
 * Uploads every audio file under `options.paths`, then (with `wait`) polls until each recording
 * is terminal. Per-file refusals (415, 413, …) are collected, not thrown; a refused key (401/403),
 * bad options or missing paths throw (VoxtraceError, which the CLI prints as one line).
 * @example
 * const result = await runIngest({ apiUrl, apiKey, paths: ['demo'], accountFromDir: true, wait: true, progress: process.stderr });
 * for (const line of formatIngestSummary(result)) console.log(line);
 * process.exitCode = ingestExitCode(result);
 */
export async function runIngest(options: IngestOptions): Promise<IngestResult> {
  const apiKey = checkOptions(options);
  const found = await findAudioFiles(options.paths, options);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const api = createApiClient({ apiUrl: options.apiUrl, apiKey, connections: concurrency, retry: options.retry });
  const tracker = createTracker();
  const display = createProgressDisplay(options.progress ?? { write: () => true });
  try {
    const pollIntervalMs = options.pollIntervalMs ?? 1000;
    const pendingWindow = options.pendingWindow ?? DEFAULT_PENDING_WINDOW;
    const uploads = uploadFiles(api, found.files, { channel: options.channel, concurrency }, tracker, display);
    const refreshing = options.wait
      ? refreshWhileUploading(api, tracker, uploads, pollIntervalMs * UPLOAD_POLL_FACTOR, pendingWindow)
      : undefined;
    const uploaded = await uploads;
    await refreshing;
    if (options.wait) await waitForRecordings(api, tracker, display, pollIntervalMs, pendingWindow);
    return {
      files: found.files.length,
      skipped: found.skipped,
      ...uploaded,
      recordings: tracker.recordings(),
      waited: Boolean(options.wait),
    };
  } finally {
    display.stop();
    await api.close();
  }
}

function checkOptions(options: IngestOptions): string {
  if (!options.apiKey) {
    throw new VoxtraceError(
      'no API key: pass --key <key> or set VOXTRACE_API_KEY (a write key: `voxtrace keys create --scope write`)',
    );
  }
  if (options.accountRef !== undefined && options.accountFromDir) {
    throw new VoxtraceError('--account and --account-from-dir cannot be used together: choose one');
  }
  if (!/^https?:\/\//.test(options.apiUrl) || !URL.canParse(options.apiUrl)) {
    throw new VoxtraceError(`the API URL "${options.apiUrl}" is not an http(s):// URL (--url or VOXTRACE_API_URL)`);
  }
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new VoxtraceError('--concurrency must be a whole number from 1 to 64');
  }
  const window = options.pendingWindow ?? DEFAULT_PENDING_WINDOW;
  if (!Number.isInteger(window) || window < 1) throw new VoxtraceError('pendingWindow must be a whole number ≥ 1');
  return options.apiKey;
}

/**
 * The summary for stdout: `uploaded N (new X, already known Y), skipped Z non-audio files,
 * rejected R`, and with --wait the final states.
 * @example formatIngestSummary(result) // ['uploaded 12 (new 12, already known 0), skipped 1 non-audio files, rejected 0', 'final states: complete 12, failed 0, dead 0']
 */
export function formatIngestSummary(result: IngestResult): string[] {
  const lines = [
    `uploaded ${result.created + result.alreadyKnown} (new ${result.created}, already known ${result.alreadyKnown}), ` +
      `skipped ${result.skipped} non-audio files, rejected ${result.rejected.length}`,
  ];
  if (result.waited) {
    const count = (status: RecordingStatus) => result.recordings.filter((r) => r.status === status).length;
    lines.push(`final states: complete ${count('complete')}, failed ${count('failed')}, dead ${count('dead')}`);
  }
  return lines;
}

/**
 * The recordings that ended failed or dead (only known after --wait), one line each for stderr:
 * `failed <id> <file>: <error>`.
 * @example for (const line of formatFailedRecordings(result)) process.stderr.write(`${line}\n`);
 */
export function formatFailedRecordings(result: IngestResult): string[] {
  if (!result.waited) return [];
  return result.recordings
    .filter((r) => r.status === 'failed' || r.status === 'dead')
    .map((r) => `${r.status} ${r.id} ${r.files.join(', ')}: ${r.error ?? 'no error recorded'}`);
}

/**
 * 1 when a file was rejected, or (with --wait) a recording ended failed or dead; else 0.
 * @example process.exitCode = ingestExitCode(result);
 */
export function ingestExitCode(result: IngestResult): number {
  if (result.rejected.length > 0) return 1;
  return formatFailedRecordings(result).length > 0 ? 1 : 0;
}
