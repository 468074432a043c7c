import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { confirmStaff } from '../src/voices/staff/decisions.ts';
import { addToWatchlist } from '../src/voices/watchlist/watchlist.ts';
import { repoRoot } from './support/cli.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { analyseAll, callOf, person, storeCall } from './support/identity-calls.ts';

/**
 * The SQL that docs/voices.md gives analysts ("SQL for analysts: watchlist, voice reuse, staff"),
 * pasted as written, on a database holding each thing it asks about.
 */

let database: TestDatabase;
const blocks = (() => {
  const text = fs.readFileSync(path.join(repoRoot, 'docs', 'voices.md'), 'utf8');
  const section = text.slice(text.indexOf('## SQL for analysts: watchlist, voice reuse, staff'));
  return [...section.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => (m[1] as string).trim());
})();

beforeAll(async () => {
  database = await createTestDatabase();
  const now = Date.now();
  const recent = (daysAgo: number) => new Date(now - daysAgo * 86_400_000);
  const fraudster = person(71, 'fraudster');
  const first = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, 0) }], 'v-0', {
    callAt: recent(6),
  });
  for (let c = 1; c < 4; c++) {
    await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, c) }], `v-${c}`, {
      callAt: recent(5 - c),
    });
  }
  // two agents: one stays proposed, the other is confirmed
  const agentCalls: Record<string, string> = {};
  for (const name of ['agent', 'confirmed-agent']) {
    const agent = person(71, name);
    for (let c = 0; c < 12; c++) {
      const { ids } = await storeCall(
        database.db,
        [
          { label: 'speaker_0', unit: callOf(person(71, `${name}-caller-${c}`), 0) },
          { label: 'speaker_1', unit: callOf(agent, c) },
        ],
        `${name}-${c}`,
        { callAt: recent(12 - c), channel: 'contact-centre' },
      );
      agentCalls[name] = ids.speaker_1 as string;
    }
  }
  const customer = person(71, 'customer');
  await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(customer, 0) }], 'acc-home', {
    callAt: recent(3),
    enrolCustomer: true,
  });
  await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(person(71, 'taker'), 0) }], 'acc-home', {
    callAt: recent(1),
  });
  await analyseAll(database.db);
  const [confirmed] = await queryRows<{ identityId: string }>(
    database.db,
    sql`select identity_id as "identityId" from voiceprints where id = ${agentCalls['confirmed-agent']}`,
  );
  await confirmStaff(database.db, confirmed?.identityId as string, { note: 'agent 2' }, CLI_ACTOR);
  await addToWatchlist(
    database.db,
    DEFAULT_VOICE_SETTINGS,
    { voiceprintId: first.ids.speaker_0 as string, reason: 'case 3' },
    CLI_ACTOR,
  );
});
afterAll(async () => {
  await database?.close();
});

describe(`the analysts' SQL of docs/voices.md on ${engine}`, () => {
  it('has the seven queries', () => {
    expect(blocks).toHaveLength(7);
  });

  it('runs each as written, and each finds what it asks about', async () => {
    for (const [i, block] of blocks.entries()) {
      const rows = await queryRows<Record<string, unknown>>(database.db, sql.raw(block));
      expect(rows.length, `query ${i + 1}:\n${block}`).toBeGreaterThan(0);
    }
  });
});
