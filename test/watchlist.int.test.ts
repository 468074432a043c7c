import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertListQuery } from '../src/alerts/queries.ts';
import { raiseAlert } from '../src/alerts/raise.ts';
import { drainAnalysis } from '../src/analysis/drain.ts';
import type { AnalysisStep } from '../src/analysis/runner.ts';
import { analysisSteps } from '../src/analysis/steps.ts';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { createLogger } from '../src/log.ts';
import {
  watchlistMatchesQuery,
  withinReachOfIdentity,
  withinReachOfIdentityQuery,
} from '../src/voices/watchlist/queries.ts';
import { WATCHLIST_STEP, watchlistStep } from '../src/voices/watchlist/step.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { analyseAll, callOf, person, storeCall } from './support/identity-calls.ts';

/**
 * The watchlist over HTTP against a real database: the look-back over history (the fraudster's past
 * calls alerted, the call the entry was made from not), hits on calls stored later, one alert per
 * listed voice and recording however often it is raised, removal dismissing open hits, and the bad
 * inputs that change nothing.
 */

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let writer: { key: string; id: string };

const fraudster = person(41, 'fraudster');
const customers = Array.from({ length: 6 }, (_, i) => person(41, `customer-${i}`));
const fraudCalls: { recordingId: string; voiceprintId: string; accountRef: string }[] = [];
const customerCalls: { recordingId: string; voiceprintId: string }[] = [];

type Alert = {
  id: string;
  type: string;
  status: string;
  identityId: string | null;
  recordingIds: string[];
  accountRefs: string[];
  evidence: { voiceprintId?: string; recordingId: string; similarity: number; score?: number }[];
  history?: { action: string; status: string; note: string | null }[];
};

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  return app.request(path, {
    method,
    headers: {
      authorization: `Bearer ${writer.key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function alerts(query = ''): Promise<Alert[]> {
  const response = await call('GET', `/v1/alerts?limit=500${query}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { items: Alert[] }).items;
}

/**
 * How `listed_voiceprints` differs from what it is derived from (the voiceprints of identities with
 * a live entry): each row missing or extra, or of the wrong identity or vector.
 */
async function listingDrift(): Promise<string[]> {
  const rows = await queryRows<{ what: string }>(
    database.db,
    sql`with truth as (
          select v.id as voiceprint_id, v.identity_id, v.recording_id, v.embedding
          from voiceprints v join watchlist_entries e on e.identity_id = v.identity_id and e.removed_at is null)
        select 'missing ' || t.voiceprint_id as what from truth t
          where not exists (select 1 from listed_voiceprints l where l.voiceprint_id = t.voiceprint_id
                              and l.identity_id = t.identity_id and l.recording_id = t.recording_id
                              and (l.embedding <-> t.embedding) < 1e-6)
        union all
        select 'extra ' || l.voiceprint_id from listed_voiceprints l
          where not exists (select 1 from truth t where t.voiceprint_id = l.voiceprint_id
                              and t.identity_id = l.identity_id)`,
  );
  return rows.map((r) => r.what);
}

async function listedCount(identityId: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    database.db,
    sql`select count(*)::int as n from listed_voiceprints where identity_id = ${identityId}`,
  );
  return row?.n ?? 0;
}

async function counts() {
  const [row] = await queryRows<Record<string, number>>(
    database.db,
    sql`select (select count(*)::int from alerts) as alerts, (select count(*)::int from alert_events) as events,
               (select count(*)::int from watchlist_entries) as entries,
               (select count(*)::int from identities where kind = 'fraudster') as fraudsters`,
  );
  return row;
}

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  writer = await createApiKey(database.db, { scope: 'write', name: 'fraud team' }, CLI_ACTOR);
  // the fraudster calls four victims' accounts; six customers call their own, twice each
  for (let c = 0; c < 4; c++) {
    const accountRef = `victim-${c}`;
    const stored = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, c) }], accountRef);
    fraudCalls.push({ recordingId: stored.recordingId, voiceprintId: stored.ids.speaker_0 as string, accountRef });
  }
  for (const [i, voice] of customers.entries()) {
    for (let c = 0; c < 2; c++) {
      const stored = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(voice, 10 + c) }], `acc-${i}`);
      customerCalls.push({ recordingId: stored.recordingId, voiceprintId: stored.ids.speaker_0 as string });
    }
  }
  await analyseAll(database.db);
});
afterAll(async () => {
  await database?.close();
});

