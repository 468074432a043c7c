import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_SPOOF_SETTINGS, DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { listen } from '../src/http/serve.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { testApp } from './support/app.ts';
import { runCli } from './support/cli.ts';
import { createCliTarget, createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { analyseAll } from './support/identity-calls.ts';
import { clustersOf, direction, spoofCall, utteranceOf, utterancesOf } from './support/spoof-calls.ts';

/**
 * `voxtrace search spoof`, `voxtrace clusters …` and `voxtrace recluster spoofs` as an analyst runs
 * them: subprocesses, the first two over a real socket to the API of this process (which holds
 * the database, as `start` holds PGlite), the last on a database of its own.
 */

let database: TestDatabase;
let server: Awaited<ReturnType<typeof listen>>;
let env: Record<string, string>;
let readEnv: Record<string, string>;
const start = Date.UTC(2026, 3, 1);
const HOUR = 3_600_000;
const familyA = direction('cli-a');
const familyB = direction('cli-b');
const a: string[] = [];
const b: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  server = await listen(testApp(database.db), { host: '127.0.0.1', port: 0 });
  const writer = await createApiKey(database.db, { scope: 'write', name: 'lead' }, CLI_ACTOR);
  const reader = await createApiKey(database.db, { scope: 'read' }, CLI_ACTOR);
  env = { VOXTRACE_API_URL: server.url, VOXTRACE_API_KEY: writer.key, VOXTRACE_LOG_LEVEL: 'warn' };
  readEnv = { ...env, VOXTRACE_API_KEY: reader.key };
  for (let c = 0; c < 5; c++) {
    a.push(await spoofCall(database.db, [utteranceOf(familyA, `a-${c}`)], new Date(start + c * HOUR)));
    b.push(await spoofCall(database.db, [utteranceOf(familyB, `b-${c}`)], new Date(start + c * HOUR)));
  }
  await analyseAll(database.db, DEFAULT_VOICE_SETTINGS, DEFAULT_SPOOF_SETTINGS);
});
afterAll(async () => {
  await server?.close();
  await database?.close();
});

async function json<T>(args: string[], environment = env): Promise<T> {
  const result = await runCli([...args, '--json'], environment);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe(`voxtrace search spoof and clusters on ${engine}`, () => {
  it('searches by utterance and recording, as a table or JSON; refuses two queries at once', async () => {
    const [member] = await utterancesOf(database.db, a[0] as string);
    const [clusterA] = await clustersOf(database.db, a[0] as string);
    const answer = await json<{ verdict: { clusterId: string }; neighbours: { recordingId: string }[] }>(
      ['search', 'spoof', '--utterance', member as string, '-k', '3'],
      readEnv,
    );
    expect(answer.verdict.clusterId).toBe(clusterA);
    expect(answer.neighbours).toHaveLength(3);
    const table = await runCli(['search', 'spoof', '--recording', b[1] as string, '--clusters', '1'], readEnv);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^in spoof cluster [0-9a-f-]{36}\nnearest clusters:\ncluster +label +similarity/);
    // all 10 spoofed utterances but the recording's own
    expect(table.stdout).toMatch(/\n9 spoofed utterance\(s\) · plan (hnsw|exact)/);
    const both = await runCli(
      ['search', 'spoof', '--recording', b[1] as string, '--utterance', member as string],
      readEnv,
    );
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/give exactly one of FILE, --recording ID or --utterance ID/);
  }, 120_000);

  it('lists, shows, labels, merges and splits clusters; a read key may look but not change', async () => {
    const [clusterA] = await clustersOf(database.db, a[0] as string);
    const [clusterB] = await clustersOf(database.db, b[0] as string);
    const list = await json<{ items: { id: string; size: number }[] }>(['clusters', 'ls', '--sort', 'recent'], readEnv);
    expect(list.items.map((c) => c.id).sort()).toEqual([clusterA, clusterB].sort());
    const shown = await runCli(['clusters', 'show', clusterA as string, '--members'], readEnv);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/size +5 utterances, 5 recordings, 5 accounts/);
    expect(shown.stdout).toMatch(/\nmembers \(5\):\nUTTERANCE/);
    const refused = await runCli(['clusters', 'label', clusterA as string, '--label', 'x'], readEnv);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refused the key \(403\)/);

    const labelled = await json<{ label: string }>(['clusters', 'label', clusterA as string, '--label', 'IVR clones']);
    expect(labelled.label).toBe('IVR clones');
    const merged = await json<{ id: string; size: number }>([
      'clusters',
      'merge',
      clusterA as string,
      '--from',
      clusterB as string,
      '--reason',
      'one campaign',
    ]);
    expect(merged).toMatchObject({ id: clusterA, size: 10 });
    const bMembers = (await Promise.all(b.map((id) => utterancesOf(database.db, id)))).flat();
    const split = await runCli(
      [
        'clusters',
        'split',
        clusterA as string,
        '--utterances',
        bMembers.join(','),
        '--reason',
        'two generators after all',
      ],
      env,
    );
    expect(split.code).toBe(0);
    expect(split.stdout).toMatch(new RegExp(`^split 5 utterances off ${clusterA} into [0-9a-f-]{36}\\n$`));
    const into = await runCli(
      ['clusters', 'merge', clusterA as string, '--from', clusterB as string, '--reason', 'x'],
      env,
    );
    expect(into.code).toBe(1);
    expect(into.stderr).toMatch(/is merged into .* \(HTTP 409\)/);
  }, 120_000);
});

describe(`voxtrace recluster spoofs on ${engine}`, () => {
  it('prints what changed, as JSON with --json', async () => {
    const target = await createCliTarget();
    try {
      expect((await runCli(['migrate'], target.env)).code).toBe(0);
      await target.inspect(async (db) => {
        for (let c = 0; c < 4; c++)
          await spoofCall(db.db, [utteranceOf(familyA, `r-${c}`)], new Date(start + c * HOUR));
      });
      const first = await runCli(['recluster', 'spoofs', '--json'], target.env);
      expect(first.code).toBe(0);
      const summary = JSON.parse(first.stdout);
      expect(summary).toMatchObject({ utterances: 4, clusters: 1, grown: [], retired: [], moved: 4 });
      expect(summary.created).toHaveLength(1);
      const second = await runCli(['recluster', 'spoofs'], target.env);
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(
        /^reclustered 4 spoofed utterances into 1 active clusters in [\d.]+ s: 0 created, 0 grown, 0 shrunk, 0 merged, 0 retired, 1 unchanged; 0 utterances moved, 0 now noise; 0 near misses found\n$/,
      );
      expect(second.stderr).toMatch(/recluster spoofs: 4 spoofed utterances to recluster/);
    } finally {
      await target.cleanup();
    }
  }, 180_000);
});
