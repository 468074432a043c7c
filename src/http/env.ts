import type { Db } from '../db/client.ts';
import type { Logger } from '../log.ts';

/** What every route handler may use; services get these values, never Hono's context. */
export type AppDeps = {
  db: Db;
  log: Logger;
  /** Answers /readyz: true once migrations ran and the database answers. */
  ready: () => Promise<boolean>;
};

export type AppEnv = {
  Variables: {
    deps: AppDeps;
    requestId: string;
    apiKeyId: string;
    log: Logger;
  };
};
