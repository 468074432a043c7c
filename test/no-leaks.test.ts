import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/cli.ts';

describe('the no-leaks check of every test file (test/support/no-leaks.ts)', () => {
  it('fails a file that leaves a server and a worker loop running, naming them', () => {
    const fixture = path.join(repoRoot, 'test/fixtures/leaks');
    const run = spawnSync(
      process.execPath,
      [path.join(repoRoot, 'node_modules/vitest/vitest.mjs'), 'run', '--root', fixture],
      {
        cwd: fixture,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      },
    );
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status).not.toBe(0);
    expect(output).toMatch(/this test file left running: .*1 × TCPServerWrap/);
    expect(output).toMatch(/this test file left running: .*1 × timer/);
    // the test itself passed: it is the check after it that fails the file
    expect(output).toMatch(/1 passed/);
  });
});
