import fs from 'node:fs';
import { asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../src/db/client.ts';
import { recordingEvents, recordings, utterances, voiceprints } from '../../src/db/schema.ts';
import { rowsForDocument } from '../../src/recordings/store.ts';
import type { StandinStats } from '../../src/standin/server.ts';
import { parseResultsDocument } from '../../src/upstream/results.ts';

/**
 * The ingestion invariants every fault test checks once the run has drained:
 * 1. each stored recording's rows match its document (utterance ids, speakers, vectors present),
 *    with exactly one `stored` event, whether the worker stored it or `import` did;
 * 2. at most one upstream submission per recording, i.e. per sha256 (as the stand-in counts them);
 * 3. every spool file is accounted for: the spool holds exactly the audio of recordings not stored
 *    (all of it with keepAudio), nothing else;
 * 4. no recording is left outside a terminal state.
 * 2 and 3 are checked when the stand-in's stats and the spool are given (uploads); 1 and 4 always.
 * Returns the violations, each a sentence; an empty list means all hold.
 */
export async function ingestionViolations(input: {
  db: Db;
  standinStats?: StandinStats;
  spoolDir?: string;
  keepAudio?: boolean;
}): Promise<string[]> {
  const violations: string[] = [];
  const all = await input.db.select().from(recordings).orderBy(asc(recordings.createdAt));

  for (const r of all.filter((x) => x.status === 'complete')) {
    const expected = rowsForDocument(parseResultsDocument(r.rawDocument, { api: r.upstreamApi ?? 'deepfake' }));
    const stored = await input.db
      .select({
        upstreamId: utterances.upstreamId,
        hasVector: sql<boolean>`${utterances.deepfakeEmbedding} is not null`,
      })
      .from(utterances)
      .where(eq(utterances.recordingId, r.id));
    const speakers = await input.db
      .select({ label: voiceprints.speakerLabel })
      .from(voiceprints)
      .where(eq(voiceprints.recordingId, r.id));
    const ids = (list: { upstreamId: string }[]) => list.map((u) => u.upstreamId).sort();
    if (JSON.stringify(ids(stored)) !== JSON.stringify(ids(expected.utterances))) {
      violations.push(
        `recording ${r.id}: ${stored.length} utterances stored, its document has ${expected.utterances.length}`,
      );
    }
    const vectors = stored.filter((u) => u.hasVector).length;
    const expectedVectors = expected.utterances.filter((u) => u.deepfake).length;
    if (vectors !== expectedVectors) {
      violations.push(`recording ${r.id}: ${vectors} deepfake vectors stored, its document has ${expectedVectors}`);
    }
    const labels = speakers.map((s) => s.label).sort();
    const expectedLabels = expected.voiceprints.map((v) => v.speakerLabel).sort();
    if (JSON.stringify(labels) !== JSON.stringify(expectedLabels)) {
      violations.push(
        `recording ${r.id}: voiceprints ${labels.join(',')} stored, its document has ${expectedLabels.join(',')}`,
      );
    }
  }
  const storedIds = all.filter((x) => x.status === 'complete').map((x) => x.id);
  if (storedIds.length > 0) {
    const events = await input.db
      .select({ recordingId: recordingEvents.recordingId })
      .from(recordingEvents)
      .where(inArray(recordingEvents.recordingId, storedIds));
    const perRecording = new Map<string, number>();
    for (const e of events) perRecording.set(e.recordingId, (perRecording.get(e.recordingId) ?? 0) + 1);
    for (const id of storedIds) {
      if (perRecording.get(id) !== 1)
        violations.push(`recording ${id}: ${perRecording.get(id) ?? 0} stored events, expected 1`);
    }
  }

  const { standinStats, spoolDir } = input;
  if (standinStats) {
    for (const r of all.filter((x) => x.source === 'upload')) {
      const submissions = standinStats.submissions[r.id] ?? 0;
      if (submissions > 1)
        violations.push(`recording ${r.id} (sha256 ${r.sha256}): submitted upstream ${submissions} times`);
    }
  }

  if (spoolDir) {
    const spooled = new Set(fs.existsSync(spoolDir) ? fs.readdirSync(spoolDir) : []);
    const expectedFiles = new Set(
      all.filter((x) => x.spoolFile && (input.keepAudio || x.status !== 'complete')).map((x) => x.spoolFile as string),
    );
    for (const file of spooled)
      if (!expectedFiles.has(file)) violations.push(`spool file ${file} belongs to no unstored recording`);
    for (const file of expectedFiles)
      if (!spooled.has(file)) violations.push(`spool file ${file} of a recording is missing`);
  }

  for (const r of all.filter((x) => ['queued', 'submitting', 'submitted'].includes(x.status))) {
    violations.push(`recording ${r.id} is stuck in ${r.status}`);
  }
  return violations;
}
