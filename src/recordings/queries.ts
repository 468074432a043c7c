import { asc, eq } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { recordings, utterances, voiceprints } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { isUuid } from '../ids.ts';

export type RecordingInclude = { embeddings?: boolean; document?: boolean };

/**
 * One recording with its utterances and voiceprints, shaped for the API. Vectors (unit length,
 * with `rawNorm`) and the raw document only when asked: they dominate the payload.
 * Throws NotFoundError for an unknown id, and for an id that is not a uuid.
 * @example const detail = await getRecordingDetail(db, id, { embeddings: true });
 */
export async function getRecordingDetail(db: Db, id: string, include: RecordingInclude = {}) {
  if (!isUuid(id)) throw new NotFoundError(`no recording ${id}`);
  const [recording] = await db.select().from(recordings).where(eq(recordings.id, id));
  if (!recording) throw new NotFoundError(`no recording ${id}`);
  const [utteranceRows, voiceprintRows] = await Promise.all([
    db
      .select()
      .from(utterances)
      .where(eq(utterances.recordingId, id))
      .orderBy(asc(utterances.startS), asc(utterances.upstreamId)),
    db.select().from(voiceprints).where(eq(voiceprints.recordingId, id)).orderBy(asc(voiceprints.speakerLabel)),
  ]);
  return {
    id: recording.id,
    status: recording.status,
    source: recording.source,
    sha256: recording.sha256,
    accountRef: recording.accountRef,
    channel: recording.channel,
    callAt: recording.callAt?.toISOString() ?? null,
    meta: recording.meta,
    upstream: { api: recording.upstreamApi, cid: recording.upstreamCid, pid: recording.upstreamPid },
    error: recording.error,
    createdAt: recording.createdAt.toISOString(),
    updatedAt: recording.updatedAt.toISOString(),
    completedAt: recording.completedAt?.toISOString() ?? null,
    utterances: utteranceRows.map((u) => ({
      id: u.id,
      upstreamId: u.upstreamId,
      startS: u.startS,
      endS: u.endS,
      speakerLabel: u.speakerLabel,
      transcript: u.transcript,
      language: u.language,
      deepfakeLabel: u.deepfakeLabel,
      pSpoofed: u.pSpoofed,
      ...(include.embeddings
        ? { deepfakeEmbedding: u.deepfakeEmbedding ?? null, deepfakeRawNorm: u.deepfakeRawNorm }
        : {}),
    })),
    voiceprints: voiceprintRows.map((v) => ({
      id: v.id,
      speakerLabel: v.speakerLabel,
      rawNorm: v.rawNorm,
      speechSeconds: v.speechSeconds,
      utteranceCount: v.utteranceCount,
      meanPSpoofed: v.meanPSpoofed,
      ...(include.embeddings ? { embedding: v.embedding } : {}),
    })),
    ...(include.document ? { rawDocument: recording.rawDocument ?? null, rawBody: recording.rawBody } : {}),
  };
}
export type RecordingDetail = Awaited<ReturnType<typeof getRecordingDetail>>;
