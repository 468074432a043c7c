import type { Config } from './config.ts';
import { type Database, type Db, openDatabase } from './db/client.ts';
import { migrateDatabase } from './db/migrate.ts';
import { createLogger, type Logger } from './log.ts';

/**
 * What one voxtrace process works with, built once by its command: the settings, a logger, and the
 * open database (migrated first when VOXTRACE_AUTO_MIGRATE allows). Services get its parts, never
 * the context itself; `close` is the one way out.
 */
export type Context = {
  config: Config;
  log: Logger;
  database: Database;
  db: Db;
  close(): Promise<void>;
};

/**
 * Opens the configured database (PostgreSQL, or embedded PGlite in the data directory) and
 * migrates it unless told not to; closes it again if migrating fails.
 * @example const ctx = await createContext(loadConfig()); try { … } finally { await ctx.close(); }
 */
export async function createContext(config: Config, options: { migrate?: boolean } = {}): Promise<Context> {
  const log = createLogger(config.logLevel);
  const database = await openDatabase(config);
  try {
    if (options.migrate ?? config.autoMigrate) await migrateDatabase(database);
  } catch (error) {
    await database.close();
    throw error;
  }
  return { config, log, database, db: database.db, close: () => database.close() };
}
