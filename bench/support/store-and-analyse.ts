import { randomUUID } from 'node:crypto';
import { claimEvents, markEventDone, markStepDone } from '../../src/analysis/outbox.ts';
import type { AnalysisStep } from '../../src/analysis/runner.ts';
import type { Db } from '../../src/db/client.ts';
import { recordings } from '../../src/db/schema.ts';
import { withTransaction } from '../../src/db/transaction.ts';
import { storeResults } from '../../src/ingest/worker.ts';
import { createLogger } from '../../src/log.ts';
import { type DocumentRows, rowsForDocument } from '../../src/recordings/store.ts';
import { parseResultsDocument } from '../../src/upstream/results.ts';
import { syntheticCalls } from '../../test/support/synthetic-documents.ts';
import { latencySummary, round3 } from './latency.ts';

const OWNER = 'bench-voices-knn';

type Prepared = { id: string; rawBody: string; rows: DocumentRows };

/**
 * What storing and analysing one recording costs: `count` demo calls (the shared synthetic
 * documents, seed `seed`) inserted as the worker finds them (submitted, leased), then, one
 * recording at a time, timed: the worker's store transaction (`storeResults`) and then what the
 * analysis runner does for its event — claim it, run every registered step in its own transaction
 * with its `steps_done` record, mark it done.
 */
export async function storeAndAnalyse(
  db: Db,
  input: { count: number; seed: number; firstPid: number; steps: AnalysisStep[] },
) {
  const prepared: Prepared[] = syntheticCalls({ count: input.count, seed: input.seed, firstPid: input.firstPid }).map(
    ({ document }) => {
      const rawBody = JSON.stringify(document);
      return {
        id: randomUUID(),
        rawBody,
        rows: rowsForDocument(parseResultsDocument(JSON.parse(rawBody), { api: 'deepfake' })),
      };
    },
  );
  const submittedAt = new Date();
  await db.insert(recordings).values(
    prepared.map((p, k) => ({
      id: p.id,
      source: 'upload' as const,
      status: 'submitted' as const,
      upstreamApi: 'deepfake' as const,
      upstreamCid: 1,
      upstreamPid: input.firstPid + k,
      leaseOwner: OWNER,
      leaseExpiresAt: new Date(submittedAt.getTime() + 3_600_000),
      submittedAt,
    })),
  );
  const log = createLogger('silent');
  const storeMs: number[] = [];
  const analyseMs: number[] = [];
  const totalMs: number[] = [];
  let voiceprints = 0;
  for (const p of prepared) {
    const started = performance.now();
    await storeResults(db, { id: p.id, owner: OWNER }, { rawBody: p.rawBody, rows: p.rows, keepAudio: false });
    const stored = performance.now();
    const [event] = await claimEvents(db, { owner: OWNER, limit: 1, leaseSeconds: 60, recordingIds: [p.id] });
    if (!event) throw new Error(`no stored event for recording ${p.id}`);
    const lease = { id: event.id, owner: OWNER };
    for (const step of input.steps) {
      await withTransaction(db, async (tx) => {
        await markStepDone(tx, lease, step.name, 60);
        await step.run({ tx, event, log });
      });
    }
    await markEventDone(db, lease);
    const done = performance.now();
    storeMs.push(stored - started);
    analyseMs.push(done - stored);
    totalMs.push(done - started);
    voiceprints += p.rows.voiceprints.length;
  }
  const mean = (xs: number[]) => round3(xs.reduce((s, x) => s + x, 0) / xs.length);
  return {
    recordings: input.count,
    voiceprints,
    steps: input.steps.map((s) => s.name),
    storeMeanMs: mean(storeMs),
    analyseMeanMs: mean(analyseMs),
    meanMs: mean(totalMs),
    total: latencySummary(totalMs),
  };
}
