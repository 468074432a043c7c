import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';
import type { WorkerOptions } from '../../src/ingest/worker.ts';
import type { Standin } from '../../src/standin/server.ts';
import type { TestStepSpec } from './analysis-steps.ts';
import { cleanEnv, repoRoot } from './cli.ts';
import { until } from './until.ts';

/** `voxtrace worker` as its own OS process, for the tests that kill one (test/support/worker-process.ts). */
export type WorkerProcess = { child: ChildProcessWithoutNullStreams; pid: number; output: () => string };

const entry = path.join(repoRoot, 'test/support/worker-process.ts');

/**
 * The environment of worker processes that share `databaseUrl` and the in-test `standin`: short
 * leases (2 s), so that a killed worker's rows come due again within the test.
 */
export function workerProcessEnv(input: { databaseUrl: string; dataDir: string; standin: Standin; logLevel?: string }) {
  return cleanEnv({
    DATABASE_URL: input.databaseUrl,
    VOXTRACE_DATA_DIR: input.dataDir,
    VOXTRACE_STANDIN_PORT: new URL(input.standin.url).port,
    VOXTRACE_STANDIN_TOKEN: input.standin.token,
    VOXTRACE_LEASE_SECONDS: '2',
    VOXTRACE_WORKER_CONCURRENCY: '2',
    VOXTRACE_LOG_LEVEL: input.logLevel ?? 'info',
  });
}

/**
 * Starts a worker process with the given test switches and analysis steps, adds it to `children`
 * (for the test's afterEach to kill), and resolves once it says it runs.
 * @example const worker = await startWorkerProcess(env, { switches: { pauseBeforeStoreMs: 600_000 } }, children);
 */
export async function startWorkerProcess(
  env: NodeJS.ProcessEnv,
  options: { switches?: WorkerOptions['unsafe']; steps?: TestStepSpec[] },
  children: ChildProcessWithoutNullStreams[],
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [entry, JSON.stringify(options)], { env, cwd: repoRoot });
  children.push(child);
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  await until('the worker to start', () => output.includes('voxtrace worker '), 20_000);
  return { child, output: () => output, pid: child.pid as number };
}
