import { Command } from 'commander';
import { registerAlerts } from './alerts.ts';
import { registerAnalyze } from './analyze.ts';
import { registerClusters } from './clusters.ts';
import { registerDemo } from './demo.ts';
import { registerDemoData } from './demo-data.ts';
import { registerEval } from './eval.ts';
import { registerIdentities } from './identities.ts';
import { registerImport } from './import.ts';
import { registerIngest } from './ingest.ts';
import { registerKeys } from './keys.ts';
import { registerMigrate } from './migrate.ts';
import { registerRecluster } from './recluster.ts';
import { reportError } from './report.ts';
import { registerSearch } from './search.ts';
import { registerServe } from './serve.ts';
import { registerStaff } from './staff.ts';
import { registerStandin } from './standin.ts';
import { registerStart } from './start.ts';
import { registerTest } from './test.ts';
import { registerWatchlist } from './watchlist.ts';
import { registerWorker } from './worker.ts';

/**
 * Every command of `./voxtrace`, one file each in this folder. A command file declares its flags
 * and wires a context to the services it runs; heavy modules that only one command needs (the
 * stand-in, the ingest client, demo data) are loaded inside its action, so that a worker process
 * does not carry them.
 */
export function buildProgram(): Command {
  const program = new Command('voxtrace')
    .description('A searchable memory of voices for fraud teams (Behavioral Signals embeddings in pgvector)')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const register of [
    registerStart,
    registerDemo,
    registerServe,
    registerWorker,
    registerMigrate,
    registerImport,
    registerAnalyze,
    registerIngest,
    registerStandin,
    registerDemoData,
    registerKeys,
    registerRecluster,
    registerEval,
    registerSearch,
    registerIdentities,
    registerClusters,
    registerWatchlist,
    registerAlerts,
    registerStaff,
    registerTest,
  ]) {
    register(program);
  }
  return program;
}

/**
 * Runs the command line: a failure becomes one message and exit code 1 (`reportError`).
 * @example await main(process.argv);
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  let command: string | null = null;
  program.hook('preAction', (_program, action) => {
    command = commandPath(action);
  });
  try {
    await program.parseAsync(argv);
  } catch (error) {
    process.exitCode = reportError(error, command);
  }
}

/** `keys revoke` for the revoke subcommand: the words after `voxtrace`. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
