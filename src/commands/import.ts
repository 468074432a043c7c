import { type Command, Option } from 'commander';
import { type ImportOutcome, importDocumentFile } from '../import/import.ts';
import { out, withContext } from './support.ts';

export function registerImport(program: Command) {
  program
    .command('import')
    .description('import saved upstream results documents (JSON), one transaction per file')
    .argument('<file...>', 'results documents: the envelope {pid, cid, code, message, results} or a bare results array')
    .addOption(
      new Option('--api <api>', 'which API produced them; auto: behavioral when a behavioral-only task appears')
        .choices(['auto', 'deepfake', 'behavioral'])
        .default('auto'),
    )
    .option('--account <ref>', 'account reference to store with each recording')
    .option('--channel <channel>', 'channel to store with each recording')
    .option('--json', 'one JSON object per file per line')
    .action(
      async (
        files: string[],
        opts: { api: 'auto' | 'deepfake' | 'behavioral'; account?: string; channel?: string; json?: boolean },
      ) => {
        const rejected = await withContext(async (ctx) => {
          let count = 0;
          for (const file of files) {
            const outcome = await importDocumentFile(ctx.db, file, {
              api: opts.api,
              accountRef: opts.account,
              channel: opts.channel,
            });
            printOutcome(outcome, Boolean(opts.json));
            if (outcome.status === 'rejected') count++;
          }
          return count;
        });
        if (rejected > 0) process.exitCode = 1;
      },
    );
}

function printOutcome(outcome: ImportOutcome, json: boolean) {
  if (json) {
    out(JSON.stringify(outcome));
    return;
  }
  if (outcome.status === 'rejected') {
    out(`rejected  ${outcome.file}: ${outcome.error}`);
  } else {
    out(
      `${outcome.status.padEnd(9)} ${outcome.file} → recording ${outcome.recordingId} ` +
        `(${outcome.utterances} utterances, ${outcome.voiceprints} voiceprints, ${outcome.deepfakeEmbeddings} deepfake embeddings)`,
    );
  }
}
