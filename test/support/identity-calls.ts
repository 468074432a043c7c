import { sql } from 'drizzle-orm';
import { drainAnalysis } from '../../src/analysis/drain.ts';
import { analysisSteps } from '../../src/analysis/steps.ts';
import type { VoiceSettings } from '../../src/config.ts';
import { DEFAULT_SPOOF_SETTINGS, DEFAULT_VOICE_SETTINGS, type SpoofSettings } from '../../src/config.ts';
import { type Db, queryRows } from '../../src/db/client.ts';
import { withTransaction } from '../../src/db/transaction.ts';
import { createLogger } from '../../src/log.ts';
import { recordStored, type UtteranceRow } from '../../src/recordings/store.ts';
import { insertImportedRecording } from '../../src/recordings/transitions.ts';
import { randomStream } from '../../src/standin/voices.ts';
import { identityStep } from '../../src/voices/identities/step.ts';
import { must } from './must.ts';

/**
 * Calls with voiceprints of a chosen geometry, for the identity clustering tests: a person is a
 * random direction, their calls that direction plus a little noise (pairwise similarity ≈ 0.96).
 */

export type TestVoiceprint = { label: string; unit: number[]; speechSeconds?: number; meanPSpoofed?: number };

let calls = 0;

/**
 * Stores one call (an imported recording with these voiceprints and its `stored` event) and answers
 * its voiceprint ids by label.
 * @example const { ids } = await storeCall(db, [{ label: 'speaker_0', unit: callOf(alice, 1) }]);
 */
export async function storeCall(
  db: Db,
  voiceprints: TestVoiceprint[],
  accountRef: string | null = 'acc-1',
  call: { callAt?: Date; channel?: string; enrolCustomer?: boolean; utterances?: UtteranceRow[] } = {},
) {
  return withTransaction(db, async (tx) => {
    const recordingId = must(
      await insertImportedRecording(tx, {
        documentSha256: `identity-test-${process.pid}-${Date.now()}-${calls++}`,
        upstreamApi: 'deepfake',
        upstreamCid: null,
        upstreamPid: null,
        rawDocument: { results: [] },
        accountRef,
        channel: call.channel ?? 'phone',
        callAt: call.callAt ?? null,
      }),
      'recording',
    );
    if (call.enrolCustomer) {
      await tx.execute(sql`update recordings set enrol_customer = true where id = ${recordingId}`);
    }
    await recordStored(tx, recordingId, {
      utterances: call.utterances ?? [],
      voiceprints: voiceprints.map((v) => ({
        speakerLabel: v.label,
        speaker: { text: `[${v.unit.join(',')}]`, norm: 1 },
        speechSeconds: v.speechSeconds ?? 30,
        utteranceCount: 3,
        meanPSpoofed: v.meanPSpoofed ?? 0.001,
      })),
    });
    const rows = await queryRows<{ id: string; label: string }>(
      tx,
      sql`select id, speaker_label as label from voiceprints where recording_id = ${recordingId}`,
    );
    return { recordingId, ids: Object.fromEntries(rows.map((r) => [r.label, r.id])) as Record<string, string> };
  });
}

/** Runs the identity step over every pending event (the real runner) until none is left. */
export async function analysePending(db: Db, settings: VoiceSettings = DEFAULT_VOICE_SETTINGS) {
  return drainAnalysis({
    db,
    log: createLogger('silent'),
    steps: [identityStep(settings)],
    concurrency: 1,
    leaseSeconds: 30,
    maxAttempts: 2,
    wait: true,
    pollMs: 20,
  });
}

/** Runs every analysis step voxtrace registers (src/analysis/steps.ts) over the pending events. */
export async function analyseAll(
  db: Db,
  settings: VoiceSettings = DEFAULT_VOICE_SETTINGS,
  spoofs: SpoofSettings = DEFAULT_SPOOF_SETTINGS,
) {
  const summary = await drainAnalysis({
    db,
    log: createLogger('silent'),
    steps: analysisSteps(settings, spoofs),
    concurrency: 1,
    leaseSeconds: 30,
    maxAttempts: 2,
    wait: true,
    pollMs: 20,
  });
  if (summary.dead > 0) throw new Error('an analysis step died');
  return summary;
}

/** Stores one call and analyses it: the call has arrived. Answers its voiceprint ids by label. */
export async function arrive(db: Db, voiceprints: TestVoiceprint[], accountRef?: string) {
  const stored = await storeCall(db, voiceprints, accountRef);
  const summary = await analysePending(db);
  if (summary.dead > 0) throw new Error('an identity step died');
  return stored.ids;
}

/** A random unit direction: a person. */
export function person(seed: number, name: string): number[] {
  const random = randomStream(seed, 'identity-test-person', name);
  return unit(Array.from({ length: 192 }, () => random.gaussian()));
}

/** One call of `voice`: its direction plus noise of relative energy `noise` (default 0.04). */
export function callOf(voice: number[], call: number, noise = 0.04): number[] {
  const random = randomStream(call, 'identity-test-call', String(voice[0]));
  const scale = Math.sqrt(noise / 192);
  return unit(voice.map((v) => v + scale * random.gaussian()));
}

/** The normalised sum of `vectors` with the given weights. */
export function mix(vectors: number[][], weights: number[]): number[] {
  return unit(
    (vectors[0] as number[]).map((_, i) =>
      vectors.reduce((s, v, j) => s + (weights[j] as number) * (v[i] as number), 0),
    ),
  );
}

export function unit(vector: number[]): number[] {
  const norm = Math.hypot(...vector);
  return vector.map((v) => v / norm);
}

export function cosine(a: number[], b: number[]): number {
  return a.reduce((s, v, i) => s + v * (b[i] as number), 0);
}

/** Every voiceprint's identity and its kind, by voiceprint id. */
export async function identityOf(db: Db): Promise<Record<string, { identityId: string | null; kind: string | null }>> {
  const rows = await queryRows<{ id: string; identityId: string | null; kind: string | null }>(
    db,
    sql`select v.id, v.identity_id as "identityId", i.kind from voiceprints v left join identities i on i.id = v.identity_id`,
  );
  return Object.fromEntries(rows.map((r) => [r.id, { identityId: r.identityId, kind: r.kind }]));
}

/** The part of `vector` orthogonal to `from`, as a unit vector: a direction unlike `from`. */
export function awayFrom(vector: number[], from: number[]): number[] {
  const along = cosine(vector, from);
  return unit(vector.map((v, i) => v - along * (from[i] as number)));
}
