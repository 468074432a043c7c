import { type Db, dataErrorMessage } from '../db/client.ts';
import { type Lease, LeaseLostError, newLeaseOwner, releaseAllLeases, releaseLease, renewLease } from '../db/lease.ts';
import { recordings } from '../db/schema.ts';
import { withTransaction } from '../db/transaction.ts';
import { startJobLoop } from '../job-loop.ts';
import type { Logger } from '../log.ts';
import { removeSpoolFile, spoolFileExists, spoolPath } from '../recordings/spool.ts';
import { type DocumentRows, recordStored, rowsForDocument } from '../recordings/store.ts';
import {
  type ClaimedRecording,
  claimRecordings,
  completeRecording,
  markFinalFailure,
  markSubmitted,
  markSubmitting,
  schedulePoll,
  scheduleRetry,
} from '../recordings/transitions.ts';
import { jobRetryDelayMs } from '../retry.ts';
import { DAY_MS } from '../time.ts';
import { PROCESS_STATUS, type ProcessItem, type UpstreamClient, UpstreamError } from '../upstream/client.ts';
import { parseResultsDocument, ResultsDocumentError } from '../upstream/results.ts';
import { sweepSpool } from './spool-sweep.ts';

/**
 * The ingestion worker. The recording row is the job: `queued → submitting → submitted →
 * complete | failed | dead` (src/recordings/transitions.ts owns every change). Each claim runs one
 * short step and releases the lease, so slots are never tied up while the upstream processes
 * audio, and a crash at any point leaves a row that a lease expiry hands to another worker.
 *
 * The upstream has no idempotency key. So the attempt is recorded (`submitting`) before the
 * upload, the process is named after the recording id, its pid is stored as soon as it returns,
 * and a recording found in `submitting` is first looked up by name in the upstream's process list:
 * a process found there is adopted instead of submitting the audio again.
 */

export type WorkerOptions = {
  db: Db;
  client: UpstreamClient;
  log: Logger;
  spoolDir: string;
  concurrency: number;
  leaseSeconds: number;
  maxAttempts: number;
  keepAudio: boolean;
  /** How long an idle worker waits before looking for due recordings again. */
  idleMs?: number;
  /** First retry delay after a transient failure (doubling, full jitter, capped at 5 min). */
  retryBaseMs?: number;
  /** Called after each recording is stored and committed (the analysis runner wakes on it). */
  onStored?: (recordingId: string) => void;
  /**
   * Test switches that turn a safety mechanism off or widen a crash window, to show what each one
   * protects (test/worker-crash.int.test.ts). No command sets them.
   */
  unsafe?: { noLeaseReclaim?: boolean; noSubmittingLookup?: boolean; pauseBeforeStoreMs?: number };
};

// the upstream refused this audio itself; 401/403 are not here: wrong credentials get fixed and retried
const PERMANENT_STATUS = new Set([400, 404, 413, 415, 422]);

/** PostgreSQL text cannot hold a NUL character: a body keeps it as the six characters `\u0000`. */
function storableText(body: string): string {
  return body.includes('\0') ? body.replaceAll('\0', '\\u0000') : body;
}

/**
 * The store step, in one transaction: the recording becomes `complete` with its raw document (only
 * while `lease` holds it and it is `submitted`; LeaseLostError otherwise, and nothing is written),
 * then `recordStored` adds its rows and its outbox event.
 * @example await storeResults(db, { id, owner }, { rawBody, rows, keepAudio: false });
 */
export async function storeResults(
  db: Db,
  lease: Lease,
  input: { rawBody: string; rows: DocumentRows; keepAudio: boolean },
): Promise<void> {
  await withTransaction(db, async (tx) => {
    await completeRecording(tx, lease, { rawBody: input.rawBody, keepAudio: input.keepAudio });
    await recordStored(tx, lease.id, input.rows);
  });
}

/**
 * @example
 * const worker = startWorker({ db, client, log, spoolDir, concurrency: 4, leaseSeconds: 60, maxAttempts: 8, keepAudio: false });
 * process.once('SIGTERM', () => worker.stop());
 */
