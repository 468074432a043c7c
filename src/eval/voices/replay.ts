import { createHash } from 'node:crypto';
import { claimEvents, markEventDone, markStepDone } from '../../analysis/outbox.ts';
import type { AnalysisStep } from '../../analysis/runner.ts';
import { CLI_ACTOR } from '../../audit/audit.ts';
import type { VoiceSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import { newLeaseOwner } from '../../db/lease.ts';
import { withTransaction } from '../../db/transaction.ts';
import type { Logger } from '../../log.ts';
import { recordStored } from '../../recordings/store.ts';
import { insertImportedRecording } from '../../recordings/transitions.ts';
import { l2Norm } from '../../vectors.ts';
import { enrolIdentity } from '../../voices/identities/edits.ts';
import type { Corpus, CorpusVoiceprint } from './corpus.ts';
import { maintainTables, voiceprintIdsByLabel } from './queries.ts';

/** A corpus voiceprint with the id the database gave it. */
export type LoadedVoiceprint = CorpusVoiceprint & { id: string; recordingId: string; callKey: string };

const LEASE_SECONDS = 300;
/** calls between two maintenance passes (maintainTables) */
const MAINTAIN_EVERY = 1_000;

/**
 * Loads the corpus in arrival order, as the product receives calls: each batch of calls is stored
 * as imported recordings (`recordStored`: their voiceprints and `stored` events, as import does,
 * on the call's channel), the analyst's enrolments of that batch are made (`enrolIdentity`), and
 * then the batch's events run through the analysis steps in arrival order, as the runner runs them
 * (`markStepDone` and the step in one transaction per step); `onAnalysed` is called after each
 * call's analysis (what an analyst does then, e.g. list a voice). A batch is what a worker stores
 * while the analysis catches up: calls of one batch see each other's voiceprints, not yet assigned.
 * @example const loaded = await replayCorpus(db, corpus, { steps, settings, log, batch: 8 });
 */
export async function replayCorpus(
  db: Db,
  corpus: Corpus,
  input: {
    steps: AnalysisStep[];
    settings: VoiceSettings;
    log: Logger;
    batch: number;
    onProgress?: (done: number, total: number) => void;
    onAnalysed?: (voiceprints: LoadedVoiceprint[]) => Promise<void>;
  },
): Promise<LoadedVoiceprint[]> {
  const loaded: LoadedVoiceprint[] = [];
  const owner = newLeaseOwner();
  const { calls } = corpus;
  for (let start = 0; start < calls.length; start += input.batch) {
    const batch = calls.slice(start, start + input.batch);
    const recordingIds: string[] = [];
    const stored = await withTransaction(db, async (tx) => {
      const rows: LoadedVoiceprint[] = [];
      for (const call of batch) {
        const recordingId = await insertImportedRecording(tx, {
          documentSha256: createHash('sha256').update(`voices-eval:${corpus.options.seed}:${call.key}`).digest('hex'),
          upstreamApi: 'deepfake',
          upstreamCid: null,
          upstreamPid: null,
          rawDocument: { results: [] },
          accountRef: call.accountRef,
          channel: call.channel,
          callAt: call.callAt,
        });
        if (!recordingId) throw new Error(`call ${call.key} is already stored: the eval needs a fresh database`);
        recordingIds.push(recordingId);
        await recordStored(tx, recordingId, {
          utterances: [],
          voiceprints: call.voiceprints.map((vp) => ({
            speakerLabel: vp.speakerLabel,
            speaker: { text: `[${vp.vector.join(',')}]`, norm: l2Norm(vp.vector) },
            speechSeconds: vp.speechSeconds,
            utteranceCount: vp.utteranceCount,
            meanPSpoofed: vp.meanPSpoofed,
          })),
        });
        const byLabel = await voiceprintIdsByLabel(tx, recordingId);
        for (const vp of call.voiceprints) {
          rows.push({ ...vp, id: byLabel.get(vp.speakerLabel) as string, recordingId, callKey: call.key });
        }
      }
      return rows;
    });
    for (const vp of stored) {
      if (!vp.enrol) continue;
      await enrolIdentity(
        db,
        input.settings,
        vp.enrol === 'customer'
          ? {
              kind: 'customer',
              accountRef: accountOf(batch, vp.callKey),
              voiceprintIds: [vp.id],
              reason: 'eval enrolment',
            }
          : { kind: 'staff', name: vp.speakerId, voiceprintIds: [vp.id], reason: 'eval enrolment' },
        CLI_ACTOR,
      );
    }
    loaded.push(...stored);
    const onAnalysed = input.onAnalysed;
    await analyseInOrder(
      db,
      recordingIds,
      owner,
      input.steps,
      input.log,
      onAnalysed && ((recordingId) => onAnalysed(stored.filter((vp) => vp.recordingId === recordingId))),
    );
    if (Math.floor((start + batch.length) / MAINTAIN_EVERY) > Math.floor(start / MAINTAIN_EVERY)) {
      await maintainTables(db);
    }
    input.onProgress?.(Math.min(calls.length, start + input.batch), calls.length);
  }
  return loaded;
}

function accountOf(batch: Corpus['calls'], callKey: string): string {
  return batch.find((c) => c.key === callKey)?.accountRef as string;
}

/** Runs every step on these recordings' events, in the given order, as the runner does. */
async function analyseInOrder(
  db: Db,
  recordingIds: string[],
  owner: string,
  steps: AnalysisStep[],
  log: Logger,
  afterEach?: (recordingId: string) => Promise<void>,
) {
  const events = await claimEvents(db, {
    owner,
    limit: recordingIds.length,
    leaseSeconds: LEASE_SECONDS,
    recordingIds,
  });
  const order = new Map(recordingIds.map((id, i) => [id, i]));
  events.sort((a, b) => (order.get(a.recordingId) as number) - (order.get(b.recordingId) as number));
  if (events.length !== recordingIds.length)
    throw new Error(`claimed ${events.length} of ${recordingIds.length} events`);
  for (const event of events) {
    const lease = { id: event.id, owner };
    for (const step of steps) {
      await withTransaction(db, async (tx) => {
        await markStepDone(tx, lease, step.name, LEASE_SECONDS);
        await step.run({ tx, event, log });
      });
    }
    await markEventDone(db, lease);
    await afterEach?.(event.recordingId);
  }
}
