import { setTimeout as sleep } from 'node:timers/promises';
import { type ApiClient, ApiRequestError } from '../../client/api.ts';
import { forEachLimited } from '../../concurrency.ts';
import { RECORDING_IDS_MAX } from '../../http/limits.ts';
import type { RecordingSummaryResponse } from '../../recordings/routes.ts';
import type { ProgressDisplay, ProgressSnapshot } from './progress.ts';
import type { Tracker } from './tracker.ts';

/**
 * How `ingest --wait` follows its recordings to the end, asking the API as little as it can: most
 * rounds look up only the oldest pending recordings by id (workers take recordings about first in,
 * first out, so that is where things change), and every FULL_SWEEP_EVERY rounds every pending one.
 */

const IN_FLIGHT_STATUSES = ['queued', 'submitting', 'submitted'] as const;
// every this many rounds, --wait checks every pending recording (they can finish out of order)
const FULL_SWEEP_EVERY = 10;
// what listing the in-flight recordings costs at the least, in requests: one page per status
const FIRST_LIST_COST = IN_FLIGHT_STATUSES.length;

/**
 * Polls until every tracked recording is terminal, every `pollIntervalMs`; most rounds look up the
 * `pendingWindow` oldest pending recordings by id, every FULL_SWEEP_EVERY rounds all of them.
 */
export async function waitForRecordings(
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
 * oldest pending recordings only, at most `pendingWindow` by id, so it costs a few key lookups
 * however large the run; less often than the wait's polling; and best effort: a failed round is
 * skipped, since the wait that follows is the authority on each recording's outcome.
 */
export async function refreshWhileUploading(
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
  if (Math.ceil(pending.length / RECORDING_IDS_MAX) > listCost) {
    const inFlight = new Map<string, RecordingSummaryResponse>();
    let pages = 0;
    for (const status of IN_FLIGHT_STATUSES) {
      for (let cursor: string | null = null, first = true; first || cursor; first = false) {
        const answer = await api.listRecordings(status, cursor);
        pages++;
        if (!answer.ok) throw new ApiRequestError(`listing recordings failed: ${answer.detail}`);
        for (const item of answer.value.items) inFlight.set(item.id, item);
        cursor = answer.value.nextCursor;
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

/** Looks these recordings up by id, RECORDING_IDS_MAX per request, and records what the API says of each. */
async function lookUp(api: ApiClient, tracker: Tracker, recordings: { id: string }[]): Promise<void> {
  const batches: (typeof recordings)[] = [];
  for (let i = 0; i < recordings.length; i += RECORDING_IDS_MAX) {
    batches.push(recordings.slice(i, i + RECORDING_IDS_MAX));
  }
  await forEachLimited(batches, 4, async (batch) => {
    const answer = await api.recordingsByIds(batch.map((r) => r.id));
    if (!answer.ok) throw new ApiRequestError(`looking recordings up failed: ${answer.detail}`);
    const found = new Map(answer.value.items.map((r) => [r.id, r]));
    for (const recording of batch) {
      const current = found.get(recording.id);
      tracker.see(current ?? { id: recording.id, status: 'dead', error: 'the recording no longer exists (deleted)' });
    }
  });
}