export function startWorker(options: WorkerOptions) {
  const owner = newLeaseOwner();
  const log = options.log.child({ worker: owner });
  const { db, client } = options;
  const heartbeats = new Set<NodeJS.Timeout>();
  const stats = { claimed: 0, stored: 0, failed: 0, dead: 0, retried: 0 };

  /** One step of one recording; every exit path leaves the row consistent and the lease released. */
  async function runStep(recording: ClaimedRecording) {
    stats.claimed++;
    const lease: Lease = { id: recording.id, owner };
    const rlog = log.child({ recordingId: recording.id });
    const heartbeat = setInterval(
      () => {
        renewLease(db, recordings, lease, options.leaseSeconds).catch((error) =>
          rlog.warn({ err: error }, 'lease renewal failed'),
        );
      },
      Math.max(1000, (options.leaseSeconds * 1000) / 3),
    );
    heartbeats.add(heartbeat);
    try {
      let pid = recording.upstreamPid;
      if (recording.status !== 'submitted' || pid === null) {
        const adopted =
          recording.status === 'submitting' && !options.unsafe?.noSubmittingLookup
            ? await findUpstreamProcess(recording.id, recording.createdAt)
            : null;
        if (adopted) {
          rlog.info({ pid: adopted.pid }, 'adopted the upstream process of an earlier attempt');
          pid = adopted.pid;
          await markSubmitted(db, lease, { api: client.api, pid: adopted.pid, cid: adopted.cid ?? null });
        } else {
          pid = await submit(recording, lease, rlog);
        }
      }
      if (stopping) return await releaseLease(db, recordings, lease);
      const upstreamProcess = await client.getProcess(pid);
      if (upstreamProcess.status === PROCESS_STATUS.completed) return await fetchAndStore(recording, lease, pid, rlog);
      if (upstreamProcess.status < 0) {
        const status = upstreamProcess.status;
        const detail = upstreamProcess.statusmsg ? `: ${upstreamProcess.statusmsg}` : '';
        return await finish(lease, {
          status: 'failed',
          error: `upstream process ${pid} ended with status ${status}${detail}`,
        });
      }
      await schedulePoll(db, lease);
    } catch (error) {
      await recordFailure(recording, lease, error, rlog).catch((failure) => {
        if (failure instanceof LeaseLostError) rlog.warn('lease lost to another worker; leaving the recording to it');
        else rlog.error({ err: failure }, 'could not record a failure');
      });
    } finally {
      clearInterval(heartbeat);
      heartbeats.delete(heartbeat);
    }
  }

  async function submit(recording: ClaimedRecording, lease: Lease, rlog: Logger): Promise<number> {
    if (!recording.spoolFile) throw new PermanentError('the audio of this recording is no longer in the spool');
    if (!(await spoolFileExists(options.spoolDir, recording.spoolFile))) {
      throw new PermanentError(`the spooled audio ${recording.spoolFile} is missing`);
    }
    await markSubmitting(db, lease);
    const submitted = await client.submitFile({
      file: spoolPath(options.spoolDir, recording.spoolFile),
      name: recording.id,
      embeddings: true,
      meta: { recordingId: recording.id },
    });
    rlog.info({ pid: submitted.pid }, 'submitted upstream');
    await markSubmitted(db, lease, { api: client.api, pid: submitted.pid, cid: submitted.cid ?? null });
    return submitted.pid;
  }

  async function findUpstreamProcess(name: string, createdAt: Date): Promise<ProcessItem | null> {
    // the process cannot be older than the recording; a day of slack covers clock and time-zone skew
    const startDate = new Date(createdAt.getTime() - DAY_MS).toISOString().slice(0, 10);
    for await (const candidate of client.allProcesses({ startDate })) {
      // a process that failed belongs to an earlier try that a retry has since replaced
      if (candidate.name === name && candidate.status >= 0) return candidate;
    }
    return null;
  }

  async function fetchAndStore(recording: ClaimedRecording, lease: Lease, pid: number, rlog: Logger) {
    const results = await client.getResults(pid);
    if (results.jsonError !== null) {
      return finish(lease, {
        status: 'failed',
        error: `the upstream's results for process ${pid} are not JSON: ${results.jsonError}`,
        rawBody: storableText(results.rawBody),
      });
    }
    let rows: DocumentRows;
    try {
      rows = rowsForDocument(parseResultsDocument(results.document, { api: client.api }));
    } catch (error) {
      if (!(error instanceof ResultsDocumentError)) throw error;
      return finish(lease, {
        status: 'failed',
        error: `the upstream's results for process ${pid} cannot be stored: ${error.message}`,
        rawDocument: results.document,
      });
    }
    if (options.unsafe?.pauseBeforeStoreMs) {
      rlog.info({ pid }, 'results fetched; pausing before storing (test switch)');
      await new Promise((resolve) => setTimeout(resolve, options.unsafe?.pauseBeforeStoreMs));
    }
    try {
      await storeResults(db, lease, { rawBody: results.rawBody, rows, keepAudio: options.keepAudio });
    } catch (error) {
      // the database refuses the document itself (e.g. "\u0000" in a transcript): fetching it again
      // would bring the same bytes, so the recording fails now, with the body kept as text
      const refused = dataErrorMessage(error);
      if (!refused) throw error;
      return finish(lease, {
        status: 'failed',
        error: `the database refused the upstream's results for process ${pid} (nothing of them was stored): ${refused}`,
        rawBody: storableText(results.rawBody),
      });
    }
    stats.stored++;
    rlog.info({ pid, utterances: rows.utterances.length, voiceprints: rows.voiceprints.length }, 'stored');
    options.onStored?.(recording.id);
    if (!options.keepAudio && recording.spoolFile) await removeSpoolFile(options.spoolDir, recording.spoolFile);
  }

  async function recordFailure(recording: ClaimedRecording, lease: Lease, error: unknown, rlog: Logger) {
    if (error instanceof LeaseLostError) throw error; // the row is another worker's now: write nothing
    const message = error instanceof Error ? error.message : String(error);
    const permanent =
      error instanceof PermanentError ||
      (error instanceof UpstreamError && error.kind === 'http' && PERMANENT_STATUS.has(error.status ?? 0));
    if (permanent) {
      rlog.warn({ error: message }, 'failed permanently');
      return finish(lease, { status: 'failed', error: message });
    }
    const attempts = recording.attempts + 1;
    if (attempts >= options.maxAttempts) {
      rlog.warn({ error: message, attempts }, 'giving up: dead');
      return finish(lease, {
        status: 'dead',
        error: `gave up after ${attempts} attempts; last error: ${message}`,
        attempts,
      });
    }
    const delayMs = jobRetryDelayMs(attempts, options.retryBaseMs);
    rlog.warn({ error: message, attempts, delayMs }, 'transient failure; will retry');
    stats.retried++;
    await scheduleRetry(db, lease, { attempts, error: message, delayMs });
  }

  async function finish(lease: Lease, outcome: Parameters<typeof markFinalFailure>[2]) {
    if (outcome.status === 'failed') stats.failed++;
    else stats.dead++;
    await markFinalFailure(db, lease, outcome);
  }

  let stopping = false;
  const loop = startJobLoop({
    concurrency: options.concurrency,
    idleMs: options.idleMs ?? 500,
    log,
    beforeFirstClaim: () => sweepSpool(db, options.spoolDir, options.keepAudio, log),
    claim: (limit) =>
      claimRecordings(db, {
        owner,
        limit,
        leaseSeconds: options.leaseSeconds,
        reclaimExpired: !options.unsafe?.noLeaseReclaim,
      }),
    run: runStep,
  });

  return {
    owner,
    stats,
    /** Recordings this worker is working on right now. */
    get inFlight() {
      return loop.inFlight;
    },
    /**
     * Stops claiming, gives steps in flight `graceMs` to finish, then releases every lease this
     * worker still holds so that others can take over at once. A step still waiting on the upstream
     * then is safe to abandon: a recording left `submitting` is looked up by name by the next worker.
     */
    async stop(graceMs = 5_000) {
      stopping = true;
      await loop.stop(graceMs);
      // steps still waiting on the upstream are abandoned: no more lease renewals for them
      for (const heartbeat of heartbeats) clearInterval(heartbeat);
      heartbeats.clear();
      await releaseAllLeases(db, recordings, owner);
      log.info(stats, 'worker stopped');
    },
  };
}
export type Worker = ReturnType<typeof startWorker>;

/** An error no retry can fix: the recording fails with it. */
class PermanentError extends Error {}
