import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { type Database, openPglite, openPostgres } from '../../db/client.ts';
import { migrateDatabase } from '../../db/migrate.ts';

/**
 * A fresh, migrated database for one eval run, removed afterwards: a new database on the
 * PostgreSQL server of `serverUrl`, or embedded PGlite in a temporary directory when it is null.
 * @example const result = await withFreshDatabase(process.env.TEST_DATABASE_URL ?? null, (database) => run(database));
 */
export async function withFreshDatabase<T>(
  serverUrl: string | null,
  run: (database: Database) => Promise<T>,
): Promise<T> {
  if (!serverUrl) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-eval-'));
    const database = await openPglite(path.join(dir, 'db'));
    try {
      await migrateDatabase(database);
      return await run(database);
    } finally {
      await database.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const name = `voxtrace_eval_${randomBytes(4).toString('hex')}`;
  await admin(serverUrl, `create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  // a throwaway database: commits need not wait for the disk
  const database = openPostgres(url.toString(), { max: 4, sessionSettings: { synchronous_commit: 'off' } });
  try {
    await migrateDatabase(database);
    return await run(database);
  } finally {
    await database.close();
    await admin(serverUrl, `drop database if exists ${name} with (force)`);
  }
}

async function admin(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
