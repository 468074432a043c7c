import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { and, eq, sql } from 'drizzle-orm';
import { type Db, dataErrorMessage } from '../db/client.ts';
import { recordingEvents, recordings } from '../db/schema.ts';
import type { Logger } from '../log.ts';
import { removeAbandonedUploads, removeSpoolFile, spoolFileExists, spoolPath } from '../recordings/spool.ts';
import { type DocumentRows, insertDocumentRows, rowsForDocument } from '../recordings/store.ts';
import { PROCESS_STATUS, type ProcessItem, type UpstreamClient, UpstreamError } from '../upstream/client.ts';
import { parseResultsDocument, ResultsDocumentError } from '../upstream/results.ts';
import { type ClaimedRecording, claimRecordings } from './claim.ts';

/**
 * The ingestion worker. The recording row is the job: `queued → submitting → submitted →
 * complete | failed | dead`. Each claim runs one short step and releases the lease, so slots are
 * never tied up while the upstream processes audio, and a crash at any point leaves a row that a
 * lease expiry hands to another worker.
 *
 * The upstream has no idempotency key. So the attempt is recorded (`submitting`) before the
 * upload, the process is named after the recording id, its pid is stored as soon as it returns,
 * and a recording found in `submitting` is first looked up by name in the upstream's process list:
 * a process found there is adopted instead of submitting the audio again.
 */

export type WorkerHooks = {
  /**
   * Runs inside the transaction that stores a recording (after its rows and its `recording_events`
   * row are written): whatever it writes commits or rolls back with the recording.
   */
  afterStored?: (tx: Db, recordingId: string) => Promise<void>;
};

export type WorkerOptions = {
  db: Db;
  client: UpstreamClient;
  log: Logger;
  spoolDir: string;
  concurrency: number;
  leaseSeconds: number;
  maxAttempts: number;
  keepAudio: boolean;
  hooks?: WorkerHooks;
  /** How long an idle worker waits before looking for due recordings again. */
  idleMs?: number;
  /** First retry delay after a transient failure (doubling, full jitter, capped at 5 min). */
  retryBaseMs?: number;
  /** Test switches that turn off a safety mechanism, to show what it protects. Never in production. */
  unsafe?: { noLeaseReclaim?: boolean; noSubmittingLookup?: boolean };
  /** Test hook: pause this long after results arrive and before they are stored (crash tests). */
  pauseBeforeStoreMs?: number;
};

const POLL_MIN_MS = 500;
const POLL_MAX_MS = 10_000;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 5 * 60_000;
// the upstream refused this audio itself; 401/403 are not here: wrong credentials get fixed and retried
const PERMANENT_STATUS = new Set([400, 404, 413, 415, 422]);

class LeaseLostError extends Error {}

/** PostgreSQL text cannot hold a NUL character: a body keeps it as the six characters `\u0000`. */
function storableText(body: string): string {
  return body.includes('\0') ? body.replaceAll('\0', '\\u0000') : body;
}

/**
 * The store step's statements, to run inside one transaction: the recording becomes `complete` with
 * its raw document (only if this worker still holds it, `submitted`), its utterances and voiceprints
 * are inserted, and a `stored` event is written to the outbox. False when the lease was lost, in
 * which case the caller must roll back.
 * @example await db.transaction(async (tx) => storeResults(tx, { recordingId, leaseOwner, rawBody, rows, keepAudio: false }));
 */
export async function storeResults(
  tx: Db,
  input: { recordingId: string; leaseOwner: string; rawBody: string; rows: DocumentRows; keepAudio: boolean },
): Promise<boolean> {
  const [updated] = await tx
    .update(recordings)
    .set({
      status: 'complete',
      // the body as received: the database parses it once, and nothing re-serialises ~200 KiB of JSON
      rawDocument: sql`${input.rawBody}::jsonb`,
      error: null,
      completedAt: new Date(),
      updatedAt: new Date(),
      leaseOwner: null,
      leaseExpiresAt: null,
      ...(input.keepAudio ? {} : { spoolFile: null }),
    })
    .where(
      and(
        eq(recordings.id, input.recordingId),
        eq(recordings.leaseOwner, input.leaseOwner),
        eq(recordings.status, 'submitted'),
      ),
    )
    .returning({ id: recordings.id });
  if (!updated) return false;
  await insertDocumentRows(tx, input.recordingId, input.rows);
  await tx.insert(recordingEvents).values({ recordingId: input.recordingId, kind: 'stored' });
  return true;
}

