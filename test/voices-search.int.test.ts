import { desc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { queryRows } from '../src/db/client.ts';
import { auditEvents, identities, voiceprints } from '../src/db/schema.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { createVoiceModel } from '../src/standin/voices.ts';
import { COHORT_MIN, currentCalibration, refreshCalibration } from '../src/voices/calibration.ts';
import type { VoiceSearchResponse } from '../src/voices/routes.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { type SeededCall, seedCalls } from './support/voices.ts';

// 60 callers × 4 calls, each caller on their own account, channels alternating; an agent (staff)
// as the second speaker of 12 of them; one two-speaker call where the customer speaks longer.
const SPEAKERS = 60;
let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let key: string;
let keyId: string;
let calls: SeededCall[];
let staffId: string;
const speakerOf = new Map<string, string>();

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  const created = await createApiKey(database.db, { scope: 'read' }, CLI_ACTOR);
  key = created.key;
  keyId = created.id;
  const plan = Array.from({ length: SPEAKERS * 4 }, (_, i) => {
    const speaker = i % SPEAKERS;
    const withAgent = i < 12;
    return {
      accountRef: `acct-${speaker}`,
      channel: i % 2 === 0 ? 'phone' : 'web',
      callAt: new Date(Date.parse('2026-03-01T00:00:00Z') + i * 3_600_000),
      speakers: [
        { speakerId: `caller-${speaker}`, speechSeconds: 40 },
        ...(withAgent ? [{ speakerId: 'agent-1', speechSeconds: 15 }] : []),
      ],
    };
  });
  calls = await seedCalls(database.db, plan);
  for (const call of calls) for (const v of call.voiceprints) speakerOf.set(v.id, v.speakerId);
  const [staff] = await database.db
    .insert(identities)
    .values({ kind: 'staff', origin: 'analyst', name: 'agent 1' })
    .returning({ id: identities.id });
  staffId = staff?.id as string;
  const agentPrints = calls.flatMap((c) => c.voiceprints.filter((v) => v.speakerId === 'agent-1').map((v) => v.id));
  await database.db
    .update(voiceprints)
    .set({ identityId: staffId, assignedBy: 'analyst' })
    .where(sql`${voiceprints.id} = any(${sql.param(agentPrints)}::uuid[])`);
  for (const table of ['recordings', 'voiceprints', 'identities'])
    await database.db.execute(sql.raw(`analyze ${table}`));
}, 120_000);
afterAll(async () => {
  await database?.close();
});

