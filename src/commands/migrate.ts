import type { Command } from 'commander';
import { migrateDatabase, warnIfOldPgvector } from '../db/migrate.ts';
import { out, withContext } from './support.ts';

export function registerMigrate(program: Command) {
  program
    .command('migrate')
    .description('apply the database migrations (under an advisory lock) and report the pgvector version')
    .action(() =>
      withContext(
        async (ctx) => {
          const { pgvector } = await migrateDatabase(ctx.database);
          warnIfOldPgvector(ctx.log, pgvector);
          out(`migrated ${ctx.database.description} (pgvector ${pgvector})`);
        },
        { migrate: false },
      ),
    );
}