/**
 * @example
 * const worker = startWorker({ db, client, log, spoolDir, concurrency: 4, leaseSeconds: 60, maxAttempts: 8, keepAudio: false });
 * process.once('SIGTERM', () => worker.stop());
 */
export function startWorker(options: WorkerOptions) {
  const owner = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const log = options.log.child({ worker: owner });
  const inFlight = new Map<string, Promise<void>>();
  const heartbeats = new Set<NodeJS.Timeout>();
  let stopping = false;
  let wake: () => void = () => {};
  const idleMs = options.idleMs ?? 500;
  const stats = { claimed: 0, stored: 0, failed: 0, dead: 0, retried: 0 };

  async function loop() {
    await sweepSpool(options.db, options.spoolDir, options.keepAudio, log).catch((error) =>
      log.warn({ err: error }, 'spool sweep failed'),
    );
    while (!stopping) {
      const free = options.concurrency - inFlight.size;
      let claimed: ClaimedRecording[] = [];
      if (free > 0) {
        try {
          claimed = await claimRecordings(options.db, {
            owner,
            limit: free,
            leaseSeconds: options.leaseSeconds,
            reclaimExpired: !options.unsafe?.noLeaseReclaim,
          });
        } catch (error) {
          log.error({ err: error }, 'claim failed; retrying');
        }
      }
      for (const recording of claimed) {
        stats.claimed++;
        const job = runStep(recording).finally(() => {
          inFlight.delete(recording.id);
          wake();
        });
        inFlight.set(recording.id, job);
      }
      if (claimed.length === 0 || inFlight.size >= options.concurrency) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, idleMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  /** One step of one recording; every exit path leaves the row consistent and the lease released. */
  async function runStep(recording: ClaimedRecording) {
    const rlog = log.child({ recordingId: recording.id });
    const heartbeat = setInterval(
      () => {
        renewLease(recording.id).catch((error) => rlog.warn({ err: error }, 'lease renewal failed'));
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
          await markSubmitted(recording.id, adopted);
        } else {
          pid = await submit(recording, rlog);
        }
      }
      if (stopping) return await releaseLease(recording.id);
      const process = await options.client.getProcess(pid);
      if (process.status === PROCESS_STATUS.completed) return await fetchAndStore(recording, pid, rlog);
      if (process.status < 0) {
        const message = `upstream process ${pid} ended with status ${process.status}${process.statusmsg ? `: ${process.statusmsg}` : ''}`;
        return await finish(recording.id, { status: 'failed', error: message });
      }
      await pollLater(recording);
    } catch (error) {
      if (error instanceof LeaseLostError) {
        rlog.warn('lease lost to another worker; leaving the recording to it');
        return;
      }
      await recordFailure(recording, error, rlog).catch((e) => rlog.error({ err: e }, 'could not record a failure'));
    } finally {
      clearInterval(heartbeat);
      heartbeats.delete(heartbeat);
    }
  }

  async function submit(recording: ClaimedRecording, rlog: Logger): Promise<number> {
    if (!recording.spoolFile) {
      throw new PermanentError('the audio of this recording is no longer in the spool');
    }
    const file = spoolPath(options.spoolDir, recording.spoolFile);
    if (!(await spoolFileExists(options.spoolDir, recording.spoolFile))) {
      throw new PermanentError(`the spooled audio ${recording.spoolFile} is missing`);
    }
    // recorded before the upload: a crash after the upstream's 200 leaves `submitting`, which the
    // next worker resolves by looking the process up by name instead of uploading twice
    await guardedUpdate(recording.id, { status: 'submitting' });
    const process = await options.client.submitFile({
      file,
      name: recording.id,
      embeddings: true,
      meta: { recordingId: recording.id },
    });
    rlog.info({ pid: process.pid }, 'submitted upstream');
    await markSubmitted(recording.id, process);
    return process.pid;
  }

  async function findUpstreamProcess(name: string, createdAt: Date): Promise<ProcessItem | null> {
    // the process cannot be older than the recording; a day of slack covers clock and time-zone skew
    const startDate = new Date(createdAt.getTime() - 86_400_000).toISOString().slice(0, 10);
    for await (const process of options.client.allProcesses({ startDate })) {
      // a process that failed belongs to an earlier try that a retry has since replaced
      if (process.name === name && process.status >= 0) return process;
    }
    return null;
  }

  async function markSubmitted(id: string, process: ProcessItem) {
    await guardedUpdate(id, {
      status: 'submitted',
      upstreamPid: process.pid,
      upstreamCid: process.cid ?? null,
      upstreamApi: options.client.api,
      submittedAt: new Date(),
    });
  }

  async function fetchAndStore(recording: ClaimedRecording, pid: number, rlog: Logger) {
    const results = await options.client.getResults(pid);
    if (results.jsonError !== null) {
      return finish(recording.id, {
        status: 'failed',
        error: `the upstream's results for process ${pid} are not JSON: ${results.jsonError}`,
        rawBody: storableText(results.rawBody),
      });
    }
    let rows: ReturnType<typeof rowsForDocument>;
    try {
      rows = rowsForDocument(parseResultsDocument(results.document, { api: options.client.api }));
    } catch (error) {
      if (!(error instanceof ResultsDocumentError)) throw error;
      return finish(recording.id, {
        status: 'failed',
        error: `the upstream's results for process ${pid} cannot be stored: ${error.message}`,
        rawDocument: results.document,
      });
    }
    if (options.pauseBeforeStoreMs) {
      rlog.info({ pid }, 'results fetched; pausing before storing (test hook)');
      await new Promise((resolve) => setTimeout(resolve, options.pauseBeforeStoreMs));
    }
    try {
      await options.db.transaction(async (txn) => {
        const tx = txn as unknown as Db;
        const stored = await storeResults(tx, {
          recordingId: recording.id,
          leaseOwner: owner,
          rawBody: results.rawBody,
          rows,
          keepAudio: options.keepAudio ?? false,
        });
        if (!stored) throw new LeaseLostError();
        await options.hooks?.afterStored?.(tx, recording.id);
      });
    } catch (error) {
      // the database refuses the document itself (e.g. "\u0000" in a transcript): fetching it again
      // would bring the same bytes, so the recording fails now, with the body kept as text
      const refused = dataErrorMessage(error);
      if (!refused) throw error;
      return finish(recording.id, {
        status: 'failed',
        error: `the database refused the upstream's results for process ${pid} (nothing of them was stored): ${refused}`,
        rawBody: storableText(results.rawBody),
      });
    }
    stats.stored++;
    rlog.info({ pid, utterances: rows.utterances.length, voiceprints: rows.voiceprints.length }, 'stored');
    if (!options.keepAudio && recording.spoolFile) await removeSpoolFile(options.spoolDir, recording.spoolFile);
  }

  async function pollLater(recording: ClaimedRecording) {
    // capped backoff: poll about four times over the time the upstream has taken so far
    const waited = Date.now() - (recording.submittedAt ?? new Date()).getTime();
    const delayMs = Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, waited / 4));
    await options.db
      .update(recordings)
      .set({
        nextAttemptAt: new Date(Date.now() + delayMs),
        leaseOwner: null,
        leaseExpiresAt: null,
        updatedAt: new Date(),
      })
      .where(and(eq(recordings.id, recording.id), eq(recordings.leaseOwner, owner)));
  }

  async function recordFailure(recording: ClaimedRecording, error: unknown, rlog: Logger) {
    const message = error instanceof Error ? error.message : String(error);
    const permanent =
      error instanceof PermanentError ||
      (error instanceof UpstreamError && error.kind === 'http' && PERMANENT_STATUS.has(error.status ?? 0));
    if (permanent) {
      rlog.warn({ error: message }, 'failed permanently');
      return finish(recording.id, { status: 'failed', error: message });
    }
    const attempts = recording.attempts + 1;
    if (attempts >= options.maxAttempts) {
      rlog.warn({ error: message, attempts }, 'giving up: dead');
      return finish(
        recording.id,
        { status: 'dead', error: `gave up after ${attempts} attempts; last error: ${message}` },
        attempts,
      );
    }
    const delayMs = Math.round(
      Math.random() * Math.min(RETRY_MAX_MS, (options.retryBaseMs ?? RETRY_BASE_MS) * 2 ** (attempts - 1)),
    );
    rlog.warn({ error: message, attempts, delayMs }, 'transient failure; will retry');
    stats.retried++;
    // the status stays as it is: a recording left `submitting` is looked up by name on its next
    // try, so a submission whose fate is unknown is never simply repeated
    await options.db
      .update(recordings)
      .set({
        attempts,
        error: message,
        nextAttemptAt: new Date(Date.now() + delayMs),
        leaseOwner: null,
        leaseExpiresAt: null,
        updatedAt: new Date(),
      })
      .where(and(eq(recordings.id, recording.id), eq(recordings.leaseOwner, owner)));
  }

  async function finish(
    id: string,
    outcome: { status: 'failed' | 'dead'; error: string; rawBody?: string; rawDocument?: unknown },
    attempts?: number,
  ) {
    if (outcome.status === 'failed') stats.failed++;
    else stats.dead++;
    await guardedUpdate(id, {
      status: outcome.status,
      error: outcome.error,
      ...(outcome.rawBody !== undefined ? { rawBody: outcome.rawBody } : {}),
      ...(outcome.rawDocument !== undefined ? { rawDocument: outcome.rawDocument } : {}),
      ...(attempts !== undefined ? { attempts } : {}),
      completedAt: new Date(),
      leaseOwner: null,
      leaseExpiresAt: null,
    });
  }

  /** Changes a row only while this worker holds its lease. */
  async function guardedUpdate(id: string, values: Partial<typeof recordings.$inferInsert>) {
    const [row] = await options.db
      .update(recordings)
      .set({ ...values, updatedAt: new Date() })
      .where(and(eq(recordings.id, id), eq(recordings.leaseOwner, owner)))
      .returning({ id: recordings.id });
    if (!row) throw new LeaseLostError();
  }

  async function renewLease(id: string) {
    await options.db
      .update(recordings)
      .set({ leaseExpiresAt: sql`now() + make_interval(secs => ${options.leaseSeconds})` })
      .where(and(eq(recordings.id, id), eq(recordings.leaseOwner, owner)));
  }

  async function releaseLease(id: string) {
    await options.db
      .update(recordings)
      .set({ leaseOwner: null, leaseExpiresAt: null, updatedAt: new Date() })
      .where(and(eq(recordings.id, id), eq(recordings.leaseOwner, owner)));
  }

  const running = loop();

  return {
    owner,
    stats,
    /** Recordings this worker is working on right now. */
    get inFlight() {
      return inFlight.size;
    },
    /**
     * Stops claiming, gives steps in flight `graceMs` to finish, then releases every lease this
     * worker still holds so that others can take over at once. A step still waiting on the upstream
     * then is safe to abandon: a recording left `submitting` is looked up by name by the next worker.
     */
    async stop(graceMs = 5_000) {
      stopping = true;
      wake();
      await running;
      await Promise.race([Promise.allSettled(inFlight.values()), new Promise((r) => setTimeout(r, graceMs))]);
      // steps still waiting on the upstream are abandoned: no more lease renewals for them
      for (const heartbeat of heartbeats) clearInterval(heartbeat);
      heartbeats.clear();
      await options.db
        .update(recordings)
        .set({ leaseOwner: null, leaseExpiresAt: null, updatedAt: new Date() })
        .where(eq(recordings.leaseOwner, owner));
      log.info(stats, 'worker stopped');
    },
  };
}
export type Worker = ReturnType<typeof startWorker>;

