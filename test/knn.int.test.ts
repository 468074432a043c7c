import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { recordings, utterances, voiceprints } from '../src/db/schema.ts';
import { findSimilarSpoofs, similarSpoofsQuery } from '../src/spoofs/queries.ts';
import { createVoiceModel, familyName } from '../src/standin/voices.ts';
import { normalise } from '../src/vectors.ts';
import { findSimilarVoiceprints, similarVoiceprintsQuery } from '../src/voices/queries.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';

const ROWS = 5_000;
const model = createVoiceModel(42);
let database: TestDatabase;
let speakerVectors: number[][];
let deepfakeVectors: number[][];
const isSpoof = (i: number) => i % 10 === 0;

async function explain(query: ReturnType<typeof sql>): Promise<string> {
  const rows = await queryRows<{ 'QUERY PLAN': string }>(database.db, sql`explain ${query}`);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

beforeAll(async () => {
  database = await createTestDatabase();
  const [recording] = await database.db
    .insert(recordings)
    .values({ source: 'import', status: 'complete' })
    .returning({ id: recordings.id });
  const recordingId = recording?.id as string;
  // the shared generator's voices: 5,000 speakers, and utterances of which a tenth are spoofs of 5 families
  speakerVectors = Array.from(
    { length: ROWS },
    (_, i) => normalise(model.speakerEmbedding(`speaker-${i}`, 'call-0')).unit,
  );
  deepfakeVectors = Array.from(
    { length: ROWS },
    (_, i) =>
      normalise(
        model.deepfakeEmbedding({
          speakerId: `speaker-${i % 500}`,
          callKey: `call-${i % 1000}`,
          utteranceId: String(i),
          spoofFamily: isSpoof(i) ? familyName(i % 5) : null,
        }),
      ).unit,
  );
  // Bulk-load the way an operator backfills: drop the HNSW indexes, load, rebuild them from the
  // very definitions the migrations created (incremental HNSW inserts are ~5× slower on PGlite).
  const hnsw = await queryRows<{ indexname: string; indexdef: string }>(
    database.db,
    sql`select indexname, indexdef from pg_indexes where indexdef ilike '%using hnsw%'`,
  );
  expect(hnsw).toHaveLength(2);
  for (const index of hnsw) await database.db.execute(sql.raw(`drop index ${index.indexname}`));
  for (let i = 0; i < ROWS; i += 500) {
    await database.db.insert(voiceprints).values(
      speakerVectors.slice(i, i + 500).map((embedding, j) => ({
        recordingId,
        speakerLabel: `SPEAKER_${i + j}`,
        embedding,
        rawNorm: 200,
        speechSeconds: 10,
        utteranceCount: 1,
      })),
    );
    await database.db.insert(utterances).values(
      deepfakeVectors.slice(i, i + 500).map((deepfakeEmbedding, j) => ({
        recordingId,
        upstreamId: String(i + j),
        deepfakeEmbedding,
        deepfakeRawNorm: 7,
        deepfakeLabel: isSpoof(i + j) ? 'spoofed' : 'bonafide',
      })),
    );
  }
  for (const index of hnsw) await database.db.execute(sql.raw(index.indexdef));
  await database.db.execute(sql`analyze voiceprints`);
  await database.db.execute(sql`analyze utterances`);
}, 300_000);
afterAll(async () => {
  await database?.close();
});

describe(`kNN queries on ${engine} use the HNSW indexes (${ROWS} rows, after ANALYZE, seq scans allowed)`, () => {
  it('similar voiceprints: index scan on voiceprints_embedding_hnsw', async () => {
    const plan = await explain(similarVoiceprintsQuery(speakerVectors[7] as number[], 10));
    expect(plan).toMatch(/Index Scan using voiceprints_embedding_hnsw on voiceprints/);
    expect(plan).not.toMatch(/Seq Scan/);
  });

  it('similar spoofs: index scan on the partial utterances_spoofed_embedding_hnsw', async () => {
    const plan = await explain(similarSpoofsQuery(deepfakeVectors[7] as number[], 10));
    expect(plan).toMatch(/Index Scan using utterances_spoofed_embedding_hnsw on utterances/);
    expect(plan).not.toMatch(/Seq Scan/);
  });

  it('finds a stored vector as its own nearest neighbour', async () => {
    const voices = await findSimilarVoiceprints(database.db, speakerVectors[123] as number[], 5);
    expect(voices).toHaveLength(5);
    expect(voices[0]?.speakerLabel).toBe('SPEAKER_123');
    expect(voices[0]?.similarity).toBeCloseTo(1, 5);
    expect(voices[1]?.similarity).toBeLessThan(0.9);
    const spoofs = await findSimilarSpoofs(database.db, deepfakeVectors[320] as number[], 3);
    expect(spoofs[0]?.similarity).toBeCloseTo(1, 2);
  });

  it('similar spoofs answers spoofed utterances only, whatever the query vector', async () => {
    // a bonafide utterance's own vector: its exact match is not a spoof, so it must not come back
    const hits = await findSimilarSpoofs(database.db, deepfakeVectors[321] as number[], 20);
    expect(hits).toHaveLength(20);
    expect(hits[0]?.similarity).toBeLessThan(0.99);
    const labels = await queryRows<{ deepfake_label: string }>(
      database.db,
      sql`select distinct deepfake_label from utterances where id in ${hits.map((h) => h.utteranceId)}`,
    );
    expect(labels).toEqual([{ deepfake_label: 'spoofed' }]);
  });

  it('rejects a vector of the wrong dimension', () => {
    expect(() => similarVoiceprintsQuery([1, 2, 3], 10)).toThrow(/192 values, got 3/);
    expect(() => similarSpoofsQuery([1], 10)).toThrow(/768 values, got 1/);
  });
});
