import path from 'node:path';
import { type Command, Option } from 'commander';
import { analysisSteps } from '../analysis/steps.ts';
import { type ImportItem, type ImportReport, importBatch } from '../import/batch.ts';
import { type ManifestRejection, readManifest } from '../import/manifest.ts';
import { drainProgressLines, untilInterrupted } from './analysis-progress.ts';
import type { AnalysisOverrides } from './analyze.ts';
import { err, out, UsageError, withContext } from './support.ts';

type ImportFlags = {
  api: 'auto' | 'deepfake' | 'behavioral';
  account?: string;
  channel?: string;
  manifest?: string;
  json?: boolean;
};

const MANIFEST_HELP = `
Files and --manifest may be combined: the FILE arguments are imported first, then the manifest's
lines in order. --account and --channel apply to every FILE argument, and to each manifest line
that has no accountRef or channel of its own.

--manifest FILE is JSON lines, one results document each with the context of its call:
  {"file": "calls/0001.json", "accountRef": "ACC-1042", "channel": "phone",
   "callAt": "2026-03-01T09:30:00Z", "meta": {"agent": "A-17"}}
file is required, absolute or relative to the manifest's folder; the other fields are optional
(callAt: ISO-8601 with a time zone, or a date; meta: a JSON object, stored as it is). A line that
is not JSON, has an unknown field, a bad callAt or meta, or no file, is rejected with its line
number; the other lines are still imported. A document already stored keeps the context it was
stored with.

After storing, import runs the analysis steps on its recordings (sharing them with any running
worker) and returns once each is analysed; --json adds "line", "analysis" (done | dead | none:
no step registered) and "analysisError" to each file's line. Exit 1 when a file or a manifest line
was rejected or an analysis ended dead.`;

export function registerImport(program: Command, overrides: AnalysisOverrides = {}) {
  program
    .command('import')
    .description(
      'import saved upstream results documents (JSON), one transaction per file, and analyse them before returning',
    )
    .argument('[file...]', 'results documents: the envelope {pid, cid, code, message, results} or a bare results array')
    .option(
      '--manifest <file>',
      'JSON lines {file, accountRef?, channel?, callAt?, meta?}: documents with their call context',
    )
    .addOption(
      new Option('--api <api>', 'which API produced them; auto: behavioral when a behavioral-only task appears')
        .choices(['auto', 'deepfake', 'behavioral'])
        .default('auto'),
    )
    .option('--account <ref>', 'account reference to store with each recording')
    .option('--channel <channel>', 'channel to store with each recording')
    .option('--json', 'one JSON object per file per line')
    .addHelpText('after', MANIFEST_HELP)
    .action(async (files: string[], opts: ImportFlags) => {
      if (files.length === 0 && !opts.manifest) {
        throw new UsageError('nothing to import: give results documents as arguments, or --manifest FILE');
      }
      const items = await importItems(files, opts);
      const reports = await withContext((ctx) =>
        untilInterrupted((signal) =>
          importBatch(
            ctx.db,
            items,
            {
              api: opts.api,
              analysis: {
                steps: overrides.steps ?? analysisSteps(ctx.config.voices, ctx.config.spoofs),
                log: ctx.log,
                concurrency: ctx.config.worker.concurrency,
                leaseSeconds: ctx.config.worker.leaseSeconds,
                maxAttempts: ctx.config.worker.maxAttempts,
                onProgress: drainProgressLines('import: analysing', err),
                signal,
              },
            },
            (report) => printReport(report, Boolean(opts.json)),
          ),
        ),
      );
      const failed = reports.some((r) => r.status === 'rejected' || r.analysis === 'dead' || r.analysis === 'pending');
      if (failed) process.exitCode = 1;
    });
}

/** The FILE arguments, then the manifest's lines (rejected ones in their place). */
async function importItems(
  files: string[],
  opts: ImportFlags,
): Promise<(ImportItem | (ManifestRejection & { rejected: true }))[]> {
  const context = { accountRef: opts.account, channel: opts.channel };
  const items: (ImportItem | (ManifestRejection & { rejected: true }))[] = files.map((file) => ({
    file,
    line: null,
    ...context,
  }));
  if (!opts.manifest) return items;
  const manifest = await readManifest(opts.manifest);
  const lines = [
    ...manifest.entries.map((entry) => ({ ...context, ...entry }) satisfies ImportItem),
    ...manifest.rejected.map((r) => ({
      ...r,
      file: r.file ?? path.resolve(opts.manifest as string),
      rejected: true as const,
    })),
  ].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return [...items, ...lines];
}

function printReport(report: ImportReport, json: boolean) {
  if (json) {
    out(JSON.stringify(report));
    return;
  }
  if (report.status === 'rejected') {
    out(`rejected  ${report.file}: ${report.error}`);
    return;
  }
  const analysis =
    report.analysis === 'done'
      ? ', analysed'
      : report.analysis === 'dead'
        ? `, analysis dead: ${report.analysisError}`
        : report.analysis === 'pending'
          ? ', analysis not finished (interrupted)'
          : '';
  out(
    `${report.status.padEnd(9)} ${report.file} → recording ${report.recordingId} ` +
      `(${report.utterances} utterances, ${report.voiceprints} voiceprints, ${report.deepfakeEmbeddings} deepfake embeddings)` +
      analysis,
  );
}
