import { type DrainOptions, drainAnalysis } from '../analysis/drain.ts';
import { storedEventStates } from '../analysis/outbox.ts';
import type { Db } from '../db/client.ts';
import { type ImportOptions, type ImportOutcome, importDocumentFile } from './import.ts';
import type { ManifestRejection } from './manifest.ts';

/** One document to import with the context of its call; `line` is its manifest line (null: an argument). */
export type ImportItem = Omit<ImportOptions, 'api'> & { file: string; line: number | null };

/**
 * What became of one file: stored (or not) and then analysed. `analysis` is `done` when every
 * analysis step ran on its recording, `dead` when a step kept failing (`analysisError` says why),
 * `pending` when the run was interrupted first, `none` when no analysis step is registered (the
 * recording waits for the first), and null for a rejected file.
 */
export type ImportReport = ImportOutcome & {
  line: number | null;
  analysis: 'done' | 'dead' | 'pending' | 'none' | null;
  analysisError: string | null;
};

export type ImportBatchOptions = {
  api: ImportOptions['api'];
  /** How to run the analysis steps on what was stored; `steps: []` skips analysis altogether. */
  analysis: Omit<DrainOptions, 'db' | 'wait' | 'recordingIds'>;
};

/**
 * Imports each item (one transaction per file, as `importDocumentFile`), reports manifest lines
 * that were rejected before any import in their place, then runs the analysis steps on the events
 * of the recordings these files are stored as — with a runner of its own, which shares them with
 * any other (a worker's) — and returns once each is done or dead. With no step registered nothing
 * waits: each report goes to `onReport` as soon as its file is stored; otherwise all go once
 * analysed, in the items' order.
 * @example const reports = await importBatch(db, items, { api: 'auto', analysis: { steps, log, concurrency: 4, leaseSeconds: 60, maxAttempts: 8 } });
 */
export async function importBatch(
  db: Db,
  items: (ImportItem | (ManifestRejection & { rejected: true }))[],
  options: ImportBatchOptions,
  onReport: (report: ImportReport) => void = () => {},
): Promise<ImportReport[]> {
  const analyse = options.analysis.steps.length > 0;
  const reports: ImportReport[] = [];
  for (const item of items) {
    const report = 'rejected' in item ? rejectedLine(item) : await importItem(db, item, options.api, analyse);
    reports.push(report);
    if (!analyse) onReport(report);
  }
  if (!analyse) return reports;
  const recordingIds = [...new Set(reports.flatMap((r) => (r.recordingId ? [r.recordingId] : [])))];
  if (recordingIds.length > 0) await drainAnalysis({ ...options.analysis, db, recordingIds, wait: true });
  const states = await storedEventStates(db, recordingIds);
  for (const report of reports) {
    if (report.recordingId) {
      const state = states.get(report.recordingId);
      report.analysis = state ? state.status : 'none';
      report.analysisError = state?.status === 'dead' ? state.error : null;
    }
    onReport(report);
  }
  return reports;
}

async function importItem(db: Db, item: ImportItem, api: ImportOptions['api'], analyse: boolean) {
  const { file, line, ...context } = item;
  const outcome = await importDocumentFile(db, file, { api, ...context });
  const stored = outcome.status !== 'rejected';
  const error = outcome.error && line !== null ? `manifest line ${line}: ${outcome.error}` : outcome.error;
  return {
    ...outcome,
    error,
    line,
    analysis: stored ? (analyse ? 'pending' : 'none') : null,
    analysisError: null,
  } satisfies ImportReport;
}

function rejectedLine(rejection: ManifestRejection): ImportReport {
  return {
    file: rejection.file ?? '',
    status: 'rejected',
    recordingId: null,
    utterances: 0,
    voiceprints: 0,
    deepfakeEmbeddings: 0,
    error: rejection.error,
    line: rejection.line,
    analysis: null,
    analysisError: null,
  };
}
