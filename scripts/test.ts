/**
 * `./voxtrace test` (the CLI runs this script as a program of its own): installs what the tests
 * need, finds a PostgreSQL, then runs lint, typecheck and the whole suite on PostgreSQL and again
 * (the `*.int.test.ts` files, which use a database) on PGlite. Ends stdout with `N passed, N failed`
 * (both engines summed, plus lint and typecheck as one check each).
 *
 *   node scripts/test.ts [vitest args]
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const TEST_IMAGE = 'pgvector/pgvector:0.8.7-pg17';
// the only reason PGlite may skip a test: it serves a single process
const ALLOWED_PGLITE_SKIP = /^multi-process\b/;

type Engine = 'postgres' | 'pglite';
type Tally = {
  passed: number;
  failed: number;
  skipped: { engine: Engine; title: string; reason: string }[];
  failures: string[];
};

const say = (line: string) => process.stdout.write(`${line}\n`);

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, env, stdio: 'inherit' });
    child.on('error', (error) => {
      say(`cannot run ${command}: ${error.message}`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

function installSystemDeps(components: string[]): boolean {
  const result = spawnSync('bash', [path.join(root, 'scripts/install-system-deps.sh'), ...components], {
    cwd: root,
    stdio: 'inherit',
  });
  return result.status === 0;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function dockerWorks(): boolean {
  const result = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 10_000, stdio: 'pipe' });
  return result.status === 0;
}

/** TEST_DATABASE_URL; else a pgvector container when Docker runs; else the local server. */
async function findDatabase(): Promise<{ url: string; how: string; stop: () => Promise<void> }> {
  const noop = async () => {};
  if (process.env.TEST_DATABASE_URL)
    return { url: process.env.TEST_DATABASE_URL, how: 'TEST_DATABASE_URL', stop: noop };
  if (dockerWorks()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    say(`test database: starting ${TEST_IMAGE} with testcontainers…`);
    const container = await new GenericContainer(TEST_IMAGE)
      .withEnvironment({ POSTGRES_USER: 'postgres', POSTGRES_PASSWORD: 'postgres', POSTGRES_DB: 'postgres' })
      .withExposedPorts(5432)
      .withCommand(['postgres', '-c', 'fsync=off'])
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    const url = `postgres://postgres:postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
    return { url, how: `Docker container ${TEST_IMAGE}`, stop: async () => void (await container.stop()) };
  }
  if (!(await canConnect(LOCAL_URL))) {
    throw new Error(
      'no test database: set TEST_DATABASE_URL, run Docker, or start PostgreSQL on 127.0.0.1:5432 ' +
        '(here: pg_ctlcluster --skip-systemctl-redirect 15 main start)',
    );
  }
  if (!installSystemDeps(['pgvector'])) throw new Error('pgvector could not be installed into the local PostgreSQL');
  return { url: LOCAL_URL, how: 'local PostgreSQL on 127.0.0.1:5432 (no TEST_DATABASE_URL, no Docker)', stop: noop };
}

type VitestReport = {
  testResults: {
    name: string;
    status: string;
    message?: string;
    assertionResults: { fullName: string; title: string; status: string; failureMessages?: string[] }[];
  }[];
};

async function runVitest(engine: Engine, databaseUrl: string, extraArgs: string[], tally: Tally) {
  const reportFile = path.join(os.tmpdir(), `voxtrace-vitest-${process.pid}-${engine}.json`);
  fs.rmSync(reportFile, { force: true });
  say(`\n── tests on ${engine === 'postgres' ? 'PostgreSQL' : 'PGlite'} ──`);
  const code = await run(
    process.execPath,
    [
      path.join(root, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${reportFile}`,
      ...extraArgs,
    ],
    { ...process.env, VOXTRACE_TEST_ENGINE: engine, TEST_DATABASE_URL: databaseUrl },
  );
  if (!fs.existsSync(reportFile)) {
    tally.failed++;
    tally.failures.push(`${engine}: vitest exited ${code} without a report`);
    return;
  }
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as VitestReport;
  fs.rmSync(reportFile, { force: true });
  for (const file of report.testResults) {
    const relative = path.relative(root, file.name);
    if (file.assertionResults.length === 0 && file.status === 'failed') {
      tally.failed++;
      tally.failures.push(`${engine}: ${relative} did not run: ${file.message?.split('\n')[0] ?? 'failed to load'}`);
    } else if (file.status === 'failed' && file.assertionResults.every((test) => test.status !== 'failed')) {
      // its tests passed, but a hook failed: e.g. the no-leaks check found something left running
      tally.failed++;
      tally.failures.push(`${engine}: ${relative}: ${file.message?.split('\n')[0] ?? 'a hook failed'}`);
    }
    for (const test of file.assertionResults) {
      if (test.status === 'passed') tally.passed++;
      else if (test.status === 'failed') {
        tally.failed++;
        tally.failures.push(`${engine}: ${relative} › ${test.fullName}`);
      } else {
        const tagged = /\[pglite skip: ([^\]]+)\]/.exec(test.title);
        tally.skipped.push({
          engine,
          title: `${relative} › ${test.fullName}`,
          reason: tagged?.[1] ?? 'no reason given',
        });
      }
    }
  }
  if (code !== 0 && !tally.failures.some((f) => f.startsWith(`${engine}:`))) {
    tally.failed++;
    tally.failures.push(`${engine}: vitest exited ${code} (see its output above)`);
  }
}

async function check(name: string, command: string, args: string[], tally: Tally) {
  say(`\n── ${name} ──`);
  const code = await run(command, args);
  if (code === 0) {
    say(`${name}: ok`);
    tally.passed++;
  } else {
    tally.failed++;
    tally.failures.push(`${name} failed (exit ${code})`);
  }
}

async function runTests(vitestArgs: string[]): Promise<number> {
  const tally: Tally = { passed: 0, failed: 0, skipped: [], failures: [] };
  const started = Date.now();
  let database: Awaited<ReturnType<typeof findDatabase>> | undefined;
  try {
    if (!installSystemDeps(['chromium', 'docker-compose'])) {
      tally.failed++;
      tally.failures.push('system dependencies (chromium, docker-compose) could not be installed');
    }
    database = await findDatabase();
    say(`test database: ${database.how}`);
    const bin = (name: string) => path.join(root, 'node_modules/.bin', name);
    await check('lint (biome)', bin('biome'), ['check', '--error-on-warnings', '.'], tally);
    await check('typecheck (tsc)', bin('tsc'), ['-p', 'tsconfig.json'], tally);
    await runVitest('postgres', database.url, vitestArgs, tally);
    await runVitest('pglite', database.url, vitestArgs, tally);
  } catch (error) {
    tally.failed++;
    tally.failures.push((error as Error).message);
  } finally {
    await database?.stop().catch(() => {});
  }

  say('\n── summary ──');
  for (const skip of tally.skipped) say(`skipped on ${skip.engine}: ${skip.title} (reason: ${skip.reason})`);
  for (const skip of tally.skipped.filter((s) => s.engine === 'pglite' && !ALLOWED_PGLITE_SKIP.test(s.reason))) {
    tally.failed++;
    tally.failures.push(`PGlite may skip only multi-process tests: ${skip.title} (reason: ${skip.reason})`);
  }
  for (const failure of tally.failures) say(`FAILED: ${failure}`);
  say(`took ${Math.round((Date.now() - started) / 1000)} s`);
  say(`${tally.passed} passed, ${tally.failed} failed`);
  return tally.failed === 0 && tally.passed > 0 ? 0 : 1;
}

process.exitCode = await runTests(process.argv.slice(2));
