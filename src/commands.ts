import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { sql } from 'drizzle-orm';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { type Database, DatabaseBusyError, openDatabase } from './db/client.ts';
import { MigrationError, migrateDatabase, pgvectorVersion, warnIfOldPgvector } from './db/migrate.ts';
import { type ApiKeyScope, apiKeyScopes } from './db/schema.ts';
import { NotFoundError } from './errors.ts';
import { createApp } from './http/app.ts';
import { listen } from './http/serve.ts';
import { type ImportOutcome, importDocumentFile } from './import/import.ts';
import { startWorker, type WorkerOptions } from './ingest/worker.ts';
import { createApiKey, ensureFirstAdminKey, listApiKeys, revokeApiKey } from './keys/keys.ts';
import { createLogger, type Logger } from './log.ts';
import { spoolDirFor } from './recordings/spool.ts';
import type { UpstreamClient } from './upstream/client.ts';
import { upstreamClientFromConfig } from './upstream/from-config.ts';

/** A mistake in the command line: one line, exit code 1. */
class UsageError extends Error {}

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

function setup(): { config: Config; log: Logger } {
  const config = loadConfig();
  return { config, log: createLogger(config.logLevel) };
}

/** Opens the configured database, migrates it when allowed, runs `fn`, closes it. */
async function withDatabase<T>(
  fn: (database: Database, ctx: { config: Config; log: Logger }) => Promise<T>,
): Promise<T> {
  const ctx = setup();
  const database = await openDatabase(ctx.config);
  try {
    if (ctx.config.autoMigrate) await migrateDatabase(database);
    return await fn(database, ctx);
  } finally {
    await database.close();
  }
}

function untilSignal(log: Logger): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve(signal);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/**
 * The worker, and an in-process stand-in when no upstream is configured. Stops in reverse order:
 * the worker finishes its database writes and releases its leases before the stand-in goes away.
 */
async function startIngestion(config: Config, log: Logger, database: Database) {
  let standin: Awaited<ReturnType<typeof import('./standin/server.ts').startStandin>> | null = null;
  let standinToken = config.standin.token;
  if (!config.upstream.url) {
    const { startStandin } = await import('./standin/server.ts');
    const { parseFaultPlan } = await import('./standin/faults.ts');
    standin = await startStandin({
      port: config.standin.port,
      token: config.standin.token,
      speed: config.standin.speed,
      faults: config.standin.faults ? parseFaultPlan(config.standin.faults) : undefined,
      log,
    });
    standinToken = standin.token;
    out(`upstream: local stand-in on ${standin.url} (speed ${config.standin.speed}; no VOXTRACE_UPSTREAM_URL set)`);
  } else {
    out(`upstream: ${config.upstream.url} (${config.upstream.api} API)`);
  }
  const client = upstreamClientFromConfig(config, log, standinToken);
  const worker = startWorker(workerOptions(config, log, database, client));
  out(`worker: ${config.worker.concurrency} recordings in flight, spool ${spoolDirFor(config.dataDir)}`);
  return {
    async stop() {
      await worker.stop();
      await client.destroy();
      await standin?.close();
    },
  };
}

function workerOptions(config: Config, log: Logger, database: Database, client: UpstreamClient): WorkerOptions {
  fs.mkdirSync(spoolDirFor(config.dataDir), { recursive: true });
  return {
    db: database.db,
    client,
    log,
    spoolDir: spoolDirFor(config.dataDir),
    concurrency: config.worker.concurrency,
    leaseSeconds: config.worker.leaseSeconds,
    maxAttempts: config.worker.maxAttempts,
    keepAudio: config.keepAudio,
    unsafe: {
      noLeaseReclaim: config.worker.unsafe.includes('no-lease-reclaim'),
      noSubmittingLookup: config.worker.unsafe.includes('no-submitting-lookup'),
    },
    pauseBeforeStoreMs: config.worker.pauseBeforeStoreMs,
  };
}

/**
 * The demo corpus through the real path: demo-data files → API → spool → worker → stand-in →
 * database, with the ingest command's progress display; then requests ready to paste.
 */
