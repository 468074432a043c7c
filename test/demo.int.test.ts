import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { count, eq } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { recordings, utterances, voiceprints } from '../src/db/schema.ts';
import type { TruthLine } from '../src/standin/demo-data.ts';
import { cleanEnv, cliPath, repoRoot } from './support/cli.ts';
import { createCliTarget, engine } from './support/db.ts';
import { freePort } from './support/http.ts';

const running: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

describe(`./voxtrace demo on ${engine}`, () => {
  it('loads its corpus through the real path and ends with the database matching the truth file', async () => {
    const target = await createCliTarget();
    try {
      const env = {
        ...target.env,
        VOXTRACE_PORT: String(await freePort()),
        VOXTRACE_STANDIN_PORT: String(await freePort()),
        VOXTRACE_STANDIN_SPEED: '0.002',
      };
      const child = spawn(process.execPath, [cliPath, 'demo', '--calls', '12', '--seed', '3'], {
        env: cleanEnv(env),
        cwd: repoRoot,
      });
      running.push(child);
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d) => {
          stdout += d;
          if (stdout.includes('demo ready')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`demo exited ${code}\n${stdout}\n${stderr}`)));
      });
      expect(stdout).toContain('demo: uploaded 12 (new 12, already known 0)');
      expect(stdout).toContain('demo: final states: complete 12, failed 0, dead 0');
      expect(stdout).toMatch(
        /curl -s -H "Authorization: Bearer \$key" 'http:\/\/127\.0\.0\.1:\d+\/v1\/recordings\?status=complete/,
      );
      expect(stderr).toMatch(/ingest: 12\/12 finished/);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);

      const corpus = path.join(target.dataDir, 'demo-calls-12-seed-3');
      const truth = fs
        .readFileSync(path.join(corpus, 'truth.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as TruthLine);
      const stored = await target.inspect(async (database) => {
        const [r] = await database.db.select({ n: count() }).from(recordings).where(eq(recordings.status, 'complete'));
        const [u] = await database.db.select({ n: count() }).from(utterances);
        const [v] = await database.db.select({ n: count() }).from(voiceprints);
        const accounts = await database.db.selectDistinct({ a: recordings.accountRef }).from(recordings);
        return { recordings: r?.n, utterances: u?.n, voiceprints: v?.n, accounts: accounts.map((a) => a.a).sort() };
      });
      expect(stored).toEqual({
        recordings: truth.length,
        utterances: truth.reduce((sum, call) => sum + call.utterances.length, 0),
        voiceprints: truth.reduce((sum, call) => sum + call.speakers.length, 0),
        accounts: [...new Set(truth.map((call) => call.accountRef))].sort(),
      });
    } finally {
      await target.cleanup();
    }
  }, 120_000);
});
