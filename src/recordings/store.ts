import type { Db } from '../db/client.ts';
import { utterances, voiceprints } from '../db/schema.ts';
import { type ParsedDocument, type ParsedUtterance, ResultsDocumentError } from '../upstream/results.ts';
import { meanVector, normalise } from '../vectors.ts';

export type UtteranceRow = Omit<typeof utterances.$inferInsert, 'recordingId'>;
export type VoiceprintRow = Omit<typeof voiceprints.$inferInsert, 'recordingId'>;
export type DocumentRows = { utterances: UtteranceRow[]; voiceprints: VoiceprintRow[] };

export type StoredCounts = { utterances: number; voiceprints: number; deepfakeEmbeddings: number };

/**
 * Turns a parsed document into the rows voxtrace stores for one recording: vectors L2-normalised
 * with their original norm; one voiceprint per diarized speaker that carries a vector (the mean
 * direction if a document ever carries several for one speaker).
 * Computed before any write, so a document that cannot be stored fails before its transaction.
 * @example const rows = rowsForDocument(parseResultsDocument(doc, { api: 'auto' }));
 */
export function rowsForDocument(document: ParsedDocument): DocumentRows {
  const utteranceRows = document.utterances.map((u): UtteranceRow => {
    const deepfake = u.deepfakeEmbedding ? unitOrReject(u.deepfakeEmbedding, u.upstreamId, 'features') : null;
    return {
      upstreamId: u.upstreamId,
      startS: u.startS,
      endS: u.endS,
      speakerLabel: u.speakerLabel,
      transcript: u.transcript,
      language: u.language,
      deepfakeLabel: u.deepfakeLabel,
      pSpoofed: u.pSpoofed,
      deepfakeEmbedding: deepfake?.unit ?? null,
      deepfakeRawNorm: deepfake?.norm ?? null,
    };
  });
  return { utterances: utteranceRows, voiceprints: voiceprintRows(document.utterances) };
}

function voiceprintRows(parsed: ParsedUtterance[]): VoiceprintRow[] {
  const speakers = new Map<string, ParsedUtterance[]>();
  for (const u of parsed) {
    if (u.speakerLabel === null) continue;
    const list = speakers.get(u.speakerLabel);
    if (list) list.push(u);
    else speakers.set(u.speakerLabel, [u]);
  }
  const rows: VoiceprintRow[] = [];
  for (const [speakerLabel, own] of speakers) {
    const vectors = own.flatMap((u) => (u.speakerEmbedding ? [u.speakerEmbedding] : []));
    if (vectors.length === 0) continue; // submitted without embeddings: nothing to search by
    const firstWithVector = own.find((u) => u.speakerEmbedding) as ParsedUtterance;
    const { unit, norm } = unitOrReject(
      vectors.length === 1 ? (vectors[0] as number[]) : meanVector(vectors),
      firstWithVector.upstreamId,
      'diarization',
    );
    const posteriors = own.flatMap((u) => (u.pSpoofed === null ? [] : [u.pSpoofed]));
    rows.push({
      speakerLabel,
      embedding: unit,
      rawNorm: norm,
      speechSeconds: own.reduce((sum, u) => sum + Math.max(0, (u.endS ?? 0) - (u.startS ?? 0)), 0),
      utteranceCount: own.length,
      meanPSpoofed: posteriors.length ? posteriors.reduce((a, b) => a + b, 0) / posteriors.length : null,
    });
  }
  return rows;
}

function unitOrReject(vector: number[], utteranceId: string, task: string) {
  try {
    return normalise(vector);
  } catch {
    throw new ResultsDocumentError('embedding is all zeros: it has no direction to store', { utteranceId, task });
  }
}

// One multi-row INSERT per chunk keeps round trips few; 500 rows of halfvec(768) text stay well
// under PostgreSQL's 65,535 bind-parameter limit (11 columns × 500).
const CHUNK_ROWS = 500;

/**
 * Inserts a recording's utterances and voiceprints; call inside the transaction that changes the
 * recording's status so both commit together.
 */
export async function insertDocumentRows(tx: Db, recordingId: string, rows: DocumentRows): Promise<StoredCounts> {
  for (let i = 0; i < rows.utterances.length; i += CHUNK_ROWS) {
    await tx.insert(utterances).values(rows.utterances.slice(i, i + CHUNK_ROWS).map((u) => ({ ...u, recordingId })));
  }
  if (rows.voiceprints.length > 0) {
    await tx.insert(voiceprints).values(rows.voiceprints.map((v) => ({ ...v, recordingId })));
  }
  return {
    utterances: rows.utterances.length,
    voiceprints: rows.voiceprints.length,
    deepfakeEmbeddings: rows.utterances.filter((u) => u.deepfakeEmbedding).length,
  };
}
