import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, openPglite } from '../src/db/client.ts';
import { migrationsFolder } from '../src/db/migrate.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { cleanEnv, cliPath, repoRoot, runCli } from './support/cli.ts';
import { createCliTarget, createTestDatabase, engine } from './support/db.ts';
import { freePort } from './support/http.ts';
import { migrateUpTo } from './support/migrations.ts';

const running: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Starts `voxtrace <command>` and resolves once it prints where the API is. */
function startServer(command: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [cliPath, command], { env: cleanEnv(env), cwd: repoRoot });
  running.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (
        /API on http:\/\/\S+/.test(stdout) &&
        stdout.includes('database:') &&
        (command !== 'start' || stdout.includes('worker:'))
      ) {
        setTimeout(() => resolve(stdout), 50);
      }
    });
    child.on('exit', (code) => reject(new Error(`voxtrace ${command} exited ${code}\n${stdout}\n${stderr}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, ready, exited, output: () => ({ stdout, stderr }) };
}

describe(`./voxtrace start on ${engine}`, () => {
  it('serves /healthz with nothing but a data dir configured, prints the first admin key once, stops on SIGTERM', async () => {
    const target = await createCliTarget();
    try {
      const port = await freePort();
      const env = { ...target.env, VOXTRACE_PORT: String(port), VOXTRACE_STANDIN_PORT: String(await freePort()) };
      const first = startServer('start', env);
      const stdout = await first.ready;
      expect(stdout).toContain(`API on http://127.0.0.1:${port} (docs http://127.0.0.1:${port}/docs)`);
      expect(stdout).toContain(
        engine === 'pglite' ? `embedded PGlite in ${target.dataDir}/db` : 'database: PostgreSQL postgres://',
      );
      const key = /^admin key: (vxt_\S+)$/m.exec(stdout)?.[1];
      expect(key).toBeDefined();
      const keyFile = path.join(target.dataDir, 'admin-key');
      expect(fs.readFileSync(keyFile, 'utf8').trim()).toBe(key);
      expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);

      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      const unauthorized = await fetch(`http://127.0.0.1:${port}/v1/recordings/x`);
      expect(unauthorized.status).toBe(401);
      const authorized = await fetch(`http://127.0.0.1:${port}/v1/recordings/00000000-0000-4000-8000-000000000000`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(authorized.status).toBe(404);

      if (engine === 'pglite') {
        // PGlite is one process: a second command on the same data dir fails clearly, harming nothing
        const busy = await runCli(['keys', 'ls'], target.env);
        expect(busy.code).toBe(1);
        expect(busy.stderr).toMatch(
          /in use by another voxtrace process \(pid \d+\).*use the API of the running server, stop it, or set DATABASE_URL/,
        );
      }

      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);

      const second = startServer('serve', { ...env, VOXTRACE_PORT: String(await freePort()) });
      const again = await second.ready;
      expect(again).not.toContain('admin key:');
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
      const keys = JSON.parse((await runCli(['keys', 'ls', '--json'], target.env)).stdout);
      expect(keys).toMatchObject([{ name: 'admin', scope: 'admin', revokedAt: null }]);
    } finally {
      await target.cleanup();
    }
  });

  it('staff enrol PATH… uploads each agent’s audio through the running server and enrols one staff identity each', async () => {
    const target = await createCliTarget();
    const audioDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-staff-audio-'));
    try {
      // two recordings of one agent in a folder, one of another as a single file
      const recording = (speakerId: string, callId: string) =>
        encodeCallWav(
          {
            version: 1,
            callId,
            accountRef: null,
            channel: null,
            callAt: null,
            durationS: 20,
            speakers: [{ label: 'SPEAKER_00', speakerId, role: 'agent' }],
            utterances: [
              { id: `${callId}-0`, start: 0, end: 9.5, speakerLabel: 'SPEAKER_00', spoofFamily: null },
              { id: `${callId}-1`, start: 10, end: 19.5, speakerLabel: 'SPEAKER_00', spoofFamily: null },
            ],
          },
          { seed: callId.length },
        );
      fs.mkdirSync(path.join(audioDir, 'alice'));
      fs.writeFileSync(path.join(audioDir, 'alice', 'one.wav'), recording('agent-alice', 'alice-1'));
      fs.writeFileSync(path.join(audioDir, 'alice', 'two.wav'), recording('agent-alice', 'alice-22'));
      fs.writeFileSync(path.join(audioDir, 'bob.wav'), recording('agent-bob', 'bob-1'));
      const port = await freePort();
      const env = {
        ...target.env,
        VOXTRACE_PORT: String(port),
        VOXTRACE_STANDIN_PORT: String(await freePort()),
        VOXTRACE_STANDIN_SPEED: '0',
      };
      const server = startServer('start', env);
      const key = /^admin key: (vxt_\S+)$/m.exec(await server.ready)?.[1] as string;
      const cliEnv = {
        VOXTRACE_API_URL: `http://127.0.0.1:${port}`,
        VOXTRACE_API_KEY: key,
        VOXTRACE_LOG_LEVEL: 'warn',
      };
      const enrolled = await runCli(
        ['staff', 'enrol', path.join(audioDir, 'alice'), path.join(audioDir, 'bob.wav'), '--json'],
        cliEnv,
      );
      expect(enrolled.code).toBe(0);
      const identities = JSON.parse(enrolled.stdout) as { kind: string; name: string; voiceprintCount: number }[];
      expect(identities).toMatchObject([
        { kind: 'staff', name: 'alice', voiceprintCount: 2 },
        { kind: 'staff', name: 'bob', voiceprintCount: 1 },
      ]);
      const missing = await runCli(['staff', 'enrol', path.join(audioDir, 'nobody')], cliEnv);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('nobody');
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      fs.rmSync(audioDir, { recursive: true, force: true });
      await target.cleanup();
    }
  });

  it('with VOXTRACE_AUTO_MIGRATE=false, /readyz answers 503 while a migration is pending, 200 once migrated', async () => {
    // a database of the previous release, with its admin key
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-readyz-'));
    const old: Database & { url?: string } =
      engine === 'postgres'
        ? await createTestDatabase({ migrated: false })
        : await openPglite(path.join(dataDir, 'db'));
    try {
      // every migration but the newest: one pending, whatever the newest is
      const journal = JSON.parse(fs.readFileSync(path.join(migrationsFolder, 'meta/_journal.json'), 'utf8'));
      await migrateUpTo(old, journal.entries.at(-2).tag);
      await old.db.execute(
        sql`insert into api_keys (name, scope, key_hash, key_prefix) values ('admin', 'admin', 'x', 'vxt_x')`,
      );
      if (engine === 'pglite') await old.close();
      const env = {
        VOXTRACE_DATA_DIR: dataDir,
        VOXTRACE_LOG_LEVEL: 'warn',
        VOXTRACE_AUTO_MIGRATE: 'false',
        ...(old.url ? { DATABASE_URL: old.url } : {}),
      };
      const ready = async (port: number) => (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
      const port = await freePort();
      const server = startServer('serve', { ...env, VOXTRACE_PORT: String(port) });
      await server.ready;
      expect(await ready(port)).toBe(503);
      expect(server.output().stderr).toMatch(/1 database migration\(s\) pending: run `voxtrace migrate`/);
      if (engine === 'postgres') {
        expect((await runCli(['migrate'], env)).code).toBe(0);
        expect(await ready(port)).toBe(200);
        server.child.kill('SIGTERM');
        expect(await server.exited).toBe(0);
      } else {
        // PGlite is one process: stop, migrate, start again
        server.child.kill('SIGTERM');
        expect(await server.exited).toBe(0);
        expect((await runCli(['migrate'], env)).code).toBe(0);
        const again = startServer('serve', { ...env, VOXTRACE_PORT: String(port) });
        await again.ready;
        expect(await ready(port)).toBe(200);
        again.child.kill('SIGTERM');
        expect(await again.exited).toBe(0);
      }
    } finally {
      if (engine === 'postgres') await old.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('with VOXTRACE_AUTO_MIGRATE=false, refuses to serve a database that was never migrated, saying so', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-empty-'));
    const empty = engine === 'postgres' ? await createTestDatabase({ migrated: false }) : null;
    try {
      const result = await runCli(['serve'], {
        VOXTRACE_DATA_DIR: dataDir,
        VOXTRACE_PORT: String(await freePort()),
        VOXTRACE_AUTO_MIGRATE: 'false',
        ...(empty?.url ? { DATABASE_URL: empty.url } : {}),
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^voxtrace serve: the database is not migrated \(\d+ migrations pending\): run `voxtrace migrate`, or leave VOXTRACE_AUTO_MIGRATE at true\n$/,
      );
    } finally {
      await empty?.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses to start on bad configuration, one message per wrong variable', async () => {
    const result = await runCli(['start'], {
      VOXTRACE_PORT: 'eighty',
      VOXTRACE_AUTO_MIGRATE: 'sometimes',
      DATABASE_URL: 'mysql://nope',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      [
        'voxtrace start: invalid configuration:',
        '  - DATABASE_URL: must be a postgres:// or postgresql:// URL',
        '  - VOXTRACE_PORT: must be a port number',
        '  - VOXTRACE_AUTO_MIGRATE: must be true or false',
        '',
      ].join('\n'),
    );
  });
});