async function loadDemo(ctx: Parameters<AfterStart>[0], corpus: { calls: number; seed: number }) {
  const { writeDemoData } = await import('./standin/demo-data.ts');
  const { runIngest, formatIngestSummary, formatFailedRecordings } = await import('./ingest/upload.ts');
  const dir = path.join(ctx.config.dataDir, `demo-calls-${corpus.calls}-seed-${corpus.seed}`);
  if (!fs.existsSync(path.join(dir, 'truth.jsonl'))) {
    err(`demo: writing ${corpus.calls} synthetic calls to ${dir}`);
    await writeDemoData(dir, {
      calls: corpus.calls,
      speakers: Math.max(3, Math.round(corpus.calls / 3)),
      fraudsters: Math.max(1, Math.round(corpus.calls / 40)),
      campaigns: 3,
      seed: corpus.seed,
    });
  }
  // the demo acts as a client of its own API, with a key of its own
  const { key } = await createApiKey(ctx.database.db, { scope: 'write', name: 'demo' });
  err('demo: loading the calls through the API, the worker and the stand-in…');
  const result = await runIngest({
    apiUrl: ctx.apiUrl,
    apiKey: key,
    paths: [dir],
    accountFromDir: true,
    wait: true,
    concurrency: 4,
    progress: process.stderr,
  });
  for (const line of formatIngestSummary(result)) out(`demo: ${line}`);
  for (const line of formatFailedRecordings(result)) err(line);
  const admin = path.join(ctx.config.dataDir, 'admin-key');
  const keyRef = fs.existsSync(admin) ? `$(cat ${admin})` : '<your admin key>';
  out(
    [
      '',
      'demo ready: try these (Ctrl-C stops voxtrace)',
      `  key=${keyRef}`,
      `  curl -s -H "Authorization: Bearer $key" '${ctx.apiUrl}/v1/recordings?status=complete&limit=5'`,
      `  curl -s -H "Authorization: Bearer $key" '${ctx.apiUrl}/v1/recordings?accountRef=acc-0001'`,
      `  id=$(curl -s -H "Authorization: Bearer $key" '${ctx.apiUrl}/v1/recordings?limit=1' | sed -E 's/.*"id":"([^"]+)".*/\\1/')`,
      `  curl -s -H "Authorization: Bearer $key" "${ctx.apiUrl}/v1/recordings/$id?include=embeddings"`,
      `  ./voxtrace ingest --url ${ctx.apiUrl} --key "$key" --account-from-dir --wait ${dir}   # again: all already known`,
      `  open ${ctx.apiUrl}/docs`,
      '',
    ].join('\n'),
  );
}

type AfterStart = (ctx: { config: Config; log: Logger; database: Database; apiUrl: string }) => Promise<void>;

async function runServer(command: 'start' | 'serve', afterStart?: AfterStart) {
  const { config, log } = setup();
  const database = await openDatabase(config);
  let migrated = !config.autoMigrate;
  try {
    if (config.autoMigrate) {
      await migrateDatabase(database);
      migrated = true;
    }
    warnIfOldPgvector(log, await pgvectorVersion(database));
    const adminKey = await ensureFirstAdminKey(database.db, config.dataDir);
    const app = createApp({
      db: database.db,
      log,
      ready: async () => {
        await database.db.execute(sql`select 1`);
        return migrated;
      },
      intake: {
        spoolDir: spoolDirFor(config.dataDir),
        maxUploadBytes: config.maxUploadBytes,
        upstreamApi: config.upstream.api,
      },
    });
    const server = await listen(app, { host: config.host, port: config.port });
    out(`voxtrace ${command}: API on ${server.url} (docs ${server.url}/docs)`);
    out(`database: ${database.description}`);
    out(`data: ${config.dataDir} (spool ${spoolDirFor(config.dataDir)}, admin key file ${config.dataDir}/admin-key)`);
    if (adminKey) {
      out(`admin key: ${adminKey}`);
      out(`(the admin key is shown once; it is also saved in ${config.dataDir}/admin-key, mode 600)`);
    }
    // `start` is all-in-one: the worker too, and the stand-in when no upstream is configured
    const ingestion = command === 'start' ? await startIngestion(config, log, database) : null;
    log.info({ url: server.url, database: database.description }, 'voxtrace is serving');
    const signal = untilSignal(log);
    await afterStart?.({ config, log, database, apiUrl: server.url });
    await signal;
    await server.close();
    await ingestion?.stop();
  } finally {
    await database.close();
  }
}

