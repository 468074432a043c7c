import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { Agent, type Dispatcher, FormData, request } from 'undici';
import type { RecordingStatus } from '../db/schema.ts';

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

export type ProgressStream = { write(text: string): unknown; isTTY?: boolean };

/** A problem the user can fix (bad flags, missing paths, a refused key): shown as one line. */
export class IngestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IngestError';
  }
}

export type AudioFile = {
  path: string;
  /** The account the recording is stored under, or null when none was asked for. */
  accountRef: string | null;
  /** The file's modification time, ISO-8601: the best guess of when the call took place. */
  callAt: string;
};

export type RecordingState = {
  id: string;
  status: RecordingStatus;
  error: string | null;
  /** The files of this run with these bytes (usually one). */
  files: string[];
};

export type RejectedFile = { file: string; status: number | null; detail: string };

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

const AUDIO_EXTENSIONS = new Set(['.wav', '.mp3']);
const TERMINAL_STATUSES = new Set<RecordingStatus>(['complete', 'failed', 'dead']);
const IN_FLIGHT_STATUSES = ['queued', 'submitting', 'submitted'] as const;
const LIST_PAGE_SIZE = 500;
// recordings looked up by id in one request (the API's `ids` limit)
const IDS_PER_REQUEST = 100;
const DEFAULT_CONCURRENCY = 4;
// while files upload, --wait refreshes the counts this many times less often than it polls afterwards
const UPLOAD_POLL_FACTOR = 5;
// how many of the oldest pending recordings a round of --wait looks up by id
const DEFAULT_PENDING_WINDOW = 500;
// every this many rounds, --wait checks every pending recording (they can finish out of order)
const FULL_SWEEP_EVERY = 10;

/**
 * Uploads every audio file under `options.paths`, then (with `wait`) polls until each recording
 * is terminal. Per-file refusals (415, 413, …) are collected, not thrown; a refused key (401/403),
 * bad options or missing paths throw IngestError.
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
    throw new IngestError(
      'no API key: pass --key <key> or set VOXTRACE_API_KEY (a write key: `voxtrace keys create --scope write`)',
    );
  }
  if (options.accountRef !== undefined && options.accountFromDir) {
    throw new IngestError('--account and --account-from-dir cannot be used together: choose one');
  }
  if (!/^https?:\/\//.test(options.apiUrl) || !URL.canParse(options.apiUrl)) {
    throw new IngestError(`the API URL "${options.apiUrl}" is not an http(s):// URL (--url or VOXTRACE_API_URL)`);
  }
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new IngestError('--concurrency must be a whole number from 1 to 64');
  }
  const window = options.pendingWindow ?? DEFAULT_PENDING_WINDOW;
  if (!Number.isInteger(window) || window < 1) throw new IngestError('pendingWindow must be a whole number ≥ 1');
  return options.apiKey;
}

/**
 * The audio files under `paths`, sorted by path, each with its account and call time. Files named
 * on the command line are taken whatever their extension (the API checks the content); inside
 * directories only .wav/.mp3 (any case) are taken and the rest counted as skipped. Throws
 * IngestError naming every path that does not exist.
 * @example const { files, skipped } = await findAudioFiles(['demo'], { accountFromDir: true });
 */
