import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/test.ts');

export function registerTest(program: Command) {
  program
    .command('test')
    .description('install what the tests need, then lint, typecheck and run every test on PostgreSQL and PGlite')
    .allowUnknownOption()
    .argument('[vitest-args...]', 'passed to vitest (e.g. a file filter)')
    .action(async (args: string[]) => {
      // the test runner is a development script, not part of voxtrace: run it as a program of its own
      process.exitCode = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, [...process.execArgv, runner, ...args], { stdio: 'inherit' });
        child.on('error', () => resolve(127));
        child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      });
    });
}
