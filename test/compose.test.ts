import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compareVersions, RECOMMENDED_PGVECTOR } from '../src/db/migrate.ts';
import { repoRoot } from './support/cli.ts';

const run = promisify(execFile);
const composeFile = path.join(repoRoot, 'docker-compose.yml');

describe('docker-compose.yml', () => {
  it("is accepted by Debian's docker-compose (no engine needed to validate)", async () => {
    const { stdout } = await run('docker-compose', ['-f', composeFile, 'config'], { cwd: repoRoot });
    expect(stdout).toMatch(/image: pgvector\/pgvector:/);
    expect(stdout).toMatch(/DATABASE_URL: postgres:\/\/voxtrace:voxtrace@db:5432\/voxtrace/);
  });

  it(`runs the official pgvector image at ≥ ${RECOMMENDED_PGVECTOR}`, () => {
    const image = /image: pgvector\/pgvector:(\d+\.\d+\.\d+)-pg(\d+)/.exec(fs.readFileSync(composeFile, 'utf8'));
    expect(image).not.toBeNull();
    expect(compareVersions(image?.[1] as string, RECOMMENDED_PGVECTOR)).toBeGreaterThanOrEqual(0);
    expect(Number(image?.[2])).toBeGreaterThanOrEqual(15);
  });
});
