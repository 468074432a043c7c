import type { Command } from 'commander';
import { runServer } from './server.ts';
import { withContext } from './support.ts';

export function registerServe(program: Command) {
  program
    .command('serve')
    .description('run the API only')
    .action(() => withContext((ctx) => runServer(ctx, 'serve')));
}
