import { defineConfig } from 'vitest/config';

// VOXTRACE_TEST_ENGINE picks the database: `postgres` runs every test file, `pglite` runs the files
// that use a database (*.int.test.ts) again on embedded PGlite; the others (*.test.ts) need none and
// run once. `./voxtrace test` runs both.
const engine = process.env.VOXTRACE_TEST_ENGINE === 'pglite' ? 'pglite' : 'postgres';

export default defineConfig({
  test: {
    include: engine === 'pglite' ? ['test/**/*.int.test.ts'] : ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // a file that leaves a worker, pool, server or child process running fails
    setupFiles: ['test/support/no-leaks.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { VOXTRACE_TEST_ENGINE: engine },
  },
});
