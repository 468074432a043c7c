/**
 * `voxtrace worker`, for the crash tests: the same process (`runWorkerProcess`, configured from the
 * environment as the command is), plus what no command takes, as JSON in the first argument: the
 * worker's test switches, and test analysis steps (test/support/analysis-steps.ts).
 *
 *   node test/support/worker-process.ts '{"switches":{"noLeaseReclaim":true},"steps":[{"name":"a"}]}'
 */
import '../../src/module-hooks.ts';

const { loadConfig } = await import('../../src/config.ts');
const { runWorkerProcess } = await import('../../src/commands/worker.ts');
const { reportError } = await import('../../src/commands/report.ts');
const { testSteps } = await import('./analysis-steps.ts');

const options = JSON.parse(process.argv[2] ?? '{}');
try {
  await runWorkerProcess(loadConfig(), {
    switches: options.switches,
    steps: options.steps ? testSteps(options.steps) : undefined,
  });
} catch (error) {
  process.exitCode = reportError(error, 'worker');
}
