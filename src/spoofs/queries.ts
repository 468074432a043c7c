import { sql } from 'drizzle-orm';
import pgvector from 'pgvector';
import { type Db, queryRows } from '../db/client.ts';
import { DEEPFAKE_DIMENSIONS } from '../db/schema.ts';
import { InvalidInputError } from '../errors.ts';

export type SimilarUtterance = {
  utteranceId: string;
  recordingId: string;
  pSpoofed: number | null;
  similarity: number;
};

/**
 * The k utterances nearest in the deepfake (768-d) space, answered from the HNSW index
 * `utterances_deepfake_embedding_hnsw`: order by `<=>` alone with a LIMIT, nothing else.
 * @example const sql = similarUtterancesQuery(unitVector, 10);
 */
export function similarUtterancesQuery(vector: readonly number[], k: number) {
  if (vector.length !== DEEPFAKE_DIMENSIONS) {
    throw new InvalidInputError(`a deepfake vector has ${DEEPFAKE_DIMENSIONS} values, got ${vector.length}`);
  }
  const literal = pgvector.toSql([...vector]);
  return sql`
    select id as "utteranceId", recording_id as "recordingId", p_spoofed as "pSpoofed",
           1 - (deepfake_embedding <=> ${literal}::halfvec(768)) as similarity
    from utterances
    order by deepfake_embedding <=> ${literal}::halfvec(768)
    limit ${k}`;
}

/**
 * @example const hits = await findSimilarUtterances(db, vector, 10);
 */
export async function findSimilarUtterances(db: Db, vector: readonly number[], k: number): Promise<SimilarUtterance[]> {
  const rows = await queryRows<SimilarUtterance>(db, similarUtterancesQuery(vector, k));
  return rows.map((r) => ({ ...r, similarity: Number(r.similarity) }));
}
