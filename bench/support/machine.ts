import os from 'node:os';
import { sql } from 'drizzle-orm';
import { type Database, queryRows } from '../../src/db/client.ts';
import { pgvectorVersion } from '../../src/db/migrate.ts';

/** The `machine` block of a benchmark result (see CONVENTIONS.md, "Files"). */
export type Machine = {
  cpus: number;
  cpuModel: string;
  memGiB: number;
  node: string;
  postgres: string;
  pgvector: string;
  settings: Record<string, string>;
};

/**
 * Server settings that move write and search speed; read, never changed. Names are fixed here
 * (SHOW takes no bind parameters), so interpolating them below is safe.
 */
export const benchmarkSettings = [
  'shared_buffers',
  'effective_cache_size',
  'work_mem',
  'maintenance_work_mem',
  'max_parallel_maintenance_workers',
  'synchronous_commit',
  'fsync',
  'full_page_writes',
  'wal_buffers',
  'max_wal_size',
  'checkpoint_timeout',
  'jit',
] as const;

/** The host alone, for benchmarks that use no database. */
export function describeHost(): Omit<Machine, 'postgres' | 'pgvector' | 'settings'> & {
  postgres: null;
  pgvector: null;
  settings: Record<string, never>;
} {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    postgres: null,
    pgvector: null,
    settings: {},
  };
}

/**
 * Describes the machine and the database server a benchmark ran on; pass the native PostgreSQL
 * database when the run has one, since its version and settings are what the numbers depend on.
 * @example const machine = await describeMachine(database);
 */
export async function describeMachine(
  database: Database,
  settingNames: readonly string[] = benchmarkSettings,
): Promise<Machine> {
  const [server] = await queryRows<{ version: string }>(database.db, sql`select version() as version`);
  const settings: Record<string, string> = {};
  for (const name of settingNames) {
    const rows = await queryRows<Record<string, string>>(database.db, sql.raw(`show ${name}`));
    settings[name] = rows[0]?.[name] ?? '';
  }
  return {
    ...describeHost(),
    postgres: server?.version ?? 'unknown',
    pgvector: await pgvectorVersion(database),
    settings,
  };
}

/**
 * How fast this machine is right now, as milliseconds of one fixed single-threaded job: the
 * stand-in writing the results documents of 100 seeded demo calls (vector maths and JSON). These
 * machines are shared; a run whose calibration is well above the usual was slowed by its
 * neighbours, and its figures should be read with that in mind.
 * @example const before = await calibrationMs();
 */
export async function calibrationMs(): Promise<number> {
  const { generateDemoCalls } = await import('../../src/standin/demo-data.ts');
  const { documentForCall } = await import('../../src/standin/documents.ts');
  const { createVoiceModel } = await import('../../src/standin/voices.ts');
  const model = createVoiceModel(7);
  const calls = [
    ...generateDemoCalls({
      calls: 100,
      speakers: 20,
      fraudsters: 2,
      campaigns: 2,
      seed: 7,
      now: new Date('2026-01-01'),
    }),
  ];
  // one untimed pass warms the JIT and the voice model's caches
  for (const [i, call] of calls.entries()) JSON.stringify(documentForCall(call.manifest, { pid: i + 1, model }));
  const started = performance.now();
  for (const [i, call] of calls.entries()) JSON.stringify(documentForCall(call.manifest, { pid: i + 1001, model }));
  return Math.round(performance.now() - started);
}
