import { sql } from 'drizzle-orm';
import pgvector from 'pgvector';
import { type Db, queryRows } from '../db/client.ts';
import { DEEPFAKE_DIMENSIONS } from '../db/schema.ts';
import { InvalidInputError } from '../errors.ts';

export type SimilarSpoof = {
  utteranceId: string;
  recordingId: string;
  pSpoofed: number | null;
  similarity: number;
};

/**
 * The k spoofed utterances (upstream label `spoofed`) nearest in the deepfake (768-d) space: the
 * members of the spoof clusters a voice sits closest to. Answered from the partial HNSW index
 * `utterances_spoofed_embedding_hnsw`, whose predicate the WHERE clause repeats verbatim; order by
 * `<=>` alone with a LIMIT. The query vector itself may come from any utterance, spoofed or not.
 * @example const sql = similarSpoofsQuery(unitVector, 10);
 */
export function similarSpoofsQuery(vector: readonly number[], k: number) {
  if (vector.length !== DEEPFAKE_DIMENSIONS) {
    throw new InvalidInputError(`a deepfake vector has ${DEEPFAKE_DIMENSIONS} values, got ${vector.length}`);
  }
  const literal = pgvector.toSql([...vector]);
  return sql`
    select id as "utteranceId", recording_id as "recordingId", p_spoofed as "pSpoofed",
           1 - (deepfake_embedding <=> ${literal}::halfvec(768)) as similarity
    from utterances
    where deepfake_label = 'spoofed'
    order by deepfake_embedding <=> ${literal}::halfvec(768)
    limit ${k}`;
}

/**
 * @example const hits = await findSimilarSpoofs(db, vector, 10);
 */
export async function findSimilarSpoofs(db: Db, vector: readonly number[], k: number): Promise<SimilarSpoof[]> {
  const rows = await queryRows<SimilarSpoof>(db, similarSpoofsQuery(vector, k));
  return rows.map((r) => ({ ...r, similarity: Number(r.similarity) }));
}
