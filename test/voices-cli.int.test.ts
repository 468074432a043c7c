import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { queryRows } from '../src/db/client.ts';
import { listen } from '../src/http/serve.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { testApp } from './support/app.ts';
import { runCli } from './support/cli.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { analyseAll, callOf, person, storeCall } from './support/identity-calls.ts';

/**
 * `voxtrace watchlist`, `voxtrace alerts` and `voxtrace staff` as an analyst runs them: subprocesses
 * talking over a real socket to the API of this process, which holds the database.
 */

let database: TestDatabase;
let server: Awaited<ReturnType<typeof listen>>;
let env: Record<string, string>;
const fraudCalls: { recordingId: string; voiceprintId: string }[] = [];
const agentCalls: string[] = [];

const DAY = 86_400_000;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await listen(testApp(database.db), { host: '127.0.0.1', port: 0 });
  const writer = await createApiKey(database.db, { scope: 'write', name: 'analyst' }, CLI_ACTOR);
  env = { VOXTRACE_API_URL: server.url, VOXTRACE_API_KEY: writer.key, VOXTRACE_LOG_LEVEL: 'warn' };
  const fraudster = person(61, 'fraudster');
  for (let c = 0; c < 3; c++) {
    const { recordingId, ids } = await storeCall(
      database.db,
      [{ label: 'speaker_0', unit: callOf(fraudster, c) }],
      `v-${c}`,
    );
    fraudCalls.push({ recordingId, voiceprintId: ids.speaker_0 as string });
  }
  const agent = person(61, 'agent');
  for (let c = 0; c < 12; c++) {
    const { ids } = await storeCall(
      database.db,
      [
        { label: 'speaker_0', unit: callOf(person(61, `caller-${c}`), 1) },
        { label: 'speaker_1', unit: callOf(agent, c) },
      ],
      `c-${c}`,
      { callAt: new Date(Date.UTC(2026, 5, 1) + c * DAY), channel: 'contact-centre' },
    );
    agentCalls.push(ids.speaker_1 as string);
  }
  await analyseAll(database.db);
});
afterAll(async () => {
  await server?.close();
  await database?.close();
});

async function json<T>(args: string[]): Promise<T> {
  const result = await runCli([...args, '--json'], env);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe(`voxtrace watchlist, alerts and staff on ${engine}`, () => {
  it('lists a voice with its look-back, shows and answers its alerts, and takes it off', async () => {
    const entry = await json<{ identityId: string; lookBack: { hits: number } }>([
      'watchlist',
      'add',
      '--voiceprint',
      fraudCalls[0]?.voiceprintId as string,
      '--reason',
      'case 7',
    ]);
    expect(entry.lookBack.hits).toBe(2);
    const table = await runCli(['watchlist', 'ls'], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/IDENTITY\s+NAME\s+LISTED AT\s+LOOK-BACK HITS\s+REASON/);
    expect(table.stdout).toContain(entry.identityId);

    const page = await json<{ items: { id: string; type: string }[] }>(['alerts', 'ls', '--type', 'watchlist_hit']);
    expect(page.items).toHaveLength(2);
    const [first, second] = page.items;
    const shown = await runCli(['alerts', 'show', first?.id as string], env);
    expect(shown.stdout).toMatch(/^watchlist_hit .*: open/m);
    const acked = await json<{ status: string }>(['alerts', 'ack', first?.id as string, '--note', 'calling back']);
    expect(acked.status).toBe('acknowledged');
    const dismissed = await runCli(['alerts', 'dismiss', second?.id as string, '--note', 'known'], env);
    expect(dismissed).toMatchObject({ code: 0, stdout: `alert ${second?.id}: dismissed\n` });
    const refused = await runCli(['alerts', 'ack', second?.id as string], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/dismissed.*\(HTTP 409\)/);

    const removed = await runCli(['watchlist', 'rm', entry.identityId, '--reason', 'cleared'], env);
    expect(removed).toMatchObject({ code: 0, stdout: `removed identity ${entry.identityId} from the watchlist\n` });
    expect((await runCli(['watchlist', 'ls'], env)).stdout).toBe('the watchlist is empty\n');
    const again = await runCli(['watchlist', 'rm', entry.identityId], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not on the watchlist \(HTTP 404\)/);
  });

  it('shows staff proposals, confirms one, and enrols an agent from voiceprints', async () => {
    const proposals = await json<{ id: string; staffProposal: { evidence: { accounts: number } } }[]>([
      'staff',
      'proposals',
    ]);
    expect(proposals).toHaveLength(1);
    expect(proposals[0]?.staffProposal.evidence.accounts).toBeGreaterThanOrEqual(10);
    const listed = await runCli(['staff', 'proposals'], env);
    expect(listed.stdout).toContain('contact-centre 100 %');

    const confirmed = await runCli(['staff', 'confirm', proposals[0]?.id as string, '--note', 'agent 12'], env);
    expect(confirmed.stdout).toMatch(/is staff \(1 voice-reuse alerts dismissed\)/);
    const twice = await runCli(['staff', 'reject', proposals[0]?.id as string], env);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/already confirmed.*\(HTTP 409\)/);

    const stranger = await storeCall(
      database.db,
      [{ label: 'speaker_0', unit: callOf(person(61, 'new-agent'), 0) }],
      null as never,
    );
    const enrolled = await json<{ kind: string; name: string; voiceprintCount: number }[]>([
      'staff',
      'enrol',
      '--voiceprints',
      stranger.ids.speaker_0 as string,
      '--name',
      'Agent 13',
    ]);
    expect(enrolled).toMatchObject([{ kind: 'staff', name: 'Agent 13', voiceprintCount: 1 }]);
    const usage = await runCli(['staff', 'enrol'], env);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/name at least one PATH/);
    const [staffCount] = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from identities where kind = 'staff'`,
    );
    expect(staffCount?.n).toBe(2);
  });
});