function printImport(outcome: ImportOutcome, json: boolean) {
  if (json) {
    out(JSON.stringify(outcome));
    return;
  }
  if (outcome.status === 'rejected') {
    out(`rejected  ${outcome.file}: ${outcome.error}`);
  } else {
    out(
      `${outcome.status.padEnd(9)} ${outcome.file} → recording ${outcome.recordingId} ` +
        `(${outcome.utterances} utterances, ${outcome.voiceprints} voiceprints, ${outcome.deepfakeEmbeddings} deepfake embeddings)`,
    );
  }
}

export function buildProgram(): Command {
  const program = new Command('voxtrace')
    .description('A searchable memory of voices for fraud teams (Behavioral Signals embeddings in pgvector)')
    .showHelpAfterError()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('start')
    .description('run voxtrace: the API (embedded PGlite database unless DATABASE_URL is set)')
    .action(async () => {
      await runServer('start');
      process.exit(process.exitCode ?? 0); // see the worker command: abandoned steps may hold sockets
    });

  program
    .command('demo')
    .description('`start`, then a demo corpus of synthetic calls loaded through the real path, then requests to try')
    .option('--calls <n>', 'calls in the demo corpus', '200')
    .option('--seed <k>', 'the same seed makes the same corpus', '1')
    .action(async (opts: { calls: string; seed: string }) => {
      const calls = Number(opts.calls);
      const seed = Number(opts.seed);
      if (!Number.isInteger(calls) || calls < 1 || calls > 100_000)
        throw new UsageError('--calls must be a whole number from 1 to 100000');
      if (!Number.isInteger(seed) || seed < 1) throw new UsageError('--seed must be a positive whole number');
      await runServer('start', (ctx) => loadDemo(ctx, { calls, seed }));
      process.exit(process.exitCode ?? 0);
    });

  program
    .command('serve')
    .description('run the API only')
    .action(() => runServer('serve'));

  program
    .command('worker')
    .description(
      'run an ingestion worker: submits queued recordings upstream and stores their results (any number may run)',
    )
    .action(async () => {
      const { config, log } = setup();
      const database = await openDatabase(config);
      try {
        if (config.autoMigrate) await migrateDatabase(database);
        const client = upstreamClientFromConfig(config, log);
        const worker = startWorker(workerOptions(config, log, database, client));
        out(
          `voxtrace worker ${worker.owner}: ${config.worker.concurrency} recordings in flight, database: ${database.description}`,
        );
        await untilSignal(log);
        await worker.stop();
        await client.destroy();
      } finally {
        await database.close();
      }
      // steps abandoned at shutdown may still hold sockets open: their leases are released, so go
      process.exit(process.exitCode ?? 0);
    });

  program
    .command('migrate')
    .description('apply the database migrations (under an advisory lock) and report the pgvector version')
    .action(async () => {
      const { config, log } = setup();
      const database = await openDatabase(config);
      try {
        const { pgvector } = await migrateDatabase(database);
        warnIfOldPgvector(log, pgvector);
        out(`migrated ${database.description} (pgvector ${pgvector})`);
      } finally {
        await database.close();
      }
    });

  program
    .command('import')
    .description('import saved upstream results documents (JSON), one transaction per file')
    .argument('<file...>', 'results documents: the envelope {pid, cid, code, message, results} or a bare results array')
    .addOption(
      new Option('--api <api>', 'which API produced them; auto: behavioral when a behavioral-only task appears')
        .choices(['auto', 'deepfake', 'behavioral'])
        .default('auto'),
    )
    .option('--account <ref>', 'account reference to store with each recording')
    .option('--channel <channel>', 'channel to store with each recording')
    .option('--json', 'one JSON object per file per line')
    .action(
      async (
        files: string[],
        opts: { api: 'auto' | 'deepfake' | 'behavioral'; account?: string; channel?: string; json?: boolean },
      ) => {
        const rejected = await withDatabase(async (database) => {
          let count = 0;
          for (const file of files) {
            const outcome = await importDocumentFile(database.db, file, {
              api: opts.api,
              accountRef: opts.account,
              channel: opts.channel,
            });
            printImport(outcome, Boolean(opts.json));
            if (outcome.status === 'rejected') count++;
          }
          return count;
        });
        if (rejected > 0) process.exitCode = 1;
      },
    );

  program
    .command('ingest')
    .description(
      'upload call recordings (.wav/.mp3, directories recursively) through the API; re-running skips what is stored',
    )
    .argument('<path...>', 'audio files and directories')
    .option('--account <ref>', 'account reference for every file')
    .option('--account-from-dir', "account reference = each file's parent directory name (demo-data's layout)")
    .option('--channel <channel>', 'channel to store with each recording')
    .option('--wait', 'after uploading, wait until every recording is complete, failed or dead')
    .option('--url <url>', 'API base URL (default: VOXTRACE_API_URL)')
    .option('--key <key>', 'API key with the write scope (default: VOXTRACE_API_KEY)')
    .option('--concurrency <n>', 'uploads in flight at once', '4')
    .action(
      async (
        paths: string[],
        opts: {
          account?: string;
          accountFromDir?: boolean;
          channel?: string;
          wait?: boolean;
          url?: string;
          key?: string;
          concurrency: string;
        },
      ) => {
        const { IngestError, formatFailedRecordings, formatIngestSummary, ingestExitCode, runIngest } = await import(
          './ingest/upload.ts'
        );
        const { config } = setup();
        try {
          const result = await runIngest({
            apiUrl: opts.url ?? config.apiUrl,
            apiKey: opts.key ?? config.apiKey,
            paths,
            accountRef: opts.account,
            accountFromDir: opts.accountFromDir,
            channel: opts.channel,
            wait: opts.wait,
            concurrency: /^\d+$/.test(opts.concurrency) ? Number(opts.concurrency) : Number.NaN,
            progress: process.stderr,
          });
          for (const line of formatFailedRecordings(result)) err(line);
          for (const line of formatIngestSummary(result)) out(line);
          process.exitCode = ingestExitCode(result);
        } catch (error) {
          if (!(error instanceof IngestError)) throw error;
          err(`voxtrace ingest: ${error.message}`);
          process.exitCode = 1;
        }
      },
    );

  program
    .command('standin')
    .description(
      'run the local stand-in of the Behavioral Signals API (VOXTRACE_STANDIN_PORT, _TOKEN, _SPEED, _FAULTS; docs/upstream.md)',
    )
    .action(async () => {
      const { FaultPlanError, parseFaultPlan } = await import('./standin/faults.ts');
      const { startStandin } = await import('./standin/server.ts');
      const { config, log } = setup();
      let faults: ReturnType<typeof parseFaultPlan> | undefined;
      try {
        faults = config.standin.faults ? parseFaultPlan(config.standin.faults) : undefined;
      } catch (error) {
        if (!(error instanceof FaultPlanError)) throw error;
        err(`voxtrace standin: VOXTRACE_STANDIN_FAULTS: ${error.message}`);
        process.exitCode = 1;
        return;
      }
      const standin = await startStandin({
        host: config.host,
        port: config.standin.port,
        token: config.standin.token,
        speed: config.standin.speed,
        faults,
        log,
      }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EADDRINUSE') throw error;
        err(`voxtrace standin: port ${config.standin.port} is in use (set VOXTRACE_STANDIN_PORT)`);
        process.exitCode = 1;
        return null;
      });
      if (!standin) return;
      out(`voxtrace standin: Behavioral Signals API stand-in on ${standin.url} (Deepfake API under /detection)`);
      if (!config.standin.token) out(`standin token: ${standin.token}`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'stand-in shutting down');
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await standin.close();
    });

  program
    .command('demo-data')
    .description('write synthetic call audio (WAV files whose manifest the stand-in reads) and truth.jsonl')
    .argument('<out-dir>', 'writes <out-dir>/<accountRef>/<callId>.wav and <out-dir>/truth.jsonl')
    .option('--calls <n>', 'number of calls')
    .option('--speakers <n>', 'customers, one account each')
    .option('--fraudsters <n>', 'fraudsters, each calling several accounts (at most --speakers)')
    .option('--campaigns <n>', 'synthetic-voice campaigns (spoof families) behind the voice clones')
    .option('--seed <k>', 'the same seed writes the same files', '1')
    .action(async (outDir: string, opts: Record<string, string | undefined>) => {
      const { DemoDataOptionsError, parseDemoDataOptions, writeDemoData } = await import('./standin/demo-data.ts');
      let options: ReturnType<typeof parseDemoDataOptions>;
      try {
        options = parseDemoDataOptions(opts);
      } catch (error) {
        if (!(error instanceof DemoDataOptionsError)) throw error;
        err(`voxtrace demo-data: ${error.message.split('\n').join('\nvoxtrace demo-data: ')}`);
        process.exitCode = 1;
        return;
      }
      const summary = await writeDemoData(outDir, options, {
        onProgress: (written, total) => {
          if (total >= 2000) err(`demo-data: ${written}/${total} calls written`);
        },
      });
      out(
        `wrote ${summary.calls} calls (${summary.fraudCalls} by fraudsters) on ${summary.accounts} accounts to ${outDir}; ` +
          `truth in ${outDir}/truth.jsonl`,
      );
    });

  const keys = program.command('keys').description('manage API keys (scopes read ⊂ write ⊂ admin)');
  keys
    .command('create')
    .description('create a key and print it (only the key, on stdout)')
    .addOption(new Option('--scope <scope>', 'read, write or admin').choices(apiKeyScopes).makeOptionMandatory())
    .option('--name <name>', 'a name to tell the key apart')
    .action(async (opts: { scope: ApiKeyScope; name?: string }) => {
      await withDatabase(async (database) => {
        const { key } = await createApiKey(database.db, { scope: opts.scope, name: opts.name });
        out(key);
      });
    });
  keys
    .command('ls')
    .description('list keys: id, name, scope, createdAt, revokedAt')
    .option('--json', 'a JSON array')
    .action(async (opts: { json?: boolean }) => {
      await withDatabase(async (database) => {
        const list = await listApiKeys(database.db);
        if (opts.json) return out(JSON.stringify(list));
        if (list.length === 0) return out('no API keys');
        for (const k of list) {
          out(
            `${k.id}  ${k.scope.padEnd(5)}  ${k.revokedAt ? `revoked ${k.revokedAt}` : 'active'}  ${k.createdAt}  ${k.name}`,
          );
        }
      });
    });
  keys
    .command('revoke')
    .description('revoke a key by its id or by the key itself')
    .argument('<id-or-key>')
    .action(async (idOrKey: string) => {
      await withDatabase(async (database) => {
        const revoked = await revokeApiKey(database.db, idOrKey);
        out(`revoked ${revoked.id} (${revoked.name}, ${revoked.scope})`);
      });
    });

  program
    .command('test')
    .description('install what the tests need, then lint, typecheck and run every test on PostgreSQL and PGlite')
    .allowUnknownOption()
    .argument('[vitest-args...]', 'passed to vitest (e.g. a file filter)')
    .action(async (args: string[]) => {
      const { runTests } = await import('../scripts/test.ts');
      process.exitCode = await runTests(args);
    });

  return program;
}

async function main() {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (error) {
    if (
      error instanceof ConfigError ||
      error instanceof DatabaseBusyError ||
      error instanceof MigrationError ||
      error instanceof NotFoundError ||
      error instanceof UsageError
    ) {
      // errors a user can act on: one line, no stack
      err(`voxtrace: ${error.message}`);
    } else {
      err(`voxtrace: ${(error as Error)?.stack ?? String(error)}`);
    }
    process.exitCode = 1;
  }
}

await main();
