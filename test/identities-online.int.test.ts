import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countAnalysisBacklog } from '../src/analysis/outbox.ts';
import { SYSTEM_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { createLogger } from '../src/log.ts';
import { startStandin } from '../src/standin/server.ts';
import { IDENTITY_ASSIGNMENT_LOCK } from '../src/voices/identities/clustering-queries.ts';
import { createIdentity } from '../src/voices/identities/membership.ts';
import { IDENTITY_STEP, identityStep } from '../src/voices/identities/step.ts';
import { JOIN_SIMILARITY, NEIGHBOUR_SIMILARITY, ONLINE_MARGIN_JOIN } from '../src/voices/identities/thresholds.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { itNotOnPglite } from './support/engine.ts';
import {
  analysePending,
  arrive,
  awayFrom,
  callOf,
  cosine,
  identityOf,
  mix,
  person,
  storeCall,
} from './support/identity-calls.ts';
import { until } from './support/until.ts';
import { startWorkerProcess, workerProcessEnv } from './support/worker-processes.ts';

/**
 * The online identity step (src/voices/identities/step.ts): joining by centroid, seeding an
 * `unknown` identity from core points only, border points that link nothing, the spoof rule, the
 * minimum of speech, replays, and concurrent workers.
 */

let database: TestDatabase;
beforeEach(async () => {
  database = await createTestDatabase();
});
afterEach(async () => {
  await database?.close();
});

const { similarity: MARGIN_JOIN_SIMILARITY, margin: JOIN_MARGIN } = ONLINE_MARGIN_JOIN;
const alice = person(1, 'alice');
const bob = person(1, 'bob');
const voice = (unit: number[], extra: { speechSeconds?: number; meanPSpoofed?: number } = {}) => [
  { label: 'speaker_0', unit, ...extra },
];

async function history() {
  return queryRows<{ identityId: string; action: string; voiceprintIds: string[]; source: string }>(
    database.db,
    sql`select identity_id as "identityId", action, voiceprint_ids as "voiceprintIds", source
        from identity_events order by created_at, id`,
  );
}

describe(`online identity assignment on ${engine}`, () => {
  it('leaves a new voice unassigned until a core point has enough neighbours, then seeds one unknown identity; later calls join its centroid', async () => {
    const a1 = (await arrive(database.db, voice(callOf(alice, 1)))).speaker_0 as string;
    const a2 = (await arrive(database.db, voice(callOf(alice, 2)))).speaker_0 as string;
    let now = await identityOf(database.db);
    expect([now[a1]?.identityId, now[a2]?.identityId]).toEqual([null, null]);
    const a3 = (await arrive(database.db, voice(callOf(alice, 3)))).speaker_0 as string;
    now = await identityOf(database.db);
    const seeded = now[a3]?.identityId;
    expect(seeded).toBeTruthy();
    expect([now[a1], now[a2], now[a3]]).toEqual([0, 1, 2].map(() => ({ identityId: seeded, kind: 'unknown' })));
    const b1 = (await arrive(database.db, voice(callOf(bob, 1)))).speaker_0 as string;
    const a4 = (await arrive(database.db, voice(callOf(alice, 4)))).speaker_0 as string;
    now = await identityOf(database.db);
    expect(now[b1]?.identityId).toBeNull();
    expect(now[a4]?.identityId).toBe(seeded);

    const [identity] = await queryRows<{ origin: string; memberCount: number }>(
      database.db,
      sql`select origin, member_count as "memberCount" from identities where id = ${seeded as string}`,
    );
    expect(identity).toEqual({ origin: 'online', memberCount: 4 });
    const events = await history();
    expect(events.map((e) => [e.action, e.voiceprintIds.length, e.source])).toEqual([
      ['seeded', 3, 'system'],
      ['joined', 1, 'system'],
    ]);
  });

  it('sweeps into a new identity an earlier call that is near its centroid but no single call’s neighbour', async () => {
    // calls on a noisy line (pairwise ≈ 0.71): their mean is a cleaner picture of the voice than any one
    const noisy = [1, 2, 3].map((n) => callOf(alice, n, 0.4));
    const early = mix([alice, awayFrom(person(9, 'line noise'), alice)], [0.66, 0.75]);
    for (const call of noisy) expect(cosine(early, call)).toBeLessThan(NEIGHBOUR_SIMILARITY);
    expect(cosine(early, mix(noisy, [1, 1, 1]))).toBeGreaterThanOrEqual(JOIN_SIMILARITY);
    const first = (await arrive(database.db, voice(early))).speaker_0 as string;
    const calls: string[] = [];
    for (const call of noisy) calls.push((await arrive(database.db, voice(call))).speaker_0 as string);
    const now = await identityOf(database.db);
    const seeded = now[calls[0] as string]?.identityId;
    expect(seeded).toBeTruthy();
    expect(now[first]?.identityId).toBe(seeded);
    // one transaction: both rows carry its time, in no particular order
    const events = await history();
    expect(events.map((e) => [e.action, e.voiceprintIds.length]).sort()).toEqual([
      ['joined', 1],
      ['seeded', 3],
    ]);
  });

  it('lets a hard call join its speaker below JOIN_SIMILARITY only when that centroid clearly beats the next one', async () => {
    for (const n of [1, 2, 3]) await arrive(database.db, voice(callOf(alice, n)));
    // each hard call has noise of its own, so that the hard calls are not each other's neighbours
    const line = (n: number) => awayFrom(awayFrom(person(n, 'line noise'), alice), bob);
    // alone with one identity (no runner-up to beat), a weak match waits
    const lonely = mix([alice, line(1)], [0.52, 0.85]);
    expect(cosine(lonely, alice)).toBeLessThan(JOIN_SIMILARITY);
    expect(cosine(lonely, alice)).toBeGreaterThan(MARGIN_JOIN_SIMILARITY);
    const waiting = (await arrive(database.db, voice(lonely))).speaker_0 as string;
    expect((await identityOf(database.db))[waiting]?.identityId).toBeNull();

    for (const n of [1, 2, 3]) await arrive(database.db, voice(callOf(bob, n)));
    const alice4 = (await arrive(database.db, voice(callOf(alice, 4)))).speaker_0 as string;
    let now = await identityOf(database.db);
    const aliceId = now[alice4]?.identityId;
    expect(aliceId).toBeTruthy();
    // well ahead of bob's centroid: joins alice
    const hard = (await arrive(database.db, voice(mix([alice, line(2)], [0.52, 0.85])))).speaker_0 as string;
    // as close to both: joins neither
    const torn = mix([alice, bob, line(3)], [0.4, 0.38, 0.83]);
    expect(Math.abs(cosine(torn, alice) - cosine(torn, bob))).toBeLessThan(JOIN_MARGIN);
    const tornId = (await arrive(database.db, voice(torn))).speaker_0 as string;
    now = await identityOf(database.db);
    expect(now[hard]?.identityId).toBe(aliceId);
    expect(now[tornId]?.identityId).toBeNull();
    const [joined] = await queryRows<{ reason: string }>(
      database.db,
      sql`select reason from identity_events where ${hard} = any(voiceprint_ids) and action = 'joined'`,
    );
    expect(joined?.reason).toMatch(/^centroid similarity 0\.5/);
  });

  it('never lets a weak call join an agent (staff) identity by margin: agents take only JOIN_SIMILARITY', async () => {
    const agentCalls = await Promise.all([1, 2].map((n) => storeCall(database.db, voice(callOf(bob, n)))));
    await withTransaction(database.db, (tx) =>
      createIdentity(tx, {
        kind: 'staff',
        origin: 'analyst',
        voiceprintIds: agentCalls.map((c) => c.ids.speaker_0 as string),
        assignedBy: 'analyst',
        action: 'created',
        actor: SYSTEM_ACTOR,
      }),
    );
    for (const n of [1, 2, 3]) await arrive(database.db, voice(callOf(alice, n)));
    const line = awayFrom(awayFrom(person(4, 'line noise'), alice), bob);
    // as far ahead of alice's centroid as the call that joined alice above, but towards the agent
    const weak = mix([bob, line], [0.52, 0.85]);
    const agentCentroid = mix([callOf(bob, 1), callOf(bob, 2)], [1, 1]);
    expect(cosine(weak, agentCentroid)).toBeLessThan(JOIN_SIMILARITY);
    expect(cosine(weak, agentCentroid)).toBeGreaterThan(MARGIN_JOIN_SIMILARITY);
    expect(cosine(weak, agentCentroid) - cosine(weak, alice)).toBeGreaterThan(JOIN_MARGIN);
    const id = (await arrive(database.db, voice(weak))).speaker_0 as string;
    expect((await identityOf(database.db))[id]?.identityId).toBeNull();
  });

  it('keeps the two speakers of one call apart: a recording’s own voiceprints are never neighbours', async () => {
    // the same voice twice in each call (a diarization split) must not seed from its own call
    const pair = (n: number) => [
      { label: 'speaker_0', unit: callOf(alice, 10 * n) },
      { label: 'speaker_1', unit: callOf(alice, 10 * n + 1) },
    ];
    const first = await arrive(database.db, pair(1));
    const now = await identityOf(database.db);
    expect(Object.values(first).map((id) => now[id]?.identityId)).toEqual([null, null]);
  });

  it('does not chain two people through one noisy call between them: a border point links nothing', async () => {
    const bridge = mix([alice, bob], [1, 1]);
    // the bridge is within the radius of both people's calls, and they are far from each other
    expect(cosine(bridge, callOf(alice, 1))).toBeGreaterThan(NEIGHBOUR_SIMILARITY);
    expect(cosine(bridge, callOf(bob, 1))).toBeGreaterThan(NEIGHBOUR_SIMILARITY);
    expect(cosine(callOf(alice, 1), callOf(bob, 1))).toBeLessThan(0.3);

    const ids: Record<string, string> = {};
    const order: [string, number[], number][] = [
      ['a1', callOf(alice, 1), 30],
      ['a2', callOf(alice, 2), 30],
      ['b1', callOf(bob, 1), 30],
      ['b2', callOf(bob, 2), 30],
      // a few seconds on a bad line: below the minimum of speech, it can never be a core point
      ['q', bridge, 5],
      ['a3', callOf(alice, 3), 30],
      ['b3', callOf(bob, 3), 30],
    ];
    for (const [name, unit, speechSeconds] of order) {
      ids[name] = (await arrive(database.db, voice(unit, { speechSeconds }))).speaker_0 as string;
    }
    const now = await identityOf(database.db);
    const of = (name: string) => now[ids[name] as string]?.identityId ?? null;
    const aliceIdentity = of('a1');
    const bobIdentity = of('b1');
    expect(aliceIdentity).toBeTruthy();
    expect(bobIdentity).toBeTruthy();
    expect(aliceIdentity).not.toBe(bobIdentity);
    expect(['a2', 'a3'].map(of)).toEqual([aliceIdentity, aliceIdentity]);
    expect(['b2', 'b3'].map(of)).toEqual([bobIdentity, bobIdentity]);
    expect([aliceIdentity, bobIdentity, null]).toContain(of('q'));
  });

  it('never puts mostly spoofed speech into a customer or staff identity, nor into a genuine unknown one', async () => {
    const enrolled = await storeCall(database.db, voice(callOf(alice, 1)));
    const staffCall = await storeCall(database.db, voice(callOf(bob, 1)));
    await withTransaction(database.db, async (tx) => {
      await createIdentity(tx, {
        kind: 'customer',
        origin: 'analyst',
        accountRef: 'acc-1',
        voiceprintIds: [enrolled.ids.speaker_0 as string],
        assignedBy: 'analyst',
        action: 'created',
        actor: SYSTEM_ACTOR,
      });
      await createIdentity(tx, {
        kind: 'staff',
        origin: 'analyst',
        voiceprintIds: [staffCall.ids.speaker_0 as string],
        assignedBy: 'analyst',
        action: 'created',
        actor: SYSTEM_ACTOR,
      });
    });
    // a genuine call joins the customer; a clone of the customer and one of the agent join nothing
    const genuine = (await arrive(database.db, voice(callOf(alice, 2)))).speaker_0 as string;
    const clone = (await arrive(database.db, voice(callOf(alice, 3), { meanPSpoofed: 0.93 }))).speaker_0 as string;
    const staffClone = (await arrive(database.db, voice(callOf(bob, 3), { meanPSpoofed: 0.5 }))).speaker_0 as string;
    const now = await identityOf(database.db);
    expect(now[genuine]?.kind).toBe('customer');
    expect(cosine(callOf(alice, 3), callOf(alice, 2))).toBeGreaterThan(JOIN_SIMILARITY);
    expect(now[clone]?.identityId).toBeNull();
    expect(now[staffClone]?.identityId).toBeNull();

    // an unknown identity of genuine speech does not take the clone either
    const carol = person(1, 'carol');
    for (const n of [1, 2, 3]) await arrive(database.db, voice(callOf(carol, n)));
    const carolClone = (await arrive(database.db, voice(callOf(carol, 4), { meanPSpoofed: 0.8 }))).speaker_0 as string;
    expect((await identityOf(database.db))[carolClone]?.identityId).toBeNull();
  });

  it('seeds only from voiceprints with the minimum of speech (VOXTRACE_ENROL_MIN_SPEECH_S); short ones join as border points', async () => {
    const short: string[] = [];
    for (const n of [1, 2, 3, 4]) {
      short.push((await arrive(database.db, voice(callOf(alice, n), { speechSeconds: 7.9 }))).speaker_0 as string);
    }
    let now = await identityOf(database.db);
    expect(short.map((id) => now[id]?.identityId)).toEqual([null, null, null, null]);
    const long = (await arrive(database.db, voice(callOf(alice, 5), { speechSeconds: 8 }))).speaker_0 as string;
    now = await identityOf(database.db);
    const seeded = now[long]?.identityId;
    expect(seeded).toBeTruthy();
    expect(short.map((id) => now[id]?.identityId)).toEqual(short.map(() => seeded));
  });

  it('assigns nothing twice when an event is replayed', async () => {
    for (const n of [1, 2, 3]) await arrive(database.db, voice(callOf(alice, n)));
    const { recordingId } = await storeCall(database.db, voice(callOf(alice, 4)));
    await analysePending(database.db);
    const before = { history: await history(), identities: await identityOf(database.db) };
    expect(before.history.map((e) => e.action)).toEqual(['seeded', 'joined']);
    // the step run again on the same event (what a replay after a lost commit record would do)
    const step = identityStep(DEFAULT_VOICE_SETTINGS);
    await withTransaction(database.db, (tx) =>
      step.run({
        tx,
        event: { id: 'replay', recordingId, kind: 'stored', stepsDone: [], attempts: 1 },
        log: createLogger('silent'),
      }),
    );
    expect({ history: await history(), identities: await identityOf(database.db) }).toEqual(before);
  });
});

describe('the identity step in worker processes (PostgreSQL)', () => {
  const children: ChildProcessWithoutNullStreams[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  /** Two worker processes running the registered analysis steps; the stand-in is only there for the worker's upstream. */
  async function workers(count: number, run: (env: NodeJS.ProcessEnv) => Promise<void>) {
    const standin = await startStandin({ port: 0, speed: 0 });
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-identities-'));
    try {
      const env = {
        ...workerProcessEnv({ databaseUrl: database.url as string, dataDir, standin, logLevel: 'warn' }),
        VOXTRACE_WORKER_CONCURRENCY: '1',
      };
      expect(count).toBeGreaterThan(0);
      await run(env);
    } finally {
      await standin.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }

  const analysed = async (n: number) =>
    until(
      `${n} events analysed`,
      async () => {
        const rows = await queryRows<{ n: number }>(
          database.db,
          sql`select count(*)::int as n from recording_events where status = 'done'`,
        );
        return (await countAnalysisBacklog(database.db)).pending === 0 && rows[0]?.n === n;
      },
      60_000,
    );

  /** Each voiceprint's assignments in the history, and each identity's member count against its members. */
  async function consistency() {
    const assignments = await queryRows<{ id: string; times: number }>(
      database.db,
      sql`select v.id, count(e.id)::int as times
          from voiceprints v
          left join identity_events e on v.id = any(e.voiceprint_ids) and e.action in ('seeded', 'joined')
          group by v.id`,
    );
    const counts = await queryRows<{ id: string; memberCount: number; members: number }>(
      database.db,
      sql`select i.id, i.member_count as "memberCount", (select count(*)::int from voiceprints v where v.identity_id = i.id) as members
          from identities i`,
    );
    return {
      assignedTwice: assignments.filter((a) => a.times > 1),
      wrongCounts: counts.filter((c) => c.memberCount !== c.members),
    };
  }

  itNotOnPglite(
    'multi-process',
    'two workers analysing two calls of one new voice at once make one identity',
    async () => {
      await workers(2, async (env) => {
        await startWorkerProcess(env, {}, children);
        await startWorkerProcess(env, {}, children);
        const voices = Array.from({ length: 6 }, (_, i) => person(7, `caller-${i}`));
        // one earlier call of each voice, analysed: unassigned (one neighbour is not enough)
        for (const [i, v] of voices.entries()) await storeCall(database.db, voice(callOf(v, 1)), `acc-${i}`);
        await analysed(voices.length);
        expect(Object.values(await identityOf(database.db)).every((a) => a.identityId === null)).toBe(true);
        // then two calls of each, all stored in one transaction: the two workers take them at once
        await withTransaction(database.db, async (tx) => {
          for (const [i, v] of voices.entries()) {
            await storeCall(tx, voice(callOf(v, 2)), `acc-${i}`);
            await storeCall(tx, voice(callOf(v, 3)), `acc-${i}`);
          }
        });
        await analysed(voices.length * 3);
        const rows = await queryRows<{ accountRef: string; identities: number; assigned: number }>(
          database.db,
          sql`select r.account_ref as "accountRef", count(distinct v.identity_id)::int as identities,
                     count(v.identity_id)::int as assigned
              from voiceprints v join recordings r on r.id = v.recording_id
              group by r.account_ref order by r.account_ref`,
        );
        expect(rows).toEqual(voices.map((_, i) => ({ accountRef: `acc-${i}`, identities: 1, assigned: 3 })));
        const [live] = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from identities`);
        expect(live?.n).toBe(voices.length);
        expect(await consistency()).toEqual({ assignedTwice: [], wrongCounts: [] });
      });
    },
    120_000,
  );

  itNotOnPglite(
    'multi-process',
    'a worker killed with SIGKILL inside the identity step leaves nothing half-done; the other assigns each voiceprint once',
    async () => {
      await workers(2, async (env) => {
        const calls = [alice, bob].flatMap((v, p) =>
          [1, 2, 3, 4].map((n) => ({ unit: callOf(v, n), account: `acc-${p}` })),
        );
        await database.withSession(async (session) => {
          // holding the assignment lock keeps the victim inside its step's transaction, after markStepDone
          await session.execute(sql`select pg_advisory_lock(${IDENTITY_ASSIGNMENT_LOCK})`);
          for (const call of calls) await storeCall(database.db, voice(call.unit), call.account);
          const victim = await startWorkerProcess(env, {}, children);
          await until('the victim to wait for the lock inside its step', async () => {
            const rows = await queryRows<{ n: number }>(
              database.db,
              sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`,
            );
            return (rows[0]?.n ?? 0) > 0;
          });
          const [inside] = await queryRows<{ n: number }>(
            database.db,
            sql`select count(*)::int as n from recording_events where lease_owner is not null and status = 'pending'`,
          );
          expect(inside?.n).toBeGreaterThan(0);
          victim.child.kill('SIGKILL');
          await session.execute(sql`select pg_advisory_unlock(${IDENTITY_ASSIGNMENT_LOCK})`);
        });
        await startWorkerProcess(env, {}, children);
        await analysed(calls.length);
        const events = await queryRows<{ stepsDone: string[] }>(
          database.db,
          sql`select steps_done as "stepsDone" from recording_events`,
        );
        expect(events.map((e) => e.stepsDone.filter((s) => s === IDENTITY_STEP))).toEqual(
          calls.map(() => [IDENTITY_STEP]),
        );
        expect(await consistency()).toEqual({ assignedTwice: [], wrongCounts: [] });
        const rows = await queryRows<{ accountRef: string; identities: number; assigned: number }>(
          database.db,
          sql`select r.account_ref as "accountRef", count(distinct v.identity_id)::int as identities,
                     count(v.identity_id)::int as assigned
              from voiceprints v join recordings r on r.id = v.recording_id
              group by r.account_ref order by r.account_ref`,
        );
        expect(rows).toEqual([
          { accountRef: 'acc-0', identities: 1, assigned: 4 },
          { accountRef: 'acc-1', identities: 1, assigned: 4 },
        ]);
      });
    },
    120_000,
  );
});
