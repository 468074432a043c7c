import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../src/db/client.ts';
import type { UtteranceRow } from '../../src/recordings/store.ts';
import { randomStream } from '../../src/standin/voices.ts';
import { storeCall } from './identity-calls.ts';

/**
 * Deepfake embeddings of a chosen geometry, for the spoof cluster tests: a generator family is a
 * random direction in 768-d, its utterances that direction plus noise (similarity ≈ 0.9 to each
 * other); a near relative sits at 0.55 to its parent; a false alarm is genuine speech the upstream
 * labelled spoofed, an unrelated direction.
 */

export const DEEPFAKE_DIMS = 768;

export const unitOf = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};

/** A random direction, the same for the same name. */
export const direction = (name: string) => {
  const random = randomStream(5, 'spoof-cluster-test', name);
  return unitOf(Array.from({ length: DEEPFAKE_DIMS }, () => random.gaussian()));
};

/** One utterance of `family`: its direction plus noise (relative energy 0.12: ≈ 0.9 to another). */
export const utteranceOf = (family: number[], key: string) => {
  const random = randomStream(6, 'spoof-cluster-utterance', key);
  const scale = Math.sqrt(0.12 / DEEPFAKE_DIMS);
  return unitOf(family.map((x) => x + scale * random.gaussian()));
};

/** A direction at cosine ≈ `wa` to `a`, the rest from `b` (a near relative when b is unrelated). */
export const mixDirections = (a: number[], b: number[], wa: number) =>
  unitOf(a.map((x, i) => wa * x + Math.sqrt(1 - wa * wa) * (b[i] as number)));

let calls = 0;

/** One call whose caller says these utterances (spoofed unless said otherwise), at `at`; its recording id. */
export async function spoofCall(
  db: Db,
  vectors: number[][],
  at: Date,
  label: 'spoofed' | 'bonafide' = 'spoofed',
  call: { accountRef?: string; channel?: string } = {},
): Promise<string> {
  const utterances: UtteranceRow[] = vectors.map((v, i) => ({
    upstreamId: String(i),
    startS: i * 5,
    endS: i * 5 + 4,
    speakerLabel: 'speaker_0',
    transcript: null,
    language: 'en',
    deepfakeLabel: label,
    pSpoofed: label === 'spoofed' ? 0.9999 : 0.0001,
    deepfake: { text: `[${v.join(',')}]`, norm: 1 },
  }));
  const { recordingId } = await storeCall(db, [], call.accountRef ?? `acc-${process.pid}-${calls++}`, {
    callAt: at,
    channel: call.channel ?? 'ivr',
    utterances,
  });
  return recordingId;
}

/** The spoof cluster of each utterance of a recording, in upstream order. */
export async function clustersOf(db: Db, recordingId: string): Promise<(string | null)[]> {
  const rows = await queryRows<{ clusterId: string | null }>(
    db,
    sql`select spoof_cluster_id as "clusterId" from utterances where recording_id = ${recordingId} order by upstream_id`,
  );
  return rows.map((r) => r.clusterId);
}

/** The utterance ids of a recording, in upstream order. */
export async function utterancesOf(db: Db, recordingId: string): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(
    db,
    sql`select id from utterances where recording_id = ${recordingId} order by upstream_id`,
  );
  return rows.map((r) => r.id);
}