/** An error no retry can fix: the recording fails with it. */
class PermanentError extends Error {}

// an upload younger than this may still be on its way into the database: leave it alone
const ABANDONED_AFTER_MS = 60 * 60_000;

/**
 * Keeps the spool to the audio of unstored recordings. Removes: audio of recordings already stored
 * (a crash between the storing commit and the deletion leaves it), and, after an hour, uploads
 * that never reached the database (a killed intake leaves a `.part` file, or a renamed file whose
 * insert never ran).
 */
async function sweepSpool(db: Db, spoolDir: string, keepAudio: boolean, log: Logger) {
  if (!fs.existsSync(spoolDir)) return;
  for (const name of await removeAbandonedUploads(spoolDir, { olderThanMs: ABANDONED_AFTER_MS })) {
    log.info({ file: name }, 'removed an abandoned upload');
  }
  const cutoff = Date.now() - ABANDONED_AFTER_MS;
  for (const file of fs.readdirSync(spoolDir).filter((f) => /^[0-9a-f-]{36}\.(wav|mp3)$/.test(f))) {
    const [row] = await db
      .select({ status: recordings.status, spoolFile: recordings.spoolFile })
      .from(recordings)
      .where(eq(recordings.id, file.slice(0, 36)));
    const stored = row?.status === 'complete' && row.spoolFile === null && !keepAudio;
    const orphan = !row && fs.statSync(path.join(spoolDir, file)).mtimeMs < cutoff;
    if (stored || orphan) {
      await removeSpoolFile(spoolDir, file);
      log.info({ file, reason: stored ? 'stored' : 'no recording' }, 'removed spooled audio');
    }
  }
}
