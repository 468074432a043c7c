import type { Command } from 'commander';
import { err, out } from './support.ts';

export function registerDemoData(program: Command) {
  program
    .command('demo-data')
    .description('write synthetic call audio (WAV files whose manifest the stand-in reads) and truth.jsonl')
    .argument('<out-dir>', 'writes <out-dir>/<accountRef>/<callId>.wav and <out-dir>/truth.jsonl')
    .option('--calls <n>', 'number of calls')
    .option('--speakers <n>', 'customers, one account each')
    .option('--fraudsters <n>', 'fraudsters, each calling several accounts (at most --speakers)')
    .option('--campaigns <n>', 'synthetic-voice campaigns (spoof families) behind the voice clones')
    .option('--seed <k>', 'the same seed writes the same files', '1')
    .action(async (outDir: string, opts: Record<string, string | undefined>) => {
      const { parseDemoDataOptions, writeDemoData } = await import('../standin/demo-data.ts');
      const options = parseDemoDataOptions(opts);
      const summary = await writeDemoData(outDir, options, {
        onProgress: (written, total) => {
          if (total >= 2000) err(`demo-data: ${written}/${total} calls written`);
        },
      });
      out(
        `wrote ${summary.calls} calls (${summary.fraudCalls} by fraudsters) on ${summary.accounts} accounts to ${outDir}; ` +
          `truth in ${outDir}/truth.jsonl`,
      );
    });
}
