import type { TestProject } from 'vitest/node';
import { openPostgres } from '../../src/db/client.ts';
import { migrateDatabase } from '../../src/db/migrate.ts';
import { adminQuery, databaseUrl, resolveTestDatabaseUrl } from './postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    templateDatabase: string;
  }
}

/**
 * Native engine: migrate one template database per run; each test file then gets
 * `CREATE DATABASE … TEMPLATE` of it (seconds saved per file, identical schema everywhere).
 */
export default async function setup(project: TestProject) {
  if (process.env.VOXTRACE_TEST_ENGINE === 'pglite') {
    process.stdout.write('test database: embedded PGlite (a new in-memory instance per test file)\n');
    return;
  }
  const url = resolveTestDatabaseUrl();
  await dropAbandonedDatabases(url);
  const template = `voxtrace_tpl_${process.pid}_${Date.now().toString(36)}`;
  await adminQuery(url, `create database ${template}`);
  const database = openPostgres(databaseUrl(url, template), { max: 1 });
  try {
    const { pgvector } = await migrateDatabase(database);
    const [server] = await adminQuery(url, 'show server_version');
    process.stdout.write(
      `test database: ${database.description.replace(template, '<per-file copy>')} (PostgreSQL ${server?.server_version}, pgvector ${pgvector})\n`,
    );
  } finally {
    await database.close();
  }
  project.provide('postgresUrl', url);
  project.provide('templateDatabase', template);
  return async () => {
    await adminQuery(url, `drop database if exists ${template} with (force)`);
  };
}

/** Databases left by runs that were killed: their pid (in the name) no longer exists. */
async function dropAbandonedDatabases(url: string) {
  const rows = await adminQuery(url, "select datname from pg_database where datname ~ '^voxtrace_(tpl|t)_[0-9]+_'");
  for (const { datname } of rows) {
    const pid = Number((datname as string).split('_')[2]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await adminQuery(url, `drop database if exists ${datname} with (force)`);
  }
}
