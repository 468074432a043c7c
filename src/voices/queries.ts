import { sql } from 'drizzle-orm';
import pgvector from 'pgvector';
import { type Db, queryRows } from '../db/client.ts';

/** The voices feature's SQL beyond the kNN builder (src/search/knn.ts). */

export type StoredVoiceprint = { id: string; recordingId: string; speakerLabel: string; embedding: Float32Array };

/** Whether any live `staff` identity exists (identities_kind_idx): only then is there staff to leave out. */
export async function anyStaffIdentity(db: Db): Promise<boolean> {
  const rows = await queryRows<{ one: number }>(
    db,
    sql`select 1 as one from identities where kind = 'staff' and retired_at is null limit 1`,
  );
  return rows.length > 0;
}

/** One voiceprint by id (primary key), or null. */
export async function voiceprintById(db: Db, id: string): Promise<StoredVoiceprint | null> {
  const rows = await queryRows<VoiceprintRow>(
    db,
    sql`select id, recording_id as "recordingId", speaker_label as "speakerLabel", embedding::text as embedding
        from voiceprints where id = ${id}`,
  );
  return rows[0] ? toVoiceprint(rows[0]) : null;
}

/**
 * A recording's voiceprint for `speakerLabel`, or without a label the speaker with the most speech
 * (voiceprints_recording_speaker_key). `recordingExists` tells an unknown recording from one
 * without voices.
 */
export async function voiceprintOfRecording(
  db: Db,
  recordingId: string,
  speakerLabel: string | undefined,
): Promise<{ recordingExists: boolean; voiceprint: StoredVoiceprint | null; labels: string[] }> {
  const rows = await queryRows<VoiceprintRow & { speechSeconds: number }>(
    db,
    sql`select v.id, r.id as "recordingId", v.speaker_label as "speakerLabel", v.embedding::text as embedding,
               v.speech_seconds as "speechSeconds"
        from recordings r left join voiceprints v on v.recording_id = r.id
        where r.id = ${recordingId}
        order by v.speech_seconds desc nulls last, v.speaker_label`,
  );
  const voices = rows.filter((row) => row.id !== null);
  const labels = voices.map((row) => row.speakerLabel);
  const chosen = speakerLabel === undefined ? voices[0] : voices.find((row) => row.speakerLabel === speakerLabel);
  return { recordingExists: rows.length > 0, voiceprint: chosen ? toVoiceprint(chosen) : null, labels };
}

/** Unit embeddings of `ids`, by id (primary key lookups). */
export async function embeddingsOf(db: Db, ids: readonly string[]): Promise<Map<string, Float32Array>> {
  if (ids.length === 0) return new Map();
  const rows = await queryRows<{ id: string; embedding: string }>(
    db,
    sql`select id, embedding::text as embedding from voiceprints where id = any(${sql.param([...ids])}::uuid[])`,
  );
  return new Map(rows.map((row) => [row.id, parseEmbedding(row.embedding)]));
}

type VoiceprintRow = { id: string; recordingId: string; speakerLabel: string; embedding: string };

function toVoiceprint(row: VoiceprintRow): StoredVoiceprint {
  return {
    id: row.id,
    recordingId: row.recordingId,
    speakerLabel: row.speakerLabel,
    embedding: parseEmbedding(row.embedding),
  };
}

function parseEmbedding(text: string): Float32Array {
  return Float32Array.from(pgvector.fromSql(text) as number[]);
}
