import type { VoiceSettings } from '../config.ts';
import type { Db } from '../db/client.ts';
import type { Logger } from '../log.ts';
import type { IntakeSettings } from '../recordings/intake.ts';

/** What every route handler may use; services get these values, never Hono's context. */
export type AppDeps = {
  db: Db;
  log: Logger;
  /** Answers /readyz: true once migrations ran and the database answers. */
  ready: () => Promise<boolean>;
  /**
   * Where uploads are spooled, how large they may be, and the upstream API they are queued for.
   * @example intake: { spoolDir: spoolDirFor(config.dataDir), maxUploadBytes: config.maxUploadBytes, upstreamApi: config.upstream.api }
   */
  intake: IntakeSettings;
  /** @example voices: config.voices */
  voices: VoiceSettings;
};

export type AppEnv = {
  Variables: {
    deps: AppDeps;
    requestId: string;
    apiKeyId: string;
    log: Logger;
  };
};
