import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { err, out } from './support.ts';

export function registerIngest(program: Command) {
  program
    .command('ingest')
    .description(
      'upload call recordings (.wav/.mp3, directories recursively) through the API; re-running skips what is stored',
    )
    .argument('<path...>', 'audio files and directories')
    .option('--account <ref>', 'account reference for every file')
    .option('--account-from-dir', "account reference = each file's parent directory name (demo-data's layout)")
    .option('--channel <channel>', 'channel to store with each recording')
    .option('--wait', 'after uploading, wait until every recording is complete, failed or dead')
    .option('--url <url>', 'API base URL (default: VOXTRACE_API_URL)')
    .option('--key <key>', 'API key with the write scope (default: VOXTRACE_API_KEY)')
    .option('--concurrency <n>', 'uploads in flight at once', '4')
    .action(
      async (
        paths: string[],
        opts: {
          account?: string;
          accountFromDir?: boolean;
          channel?: string;
          wait?: boolean;
          url?: string;
          key?: string;
          concurrency: string;
        },
      ) => {
        // loaded here: the ingest client (undici, the progress bar) is no other command's
        const { formatFailedRecordings, formatIngestSummary, ingestExitCode, runIngest } = await import(
          './ingest/run.ts'
        );
        const config = loadConfig();
        const result = await runIngest({
          apiUrl: opts.url ?? config.apiUrl,
          apiKey: opts.key ?? config.apiKey,
          paths,
          accountRef: opts.account,
          accountFromDir: opts.accountFromDir,
          channel: opts.channel,
          wait: opts.wait,
          concurrency: /^\d+$/.test(opts.concurrency) ? Number(opts.concurrency) : Number.NaN,
          progress: process.stderr,
        });
        for (const line of formatFailedRecordings(result)) err(line);
        for (const line of formatIngestSummary(result)) out(line);
        process.exitCode = ingestExitCode(result);
      },
    );
}
