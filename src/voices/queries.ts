import { sql } from 'drizzle-orm';
import pgvector from 'pgvector';
import { type Db, queryRows } from '../db/client.ts';
import { SPEAKER_DIMENSIONS } from '../db/schema.ts';
import { InvalidInputError } from '../errors.ts';

export type SimilarVoiceprint = {
  voiceprintId: string;
  recordingId: string;
  speakerLabel: string;
  /** cosine similarity in [-1, 1] (1 = same direction) */
  similarity: number;
};

/**
 * The k nearest voiceprints by cosine distance. Ordered by the `<=>` operator alone, with a LIMIT,
 * so that PostgreSQL answers it from the HNSW index `voiceprints_embedding_hnsw` (an ORDER BY on a
 * derived expression, or a WHERE that filters most rows, would fall back to an exact scan).
 * @example const sql = similarVoiceprintsQuery(unitVector, 10);
 */
export function similarVoiceprintsQuery(vector: readonly number[], k: number) {
  if (vector.length !== SPEAKER_DIMENSIONS) {
    throw new InvalidInputError(`a speaker vector has ${SPEAKER_DIMENSIONS} values, got ${vector.length}`);
  }
  const literal = pgvector.toSql([...vector]);
  return sql`
    select id as "voiceprintId", recording_id as "recordingId", speaker_label as "speakerLabel",
           1 - (embedding <=> ${literal}::vector(192)) as similarity
    from voiceprints
    order by embedding <=> ${literal}::vector(192)
    limit ${k}`;
}

/**
 * @example const hits = await findSimilarVoiceprints(db, vector, 10);
 */
export async function findSimilarVoiceprints(
  db: Db,
  vector: readonly number[],
  k: number,
): Promise<SimilarVoiceprint[]> {
  const rows = await queryRows<SimilarVoiceprint>(db, similarVoiceprintsQuery(vector, k));
  return rows.map((r) => ({ ...r, similarity: Number(r.similarity) }));
}
