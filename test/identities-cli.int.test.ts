import { asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { identities, identityEvents, voiceprints } from '../src/db/schema.ts';
import { listen } from '../src/http/serve.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { testApp } from './support/app.ts';
import { runCli } from './support/cli.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { type SeededVoiceprint, seedVoiceprints } from './support/identities.ts';
import { must } from './support/must.ts';

/**
 * `voxtrace identities` as an analyst runs it: a subprocess talking over a real socket to the API
 * of this process, which holds the database (as `start` holds PGlite).
 */

let database: TestDatabase;
let server: Awaited<ReturnType<typeof listen>>;
let env: Record<string, string>;
let readEnv: Record<string, string>;
let writer: { key: string; id: string };
let seeded: SeededVoiceprint[];

beforeAll(async () => {
  database = await createTestDatabase();
  server = await listen(testApp(database.db), { host: '127.0.0.1', port: 0 });
  writer = await createApiKey(database.db, { scope: 'write', name: 'analyst' }, CLI_ACTOR);
  const reader = await createApiKey(database.db, { scope: 'read' }, CLI_ACTOR);
  env = { VOXTRACE_API_URL: server.url, VOXTRACE_API_KEY: writer.key, VOXTRACE_LOG_LEVEL: 'warn' };
  readEnv = { ...env, VOXTRACE_API_KEY: reader.key };
  ({ voiceprints: seeded } = await seedVoiceprints(database.db, { count: 16, seed: 11 }));
});
afterAll(async () => {
  await server?.close();
  await database?.close();
});

const of = (speakerId: string) => seeded.filter((v) => v.speakerId === speakerId).map((v) => v.id);
type Identity = { id: string; kind: string; voiceprintCount: number; mergedInto: string | null; accountRefs: string[] };

async function cli(args: string[], environment = env) {
  const result = await runCli(['identities', ...args], environment);
  return result;
}
async function json<T>(args: string[], environment = env): Promise<T> {
  const result = await cli([...args, '--json'], environment);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe(`voxtrace identities on ${engine}`, () => {
  it('creates, lists, shows, moves, splits and merges, each change with its reason and key in the history', async () => {
    const customer = await json<Identity>([
      'create',
      '--kind',
      'customer',
      '--account',
      'acc-0003',
      '--name',
      'Customer three',
      '--voiceprints',
      of('cust-0003').join(','),
      '--reason',
      'enrolled',
    ]);
    expect(customer).toMatchObject({
      kind: 'customer',
      voiceprintCount: of('cust-0003').length,
      accountRefs: ['acc-0003'],
    });

    const [agentA, agentB, agentC] = of('agent-002');
    const staff = await json<Identity>(['create', '--kind', 'staff', '--voiceprints', must(agentA), must(agentB)]);
    const other = await json<Identity>(['create', '--kind', 'staff', '--voiceprints', must(agentC)]);

    // a table on the terminal, one row per live identity, for a read key
    const table = await cli(['ls', '--kind', 'staff'], readEnv);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+KIND\s+NAME\s+ACCOUNTS\s+VOICEPRINTS\s+RECORDINGS\s+LAST SEEN$/);
    expect(
      lines
        .slice(1)
        .map((l) => l.split(/\s+/)[0])
        .sort(),
    ).toEqual([staff.id, other.id].sort());

    const shown = await cli(['show', customer.id, '--voiceprints', '--history'], readEnv);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`id:          ${customer.id}`);
    expect(shown.stdout).toContain('kind:        customer');
    expect(shown.stdout).toContain('accounts:    acc-0003');
    expect(shown.stdout).toContain(`voiceprints (${of('cust-0003').length}):`);
    expect(shown.stdout).toMatch(/history \(1\):\n.*\n.*created.*api key .* enrolled/);

    const moved = await json<Identity>(['move', other.id, '--voiceprints', must(agentB), '--reason', 'same desk']);
    expect(moved.voiceprintCount).toBe(2);
    const split = await json<Identity>(['split', other.id, '--voiceprints', must(agentB), '--reason', 'not her']);
    expect(split).toMatchObject({ kind: 'staff', voiceprintCount: 1 });
    const merged = await cli(['merge', staff.id, '--from', other.id, split.id, '--reason', 'one agent']);
    expect(merged.code).toBe(0);
    expect(merged.stdout).toContain(`merged ${other.id}, ${split.id} into ${staff.id}`);

    const rows = await database.db
      .select({ id: identities.id, mergedInto: identities.mergedInto, retiredAt: identities.retiredAt })
      .from(identities)
      .where(sql`${identities.id} in (${other.id}, ${split.id})`);
    expect(rows.map((r) => r.mergedInto)).toEqual([staff.id, staff.id]);
    const [members] = await database.db
      .select({ n: sql<number>`count(*)::int` })
      .from(voiceprints)
      .where(eq(voiceprints.identityId, staff.id));
    expect(members?.n).toBe(3);
    const events = await database.db
      .select()
      .from(identityEvents)
      .where(eq(identityEvents.identityId, staff.id))
      .orderBy(asc(identityEvents.createdAt));
    expect(events.map((e) => [e.action, e.reason, e.keyId, e.source])).toEqual(
      expect.arrayContaining([
        ['moved_out', 'same desk', writer.id, 'api'],
        ['merged', 'one agent', writer.id, 'api'],
      ]),
    );
    const history = await json<Identity & { history: { action: string }[] }>(['show', other.id, '--history']);
    expect(history.mergedInto).toBe(staff.id);
    expect(history.history.map((e) => e.action)).toEqual(
      expect.arrayContaining(['created', 'moved_in', 'moved_out', 'merged_into']),
    );
  });

  it('says what was wrong in one line and exits 1: a refused change, an unknown id, a missing reason, no key', async () => {
    const [one] = of('cust-0001');
    const customerless = await cli(['create', '--kind', 'customer', '--voiceprints', must(one)]);
    expect(customerless.code).toBe(1);
    expect(customerless.stderr).toMatch(/^voxtrace identities create: json\.accountRef: .*\(HTTP 400\)\n$/);

    const unknown = await cli(['show', '00000000-0000-4000-8000-000000000000']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      'voxtrace identities show: no identity 00000000-0000-4000-8000-000000000000 (HTTP 404)\n',
    );

    const noReason = await cli(['merge', '00000000-0000-4000-8000-000000000000', '--from', 'x']);
    expect(noReason.code).toBe(1);
    expect(noReason.stderr).toContain("required option '--reason <text>' not specified");

    const readOnly = await cli(
      ['move', '00000000-0000-4000-8000-000000000000', '--voiceprints', must(one), '--reason', 'r'],
      readEnv,
    );
    expect(readOnly.code).toBe(1);
    expect(readOnly.stderr).toContain('refused the key (403)');

    const keyless = await runCli(['identities', 'ls'], { VOXTRACE_API_URL: server.url });
    expect(keyless.code).toBe(1);
    expect(keyless.stderr).toBe('voxtrace identities ls: no API key: pass --key <key> or set VOXTRACE_API_KEY\n');
  });
});
