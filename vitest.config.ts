import { defineConfig } from 'vitest/config';

// VOXTRACE_TEST_ENGINE picks the database: `postgres` runs every test file, `pglite` runs the
// storage tests (*.int.test.ts) again on embedded PGlite. `./voxtrace test` runs both.
const engine = process.env.VOXTRACE_TEST_ENGINE === 'pglite' ? 'pglite' : 'postgres';

export default defineConfig({
  test: {
    include: engine === 'pglite' ? ['test/**/*.int.test.ts'] : ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { VOXTRACE_TEST_ENGINE: engine },
  },
});
