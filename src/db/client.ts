import fs from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { SQL } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { VoxtraceError } from '../errors.ts';
import * as schema from './schema.ts';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Engine = 'postgres' | 'pglite';

/** An open database: the drizzle handle plus what only the connection layer knows. */
export type Database = {
  db: Db;
  engine: Engine;
  /** Where the data lives, safe to print (no password). */
  description: string;
  /** Runs `fn` on one dedicated connection (advisory locks are per session). */
  withSession<T>(fn: (session: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
};

export class DatabaseBusyError extends VoxtraceError {
  constructor(dir: string, pid: number) {
    super(
      `the embedded database in ${dir} is in use by another voxtrace process (pid ${pid}); ` +
        'embedded PGlite serves one process: use the API of the running server, stop it, or set DATABASE_URL',
    );
  }
}

/** Plain rows of a raw `sql` query, on either engine. */
export async function queryRows<T extends Record<string, unknown>>(db: Db, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

/** Strips the password from a connection URL for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable database URL)';
  }
}

/**
 * Connects to PostgreSQL through a pg Pool.
 * `sessionSettings` become per-connection `SET`s (tests use synchronous_commit=off; the server's
 * own settings are never changed).
 * @example const database = openPostgres('postgres://postgres@127.0.0.1:5432/voxtrace');
 */
export function openPostgres(
  url: string,
  options: { max?: number; sessionSettings?: Record<string, string> } = {},
): Database {
  const settings = Object.entries(options.sessionSettings ?? {})
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    ...(settings ? { options: settings } : {}),
  });
  // an idle client losing its server must not crash the process; the next query reports it
  pool.on('error', () => {});
  const db = drizzleNodePg({ client: pool, schema, casing: 'snake_case' }) as unknown as Db;
  return {
    db,
    engine: 'postgres',
    description: `PostgreSQL ${redactUrl(url)}`,
    async withSession(fn) {
      const client = await pool.connect();
      try {
        return await fn(drizzleNodePg({ client, schema, casing: 'snake_case' }) as unknown as Db);
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/**
 * Opens embedded PGlite with pgvector; `dataDir` undefined means in memory (tests).
 * A lock file guards a data directory: PGlite is one process, and two would corrupt it.
 * @example const database = await openPglite('.voxtrace/db');
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  // loaded only here: PGlite and its WebAssembly cost a PostgreSQL-backed process ~120 MiB of heap
  const [{ PGlite }, { vector }, { drizzle: drizzlePglite }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('@electric-sql/pglite-pgvector'),
    import('drizzle-orm/pglite'),
  ]);
  let releaseLock = () => {};
  if (dataDir) {
    fs.mkdirSync(dataDir, { recursive: true });
    releaseLock = lockDataDir(dataDir);
  }
  let client: PGlite;
  try {
    client = await PGlite.create(dataDir ?? 'memory://', { extensions: { vector } });
  } catch (error) {
    releaseLock();
    throw error;
  }
  const db = drizzlePglite({ client, schema, casing: 'snake_case' }) as unknown as Db;
  return {
    db,
    engine: 'pglite',
    description: dataDir ? `embedded PGlite in ${dataDir}` : 'embedded PGlite in memory',
    withSession: (fn) => fn(db),
    async close() {
      try {
        await client.close();
      } finally {
        releaseLock();
      }
    },
  };
}

function lockDataDir(dataDir: string): () => void {
  const lockFile = path.join(dataDir, 'voxtrace.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number.parseInt(fs.readFileSync(lockFile, 'utf8'), 10);
      if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
        throw new DatabaseBusyError(dataDir, holder);
      }
      fs.rmSync(lockFile, { force: true }); // left by a process that died: take over
    }
  }
  throw new Error(`could not lock ${lockFile}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The database the config points at: PostgreSQL when DATABASE_URL is set, else PGlite in
 * `$VOXTRACE_DATA_DIR/db`.
 */
export async function openDatabase(config: { databaseUrl: string | undefined; dataDir: string }): Promise<Database> {
  if (config.databaseUrl) return openPostgres(config.databaseUrl);
  return openPglite(path.join(config.dataDir, 'db'));
}

/**
 * The message of a PostgreSQL data exception (class 22: a NUL byte in text, a number out of range),
 * found on the error or its causes; null for any other error. Such an error is the data's fault,
 * not the database's: retrying cannot help.
 * @example const refused = dataErrorMessage(error); if (refused) markFailed(refused);
 */
export function dataErrorMessage(error: unknown): string | null {
  type PgError = { code?: unknown; message?: string; detail?: unknown; cause?: unknown };
  for (let e = error as PgError | undefined; e; e = e.cause as PgError | undefined) {
    if (typeof e.code === 'string' && e.code.startsWith('22')) {
      const message = e.message ?? e.code;
      // the detail names the culprit ("\u0000 cannot be converted to text.")
      return typeof e.detail === 'string' && e.detail ? `${message}: ${e.detail}` : message;
    }
  }
  return null;
}
