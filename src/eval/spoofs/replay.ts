import { createHash } from 'node:crypto';
import { BinaryRows } from '../../../bench/support/copy-binary.ts';
import { claimEvents, markEventDone, markStepDone } from '../../analysis/outbox.ts';
import type { AnalysisStep } from '../../analysis/runner.ts';
import type { Database } from '../../db/client.ts';
import { newLeaseOwner } from '../../db/lease.ts';
import { withTransaction } from '../../db/transaction.ts';
import type { Logger } from '../../log.ts';
import { openCopier } from './copy.ts';
import { DEEPFAKE_DIMENSIONS, embedder, type SpoofCorpus, stableUuid } from './corpus.ts';
import { activeClusterIds, maintainSpoofTables, spoofedPlacements } from './queries.ts';

const LEASE_SECONDS = 300;
/** recordings between two maintenance passes (maintainSpoofTables) */
const MAINTAIN_EVERY = 1_000;

export type ReplayResult = {
  /** each call's recording id and its utterances' ids, in corpus order */
  recordingIds: string[];
  utteranceIds: string[][];
  /** each spoofed-labelled utterance's cluster right after its own recording's analysis (null: noise) */
  atArrival: Map<string, string | null>;
  /** the clusters active when the first call at or after the corpus' cutoff was analysed */
  clustersAtCutoff: Set<string>;
  timing: { loadMs: number; analyseMs: number; stepMs: Record<string, number>; maintainMs: number };
};

/**
 * Loads the corpus in arrival order, as the product receives calls, and analyses it as the runner
 * does: each batch of calls is COPYed in (recordings, their utterances with their deepfake
 * embeddings, one `stored` event each: what `recordStored` writes for an import), then the batch's
 * events run through the steps in arrival order (`markStepDone` and the step in one transaction per
 * step). A batch is what a worker stores while the analysis catches up: calls of one batch see each
 * other's utterances, not yet placed. The truth never reaches the database: only the upstream's
 * labels, posteriors and vectors do.
 * @example const replay = await replaySpoofCorpus(database, corpus, { steps, log, batch: 25 });
 */
export async function replaySpoofCorpus(
  database: Database,
  corpus: SpoofCorpus,
  input: {
    steps: AnalysisStep[];
    log: Logger;
    batch: number;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<ReplayResult> {
  const { db } = database;
  const seed = corpus.options.seed;
  const vectors = embedder(corpus);
  const copier = await openCopier(database);
  const owner = newLeaseOwner();
  const recordingIds = corpus.calls.map((c) => stableUuid(seed, `recording:${c.key}`));
  const utteranceIds = corpus.calls.map((c) =>
    c.utterances.map((u) => stableUuid(seed, `utterance:${c.key}/${u.upstreamId}`)),
  );
  const atArrival = new Map<string, string | null>();
  let clustersAtCutoff: Set<string> | null = null;
  const stepMs: Record<string, number> = Object.fromEntries(input.steps.map((s) => [s.name, 0]));
  let loadMs = 0;
  let analyseMs = 0;
  let maintainMs = 0;
  const { calls } = corpus;
  try {
    for (let start = 0; start < calls.length; start += input.batch) {
      const end = Math.min(calls.length, start + input.batch);
      const loadStarted = performance.now();
      const recordings = new BinaryRows();
      const utterances = new BinaryRows();
      const events = new BinaryRows();
      for (let c = start; c < end; c++) {
        const call = corpus.calls[c] as (typeof calls)[number];
        const recordingId = recordingIds[c] as string;
        recordings.row(9);
        recordings.uuidText(recordingId);
        recordings.text('import');
        recordings.text(createHash('sha256').update(`spoofs-eval:${seed}:${call.key}`).digest('hex'));
        recordings.text('deepfake');
        recordings.text(call.accountRef);
        recordings.text(call.channel);
        recordings.timestamptz(call.callAt.getTime());
        recordings.text('complete');
        recordings.timestamptz(Date.now());
        const { units, norms } = vectors(call);
        call.utterances.forEach((u, i) => {
          utterances.row(10);
          utterances.uuidText((utteranceIds[c] as string[])[i] as string);
          utterances.uuidText(recordingId);
          utterances.text(u.upstreamId);
          utterances.float8(u.start);
          utterances.float8(u.end);
          utterances.text(u.speakerLabel);
          utterances.text(u.label);
          utterances.float8(u.pSpoofed);
          utterances.halfvec(units, i * DEEPFAKE_DIMENSIONS, DEEPFAKE_DIMENSIONS);
          utterances.float8(norms[i] as number);
        });
        events.row(3);
        events.uuidText(stableUuid(seed, `event:${call.key}`));
        events.uuidText(recordingId);
        events.text('stored');
      }
      await copier.copy(
        'recordings',
        [
          'id',
          'source',
          'document_sha256',
          'upstream_api',
          'account_ref',
          'channel',
          'call_at',
          'status',
          'completed_at',
        ],
        recordings,
      );
      await copier.copy(
        'utterances',
        [
          'id',
          'recording_id',
          'upstream_id',
          'start_s',
          'end_s',
          'speaker_label',
          'deepfake_label',
          'p_spoofed',
          'deepfake_embedding',
          'deepfake_raw_norm',
        ],
        utterances,
      );
      await copier.copy('recording_events', ['id', 'recording_id', 'kind'], events);
      const analyseStarted = performance.now();
      loadMs += analyseStarted - loadStarted;

      const batchIds = recordingIds.slice(start, end);
      const claimed = await claimEvents(db, {
        owner,
        limit: batchIds.length,
        leaseSeconds: LEASE_SECONDS,
        recordingIds: batchIds,
      });
      if (claimed.length !== batchIds.length) throw new Error(`claimed ${claimed.length} of ${batchIds.length} events`);
      const order = new Map(batchIds.map((id, i) => [id, start + i]));
      claimed.sort((a, b) => (order.get(a.recordingId) as number) - (order.get(b.recordingId) as number));
      for (const event of claimed) {
        const c = order.get(event.recordingId) as number;
        const call = calls[c] as (typeof calls)[number];
        if (!clustersAtCutoff && call.callAt.getTime() >= corpus.cutoff) {
          clustersAtCutoff = new Set(await activeClusterIds(db));
        }
        const lease = { id: event.id, owner };
        for (const step of input.steps) {
          const stepStarted = performance.now();
          await withTransaction(db, async (tx) => {
            await markStepDone(tx, lease, step.name, LEASE_SECONDS);
            await step.run({ tx, event, log: input.log });
          });
          stepMs[step.name] = (stepMs[step.name] as number) + (performance.now() - stepStarted);
        }
        await markEventDone(db, lease);
        if (call.utterances.some((u) => u.label === 'spoofed')) {
          for (const placed of await spoofedPlacements(db, event.recordingId))
            atArrival.set(placed.id, placed.clusterId);
        }
      }
      const analysed = performance.now();
      analyseMs += analysed - analyseStarted;
      if (Math.floor(end / MAINTAIN_EVERY) > Math.floor(start / MAINTAIN_EVERY)) {
        await maintainSpoofTables(db);
        maintainMs += performance.now() - analysed;
      }
      input.onProgress?.(end, calls.length);
    }
  } finally {
    await copier.close();
  }
  return {
    recordingIds,
    utteranceIds,
    atArrival,
    clustersAtCutoff: clustersAtCutoff ?? new Set(await activeClusterIds(db)),
    timing: { loadMs, analyseMs, stepMs, maintainMs },
  };
}
