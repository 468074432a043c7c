import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { VoxtraceError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { out, untilSignal } from './support.ts';

export function registerStandin(program: Command) {
  program
    .command('standin')
    .description(
      'run the local stand-in of the Behavioral Signals API (VOXTRACE_STANDIN_PORT, _TOKEN, _SPEED, _FAULTS; docs/upstream.md)',
    )
    .action(async () => {
      const config = loadConfig();
      const log = createLogger(config.logLevel);
      const { startStandin } = await import('../standin/server.ts');
      const standin = await startStandin({
        host: config.host,
        port: config.standin.port,
        token: config.standin.token,
        speed: config.standin.speed,
        faults: config.standin.faults,
        log,
      }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EADDRINUSE') throw error;
        throw new VoxtraceError(`port ${config.standin.port} is in use (set VOXTRACE_STANDIN_PORT)`);
      });
      out(`voxtrace standin: Behavioral Signals API stand-in on ${standin.url} (Deepfake API under /detection)`);
      if (!config.standin.token) out(`standin token: ${standin.token}`);
      await untilSignal(log);
      await standin.close();
    });
}
