import type { Db } from '../db/client.ts';
import { SPEAKER_DIMENSIONS } from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { queryVectorUnit } from '../search/query-vector.ts';
import { voiceprintById, voiceprintOfRecording } from './queries.ts';
import type { VoiceQuery } from './search-request.ts';

/** A voice query made concrete: its unit vector, and where it came from (left out of answers). */
export type ResolvedVoice = {
  unit: Float32Array;
  voiceprintId: string | null;
  recordingId: string | null;
  /** what the audit trail keeps of the query: ids, never a vector */
  reference: { voiceprintId: string } | { recordingId: string; speakerLabel: string } | { embedding: 'given' };
};

/**
 * Resolves one voice query (`{voiceprintId}`, `{recordingId, speakerLabel?}`, `{embedding}`);
 * `path` names the field in errors (`query`, `a`, `query.positive.2`).
 * @example const voice = await resolveVoiceQuery(db, { recordingId }, 'query');
 */
export async function resolveVoiceQuery(db: Db, query: VoiceQuery, path: string): Promise<ResolvedVoice> {
  if ('voiceprintId' in query) {
    const found = isUuid(query.voiceprintId) ? await voiceprintById(db, query.voiceprintId) : null;
    if (!found) throw new NotFoundError(`${path}.voiceprintId: no voiceprint ${query.voiceprintId}`);
    return {
      unit: found.embedding,
      voiceprintId: found.id,
      recordingId: found.recordingId,
      reference: { voiceprintId: found.id },
    };
  }
  if ('recordingId' in query) {
    const { recordingExists, voiceprint, labels } = isUuid(query.recordingId)
      ? await voiceprintOfRecording(db, query.recordingId, query.speakerLabel)
      : { recordingExists: false, voiceprint: null, labels: [] };
    if (!recordingExists) throw new NotFoundError(`${path}.recordingId: no recording ${query.recordingId}`);
    if (!voiceprint) {
      throw new NotFoundError(
        query.speakerLabel === undefined || labels.length === 0
          ? `${path}.recordingId: recording ${query.recordingId} has no voiceprint`
          : `${path}.speakerLabel: recording ${query.recordingId} has no speaker ${query.speakerLabel} (it has ${labels.join(', ')})`,
      );
    }
    return {
      unit: voiceprint.embedding,
      voiceprintId: voiceprint.id,
      recordingId: voiceprint.recordingId,
      reference: { recordingId: voiceprint.recordingId, speakerLabel: voiceprint.speakerLabel },
    };
  }
  return {
    unit: embeddingUnit(query.embedding, `${path}.embedding`),
    voiceprintId: null,
    recordingId: null,
    reference: { embedding: 'given' },
  };
}

/** 192 finite numbers (or the upstream's string form of them), as a unit vector. */
export function embeddingUnit(value: readonly number[] | string, path: string): Float32Array {
  return queryVectorUnit(value, path, SPEAKER_DIMENSIONS);
}
