import { sql } from 'drizzle-orm';
import { insertStoredEvent } from '../analysis/outbox.ts';
import type { Db } from '../db/client.ts';
import { DEEPFAKE_DIMENSIONS, SPEAKER_DIMENSIONS } from '../db/schema.ts';
import { type ParsedDocument, type ParsedUtterance, ResultsDocumentError } from '../upstream/results.ts';
import { l2Norm, meanVector } from '../vectors.ts';

/**
 * A vector on its way to the database: the upstream's values as pgvector text, and their L2 norm.
 * The database stores the unit vector (`l2_normalize`), so the worker never formats ~10,000 numbers
 * per recording; `unit × norm` still gives back the upstream's values (CONVENTIONS.md, SQL).
 */
export type VectorToStore = { text: string; norm: number };

export type UtteranceRow = Pick<
  ParsedUtterance,
  'upstreamId' | 'startS' | 'endS' | 'speakerLabel' | 'transcript' | 'language' | 'deepfakeLabel' | 'pSpoofed'
> & { deepfake: VectorToStore | null };
export type VoiceprintRow = {
  speakerLabel: string;
  speaker: VectorToStore;
  speechSeconds: number;
  utteranceCount: number;
  meanPSpoofed: number | null;
};
export type DocumentRows = { utterances: UtteranceRow[]; voiceprints: VoiceprintRow[] };

export type StoredCounts = { utterances: number; voiceprints: number; deepfakeEmbeddings: number };

/**
 * Turns a parsed document into the rows voxtrace stores for one recording: each vector with its
 * original norm; one voiceprint per diarized speaker that carries a vector (the mean direction if a
 * document ever carries several for one speaker).
 * Computed before any write, so a document that cannot be stored fails before its transaction.
 * @example const rows = rowsForDocument(parseResultsDocument(doc, { api: 'auto' }));
 */
export function rowsForDocument(document: ParsedDocument): DocumentRows {
  const utteranceRows = document.utterances.map(
    (u): UtteranceRow => ({
      upstreamId: u.upstreamId,
      startS: u.startS,
      endS: u.endS,
      speakerLabel: u.speakerLabel,
      transcript: u.transcript,
      language: u.language,
      deepfakeLabel: u.deepfakeLabel,
      pSpoofed: u.pSpoofed,
      deepfake:
        u.deepfakeEmbedding && u.deepfakeEmbeddingText
          ? vectorToStore(u.deepfakeEmbedding, u.deepfakeEmbeddingText, u.upstreamId, 'features')
          : null,
    }),
  );
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
    const withVector = own.filter((u) => u.speakerEmbedding && u.speakerEmbeddingText);
    const first = withVector[0];
    if (!first?.speakerEmbedding || !first.speakerEmbeddingText) continue; // submitted without embeddings
    let speaker: VectorToStore;
    if (withVector.length === 1) {
      speaker = vectorToStore(first.speakerEmbedding, first.speakerEmbeddingText, first.upstreamId, 'diarization');
    } else {
      const mean = meanVector(withVector.map((u) => u.speakerEmbedding as number[]));
      speaker = vectorToStore(mean, `[${mean.join(',')}]`, first.upstreamId, 'diarization');
    }
    const posteriors = own.flatMap((u) => (u.pSpoofed === null ? [] : [u.pSpoofed]));
    rows.push({
      speakerLabel,
      speaker,
      speechSeconds: own.reduce((sum, u) => sum + Math.max(0, (u.endS ?? 0) - (u.startS ?? 0)), 0),
      utteranceCount: own.length,
      meanPSpoofed: posteriors.length ? posteriors.reduce((a, b) => a + b, 0) / posteriors.length : null,
    });
  }
  return rows;
}

function vectorToStore(values: number[], text: string, utteranceId: string, task: string): VectorToStore {
  // judged in single precision, as the database will hold it: a vector that is all zeros there has no direction
  if (!values.some((v) => Math.fround(v) !== 0)) {
    throw new ResultsDocumentError('embedding is all zeros: it has no direction to store', { utteranceId, task });
  }
  return { text, norm: l2Norm(values) };
}

