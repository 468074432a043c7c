import { type ApiClient, ApiKeyRefusedError, ApiRequestError } from '../../client/api.ts';
import { forEachLimited } from '../../concurrency.ts';
import type { AudioFile } from './files.ts';
import type { ProgressDisplay, ProgressSnapshot } from './progress.ts';
import type { Tracker } from './tracker.ts';

export type RejectedFile = { file: string; status: number | null; detail: string };
export type UploadCounts = { created: number; alreadyKnown: number; rejected: RejectedFile[] };

/**
 * Uploads `files`, `concurrency` at a time, recording each answer in the tracker. A file the API
 * refuses (415, 413, …) or that cannot be sent after retries is collected as rejected, and the run
 * goes on; a refused key stops it (ApiKeyRefusedError): every further upload would be refused too.
 * @example const counts = await uploadFiles(api, files, { concurrency: 4 }, tracker, display);
 */
export async function uploadFiles(
  api: ApiClient,
  files: AudioFile[],
  options: { channel?: string; concurrency: number },
  tracker: Tracker,
  display: ProgressDisplay,
): Promise<UploadCounts> {
  let created = 0;
  let alreadyKnown = 0;
  let processed = 0;
  const rejected: RejectedFile[] = [];
  const snapshot = (): ProgressSnapshot => ({ phase: 'upload', processed, total: files.length, ...tracker.counts });
  const reject = (file: AudioFile, status: number | null, detail: string) => {
    rejected.push({ file: file.path, status, detail });
    tracker.counts.rejected++;
    display.note(`ingest: rejected ${file.path}${status ? ` (${status})` : ''}: ${detail}`);
  };

  display.update(snapshot());
  await forEachLimited(files, options.concurrency, async (file) => {
    try {
      const answer = await api.uploadRecording(file.path, {
        accountRef: file.accountRef,
        channel: options.channel,
        callAt: file.callAt,
      });
      if (answer.ok) {
        if (answer.status === 202) created++;
        else alreadyKnown++;
        tracker.see(answer.value, file.path);
      } else {
        reject(file, answer.status, answer.detail);
      }
    } catch (error) {
      if (error instanceof ApiKeyRefusedError || !(error instanceof ApiRequestError)) throw error;
      reject(file, null, error.message);
    }
    processed++;
    display.update(snapshot());
  });
  display.update(snapshot(), { final: true });
  return { created, alreadyKnown, rejected };
}
