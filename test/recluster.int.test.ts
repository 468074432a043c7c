import { sql } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI_ACTOR, SYSTEM_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { createIdentity, markAnalystEdited } from '../src/voices/identities/membership.ts';
import { reclusterVoices } from '../src/voices/identities/recluster.ts';
import { runCli } from './support/cli.ts';
import { createCliTarget, createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { arrive, awayFrom, callOf, identityOf, mix, person, storeCall } from './support/identity-calls.ts';

/**
 * `recluster voices` (src/voices/identities/recluster.ts): unknown identities re-derived over the
 * kNN graph, ids kept, nothing an analyst made touched, every change in the history.
 */

let database: TestDatabase;
beforeEach(async () => {
  database = await createTestDatabase();
});
afterEach(async () => {
  await database?.close();
});

const settings = DEFAULT_VOICE_SETTINGS;
const people = ['alice', 'bob', 'carol'].map((name) => person(3, name));
const one = (unit: number[], speechSeconds = 30) => [{ label: 'speaker_0', unit, speechSeconds }];

/** Stores `count` calls of each person without analysing them; their voiceprint ids per person. */
async function storeUnanalysed(count: number): Promise<string[][]> {
  const ids: string[][] = people.map(() => []);
  for (let n = 1; n <= count; n++) {
    for (const [p, voice] of people.entries()) {
      const { ids: stored } = await storeCall(database.db, one(callOf(voice, n)), `acc-${p}`);
      ids[p]?.push(stored.speaker_0 as string);
    }
  }
  return ids;
}

const historyCount = async () =>
  (await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from identity_events`))[0]?.n;

describe(`recluster voices on ${engine}`, () => {
  it('finds each voice among unassigned voiceprints, and a second run changes nothing', async () => {
    const ids = await storeUnanalysed(4);
    const first = await reclusterVoices(database.db, settings, CLI_ACTOR);
    expect(first).toMatchObject({ voiceprints: 12, clusters: 3, grown: [], shrunk: [], retired: [], moved: 12 });
    expect(first.created).toHaveLength(3);
    const now = await identityOf(database.db);
    for (const own of ids) {
      const identity = now[own[0] as string]?.identityId;
      expect(own.map((id) => now[id])).toEqual(own.map(() => ({ identityId: identity, kind: 'unknown' })));
    }
    expect(new Set(ids.map((own) => now[own[0] as string]?.identityId)).size).toBe(3);
    const events = await historyCount();

    const second = await reclusterVoices(database.db, settings, CLI_ACTOR);
    expect(second).toMatchObject({
      created: [],
      grown: [],
      shrunk: [],
      retired: [],
      unchanged: 3,
      moved: 0,
      unassigned: 0,
    });
    expect(await identityOf(database.db)).toEqual(now);
    expect(await historyCount()).toBe(events);
  });

  it('keeps the ids of the identities the online step made, and fixes what it could not see', async () => {
    const [alice, bob] = people as [number[], number[]];
    const online: string[] = [];
    for (const n of [1, 2, 3]) online.push((await arrive(database.db, one(callOf(alice, n)))).speaker_0 as string);
    const aliceIdentity = (await identityOf(database.db))[online[0] as string]?.identityId as string;
    expect(aliceIdentity).toBeTruthy();
    // two more calls of alice's and three of bob's that no step has seen
    const later = [
      (await storeCall(database.db, one(callOf(alice, 4)))).ids.speaker_0,
      (await storeCall(database.db, one(callOf(alice, 5)))).ids.speaker_0,
    ] as string[];
    for (const n of [1, 2, 3]) await storeCall(database.db, one(callOf(bob, n)), 'acc-b');
    const summary = await reclusterVoices(database.db, settings, CLI_ACTOR);
    expect(summary).toMatchObject({ grown: [aliceIdentity], shrunk: [], retired: [], clusters: 2 });
    expect(summary.created).toHaveLength(1);
    const now = await identityOf(database.db);
    expect([...online, ...later].map((id) => now[id]?.identityId)).toEqual(
      [...online, ...later].map(() => aliceIdentity),
    );
    const [origin] = await queryRows<{ origin: string }>(
      database.db,
      sql`select origin from identities where id = ${summary.created[0] as string}`,
    );
    expect(origin?.origin).toBe('recluster');
  });

  it('splits a wrong automatic identity, retiring what is left empty, and leaves alone what an analyst made', async () => {
    const ids = await storeUnanalysed(4);
    const [alice, bob, carol] = ids as [string[], string[], string[]];
    const extra = (await storeCall(database.db, one(callOf(people[2] as number[], 9)), 'acc-2')).ids
      .speaker_0 as string;
    const made = await withTransaction(database.db, async (tx) => {
      // a customer identity an analyst enrolled (two of alice's calls), an unknown one an analyst
      // edited (bob's calls plus one of carol's: wrong, but the analyst's), and an automatic one mixing people
      const customer = await createIdentity(tx, {
        kind: 'customer',
        origin: 'analyst',
        accountRef: 'acc-0',
        voiceprintIds: alice.slice(0, 2),
        assignedBy: 'analyst',
        action: 'created',
        actor: SYSTEM_ACTOR,
      });
      const edited = await createIdentity(tx, {
        kind: 'unknown',
        origin: 'online',
        voiceprintIds: [...bob, carol[0] as string],
        assignedBy: 'online',
        action: 'seeded',
        actor: SYSTEM_ACTOR,
      });
      await markAnalystEdited(tx, edited);
      const mixed = await createIdentity(tx, {
        kind: 'unknown',
        origin: 'online',
        voiceprintIds: [alice[2] as string, extra],
        assignedBy: 'online',
        action: 'seeded',
        actor: SYSTEM_ACTOR,
      });
      const lonely = await createIdentity(tx, {
        kind: 'unknown',
        origin: 'online',
        voiceprintIds: [alice[3] as string],
        assignedBy: 'online',
        action: 'seeded',
        actor: SYSTEM_ACTOR,
      });
      return { customer, edited, mixed, lonely };
    });
    const before = await identityOf(database.db);
    const eventsBefore = await historyCount();
    const summary = await reclusterVoices(database.db, settings, CLI_ACTOR);
    const after = await identityOf(database.db);
    // the analyst's identities and voiceprints are as they were
    for (const id of [...alice.slice(0, 2), ...bob, carol[0] as string]) expect(after[id]).toEqual(before[id]);
    // carol's three free calls and the stray one cluster, keeping the id of the mixed identity (it
    // shares the stray call with them); alice's two free calls have nothing to cluster with (her
    // enrolled calls are not re-derived), so the mixed identity loses one and the lonely one is retired
    expect([carol[1], carol[2], carol[3], extra].map((id) => after[id as string]?.identityId)).toEqual(
      [0, 1, 2, 3].map(() => made.mixed),
    );
    expect([alice[2], alice[3]].map((id) => after[id as string]?.identityId)).toEqual([null, null]);
    expect(summary).toMatchObject({
      created: [],
      grown: [made.mixed],
      shrunk: [made.mixed],
      retired: [made.lonely],
      unassigned: 2,
    });
    const identities = await queryRows<{ id: string; memberCount: number; retired: boolean }>(
      database.db,
      sql`select id, member_count as "memberCount", retired_at is not null as retired from identities`,
    );
    expect(identities.find((i) => i.id === made.customer)).toMatchObject({ memberCount: 2, retired: false });
    expect(identities.find((i) => i.id === made.lonely)).toMatchObject({ memberCount: 0, retired: true });
    // every change is in the history, as the command's
    const written = await queryRows<{ source: string }>(
      database.db,
      sql`select source from identity_events order by created_at, id offset ${eventsBefore}`,
    );
    expect(written.length).toBeGreaterThan(0);
    expect(new Set(written.map((w) => w.source))).toEqual(new Set(['cli']));
  });

  it('attaches what the graph leaves out to the cluster whose centroid it clears', async () => {
    const alice = people[0] as number[];
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await storeCall(database.db, one(callOf(alice, n)))).ids.speaker_0 as string);
    const far = mix([alice, awayFrom(person(9, 'line noise'), alice)], [0.64, 0.768]);
    ids.push((await storeCall(database.db, one(far))).ids.speaker_0 as string);
    const summary = await reclusterVoices(database.db, settings, CLI_ACTOR);
    expect(summary).toMatchObject({ clusters: 1, moved: 4 });
    const now = await identityOf(database.db);
    expect(new Set(ids.map((id) => now[id]?.identityId)).size).toBe(1);
    expect(now[ids[3] as string]?.identityId).toBeTruthy();
  });

  it('does not chain two people through one short call between them', async () => {
    const [alice, bob] = people as [number[], number[]];
    for (const n of [1, 2, 3]) {
      await storeCall(database.db, one(callOf(alice, n)), 'acc-a');
      await storeCall(database.db, one(callOf(bob, n)), 'acc-b');
    }
    const bridge = (await storeCall(database.db, one(mix([alice, bob], [1, 1]), 5), 'acc-q')).ids.speaker_0 as string;
    const summary = await reclusterVoices(database.db, settings, CLI_ACTOR);
    expect(summary.clusters).toBe(2);
    const rows = await queryRows<{ accountRef: string; identities: number }>(
      database.db,
      sql`select r.account_ref as "accountRef", count(distinct v.identity_id)::int as identities
          from voiceprints v join recordings r on r.id = v.recording_id
          where r.account_ref in ('acc-a', 'acc-b') group by 1 order by 1`,
    );
    expect(rows).toEqual([
      { accountRef: 'acc-a', identities: 1 },
      { accountRef: 'acc-b', identities: 1 },
    ]);
    const now = await identityOf(database.db);
    expect(now[bridge]?.identityId).not.toBeUndefined();
  });
});

describe(`voxtrace recluster voices on ${engine}`, () => {
  it('prints what changed, as JSON with --json', async () => {
    const target = await createCliTarget();
    try {
      expect((await runCli(['migrate'], target.env)).code).toBe(0);
      await target.inspect(async (db) => {
        for (const n of [1, 2, 3]) await storeCall(db.db, one(callOf(people[0] as number[], n)));
      });
      const first = await runCli(['recluster', 'voices', '--json'], target.env);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const summary = JSON.parse(first.stdout);
      expect(summary).toMatchObject({ voiceprints: 3, clusters: 1, grown: [], shrunk: [], retired: [], moved: 3 });
      expect(summary.created).toHaveLength(1);
      const second = await runCli(['recluster', 'voices'], target.env);
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(
        /^reclustered 3 voiceprints into 1 unknown identities in [\d.]+ s: 0 created, 0 grown, 0 shrunk, 0 retired, 1 unchanged; 0 voiceprints moved, 0 unassigned\n$/,
      );
    } finally {
      await target.cleanup();
    }
  }, 180_000);
});
