/**
 * `voxtrace analyze` and `voxtrace import` with test analysis steps (test/support/analysis-steps.ts)
 * in place of the registered ones: the same commands, configured from the environment as they are,
 * registered with the steps given as JSON in the first argument; the rest is the command line.
 *
 *   node test/support/steps-cli.ts '[{"name":"a"},{"name":"b","failTimes":1}]' analyze --wait --json
 */
import '../../src/module-hooks.ts';

const { Command } = await import('commander');
const { registerAnalyze } = await import('../../src/commands/analyze.ts');
const { registerImport } = await import('../../src/commands/import.ts');
const { reportError } = await import('../../src/commands/report.ts');
const { testSteps } = await import('./analysis-steps.ts');

const [specs = '[]', command = '', ...args] = process.argv.slice(2);
const program = new Command('voxtrace').exitOverride();
registerAnalyze(program, { steps: testSteps(JSON.parse(specs)) });
registerImport(program, { steps: testSteps(JSON.parse(specs)) });
try {
  await program.parseAsync([command, ...args], { from: 'user' });
} catch (error) {
  process.exitCode = reportError(error, command);
}
