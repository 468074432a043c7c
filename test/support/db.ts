import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { type Database, openPglite, openPostgres } from '../../src/db/client.ts';
import { migrateDatabase } from '../../src/db/migrate.ts';
import { adminQuery, databaseUrl } from './postgres.ts';

export type TestEngine = 'postgres' | 'pglite';
export const engine: TestEngine = process.env.VOXTRACE_TEST_ENGINE === 'pglite' ? 'pglite' : 'postgres';

export type TestDatabase = Database & { url: string | undefined };

/**
 * A fresh, migrated database for one test file: a copy of the run's template on PostgreSQL, a
 * new in-memory instance on PGlite. Session settings trade durability for speed, per connection
 * only (the server's settings stay as they are). `{ migrated: false }`: an empty one, for tests of
 * the migrations themselves.
 */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const migrated = options.migrated ?? true;
  if (engine === 'pglite') {
    const database = await openPglite();
    if (migrated) await migrateDatabase(database);
    return { ...database, url: undefined };
  }
  const serverUrl = inject('postgresUrl');
  const name = `voxtrace_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(serverUrl, `create database ${name}${migrated ? ` template ${inject('templateDatabase')}` : ''}`);
  const url = databaseUrl(serverUrl, name);
  const database = openPostgres(url, { max: 4, sessionSettings: { synchronous_commit: 'off' } });
  return {
    ...database,
    url,
    async close() {
      await database.close();
      await adminQuery(serverUrl, `drop database if exists ${name} with (force)`);
    },
  };
}

/**
 * Where a CLI subprocess should find its database, and how the test looks inside afterwards.
 * PGlite is one process, so on that engine the CLI gets its own data directory and the test
 * opens it only while no CLI runs.
 */
export async function createCliTarget() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-cli-'));
  const shared = engine === 'postgres' ? await createTestDatabase() : undefined;
  return {
    dataDir,
    env: {
      VOXTRACE_DATA_DIR: dataDir,
      VOXTRACE_LOG_LEVEL: 'warn',
      ...(shared?.url ? { DATABASE_URL: shared.url } : {}),
    } as Record<string, string>,
    async inspect<T>(fn: (database: Database) => Promise<T>): Promise<T> {
      if (shared) return fn(shared);
      const database = await openPglite(path.join(dataDir, 'db'));
      try {
        return await fn(database);
      } finally {
        await database.close();
      }
    },
    async cleanup() {
      await shared?.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
