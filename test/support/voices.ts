import { randomUUID } from 'node:crypto';
import type { Db } from '../../src/db/client.ts';
import { recordings, voiceprints } from '../../src/db/schema.ts';
import { createVoiceModel } from '../../src/standin/voices.ts';
import { normalise } from '../../src/vectors.ts';

/**
 * Calls with known voices, stored straight as recordings and voiceprints (no documents): for tests
 * of what is done with voiceprints once stored. Vectors come from the shared voice model.
 */
export type SeedCall = {
  accountRef?: string | null;
  channel?: string | null;
  callAt?: Date;
  speakers: {
    label?: string;
    speakerId: string;
    noisy?: boolean;
    cloned?: boolean;
    speechSeconds?: number;
    meanPSpoofed?: number;
  }[];
};

export type SeededCall = {
  recordingId: string;
  voiceprints: { id: string; speakerId: string; label: string; unit: number[] }[];
};

/**
 * @example const [call] = await seedCalls(db, [{ accountRef: 'A', speakers: [{ speakerId: 'alice' }] }]);
 */
export async function seedCalls(db: Db, calls: readonly SeedCall[], seed = 7): Promise<SeededCall[]> {
  const model = createVoiceModel(seed);
  const seeded: SeededCall[] = [];
  for (const [n, call] of calls.entries()) {
    const [recording] = await db
      .insert(recordings)
      .values({
        source: 'import',
        status: 'complete',
        documentSha256: randomUUID(),
        accountRef: call.accountRef ?? null,
        channel: call.channel ?? null,
        callAt: call.callAt ?? new Date('2026-06-01T12:00:00Z'),
        completedAt: new Date(),
      })
      .returning({ id: recordings.id });
    const recordingId = recording?.id as string;
    const prints: SeededCall['voiceprints'] = [];
    for (const [i, speaker] of call.speakers.entries()) {
      const label = speaker.label ?? `SPEAKER_0${i}`;
      const unit = normalise(
        // keyed by the call's place in the list, not its random id: the same calls give the same vectors
        model.speakerEmbedding(speaker.speakerId, `call-${n}`, { noisy: speaker.noisy, cloned: speaker.cloned }),
      ).unit;
      const [row] = await db
        .insert(voiceprints)
        .values({
          recordingId,
          speakerLabel: label,
          embedding: unit,
          rawNorm: 200,
          speechSeconds: speaker.speechSeconds ?? 20,
          utteranceCount: 3,
          meanPSpoofed: speaker.meanPSpoofed ?? 0.02,
        })
        .returning({ id: voiceprints.id });
      prints.push({ id: row?.id as string, speakerId: speaker.speakerId, label, unit });
    }
    seeded.push({ recordingId, voiceprints: prints });
  }
  return seeded;
}