describe('POST /v1/watchlist', () => {
  it('refuses bad input with a problem naming the field, and changes nothing', async () => {
    const before = await counts();
    const short = await storeCall(
      database.db,
      [{ label: 'speaker_0', unit: callOf(fraudster, 99), speechSeconds: 3 }],
      'victim-short',
    );
    await analyseAll(database.db);
    const beforeShort = await counts();
    const little = await expectProblem(
      await call('POST', '/v1/watchlist', { voiceprintId: short.ids.speaker_0, reason: 'case 1' }),
      400,
      'validation',
    );
    expect(little.errors?.map((e) => e.path)).toEqual(['json.voiceprintId']);
    expect(little.detail).toContain('VOXTRACE_ENROL_MIN_SPEECH_S');
    await expectProblem(
      await call('POST', '/v1/watchlist', { voiceprintId: '00000000-0000-4000-8000-000000000000', reason: 'x' }),
      404,
      'not-found',
    );
    await expectProblem(await call('POST', '/v1/watchlist', { voiceprintId: 'nope', reason: 'x' }), 404, 'not-found');
    const both = await expectProblem(
      await call('POST', '/v1/watchlist', {
        voiceprintId: short.ids.speaker_0,
        identityId: short.ids.speaker_0,
        reason: 'x',
      }),
      400,
      'validation',
    );
    expect(both.errors?.[0]?.path).toBe('json.identityId');
    const noReason = await expectProblem(
      await call('POST', '/v1/watchlist', { voiceprintId: fraudCalls[0]?.voiceprintId }),
      400,
      'validation',
    );
    expect(noReason.errors?.map((e) => e.path)).toEqual(['json.reason']);
    expect(await counts()).toEqual(beforeShort);
    // the fraudster on four accounts raised voice reuse; nothing is on the watchlist yet
    expect(before?.entries).toBe(0);
    expect(await alerts('&type=watchlist_hit')).toHaveLength(0);
    // the short call is a call of the fraudster too: take it out of the rest of the story
    await database.db.execute(sql`delete from recordings where id = ${short.recordingId}`);
  });

  it("looks back over history: the fraudster's other calls are hits, the call it was listed from is not", async () => {
    const seed = fraudCalls[0] as (typeof fraudCalls)[number];
    const response = await call('POST', '/v1/watchlist', {
      voiceprintId: seed.voiceprintId,
      reason: 'confirmed fraud, case 118',
      name: 'caller of case 118',
    });
    expect(response.status).toBe(201);
    const entry = (await response.json()) as { identityId: string; lookBack: { checked: number; hits: number } };
    expect(entry.lookBack.hits).toBe(3);
    expect(entry.lookBack.checked).toBeGreaterThan(0);

    const hits = await alerts('&type=watchlist_hit');
    expect(hits).toHaveLength(3);
    expect(hits.flatMap((a) => a.recordingIds).sort()).toEqual(
      fraudCalls
        .slice(1)
        .map((c) => c.recordingId)
        .sort(),
    );
    for (const hit of hits) {
      expect(hit).toMatchObject({ status: 'open', identityId: entry.identityId });
      expect(hit.recordingIds).toHaveLength(1);
      const victim = fraudCalls.find((c) => c.recordingId === hit.recordingIds[0]);
      expect(hit.accountRefs).toEqual([victim?.accountRef]);
      expect(hit.evidence[0]).toMatchObject({ recordingId: victim?.recordingId, voiceprintId: victim?.voiceprintId });
      expect(hit.evidence[0]?.similarity).toBeGreaterThan(0.8);
    }
    const identity = (await (await call('GET', `/v1/identities/${entry.identityId}`)).json()) as {
      kind: string;
      watchlisted: boolean;
      name: string;
    };
    expect(identity).toMatchObject({ kind: 'fraudster', watchlisted: true, name: 'caller of case 118' });
    expect(await listedCount(entry.identityId)).toBeGreaterThan(0);
    expect(await listingDrift()).toEqual([]);

    // the check run again on the recording it was listed from (a replayed event) raises nothing there
    const check = watchlistStep(DEFAULT_VOICE_SETTINGS);
    for (const recordingId of [seed.recordingId, fraudCalls[1]?.recordingId as string]) {
      await withTransaction(database.db, (tx) =>
        check.run({
          tx,
          event: { id: randomUUID(), recordingId, kind: 'stored', stepsDone: [], attempts: 0 },
          log: createLogger('silent'),
        }),
      );
    }
    expect(await alerts(`&type=watchlist_hit&recordingId=${seed.recordingId}`)).toHaveLength(0);
    expect(await alerts('&type=watchlist_hit')).toHaveLength(3);

    // listed again: the stored entry, no new look-back
    const again = await call('POST', '/v1/watchlist', { identityId: entry.identityId, reason: 'again' });
    expect(again.status).toBe(200);
    expect(((await again.json()) as typeof entry).lookBack).toEqual(entry.lookBack);
    expect(await alerts('&type=watchlist_hit')).toHaveLength(3);

    const list = (await (await call('GET', '/v1/watchlist')).json()) as { items: { identityId: string }[] };
    expect(list.items.map((i) => i.identityId)).toEqual([entry.identityId]);
    const stats = (await (await call('GET', '/v1/stats')).json()) as {
      openAlerts: Record<string, number>;
      watchlisted: number;
    };
    expect(stats).toMatchObject({ watchlisted: 1, openAlerts: { watchlist_hit: 3, voice_reuse: 1 } });
  });

  it('checks every recording stored later: a new call of the listed voice is a hit, a stranger is not', async () => {
    const later = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, 7) }], 'victim-9');
    const stranger = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(person(41, 'x'), 1) }], 'acc-x');
    await analyseAll(database.db);
    const hits = await alerts(`&type=watchlist_hit&recordingId=${later.recordingId}`);
    expect(hits).toHaveLength(1);
    expect(hits[0]?.accountRefs).toEqual(['victim-9']);
    expect(await alerts(`&type=watchlist_hit&recordingId=${stranger.recordingId}`)).toHaveLength(0);
    expect(await alerts('&type=watchlist_hit&accountRef=victim-9')).toHaveLength(1);
    // the new call joined the listed identity: its voiceprint is listed with it
    const [joined] = await queryRows<{ listed: boolean }>(
      database.db,
      sql`select exists (select 1 from listed_voiceprints where voiceprint_id = ${later.ids.speaker_0 as string}) as listed`,
    );
    expect(joined?.listed).toBe(true);
    expect(await listingDrift()).toEqual([]);
  });

  it('scores a later call by the newest calibration, though the last check used an older one', async () => {
    const before = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, 11) }], 'victim-11');
    await analyseAll(database.db);
    const [first] = await alerts(`&type=watchlist_hit&recordingId=${before.recordingId}`);
    expect(first?.evidence[0]?.score).toBeGreaterThan(2);
    // a newer calibration under which only a near-identical voice is within reach, and nothing
    // below 0.99998 has a FAR under 1 (score 0)
    const [{ n } = { n: 0 }] = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from voiceprints`,
    );
    const model = { similarities: [0.99999, 0.99998], logFars: [-6, -5.9], slope: -1, mean: 0, sd: 0.1 };
    const [stored] = await queryRows<{ id: string }>(
      database.db,
      sql`insert into voice_calibrations (method, voiceprint_count, cohort_size, pair_count, model, created_at)
          values ('cohort', ${n + 1}, 100, 4950, ${JSON.stringify(model)}::jsonb, now() + interval '1 second')
          returning id`,
    );
    try {
      const after = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, 12) }], 'victim-12');
      await analyseAll(database.db);
      const [hit] = await alerts(`&type=watchlist_hit&recordingId=${after.recordingId}`);
      // a member of the listed identity is a hit whatever its score: the score is the new calibration's
      expect(hit?.evidence.map((e) => e.score)).toEqual([0]);
    } finally {
      await database.db.execute(sql`delete from voice_calibrations where id = ${stored?.id as string}`);
    }
  });

  it('raises exactly once when the step is replayed after a failure', async () => {
    const replayed = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, 8) }], 'victim-10');
    let failures = 0;
    // the step after the watchlist fails once, so the whole event runs again from where it stopped
    const flaky: AnalysisStep = {
      name: 'test.flaky-after-watchlist',
      async run() {
        if (failures++ === 0) throw new Error('worker lost');
      },
    };
    const steps = analysisSteps(DEFAULT_VOICE_SETTINGS);
    const after = steps.findIndex((s) => s.name === WATCHLIST_STEP) + 1;
    const withFlaky = [...steps.slice(0, after), flaky, ...steps.slice(after)];
    const summary = await drainAnalysis({
      db: database.db,
      log: createLogger('silent'),
      steps: withFlaky,
      concurrency: 1,
      leaseSeconds: 30,
      maxAttempts: 3,
      retryBaseMs: 1,
      wait: true,
      pollMs: 20,
    });
    expect(summary.dead).toBe(0);
    expect(failures).toBe(2);
    // and once more: a step rolled back inside its own transaction leaves nothing behind
    await expect(
      withTransaction(database.db, async (tx) => {
        await steps[after - 1]?.run({
          tx,
          event: { recordingId: replayed.recordingId } as never,
          log: createLogger('silent'),
        });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    const hits = await alerts(`&type=watchlist_hit&recordingId=${replayed.recordingId}`);
    expect(hits).toHaveLength(1);
    const detail = (await (await call('GET', `/v1/alerts/${hits[0]?.id}`)).json()) as Alert;
    expect(detail.history?.map((h) => h.action)).toEqual(['raised']);
  });

  it('keeps one live alert per type and subject, adding new evidence to it', async () => {
    const [hit] = await alerts(`&type=watchlist_hit&recordingId=${fraudCalls[1]?.recordingId}`);
    const subject = `${hit?.identityId}/${fraudCalls[1]?.recordingId}`;
    const evidence = hit?.evidence ?? [];
    const raise = (extra: typeof evidence) =>
      withTransaction(database.db, (tx) =>
        raiseAlert(tx, {
          type: 'watchlist_hit',
          subject,
          identityId: hit?.identityId,
          recordingIds: hit?.recordingIds ?? [],
          accountRefs: hit?.accountRefs ?? [],
          evidence: [...evidence, ...extra],
        }),
      );
    expect((await raise([])).outcome).toBe('unchanged');
    const otherVoiceprint = customerCalls[0]?.voiceprintId as string;
    const extra = { voiceprintId: otherVoiceprint, recordingId: fraudCalls[1]?.recordingId as string, similarity: 0.7 };
    expect(await call('POST', `/v1/alerts/${hit?.id}/ack`, { note: 'calling the customer back' })).toHaveProperty(
      'status',
      200,
    );
    const updated = await raise([extra]);
    expect(updated).toMatchObject({ alertId: hit?.id, outcome: 'updated', status: 'acknowledged' });
    const detail = (await (await call('GET', `/v1/alerts/${hit?.id}`)).json()) as Alert;
    expect(detail.status).toBe('acknowledged');
    expect(detail.evidence).toHaveLength(evidence.length + 1);
    expect(detail.history?.map((h) => [h.action, h.status, h.note])).toEqual([
      ['raised', 'open', null],
      ['acknowledged', 'acknowledged', 'calling the customer back'],
      ['evidence_added', 'acknowledged', null],
    ]);
  });

  it('refuses to acknowledge a dismissed alert (409), and a dismissal of a dismissed alert changes nothing', async () => {
    const [hit] = await alerts(`&type=watchlist_hit&recordingId=${fraudCalls[2]?.recordingId}`);
    const dismissed = await call('POST', `/v1/alerts/${hit?.id}/dismiss`, { note: 'same family' });
    expect(((await dismissed.json()) as Alert).status).toBe('dismissed');
    const before = await counts();
    await expectProblem(await call('POST', `/v1/alerts/${hit?.id}/ack`), 409, 'conflict');
    expect((await call('POST', `/v1/alerts/${hit?.id}/dismiss`)).status).toBe(200);
    expect(await counts()).toEqual(before);
    await expectProblem(await call('POST', '/v1/alerts/not-a-uuid/ack'), 404, 'not-found');
    const bad = await expectProblem(await call('GET', '/v1/alerts?status=closed'), 400, 'validation');
    expect(bad.errors?.[0]?.path).toBe('query.status');
  });

  it('removal returns the identity to unknown and dismisses its open hits with the reason', async () => {
    const [entry] = ((await (await call('GET', '/v1/watchlist')).json()) as { items: { identityId: string }[] }).items;
    const identityId = entry?.identityId as string;
    const response = await call('DELETE', `/v1/watchlist/${identityId}`, { reason: 'cleared: the line was spoofed' });
    expect(response.status).toBe(204);
    const identity = (await (await call('GET', `/v1/identities/${identityId}`)).json()) as {
      kind: string;
      watchlisted: boolean;
    };
    expect(identity).toMatchObject({ kind: 'unknown', watchlisted: false });
    const hits = await alerts(`&type=watchlist_hit&identityId=${identityId}`);
    const byStatus = Object.groupBy(hits, (h) => h.status);
    // the acknowledged one is being worked on and stays; the dismissed one stays dismissed
    expect(byStatus.open ?? []).toHaveLength(0);
    expect(byStatus.acknowledged ?? []).toHaveLength(1);
    const dismissedNow = (byStatus.dismissed ?? []).length;
    expect(dismissedNow).toBe(hits.length - 1);
    const [one] = (byStatus.dismissed ?? []).filter((h) => h.recordingIds[0] === fraudCalls[3]?.recordingId);
    const detail = (await (await call('GET', `/v1/alerts/${one?.id}`)).json()) as Alert;
    expect(detail.history?.at(-1)).toMatchObject({ action: 'dismissed', note: 'cleared: the line was spoofed' });

    await expectProblem(await call('DELETE', `/v1/watchlist/${identityId}`), 404, 'not-found');
    expect(((await (await call('GET', '/v1/watchlist')).json()) as { items: unknown[] }).items).toHaveLength(0);
    expect(await listedCount(identityId)).toBe(0);
    expect(await listingDrift()).toEqual([]);
    // a later call of the voice raises nothing now
    const after = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, 12) }], 'victim-11');
    await analyseAll(database.db);
    expect(await alerts(`&type=watchlist_hit&recordingId=${after.recordingId}`)).toHaveLength(0);
  });
});

describe('the listed voiceprints', () => {
  it('follow every change of membership and of entries: merge, split, move, removal', async () => {
    const voices = [person(43, 'listed-a'), person(43, 'other-b'), person(43, 'other-c')];
    const stored: { recordingId: string; voiceprintId: string }[][] = [];
    for (const [v, voice] of voices.entries()) {
      stored.push([]);
      for (let c = 0; c < 3; c++) {
        const call = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(voice, 30 + c) }], `l-${v}-${c}`);
        stored[v]?.push({ recordingId: call.recordingId, voiceprintId: call.ids.speaker_0 as string });
      }
    }
    await analyseAll(database.db);
    const identityOf = async (voiceprintId: string) => {
      const [row] = await queryRows<{ id: string }>(
        database.db,
        sql`select identity_id as id from voiceprints where id = ${voiceprintId}`,
      );
      return row?.id as string;
    };
    const [a, b] = await Promise.all(stored.map((calls) => identityOf(calls[0]?.voiceprintId as string)));
    const listed = await call('POST', '/v1/watchlist', { identityId: a, reason: 'case 300' });
    expect(listed.status).toBe(201);
    expect(await listedCount(a as string)).toBe(3);
    expect(await listingDrift()).toEqual([]);

    // an unlisted identity merged into the listed one: its voiceprints are listed now
    expect((await call('POST', `/v1/identities/${a}/merge`, { from: [b], reason: 'same caller' })).status).toBe(200);
    expect(await listedCount(a as string)).toBe(6);
    expect(await listingDrift()).toEqual([]);
    // split off: the new identity is not listed, so its voiceprint leaves the listing
    const split = await call('POST', `/v1/identities/${a}/split`, {
      voiceprintIds: [stored[1]?.[0]?.voiceprintId],
      reason: 'a different caller',
    });
    expect(split.status).toBe(201);
    expect(await listedCount(a as string)).toBe(5);
    expect(await listingDrift()).toEqual([]);
    // moved in from an unlisted identity
    const moved = await call('POST', `/v1/identities/${a}/voiceprints`, {
      voiceprintIds: [stored[2]?.[0]?.voiceprintId],
      reason: 'same voice',
    });
    expect(moved.status).toBe(200);
    expect(await listedCount(a as string)).toBe(6);
    expect(await listingDrift()).toEqual([]);
    // the listed identity merged into an unlisted fraudster: the entry moves, and the listing with it
    const enrolled = await call('POST', '/v1/identities', {
      kind: 'fraudster',
      voiceprintIds: stored[2]?.slice(1).map((s) => s.voiceprintId),
      reason: 'the ring behind case 300',
    });
    expect(enrolled.status).toBe(201);
    const ring = ((await enrolled.json()) as { id: string }).id;
    expect(await listingDrift()).toEqual([]);
    expect((await call('POST', `/v1/identities/${ring}/merge`, { from: [a], reason: 'one ring' })).status).toBe(200);
    expect(await listedCount(a as string)).toBe(0);
    expect(await listedCount(ring)).toBe(8);
    expect(await listingDrift()).toEqual([]);
    expect((await call('DELETE', `/v1/watchlist/${ring}`, { reason: 'closed' })).status).toBe(204);
    expect(await listedCount(ring)).toBe(0);
    expect(await listingDrift()).toEqual([]);
  });
});

describe('a voiceprint in a customer identity', () => {
  it('is refused (409) with the way that works: enrol it as a fraudster, then list that', async () => {
    const [first, second] = customerCalls;
    const customer = await call('POST', '/v1/identities', {
      kind: 'customer',
      accountRef: 'acc-0',
      voiceprintIds: [first?.voiceprintId, second?.voiceprintId],
    });
    expect(customer.status).toBe(201);
    const refused = await expectProblem(
      await call('POST', '/v1/watchlist', { voiceprintId: second?.voiceprintId, reason: 'account takeover' }),
      409,
      'conflict',
    );
    expect(refused.detail).toContain('"kind": "fraudster"');
    const fraudster = await call('POST', '/v1/identities', {
      kind: 'fraudster',
      voiceprintIds: [second?.voiceprintId],
    });
    expect(fraudster.status).toBe(201);
    const { id } = (await fraudster.json()) as { id: string };
    const listed = await call('POST', '/v1/watchlist', { identityId: id, reason: 'account takeover' });
    expect(listed.status).toBe(201);
    // its own recording is a member's: an identity entry has no seed, so it is a hit
    expect(((await listed.json()) as { lookBack: { hits: number } }).lookBack.hits).toBeGreaterThanOrEqual(1);
  });
});

describe('the plans behind the watchlist and the alerts list', () => {
  /** EXPLAIN of `query` with sequential scans priced out: which index the planner can use. */
  async function plan(query: ReturnType<typeof alertListQuery>): Promise<string> {
    return withTransaction(database.db, async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      const rows = await queryRows<Record<string, string>>(tx, sql`explain ${query}`);
      return rows.map((r) => Object.values(r).join(' ')).join('\n');
    });
  }

  it('checks a new recording against the listed voices in one pass over listed_voiceprints', async () => {
    const rows = await queryRows<Record<string, string>>(
      database.db,
      sql`explain ${watchlistMatchesQuery(fraudCalls[0]?.recordingId as string, 0.5)}`,
    );
    const text = rows.map((r) => Object.values(r).join(' ')).join('\n');
    expect(text).toMatch(/Scan on listed_voiceprints/);
    // never the voiceprints of listed identities from the voiceprints table (a heap page each)
    expect(text).not.toMatch(/voiceprints_identity_idx/);
  });

  it('looks back in one exact pass over voiceprints, never an index walk', async () => {
    const unitText = (k: number) => `[${Array.from({ length: 192 }, (_, i) => (i === k ? 1 : 0)).join(',')}]`;
    const text = (
      await queryRows<Record<string, string>>(
        database.db,
        sql`explain ${withinReachOfIdentityQuery('00000000-0000-4000-8000-000000000000', [unitText(1), unitText(2)], 0.5)}`,
      )
    )
      .map((r) => Object.values(r).join(' '))
      .join('\n');
    expect(text).toMatch(/Seq Scan on voiceprints/);
    expect(text).not.toMatch(/voiceprints_embedding_hnsw/);
    // 150 calls of one voice, two of them an identity: the other 148 are all within reach, however
    // many more there are than any walk's list, and each names the member it is closest to
    const crowd = person(41, 'crowd');
    const ids: string[] = [];
    for (let c = 0; c < 150; c++) {
      const { ids: stored } = await storeCall(
        database.db,
        [{ label: 'speaker_0', unit: callOf(crowd, 1000 + c) }],
        `crowd-${c}`,
      );
      ids.push(stored.speaker_0 as string);
    }
    const enrolled = await call('POST', '/v1/identities', { kind: 'fraudster', voiceprintIds: ids.slice(0, 2) });
    expect(enrolled.status).toBe(201);
    const { id } = (await enrolled.json()) as { id: string };
    const found = await withTransaction(database.db, (tx) => withinReachOfIdentity(tx, id, 0.5));
    expect(found.near.map((n) => n.id).sort()).toEqual(ids.slice(2).sort());
    expect(new Set(found.near.map((n) => n.matchedVoiceprintId))).toEqual(new Set(ids.slice(0, 2)));
    const [{ n } = { n: 0 }] = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from voiceprints`,
    );
    expect(found.compared).toBe(n - 2);
    const closest = found.near.find((f) => f.id === ids[2]);
    const [row] = await queryRows<{ a: number; b: number }>(
      database.db,
      sql`select 1 - (x.embedding <=> a.embedding) as a, 1 - (x.embedding <=> b.embedding) as b
          from voiceprints x, voiceprints a, voiceprints b
          where x.id = ${ids[2]} and a.id = ${ids[0]} and b.id = ${ids[1]}`,
    );
    expect(closest?.matchedVoiceprintId).toBe(Number(row?.a) >= Number(row?.b) ? ids[0] : ids[1]);
    expect(closest?.similarity).toBeCloseTo(Math.max(Number(row?.a), Number(row?.b)), 5);
  });

  it('lists alerts by type, status, account and recording through their indexes', async () => {
    expect(await plan(alertListQuery({ type: 'watchlist_hit' }, 51))).toMatch(/alerts_type_created_idx/);
    expect(await plan(alertListQuery({ status: 'open' }, 51))).toMatch(/alerts_status_created_idx/);
    expect(await plan(alertListQuery({ accountRef: 'victim-1' }, 51))).toMatch(/alerts_account_refs_idx/);
    expect(await plan(alertListQuery({ recordingId: fraudCalls[0]?.recordingId as string }, 51))).toMatch(
      /alerts_recording_ids_idx/,
    );
    expect(await plan(alertListQuery({}, 51))).toMatch(/alerts_created_idx/);
  });
});