export async function findAudioFiles(
  paths: string[],
  account: { accountRef?: string; accountFromDir?: boolean } = {},
): Promise<{ files: AudioFile[]; skipped: number }> {
  const missing: string[] = [];
  const chosen = new Set<string>();
  let skipped = 0;
  for (const given of paths) {
    const stat = await fs.promises.stat(given).catch(() => null);
    if (!stat) {
      missing.push(given);
    } else if (stat.isDirectory()) {
      for (const file of await filesUnder(given)) {
        if (AUDIO_EXTENSIONS.has(path.extname(file).toLowerCase())) chosen.add(file);
        else skipped++;
      }
    } else {
      chosen.add(path.resolve(given));
    }
  }
  if (missing.length > 0) {
    throw new IngestError(`no such file or directory: ${missing.join(', ')}`);
  }
  // code-unit order, not locale order: the same tree gives the same sequence on every machine
  const sorted = [...chosen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: AudioFile[] = [];
  for (const file of sorted) {
    const { mtime } = await fs.promises.stat(file);
    const accountRef = account.accountFromDir ? path.basename(path.dirname(file)) : (account.accountRef ?? null);
    files.push({ path: file, accountRef, callAt: mtime.toISOString() });
  }
  return { files, skipped };
}

/** Regular files below `dir` (absolute paths); symlinked files count, symlinked directories are not followed. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.promises.readdir(dir, { recursive: true, withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    const full = path.resolve(entry.parentPath, entry.name);
    if (entry.isFile()) files.push(full);
    else if (entry.isSymbolicLink() && (await fs.promises.stat(full).catch(() => null))?.isFile()) files.push(full);
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// the API

type RecordingSummary = { id: string; status: RecordingStatus; error: string | null };
type ApiAnswer = { status: number; body: unknown };

/** Thrown for 401/403: every further request would be refused too, so the run stops. */
class RefusedKeyError extends IngestError {}

function createApiClient(options: {
  apiUrl: string;
  apiKey: string;
  connections: number;
  retry?: IngestOptions['retry'];
}) {
  const base = options.apiUrl.replace(/\/+$/, '');
  const attempts = options.retry?.attempts ?? 4;
  const baseDelayMs = options.retry?.baseDelayMs ?? 500;
  // one keep-alive pool for the whole run: thousands of uploads reuse a few connections
  const agent = new Agent({ connections: options.connections, keepAliveTimeout: 30_000 });

  async function send(method: 'GET' | 'POST', pathAndQuery: string, body?: () => Promise<FormData>) {
    const response = await request(`${base}${pathAndQuery}`, {
      method,
      dispatcher: agent as Dispatcher,
      headers: { authorization: `Bearer ${options.apiKey}`, accept: 'application/json' },
      body: body ? await body() : undefined,
    });
    const text = await response.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (a proxy's error page): the text itself is the best detail there is
    }
    return { status: response.statusCode, body: parsed, retryAfter: response.headers['retry-after'] };
  }

  /**
   * Sends with retries on 5xx, 429 and network errors (full-jitter backoff, Retry-After honoured).
   * Resending an upload is safe: the API recognises the same bytes. Answers the last status for
   * anything else; throws RefusedKeyError for 401/403 and IngestError once retries run out on a
   * network error.
   */
  async function call(method: 'GET' | 'POST', pathAndQuery: string, body?: () => Promise<FormData>) {
    for (let attempt = 1; ; attempt++) {
      let answer: Awaited<ReturnType<typeof send>> | null = null;
      let failure: string;
      try {
        answer = await send(method, pathAndQuery, body);
        if (answer.status === 401 || answer.status === 403) {
          throw new RefusedKeyError(
            `the API refused the key (${answer.status}): ${problemDetail(answer)} (check --key or VOXTRACE_API_KEY)`,
          );
        }
        if (answer.status < 500 && answer.status !== 429) return answer as ApiAnswer;
        failure = `HTTP ${answer.status}: ${problemDetail(answer)}`;
      } catch (error) {
        if (error instanceof IngestError) throw error;
        const code = (error as { code?: string }).code;
        failure = `${code ?? 'network error'}: ${(error as Error).message}`;
      }
      if (attempt >= attempts) {
        if (answer) return answer as ApiAnswer;
        throw new IngestError(`${method} ${base}${pathAndQuery} failed ${attempts} times; last: ${failure}`);
      }
      const backoff = Math.random() * baseDelayMs * 2 ** (attempt - 1);
      const retryAfterMs = Number(answer?.retryAfter) * 1000;
      await sleep(Math.min(30_000, Math.max(backoff, Number.isFinite(retryAfterMs) ? retryAfterMs : 0)));
    }
  }

  return {
    /** POST /v1/recordings as a streamed multipart form: the file is read from disk as it is sent. */
    upload(file: AudioFile, channel: string | undefined) {
      return call('POST', '/v1/recordings', async () => {
        const form = new FormData();
        if (file.accountRef !== null) form.append('accountRef', file.accountRef);
        if (channel !== undefined) form.append('channel', channel);
        form.append('callAt', file.callAt);
        // a fresh lazy Blob per attempt, so a retry sends the file from its start
        form.append('file', await fs.openAsBlob(file.path), path.basename(file.path));
        return form;
      });
    },
    /** The summaries of up to 100 recordings in one request (`GET /v1/recordings?ids=`). */
    byIds(ids: string[]) {
      const query = new URLSearchParams({ ids: ids.join(','), limit: String(ids.length) });
      return call('GET', `/v1/recordings?${query}`);
    },
    list(status: RecordingStatus, cursor: string | null) {
      const query = new URLSearchParams({ status, limit: String(LIST_PAGE_SIZE) });
      if (cursor) query.set('cursor', cursor);
      return call('GET', `/v1/recordings?${query}`);
    },
    close: () => agent.close(),
  };
}

/** The `detail` of a problem+json answer, or what else the body says. */
function problemDetail(answer: { status: number; body: unknown }): string {
  const body = answer.body as { detail?: unknown; title?: unknown } | string | null;
  if (body && typeof body === 'object') {
    if (typeof body.detail === 'string' && body.detail) return body.detail;
    if (typeof body.title === 'string') return body.title;
  }
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
  return `HTTP ${answer.status}`;
}

type ApiClient = ReturnType<typeof createApiClient>;

function asRecording(answer: ApiAnswer): RecordingSummary | null {
  const body = answer.body as Partial<RecordingSummary> | null;
  if (!body || typeof body !== 'object' || typeof body.id !== 'string' || typeof body.status !== 'string') return null;
  return { id: body.id, status: body.status, error: body.error ?? null };
}

// ---------------------------------------------------------------------------------------------
// what the run knows: recordings by id, and counts per progress bucket (kept incrementally, so a
// run of 100 000 files does not recount on every update)

type Bucket = 'queued' | 'submitted' | 'done' | 'failed';

function bucketOf(status: RecordingStatus): Bucket {
  if (status === 'complete') return 'done';
  if (status === 'failed' || status === 'dead') return 'failed';
  if (status === 'queued') return 'queued';
  return 'submitted';
}

function createTracker() {
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
    see(recording: RecordingSummary, file?: string) {
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
type Tracker = ReturnType<typeof createTracker>;

// ---------------------------------------------------------------------------------------------
// uploading

async function uploadFiles(
  api: ApiClient,
  files: AudioFile[],
  options: { channel: string | undefined; concurrency: number },
  tracker: Tracker,
  display: ProgressDisplay,
): Promise<Pick<IngestResult, 'created' | 'alreadyKnown' | 'rejected'>> {
  let created = 0;
  let alreadyKnown = 0;
  let processed = 0;
  const rejected: RejectedFile[] = [];
  const snapshot = (): ProgressSnapshot => ({
    phase: 'upload',
    processed,
    total: files.length,
    ...tracker.counts,
  });
  const reject = (file: AudioFile, status: number | null, detail: string) => {
    rejected.push({ file: file.path, status, detail });
    tracker.counts.rejected++;
    display.note(`ingest: rejected ${file.path}${status ? ` (${status})` : ''}: ${detail}`);
  };

  display.update(snapshot());
  let next = 0;
  let stopped: unknown = null;
  const uploader = async () => {
    while (!stopped && next < files.length) {
      const file = files[next++] as AudioFile;
      try {
        const answer = await api.upload(file, options.channel);
        const recording = answer.status === 200 || answer.status === 202 ? asRecording(answer) : null;
        if (recording) {
          if (answer.status === 202) created++;
          else alreadyKnown++;
          tracker.see(recording, file.path);
        } else {
          reject(file, answer.status, problemDetail(answer));
        }
      } catch (error) {
        if (error instanceof RefusedKeyError) {
          stopped = error;
          break;
        }
        if (!(error instanceof IngestError)) throw error;
        reject(file, null, error.message);
      }
      processed++;
      display.update(snapshot());
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, files.length) }, uploader));
  if (stopped) throw stopped;
  display.update(snapshot(), { final: true });
  return { created, alreadyKnown, rejected };
}

// ---------------------------------------------------------------------------------------------
// waiting

/**
 * Polls until every tracked recording is terminal. Most rounds look up only the oldest pending
 * recordings (`pendingWindow`, by id): workers take recordings about first in, first out, so that
 * is where things change, and it costs a few key lookups however many are pending. Every
 * FULL_SWEEP_EVERY rounds, `refreshPending` checks them all, for any that finished out of order.
 */
async function waitForRecordings(
  api: ApiClient,
  tracker: Tracker,
  display: ProgressDisplay,
  pollIntervalMs: number,
  pendingWindow: number,
): Promise<void> {
  const snapshot = (): ProgressSnapshot => ({
    phase: 'wait',
    processed: tracker.counts.done + tracker.counts.failed,
    total: tracker.filesWithRecordings(),
    ...tracker.counts,
  });
  display.update(snapshot());
  let listCost: number = FIRST_LIST_COST;
  for (let round = 1; tracker.pending().length > 0; round++) {
    await sleep(pollIntervalMs);
    const pending = tracker.pending();
    if (pending.length <= pendingWindow || round % FULL_SWEEP_EVERY !== 0) {
      await lookUp(api, tracker, pending.slice(0, pendingWindow));
    } else {
      listCost = await refreshPending(api, tracker, listCost);
    }
    display.update(snapshot());
  }
  display.update(snapshot(), { final: true });
}

/**
 * With --wait, keeps the counts current while files are still uploading: a long backfill shows
 * what the workers have finished, not every upload as still queued. Each round looks up the
 * oldest pending recordings only (workers take them about first in, first out), at most
 * `pendingWindow` by id, so it costs a few key lookups however large the run; less often than
 * the wait's polling; and best effort: a failed round is skipped, since the wait that follows is
 * the authority on each recording's outcome.
 */
async function refreshWhileUploading(
  api: ApiClient,
  tracker: Tracker,
  uploads: Promise<unknown>,
  intervalMs: number,
  pendingWindow: number,
): Promise<void> {
  let uploading = true;
  const finished = uploads.then(
    () => {
      uploading = false;
    },
    () => {
      uploading = false;
    },
  );
  while (uploading) {
    await Promise.race([sleep(intervalMs), finished]);
    if (!uploading) return;
    try {
      await lookUp(api, tracker, tracker.pending().slice(0, pendingWindow));
    } catch {
      // skipped: see above
    }
  }
}

// what listing the in-flight recordings costs at the least, in requests: one page per status
const FIRST_LIST_COST = IN_FLIGHT_STATUSES.length;

/**
 * One round of learning what changed for the pending recordings, the cheaper way: looking them up
 * by id when that takes fewer requests, otherwise the in-flight lists (status
 * queued/submitting/submitted, 500 a page) — a recording of ours missing from them has finished,
 * and is then looked up for its final state and error, 100 per request (`ids`). That is about one
 * request per 100 recordings over a whole wait, plus a few pages a round. Takes what listing cost
 * last round and returns what it cost this one.
 */
async function refreshPending(api: ApiClient, tracker: Tracker, listCost: number): Promise<number> {
  const pending = tracker.pending();
  let toFetch = pending;
  if (Math.ceil(pending.length / IDS_PER_REQUEST) > listCost) {
    const inFlight = new Map<string, RecordingSummary>();
    let pages = 0;
    for (const status of IN_FLIGHT_STATUSES) {
      for (let cursor: string | null = null, first = true; first || cursor; first = false) {
        const answer = await api.list(status, cursor);
        pages++;
        if (answer.status !== 200) throw new IngestError(`listing recordings failed: ${problemDetail(answer)}`);
        const page = answer.body as { items: RecordingSummary[]; nextCursor: string | null };
        for (const item of page.items) inFlight.set(item.id, item);
        cursor = page.nextCursor;
      }
    }
    listCost = pages;
    toFetch = [];
    for (const recording of pending) {
      const current = inFlight.get(recording.id);
      if (current) tracker.see(current);
      // gone from the in-flight lists: finished (or moved between two lists while we paged; the lookup tells)
      else toFetch.push(recording);
    }
  }
  await lookUp(api, tracker, toFetch);
  return listCost;
}

/** Looks these recordings up by id, 100 per request, and records what the API says of each. */
async function lookUp(api: ApiClient, tracker: Tracker, recordings: { id: string }[]): Promise<void> {
  const batches: (typeof recordings)[] = [];
  for (let i = 0; i < recordings.length; i += IDS_PER_REQUEST) batches.push(recordings.slice(i, i + IDS_PER_REQUEST));
  await forEachLimited(batches, 4, async (batch) => {
    const answer = await api.byIds(batch.map((r) => r.id));
    if (answer.status !== 200) throw new IngestError(`looking recordings up failed: ${problemDetail(answer)}`);
    const found = new Map((answer.body as { items: RecordingSummary[] }).items.map((r) => [r.id, r]));
    for (const recording of batch) {
      const current = found.get(recording.id);
      tracker.see(current ?? { id: recording.id, status: 'dead', error: 'the recording no longer exists (deleted)' });
    }
  });
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runner = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, runner));
}