async function search(body: unknown): Promise<Response> {
  return app.request('/v1/voices/search', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}
async function searchOk(body: unknown): Promise<VoiceSearchResponse> {
  const response = await search(body);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as VoiceSearchResponse;
}
const callerPrint = (call: number) => calls[call]?.voiceprints[0] as SeededCall['voiceprints'][number];

describe(`POST /v1/voices/search on ${engine}`, () => {
  it('by voiceprint: the caller’s other calls first, as `same`, the query’s recording left out', async () => {
    const query = callerPrint(5); // caller-5, first call
    const answer = await searchOk({ query: { voiceprintId: query.id }, k: 5 });
    expect(answer.items).toHaveLength(5);
    expect(answer.items.slice(0, 3).map((i) => speakerOf.get(i.voiceprintId))).toEqual([
      'caller-5',
      'caller-5',
      'caller-5',
    ]);
    expect(answer.items.map((i) => i.recordingId)).not.toContain(calls[5]?.recordingId);
    expect(answer.items[0]).toMatchObject({
      accountRef: 'acct-5',
      verdict: 'same',
      identityId: null,
      identityKind: null,
    });
    expect(answer.items[0]?.score).toBeGreaterThanOrEqual(3);
    // the nearest of ~236 other callers: far about 1/236, not `same`
    expect(speakerOf.get(answer.items[4]?.voiceprintId as string)).not.toBe('caller-5');
    expect(answer.items[4]?.verdict).not.toBe('same');
    const scores = answer.items.map((i) => [i.score, i.similarity]);
    for (let i = 1; i < scores.length; i++) {
      const [s0, m0] = scores[i - 1] as [number, number];
      const [s1, m1] = scores[i] as [number, number];
      expect(s0 > s1 || (s0 === s1 && m0 >= m1)).toBe(true);
    }
    // staff left out: a filter, on a table small enough (~250 rows) to compare every row
    expect(answer.plan).toMatchObject({ method: 'exact', efSearch: null });
    expect(answer.plan.ms).toBeGreaterThan(0);
  });

  it('by recording: the longest speaker unless a label is given; an unknown label is a 404 naming it', async () => {
    const twoSpeakers = calls[0] as SeededCall;
    const byRecording = await searchOk({ query: { recordingId: twoSpeakers.recordingId }, k: 3, includeStaff: true });
    expect(speakerOf.get(byRecording.items[0]?.voiceprintId as string)).toBe('caller-0');
    const agent = await searchOk({
      query: { recordingId: twoSpeakers.recordingId, speakerLabel: 'SPEAKER_01' },
      k: 3,
      includeStaff: true,
    });
    expect(agent.items.map((i) => i.identityKind)).toEqual(['staff', 'staff', 'staff']);
    const missing = await expectProblem(
      await search({ query: { recordingId: twoSpeakers.recordingId, speakerLabel: 'SPEAKER_09' } }),
      404,
      'not-found',
    );
    expect(missing.detail).toMatch(/query\.speakerLabel.*SPEAKER_09.*SPEAKER_00, SPEAKER_01/);
    await expectProblem(
      await search({ query: { recordingId: '7d4c9b3e-1111-4222-8333-444455556666' } }),
      404,
      'not-found',
    );
    await expectProblem(await search({ query: { voiceprintId: 'not-a-uuid' } }), 404, 'not-found');
  });

  it('by raw embedding, as numbers or the upstream’s string form, with the same answer', async () => {
    const raw = createVoiceModel(7).speakerEmbedding('caller-9', 'a-new-call');
    const numbers = await searchOk({ query: { embedding: raw }, k: 4 });
    const text = await searchOk({ query: { embedding: `[${raw.join(', ')}]` }, k: 4 });
    expect(text.items.map((i) => i.voiceprintId)).toEqual(numbers.items.map((i) => i.voiceprintId));
    expect(numbers.items.map((i) => speakerOf.get(i.voiceprintId))).toEqual(Array(4).fill('caller-9'));
  });

  it('staff are left out unless includeStaff; identityKinds picks kinds', async () => {
    const agentPrint = calls[0]?.voiceprints[1]?.id as string;
    const without = await searchOk({ query: { voiceprintId: agentPrint }, k: 20 });
    expect(without.items.some((i) => i.identityKind === 'staff')).toBe(false);
    const withStaff = await searchOk({ query: { voiceprintId: agentPrint }, k: 20, includeStaff: true });
    expect(withStaff.items.filter((i) => i.identityId === staffId)).toHaveLength(11);
    const onlyStaff = await searchOk({
      query: { voiceprintId: agentPrint },
      k: 20,
      includeStaff: true,
      filter: { identityKinds: ['staff'] },
    });
    expect(onlyStaff.items).toHaveLength(11); // complete: every other staff voiceprint, fewer than k
    expect(onlyStaff.plan.method).toBe('exact');
  });

  it('filters: accounts, channels, time range; groupBy account gives one item per account', async () => {
    const query = callerPrint(3);
    const filtered = await searchOk({
      query: { voiceprintId: query.id },
      k: 50,
      filter: {
        channels: ['web'],
        excludeAccountRefs: ['acct-3'],
        from: '2026-03-02T00:00:00Z',
        to: '2026-03-08T00:00:00Z',
      },
    });
    expect(filtered.items.length).toBeGreaterThan(0);
    for (const item of filtered.items) {
      expect(item.channel).toBe('web');
      expect(item.accountRef).not.toBe('acct-3');
      expect(Date.parse(item.callAt as string)).toBeGreaterThanOrEqual(Date.parse('2026-03-02T00:00:00Z'));
      expect(Date.parse(item.callAt as string)).toBeLessThanOrEqual(Date.parse('2026-03-08T00:00:00Z'));
    }
    const grouped = await searchOk({ query: { voiceprintId: query.id }, k: 10, groupBy: 'account' });
    expect(grouped.items).toHaveLength(10);
    expect(new Set(grouped.items.map((i) => i.accountRef)).size).toBe(10);
    expect(grouped.items[0]?.accountRef).toBe('acct-3');
    const exact = await searchOk({ query: { voiceprintId: query.id }, k: 10, exact: true });
    expect(exact.plan).toMatchObject({ method: 'exact', efSearch: null });
  });

  it('minScore keeps only answers at least that strong', async () => {
    const answer = await searchOk({ query: { voiceprintId: callerPrint(7).id }, k: 50, minScore: 3 });
    expect(answer.items.length).toBeGreaterThanOrEqual(2);
    expect(answer.items.every((i) => i.score >= 3 && i.far <= 0.001 && i.verdict === 'same')).toBe(true);
    expect(answer.items.every((i) => speakerOf.get(i.voiceprintId) === 'caller-7')).toBe(true);
  });

  it('positive and negative examples: nearest the positives, nothing closer to a negative', async () => {
    const positives = calls
      .filter((_, i) => i % SPEAKERS === 11)
      .slice(0, 2)
      .map((c) => ({ voiceprintId: c.voiceprints[0]?.id }));
    const negative = { voiceprintId: callerPrint(12).id };
    const answer = await searchOk({ query: { positive: positives, negative: [negative] }, k: 8 });
    expect(answer.items).toHaveLength(8);
    expect(answer.items.slice(0, 2).map((i) => speakerOf.get(i.voiceprintId))).toEqual(['caller-11', 'caller-11']);
    // every example's recording is left out
    const exampleRecordings = [calls[11]?.recordingId, calls[71]?.recordingId, calls[12]?.recordingId];
    expect(answer.items.some((i) => exampleRecordings.includes(i.recordingId))).toBe(false);
  });

  it('answers bad input with a validation problem naming the field, and changes nothing', async () => {
    const before = await database.db.$count(auditEvents);
    const cases: [unknown, string][] = [
      [{ query: { embedding: [1, 2, 3] } }, 'json.query'],
      [{ query: { voiceprintId: callerPrint(1).id }, k: 0 }, 'json.k'],
      [{ query: { voiceprintId: callerPrint(1).id }, k: 1001 }, 'json.k'],
      [
        {
          query: { voiceprintId: callerPrint(1).id },
          filter: { from: '2026-03-05T00:00:00Z', to: '2026-03-01T00:00:00Z' },
        },
        'json.filter.to',
      ],
      [
        { query: { voiceprintId: callerPrint(1).id }, filter: { accountRefs: ['a'], excludeAccountRefs: ['a'] } },
        'json.filter.excludeAccountRefs',
      ],
      [
        { query: { voiceprintId: callerPrint(1).id }, filter: { identityKinds: ['staff'] } },
        'json.filter.identityKinds',
      ],
      [{ query: { voiceprintId: callerPrint(1).id }, groupBy: 'channel' }, 'json.groupBy'],
    ];
    for (const [body, path] of cases) {
      const problem = await expectProblem(await search(body), 400, 'validation');
      expect(
        problem.errors?.map((e) => e.path).some((p) => p.startsWith(path)),
        JSON.stringify(problem.errors),
      ).toBe(true);
    }
    const nonFinite = await expectProblem(
      await search({ query: { embedding: `[${Array(192).fill('1e999').join(',')}]` } }),
      400,
      'validation',
    );
    expect(nonFinite.errors?.[0]?.path).toBe('query.embedding');
    expect(await database.db.$count(auditEvents)).toBe(before);
  });

  it('every search is audited with the key, the result count and no vector', async () => {
    const query = callerPrint(20);
    const answer = await searchOk({ query: { voiceprintId: query.id }, k: 3 });
    const [entry] = await database.db.select().from(auditEvents).orderBy(desc(auditEvents.createdAt)).limit(1);
    expect(entry).toMatchObject({ source: 'api', keyId, action: 'voice.search', resultCount: 3 });
    expect(entry?.targetIds).toEqual([query.id, ...answer.items.map((i) => i.voiceprintId)]);
    expect(entry?.paramsDigest).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe(`POST /v1/voices/compare on ${engine}`, () => {
  const compare = (body: unknown) =>
    app.request('/v1/voices/compare', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('the same caller is `same`, two callers `unlikely`; audited', async () => {
    const same = await compare({ a: { voiceprintId: callerPrint(2).id }, b: { recordingId: calls[62]?.recordingId } });
    expect(same.status).toBe(200);
    const sameBody = (await same.json()) as { similarity: number; score: number; far: number; verdict: string };
    expect(sameBody.verdict).toBe('same');
    expect(sameBody.score).toBeCloseTo(-Math.log10(Math.max(sameBody.far, 1e-6)), 2);
    const different = (await (
      await compare({ a: { voiceprintId: callerPrint(2).id }, b: { voiceprintId: callerPrint(3).id } })
    ).json()) as { verdict: string; far: number };
    expect(different.verdict).toBe('unlikely');
    expect(different.far).toBeGreaterThan(0.01);
    const audited = await database.db.select().from(auditEvents).where(eq(auditEvents.action, 'voice.compare'));
    expect(audited).toHaveLength(2);
  });

  it('an unknown voiceprint is a 404 naming the side', async () => {
    const problem = await expectProblem(
      await compare({
        a: { voiceprintId: callerPrint(2).id },
        b: { voiceprintId: '7d4c9b3e-1111-4222-8333-444455556666' },
      }),
      404,
      'not-found',
    );
    expect(problem.detail).toMatch(/^b\.voiceprintId/);
  });
});

describe(`the impostor cohort on ${engine}`, () => {
  it('uses the prior until a cohort is drawn, then the cohort: FAR falls with similarity', async () => {
    const prior = await currentCalibration(database.db);
    expect(prior.method).toBe('prior');
    expect(prior.far(0.17)).toBeCloseTo(0.5, 1);
    expect(SPEAKERS * 4 + 12).toBeGreaterThanOrEqual(COHORT_MIN);
    const cohort = await refreshCalibration(database.db);
    expect(cohort.method).toBe('cohort');
    // staff and same-account pairs are left out: 240 caller voiceprints, 4 per account
    expect(cohort.cohortSize).toBe(SPEAKERS * 4);
    expect(cohort.pairCount).toBe((240 * 239) / 2 - SPEAKERS * 6);
    expect((await currentCalibration(database.db)).method).toBe('cohort');
    let previous = 1;
    for (let s = -0.2; s <= 1; s += 0.05) {
      const far = cohort.far(s);
      expect(far).toBeLessThanOrEqual(previous);
      previous = far;
    }
    expect(cohort.far(0.95)).toBeLessThan(1e-4);
    expect(cohort.similarityAtFar(0.01)).toBeGreaterThan(cohort.similarityAtFar(0.1));
    // the cohort's own impostor pairs: the share at or above the 1 % point is about 1 %
    const units = calls.flatMap((c) => c.voiceprints.filter((v) => v.speakerId !== 'agent-1'));
    const threshold = cohort.similarityAtFar(0.01);
    let above = 0;
    let pairs = 0;
    for (let i = 0; i < units.length; i++) {
      for (let j = i + 1; j < units.length; j++) {
        if ((units[i] as { speakerId: string }).speakerId === (units[j] as { speakerId: string }).speakerId) continue;
        pairs++;
        const a = (units[i] as { unit: number[] }).unit;
        const b = (units[j] as { unit: number[] }).unit;
        if (a.reduce((sum, v, d) => sum + v * (b[d] as number), 0) >= threshold) above++;
      }
    }
    expect(above / pairs).toBeGreaterThan(0.005);
    expect(above / pairs).toBeLessThan(0.02);
    const rows = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from voice_calibrations`);
    expect(rows[0]?.n).toBe(1);
  });
});

describe(`AS-norm on ${engine} (after the cohort above was drawn)`, () => {
  it('restates scores against the cohort: the caller still `same`, others not', async () => {
    const answer = await searchOk({ query: { voiceprintId: callerPrint(15).id }, k: 6, asNorm: true });
    expect(answer.items).toHaveLength(6);
    expect(answer.items.every((i) => typeof i.normalisedScore === 'number')).toBe(true);
    const same = answer.items.filter((i) => speakerOf.get(i.voiceprintId) === 'caller-15');
    expect(same).toHaveLength(3);
    expect(same.every((i) => i.verdict === 'same')).toBe(true);
    expect(
      answer.items.filter((i) => speakerOf.get(i.voiceprintId) !== 'caller-15').every((i) => i.verdict !== 'same'),
    ).toBe(true);
    const scores = answer.items.map((i) => i.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });

  it('is a conflict while there is no cohort', async () => {
    const empty = await createTestDatabase();
    try {
      const created = await createApiKey(empty.db, { scope: 'read' }, CLI_ACTOR);
      const [call] = await seedCalls(empty.db, [{ speakers: [{ speakerId: 'someone' }] }]);
      const response = await testApp(empty.db).request('/v1/voices/compare', {
        method: 'POST',
        headers: { authorization: `Bearer ${created.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          a: { voiceprintId: call?.voiceprints[0]?.id },
          b: { voiceprintId: call?.voiceprints[0]?.id },
          asNorm: true,
        }),
      });
      const problem = await expectProblem(response, 409, 'conflict');
      expect(problem.detail).toMatch(/^asNorm: .*too few voiceprints/);
    } finally {
      await empty.close();
    }
  });
});
