import os from 'node:os';
import path from 'node:path';
import { DEFAULT_VOICE_SETTINGS } from '../../src/config.ts';
import type { Db } from '../../src/db/client.ts';
import { createApp } from '../../src/http/app.ts';
import type { AppDeps } from '../../src/http/env.ts';
import { createLogger } from '../../src/log.ts';

/**
 * The API app over `db` as tests use it (no socket: `app.request(...)`), with every dependency
 * `createApp` requires given a test default; `overrides` replace any of them. A new dependency of
 * the app gets its default here, once.
 * @example const app = testApp(database.db, { intake: { spoolDir, maxUploadBytes: 1024, upstreamApi: 'deepfake' } });
 */
export function testApp(db: Db, overrides: Partial<AppDeps> = {}) {
  return createApp({
    db,
    log: createLogger('silent'),
    ready: async () => true,
    intake: {
      spoolDir: path.join(os.tmpdir(), 'voxtrace-test-spool'),
      maxUploadBytes: 10 * 1024 * 1024,
      upstreamApi: 'deepfake',
    },
    voices: DEFAULT_VOICE_SETTINGS,
    ...overrides,
  });
}
