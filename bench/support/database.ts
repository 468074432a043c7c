import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Database, openPglite, openPostgres } from '../../src/db/client.ts';
import { migrateDatabase } from '../../src/db/migrate.ts';
import { adminQuery, databaseUrl } from '../../test/support/postgres.ts';

export type BenchEngine = 'postgres' | 'pglite';

/**
 * A fresh, migrated database for the length of `run`, removed afterwards: on native PostgreSQL (the
 * server of $BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432) the database `name`,
 * opened with default connection settings, as voxtrace opens it (durable commits included); on
 * PGlite a new data directory on disk. `url` is the PostgreSQL database's, for a raw client.
 * @example await withBenchDatabase('postgres', 'voxtrace_bench_outbox', async (database) => …);
 */
export async function withBenchDatabase<T>(
  engine: BenchEngine,
  name: string,
  run: (database: Database, url: string | undefined) => Promise<T>,
): Promise<T> {
  if (engine === 'pglite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-bench-pglite-'));
    try {
      return await migratedThen(await openPglite(path.join(dir, 'db')), undefined, run);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const serverUrl = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  await adminQuery(serverUrl, `drop database if exists ${name} with (force)`);
  await adminQuery(serverUrl, `create database ${name}`);
  try {
    const url = databaseUrl(serverUrl, name);
    return await migratedThen(openPostgres(url), url, run);
  } finally {
    await adminQuery(serverUrl, `drop database if exists ${name} with (force)`);
  }
}

async function migratedThen<T>(
  database: Database,
  url: string | undefined,
  run: (database: Database, url: string | undefined) => Promise<T>,
): Promise<T> {
  try {
    await migrateDatabase(database);
    return await run(database, url);
  } finally {
    await database.close();
  }
}
