import { defineConfig } from 'drizzle-kit';

// drizzle-kit only generates SQL here; migrations are applied by src/db/migrate.ts (drizzle-orm's
// migrator under an advisory lock), which also works on PGlite where drizzle-kit's cannot load pgvector.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './migrations',
  casing: 'snake_case',
});
