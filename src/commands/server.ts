import type { Context } from '../context.ts';
import { MigrationError, pendingMigrations, pgvectorVersion, warnIfOldPgvector } from '../db/migrate.ts';
import { createApp } from '../http/app.ts';
import { listen } from '../http/serve.ts';
import { ensureFirstAdminKey } from '../keys/keys.ts';
import { spoolDirFor } from '../recordings/spool.ts';
import { upstreamClientFromConfig } from '../upstream/from-config.ts';
import { startProcessing } from './processing.ts';
import { out, untilSignal } from './support.ts';

export type AfterStart = (ctx: Context, apiUrl: string) => Promise<void>;

/**
 * `serve` (the API) and `start` (the API, the worker and the analysis runner, plus the stand-in when
 * no upstream is configured), on a context the caller built; returns once a signal has stopped it.
 * The first admin key is made here when there is none, and printed once.
 */
export async function runServer(ctx: Context, command: 'start' | 'serve', afterStart?: AfterStart): Promise<void> {
  const { config, log, database } = ctx;
  const pending = await pendingMigrations(database);
  const pgvector = await pgvectorVersion(database).catch((error) => {
    // an empty database has no extension yet either: say what is missing, not that pgvector is
    if (pending > 0 && error instanceof MigrationError) {
      throw new MigrationError(
        `the database is not migrated (${pending} migrations pending): run \`voxtrace migrate\`, or leave VOXTRACE_AUTO_MIGRATE at true`,
      );
    }
    throw error;
  });
  warnIfOldPgvector(log, pgvector);
  if (pending > 0) {
    // only with VOXTRACE_AUTO_MIGRATE=false: serve what the schema allows, report not ready
    log.warn(
      { pendingMigrations: pending },
      `${pending} database migration(s) pending: run \`voxtrace migrate\`; /readyz answers 503 until then`,
    );
  }
  // a first key is made only on a migrated database: its audit entry needs the current schema
  const adminKey = pending === 0 ? await ensureFirstAdminKey(ctx.db, config.dataDir) : null;
  const app = createApp({
    db: ctx.db,
    log,
    // ready once the database answers and carries every migration (whoever applied them)
    ready: async () => (await pendingMigrations(database)) === 0,
    intake: {
      spoolDir: spoolDirFor(config.dataDir),
      maxUploadBytes: config.maxUploadBytes,
      upstreamApi: config.upstream.api,
    },
    voices: config.voices,
  });
  const server = await listen(app, { host: config.host, port: config.port });
  out(`voxtrace ${command}: API on ${server.url} (docs ${server.url}/docs)`);
  out(`database: ${database.description}`);
  out(`data: ${config.dataDir} (spool ${spoolDirFor(config.dataDir)}, admin key file ${config.dataDir}/admin-key)`);
  if (adminKey) {
    out(`admin key: ${adminKey}`);
    out(`(the admin key is shown once; it is also saved in ${config.dataDir}/admin-key, mode 600)`);
  }
  const background = command === 'start' ? await startBackground(ctx) : null;
  log.info({ url: server.url, database: database.description }, 'voxtrace is serving');
  const signal = untilSignal(log);
  await afterStart?.(ctx, server.url);
  await signal;
  await server.close();
  await background?.stop();
}

/**
 * The worker and analysis of `start`, and an in-process stand-in when no upstream is configured.
 * Stops in reverse order: the worker finishes its database writes and releases its leases before
 * the stand-in goes away.
 */
async function startBackground(ctx: Context) {
  const { config, log } = ctx;
  let standin: Awaited<ReturnType<typeof import('../standin/server.ts').startStandin>> | null = null;
  if (!config.upstream.url) {
    // loaded only here: a process with a real upstream never carries the stand-in's code
    const { startStandin } = await import('../standin/server.ts');
    standin = await startStandin({
      port: config.standin.port,
      token: config.standin.token,
      speed: config.standin.speed,
      faults: config.standin.faults,
      log,
    });
    out(`upstream: local stand-in on ${standin.url} (speed ${config.standin.speed}; no VOXTRACE_UPSTREAM_URL set)`);
  } else {
    out(`upstream: ${config.upstream.url} (${config.upstream.api} API)`);
  }
  const client = upstreamClientFromConfig(config, log, standin?.token);
  const processing = startProcessing(ctx, client);
  out(`worker: ${config.worker.concurrency} recordings in flight, spool ${processing.spoolDir}`);
  return {
    async stop() {
      await processing.stop();
      await client.destroy();
      await standin?.close();
    },
  };
}