// ---------------------------------------------------------------------------------------------
// progress

export type ProgressSnapshot = {
  phase: 'upload' | 'wait';
  /** Files uploaded or refused (upload), files whose recording finished (wait). */
  processed: number;
  total: number;
  queued: number;
  submitted: number;
  done: number;
  failed: number;
  /** Files refused at upload; shown within `failed`. */
  rejected: number;
};

export type ProgressDisplay = {
  update(snapshot: ProgressSnapshot, options?: { final?: boolean }): void;
  /** A line of its own (a rejected file) that must not be lost in the bar. */
  note(line: string): void;
  stop(): void;
};

/**
 * On a TTY a live bar (redrawn in place); otherwise a plain line at most every `intervalMs` or
 * on each 10 % step, and at the end of each phase, e.g.
 * `ingest: 120/500 uploaded (queued 80, submitted 0, done 40, failed 0), 35.2 files/s, eta 11 s`.
 * @example const display = createProgressDisplay(process.stderr); display.update(snapshot); display.stop();
 */
export function createProgressDisplay(
  stream: ProgressStream,
  options: { intervalMs?: number; now?: () => number } = {},
): ProgressDisplay {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 2000;
  let phase: ProgressSnapshot['phase'] | null = null;
  let phaseStart = { at: 0, processed: 0 };
  let lastLine = { at: 0, tenth: -1, processed: -1 };
  let bar: cliProgress.SingleBar | null = null;

  const figures = (s: ProgressSnapshot) => {
    const seconds = (now() - phaseStart.at) / 1000;
    const rate = seconds > 0 ? (s.processed - phaseStart.processed) / seconds : 0;
    const remaining = s.total - s.processed;
    const eta = remaining === 0 ? '0 s' : rate > 0 ? formatDuration(remaining / rate) : '?';
    return { rate: rate.toFixed(1), eta };
  };
  const verb = (p: ProgressSnapshot['phase']) => (p === 'upload' ? 'uploaded' : 'finished');

  return {
    update(s, updateOptions = {}) {
      if (s.phase !== phase) {
        bar?.stop();
        bar = null;
        phase = s.phase;
        phaseStart = { at: now(), processed: s.processed };
        lastLine = { at: 0, tenth: -1, processed: -1 };
      }
      const { rate, eta } = figures(s);
      const failed = s.failed + s.rejected;
      if (stream.isTTY) {
        const payload = { verb: verb(s.phase), ...s, failed, rate, etaText: eta };
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              stream: stream as NodeJS.WritableStream,
              format:
                'ingest [{bar}] {value}/{total} {verb} | queued {queued} submitted {submitted} done {done} ' +
                'failed {failed} | {rate} files/s | eta {etaText}',
              hideCursor: false,
              clearOnComplete: false,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(s.total, s.processed, payload);
        } else {
          bar.update(s.processed, payload);
        }
        if (updateOptions.final) {
          bar.stop();
          bar = null;
        }
        return;
      }
      if (s.total === 0) return; // nothing to upload or wait for: the summary says so
      const tenth = Math.floor((s.processed / s.total) * 10);
      const due =
        now() - lastLine.at >= intervalMs ||
        tenth > lastLine.tenth ||
        (updateOptions.final && s.processed !== lastLine.processed);
      if (!due) return;
      lastLine = { at: now(), tenth, processed: s.processed };
      stream.write(
        `ingest: ${s.processed}/${s.total} ${verb(s.phase)} (queued ${s.queued}, submitted ${s.submitted}, ` +
          `done ${s.done}, failed ${failed}), ${rate} files/s, eta ${eta}\n`,
      );
    },
    note(line) {
      // on a TTY: clear the bar's line first; the bar draws itself again below on its next update
      stream.write(stream.isTTY && bar ? `\r\x1b[2K${line}\n` : `${line}\n`);
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

function formatDuration(seconds: number): string {
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// ---------------------------------------------------------------------------------------------
// reporting

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
