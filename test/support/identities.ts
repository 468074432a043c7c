import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../src/db/client.ts';
import { importDocumentFile } from '../../src/import/import.ts';
import { must } from './must.ts';
import { type SyntheticCall, syntheticCalls } from './synthetic-documents.ts';

/** A stored voiceprint with who really speaks in it (the generator's truth). */
export type SeededVoiceprint = {
  id: string;
  recordingId: string;
  speakerLabel: string;
  speakerId: string;
  role: string;
  accountRef: string | null;
  callAt: string | null;
  speechSeconds: number;
  meanPSpoofed: number | null;
};

/**
 * Imports `count` synthetic calls (realistic vectors and verdicts from the shared voice model) the
 * way `voxtrace import` stores them, with each call's account and time, and answers their
 * voiceprints with the speaker behind each. No identity is assigned: the analysis runner is not
 * running.
 * @example const voiceprints = await seedVoiceprints(db, { count: 16, seed: 11 });
 */
export async function seedVoiceprints(
  db: Db,
  options: { count: number; seed: number },
): Promise<{ calls: SyntheticCall[]; voiceprints: SeededVoiceprint[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-identities-'));
  const calls = syntheticCalls(options);
  const speakers = new Map<string, { speakerId: string; role: string }>();
  try {
    for (const call of calls) {
      const file = path.join(dir, `${call.manifest.callId}.json`);
      fs.writeFileSync(file, JSON.stringify(call.document));
      const outcome = await importDocumentFile(db, file, {
        api: 'auto',
        accountRef: call.manifest.accountRef ?? undefined,
        channel: call.manifest.channel ?? undefined,
      });
      const recordingId = must(outcome.recordingId, `recording of ${call.manifest.callId}`);
      // import takes no call time: the call's own, as an upload would carry it
      await db.execute(
        sql`update recordings set call_at = ${call.manifest.callAt}::timestamptz where id = ${recordingId}`,
      );
      for (const s of call.manifest.speakers) speakers.set(`${recordingId}/${s.label}`, s);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const rows = await queryRows<Omit<SeededVoiceprint, 'speakerId' | 'role'>>(
    db,
    sql`select v.id, v.recording_id as "recordingId", v.speaker_label as "speakerLabel", r.account_ref as "accountRef",
               r.call_at as "callAt", v.speech_seconds as "speechSeconds", v.mean_p_spoofed as "meanPSpoofed"
        from voiceprints v join recordings r on r.id = v.recording_id
        order by r.call_at, v.speaker_label`,
  );
  return {
    calls,
    voiceprints: rows.map((row) => {
      const speaker = must(speakers.get(`${row.recordingId}/${row.speakerLabel}`), 'speaker');
      return {
        ...row,
        callAt: row.callAt === null ? null : new Date(row.callAt).toISOString(),
        speechSeconds: Number(row.speechSeconds),
        meanPSpoofed: row.meanPSpoofed === null ? null : Number(row.meanPSpoofed),
        speakerId: speaker.speakerId,
        role: speaker.role,
      };
    }),
  };
}