// One INSERT … SELECT FROM unnest(arrays) per chunk: a handful of parameters whatever the row count,
// and bounded statement size for a very long call.
const CHUNK_ROWS = 500;

/**
 * The one path after storing, for the worker and for import alike: a recording's utterances and
 * voiceprints, and its `stored` event in the outbox, which hands it to the analysis steps
 * (src/analysis/). Call inside the transaction that makes the recording `complete`, so that all of
 * it commits together or not at all.
 * @example await withTransaction(db, async (tx) => { await completeRecording(tx, lease, …); await recordStored(tx, id, rows); });
 */
export async function recordStored(tx: Db, recordingId: string, rows: DocumentRows): Promise<StoredCounts> {
  const counts = await insertDocumentRows(tx, recordingId, rows);
  await insertStoredEvent(tx, recordingId);
  return counts;
}

/**
 * Inserts a recording's utterances and voiceprints. Vectors are normalised by the database
 * (`l2_normalize`, pgvector ≥ 0.7) from the upstream's own text.
 */
async function insertDocumentRows(tx: Db, recordingId: string, rows: DocumentRows): Promise<StoredCounts> {
  for (let i = 0; i < rows.utterances.length; i += CHUNK_ROWS) {
    const chunk = rows.utterances.slice(i, i + CHUNK_ROWS);
    const column = <T>(pick: (u: UtteranceRow) => T) => sql.param(chunk.map(pick));
    await tx.execute(sql`
      insert into utterances (recording_id, upstream_id, start_s, end_s, speaker_label, transcript, language,
                              deepfake_label, p_spoofed, deepfake_embedding, deepfake_raw_norm)
      select ${recordingId}::uuid, u.upstream_id, u.start_s, u.end_s, u.speaker_label, u.transcript, u.language,
             u.deepfake_label, u.p_spoofed,
             l2_normalize(u.deepfake::vector(${sql.raw(String(DEEPFAKE_DIMENSIONS))}))::halfvec(${sql.raw(String(DEEPFAKE_DIMENSIONS))}),
             u.deepfake_norm
      from unnest(${column((u) => u.upstreamId)}::text[], ${column((u) => u.startS)}::float8[],
                  ${column((u) => u.endS)}::float8[], ${column((u) => u.speakerLabel)}::text[],
                  ${column((u) => u.transcript)}::text[], ${column((u) => u.language)}::text[],
                  ${column((u) => u.deepfakeLabel)}::text[], ${column((u) => u.pSpoofed)}::float8[],
                  ${column((u) => u.deepfake?.text ?? null)}::text[], ${column((u) => u.deepfake?.norm ?? null)}::float8[])
        as u(upstream_id, start_s, end_s, speaker_label, transcript, language, deepfake_label, p_spoofed,
             deepfake, deepfake_norm)`);
  }
  if (rows.voiceprints.length > 0) {
    const column = <T>(pick: (v: VoiceprintRow) => T) => sql.param(rows.voiceprints.map(pick));
    await tx.execute(sql`
      insert into voiceprints (recording_id, speaker_label, embedding, raw_norm, speech_seconds, utterance_count,
                               mean_p_spoofed)
      select ${recordingId}::uuid, v.speaker_label,
             l2_normalize(v.speaker::vector(${sql.raw(String(SPEAKER_DIMENSIONS))})), v.raw_norm,
             v.speech_seconds, v.utterance_count, v.mean_p_spoofed
      from unnest(${column((v) => v.speakerLabel)}::text[], ${column((v) => v.speaker.text)}::text[],
                  ${column((v) => v.speaker.norm)}::float8[], ${column((v) => v.speechSeconds)}::float8[],
                  ${column((v) => v.utteranceCount)}::int[], ${column((v) => v.meanPSpoofed)}::float8[])
        as v(speaker_label, speaker, raw_norm, speech_seconds, utterance_count, mean_p_spoofed)`);
  }
  return {
    utterances: rows.utterances.length,
    voiceprints: rows.voiceprints.length,
    deepfakeEmbeddings: rows.utterances.filter((u) => u.deepfake).length,
  };
}
