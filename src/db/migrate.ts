import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import { VoxtraceError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type Database, queryRows } from './client.ts';

export const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

// Replicas booting together serialise on this session-level lock; the number is arbitrary but fixed.
const MIGRATION_LOCK_KEY = 0x766f7874; // 'voxt'

/** pgvector releases before this lack the HNSW vacuum fixes production needs. */
export const RECOMMENDED_PGVECTOR = '0.8.4';
export const MINIMUM_PGVECTOR = '0.8.0';

export class MigrationError extends VoxtraceError {}

/**
 * Applies the committed migrations under an advisory lock (drizzle-orm's migrator: drizzle-kit's
 * own cannot load pgvector into PGlite), then reads the pgvector version.
 * @example const { pgvector } = await migrateDatabase(database);
 */
export async function migrateDatabase(database: Database): Promise<{ pgvector: string }> {
  await database.withSession(async (session) => {
    await session.execute(sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
    try {
      // both migrators take the same drizzle handle shape; the engine decides which session type it is
      if (database.engine === 'pglite') {
        // imported here so that PostgreSQL-backed processes never load PGlite (see openPglite)
        const { migrate: migratePglite } = await import('drizzle-orm/pglite/migrator');
        await migratePglite(session as Parameters<typeof migratePglite>[0], { migrationsFolder });
      } else {
        await migrateNodePg(session as Parameters<typeof migrateNodePg>[0], { migrationsFolder });
      }
    } catch (error) {
      throw explainMigrationFailure(error);
    } finally {
      await session.execute(sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`);
    }
  });
  return { pgvector: await pgvectorVersion(database) };
}

let committedMigrations: number[] | null = null;

/**
 * How many committed migrations the database has not applied (all of them on an empty database):
 * what `/readyz` asks, so that a server started with VOXTRACE_AUTO_MIGRATE=false reports ready only
 * once someone has migrated. drizzle's migrator applies every migration newer than the last one it
 * recorded, so comparing creation times is its own rule.
 * @example if ((await pendingMigrations(database)) > 0) notReady();
 */
export async function pendingMigrations(database: Database): Promise<number> {
  committedMigrations ??= readMigrationFiles({ migrationsFolder }).map((m) => m.folderMillis);
  const [table] = await queryRows<{ present: boolean }>(
    database.db,
    sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`,
  );
  if (!table?.present) return committedMigrations.length;
  const [last] = await queryRows<{ at: string | number | null }>(
    database.db,
    sql`select max(created_at) as at from drizzle.__drizzle_migrations`,
  );
  const appliedUpTo = Number(last?.at ?? 0);
  return committedMigrations.filter((when) => when > appliedUpTo).length;
}

/** Start-up warning for a pgvector without the HNSW vacuum fixes; true when it warned. */
export function warnIfOldPgvector(log: Logger, pgvector: string): boolean {
  if (compareVersions(pgvector, RECOMMENDED_PGVECTOR) >= 0) return false;
  log.warn(
    { pgvector, recommended: RECOMMENDED_PGVECTOR },
    `pgvector ${pgvector} is older than ${RECOMMENDED_PGVECTOR}: fine for tests, but production needs ≥ ${RECOMMENDED_PGVECTOR} for HNSW vacuum fixes`,
  );
  return true;
}

export async function pgvectorVersion(database: Database): Promise<string> {
  const rows = await queryRows<{ extversion: string }>(
    database.db,
    sql`select extversion from pg_extension where extname = 'vector'`,
  );
  const version = rows[0]?.extversion;
  if (!version) throw new MigrationError('the pgvector extension is not installed in this database');
  return version;
}

function explainMigrationFailure(error: unknown): Error {
  const chain = [error, (error as { cause?: unknown })?.cause];
  const missingExtension = chain.some(
    (e) =>
      e instanceof Error && /extension "vector" is not available|could not open extension control file/.test(e.message),
  );
  if (missingExtension) {
    return new MigrationError(
      `pgvector is not installed on this PostgreSQL server: install pgvector ≥ ${MINIMUM_PGVECTOR} ` +
        `(≥ ${RECOMMENDED_PGVECTOR} in production), e.g. with scripts/install-system-deps.sh pgvector or the ` +
        'pgvector/pgvector Docker image',
      { cause: error },
    );
  }
  const detail = chain.find((e): e is Error => e instanceof Error && e !== error)?.message;
  return new MigrationError(`migration failed: ${detail ?? (error as Error).message}`, { cause: error });
}

/** Compares dotted numeric versions: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}
