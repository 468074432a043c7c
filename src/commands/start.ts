import type { Command } from 'commander';
import { runServer } from './server.ts';
import { exitNow, withContext } from './support.ts';

export function registerStart(program: Command) {
  program
    .command('start')
    .description(
      'run voxtrace: the API, the worker and the stand-in when no upstream is set (embedded PGlite unless DATABASE_URL is set)',
    )
    .action(async () => {
      await withContext((ctx) => runServer(ctx, 'start'));
      exitNow();
    });
}
