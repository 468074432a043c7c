import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Database } from '../../src/db/client.ts';
import { migrationsFolder } from '../../src/db/migrate.ts';

/**
 * Migrates `database` up to and including the migration `lastTag` (e.g. `0004_spoofed_hnsw`), as a
 * database of an earlier release would be: a copy of the committed migrations, its journal cut
 * there, applied by drizzle's migrator of the engine. `migrateDatabase` then brings it up to date.
 * @example await migrateUpTo(database, '0004_spoofed_hnsw'); await migrateDatabase(database);
 */
export async function migrateUpTo(database: Database, lastTag: string): Promise<void> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-migrations-'));
  try {
    const journal = JSON.parse(fs.readFileSync(path.join(migrationsFolder, 'meta/_journal.json'), 'utf8')) as {
      entries: { tag: string }[];
    };
    const last = journal.entries.findIndex((entry) => entry.tag === lastTag);
    if (last < 0) throw new Error(`no migration ${lastTag}`);
    const entries = journal.entries.slice(0, last + 1);
    fs.mkdirSync(path.join(folder, 'meta'));
    fs.writeFileSync(path.join(folder, 'meta/_journal.json'), JSON.stringify({ ...journal, entries }));
    for (const entry of entries) {
      fs.copyFileSync(path.join(migrationsFolder, `${entry.tag}.sql`), path.join(folder, `${entry.tag}.sql`));
    }
    if (database.engine === 'pglite') {
      const { migrate } = await import('drizzle-orm/pglite/migrator');
      await migrate(database.db as Parameters<typeof migrate>[0], { migrationsFolder: folder });
    } else {
      const { migrate } = await import('drizzle-orm/node-postgres/migrator');
      await migrate(database.db as Parameters<typeof migrate>[0], { migrationsFolder: folder });
    }
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
