import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CLI_ACTOR } from '../audit/audit.ts';
import type { Context } from '../context.ts';
import { createApiKey } from '../keys/keys.ts';
import { runServer } from './server.ts';
import { err, exitNow, out, UsageError, withContext } from './support.ts';

export function registerDemo(program: Command) {
  program
    .command('demo')
    .description('`start`, then a demo corpus of synthetic calls loaded through the real path, then requests to try')
    .option('--calls <n>', 'calls in the demo corpus', '200')
    .option('--seed <k>', 'the same seed makes the same corpus', '1')
    .action(async (opts: { calls: string; seed: string }) => {
      const calls = Number(opts.calls);
      const seed = Number(opts.seed);
      if (!Number.isInteger(calls) || calls < 1 || calls > 100_000)
        throw new UsageError('--calls must be a whole number from 1 to 100000');
      if (!Number.isInteger(seed) || seed < 1) throw new UsageError('--seed must be a positive whole number');
      await withContext((ctx) =>
        runServer(ctx, 'start', (started, apiUrl) => loadDemo(started, apiUrl, { calls, seed })),
      );
      exitNow();
    });
}

/**
 * The demo corpus through the real path: demo-data files → API → spool → worker → stand-in →
 * database, with the ingest command's progress display; then requests ready to paste.
 */
async function loadDemo(ctx: Context, apiUrl: string, corpus: { calls: number; seed: number }) {
  const { writeDemoData } = await import('../standin/demo-data.ts');
  const { runIngest, formatIngestSummary, formatFailedRecordings } = await import('./ingest/run.ts');
  const dir = path.join(ctx.config.dataDir, `demo-calls-${corpus.calls}-seed-${corpus.seed}`);
  if (!fs.existsSync(path.join(dir, 'truth.jsonl'))) {
    err(`demo: writing ${corpus.calls} synthetic calls to ${dir}`);
    await writeDemoData(dir, {
      calls: corpus.calls,
      speakers: Math.max(3, Math.round(corpus.calls / 3)),
      fraudsters: Math.max(1, Math.round(corpus.calls / 40)),
      campaigns: 3,
      seed: corpus.seed,
    });
  }
  // the demo acts as a client of its own API, with a key of its own
  const { key } = await createApiKey(ctx.db, { scope: 'write', name: 'demo' }, CLI_ACTOR);
  err('demo: loading the calls through the API, the worker and the stand-in…');
  const result = await runIngest({
    apiUrl,
    apiKey: key,
    paths: [dir],
    accountFromDir: true,
    wait: true,
    concurrency: 4,
    progress: process.stderr,
  });
  for (const line of formatIngestSummary(result)) out(`demo: ${line}`);
  for (const line of formatFailedRecordings(result)) err(line);
  const admin = path.join(ctx.config.dataDir, 'admin-key');
  const keyRef = fs.existsSync(admin) ? `$(cat ${admin})` : '<your admin key>';
  out(
    [
      '',
      'demo ready: try these (Ctrl-C stops voxtrace)',
      `  key=${keyRef}`,
      `  curl -s -H "Authorization: Bearer $key" '${apiUrl}/v1/recordings?status=complete&limit=5'`,
      `  curl -s -H "Authorization: Bearer $key" '${apiUrl}/v1/recordings?accountRef=acc-0001'`,
      `  id=$(curl -s -H "Authorization: Bearer $key" '${apiUrl}/v1/recordings?limit=1' | sed -E 's/.*"id":"([^"]+)".*/\\1/')`,
      `  curl -s -H "Authorization: Bearer $key" "${apiUrl}/v1/recordings/$id?include=embeddings"`,
      `  ./voxtrace ingest --url ${apiUrl} --key "$key" --account-from-dir --wait ${dir}   # again: all already known`,
      `  open ${apiUrl}/docs`,
      '',
    ].join('\n'),
  );
}
