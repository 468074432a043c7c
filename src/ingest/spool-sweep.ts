import type { Db } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { spoolFileStates } from '../recordings/queries.ts';
import { listRecordingFiles, removeAbandonedUploads, removeSpoolFile, spoolFileMtime } from '../recordings/spool.ts';

// an upload younger than this may still be on its way into the database: leave it alone
const ABANDONED_AFTER_MS = 60 * 60_000;

/**
 * Keeps the spool to the audio of unstored recordings; a worker runs this before its first claim.
 * Removes: audio of recordings already stored (a crash between the storing commit and the deletion
 * leaves it), and, after an hour, uploads that never reached the database (a killed intake leaves a
 * `.part` file, or a renamed file whose insert never ran).
 * @example await sweepSpool(db, spoolDir, false, log);
 */
export async function sweepSpool(db: Db, spoolDir: string, keepAudio: boolean, log: Logger): Promise<void> {
  for (const name of await removeAbandonedUploads(spoolDir, { olderThanMs: ABANDONED_AFTER_MS })) {
    log.info({ file: name }, 'removed an abandoned upload');
  }
  const files = await listRecordingFiles(spoolDir);
  if (files.size === 0) return;
  const states = await spoolFileStates(db, [...files.values()]);
  const cutoff = Date.now() - ABANDONED_AFTER_MS;
  for (const [file, recordingId] of files) {
    const row = states.get(recordingId);
    const stored = row?.status === 'complete' && row.spoolFile === null && !keepAudio;
    const orphan = !row && ((await spoolFileMtime(spoolDir, file)) ?? Number.POSITIVE_INFINITY) < cutoff;
    if (stored || orphan) {
      await removeSpoolFile(spoolDir, file);
      log.info({ file, reason: stored ? 'stored' : 'no recording' }, 'removed spooled audio');
    }
  }
}
