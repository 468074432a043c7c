import { asc, count, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR, SYSTEM_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { auditEvents, identities, identityEvents, recordings, voiceprints } from '../src/db/schema.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { createIdentity, moveVoiceprints } from '../src/voices/identities/membership.ts';
import { nearestIdentitiesQuery } from '../src/voices/identities/queries.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { type SeededVoiceprint, seedVoiceprints } from './support/identities.ts';
import { must } from './support/must.ts';

/**
 * The identity views and an analyst's changes over HTTP, on 16 synthetic calls (seed 11): four
 * customers, three fraudsters (fraud-001 and fraud-003 mostly spoofed in some calls), three agents.
 */

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let reader: { key: string; id: string };
let writer: { key: string; id: string };
let seeded: SeededVoiceprint[];

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  reader = await createApiKey(database.db, { scope: 'read', name: 'analyst (read)' }, CLI_ACTOR);
  writer = await createApiKey(database.db, { scope: 'write', name: 'analyst' }, CLI_ACTOR);
  ({ voiceprints: seeded } = await seedVoiceprints(database.db, { count: 16, seed: 11 }));
});
afterAll(async () => {
  await database?.close();
});

type View = {
  id: string;
  kind: string;
  name: string | null;
  accountRef: string | null;
  accountRefs: string[];
  recordingCount: number;
  voiceprintCount: number;
  firstSeenAt: string;
  lastSeenAt: string;
  watchlisted: boolean;
  nearest: { identityId: string; similarity: number }[];
  mergedInto: string | null;
  retiredAt: string | null;
  analystEditedAt: string | null;
  origin: string;
};
type Event = {
  action: string;
  voiceprintIds: string[];
  relatedIdentityIds: string[];
  reason: string | null;
  source: string;
  keyId: string | null;
  createdAt: string;
};

const get = (url: string, key = reader.key) => app.request(url, { headers: { authorization: `Bearer ${key}` } });
const post = (url: string, body: unknown, key = writer.key) =>
  app.request(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** The voiceprints of one speaker, in call order; `where` narrows them. */
const of = (speakerId: string, where: (v: SeededVoiceprint) => boolean = () => true) =>
  seeded.filter((v) => v.speakerId === speakerId && where(v));
const ids = (vs: SeededVoiceprint[]) => vs.map((v) => v.id);
const spoofed = (v: SeededVoiceprint) => (v.meanPSpoofed ?? 0) >= 0.5;

async function created(body: unknown): Promise<View> {
  const response = await post('/v1/identities', body);
  expect(response.status, await response.clone().text()).toBe(201);
  return (await response.json()) as View;
}
async function history(id: string): Promise<Event[]> {
  const response = await get(`/v1/identities/${id}/history?limit=500`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { items: Event[] }).items;
}
async function view(id: string): Promise<View> {
  const response = await get(`/v1/identities/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as View;
}
async function assignment(voiceprintIds: string[]) {
  const rows = await database.db
    .select({ id: voiceprints.id, identityId: voiceprints.identityId, assignedBy: voiceprints.assignedBy })
    .from(voiceprints)
    .where(sql`${voiceprints.id} = any(${sql.param(voiceprintIds)}::uuid[])`);
  return new Map(rows.map((r) => [r.id, r]));
}
/** An unknown identity as online assignment makes them (the only writer: membership.ts). */
function unknownIdentity(voiceprintIds: string[]): Promise<string> {
  return withTransaction(database.db, (tx) =>
    createIdentity(tx, {
      kind: 'unknown',
      origin: 'online',
      voiceprintIds,
      assignedBy: 'online',
      action: 'seeded',
      actor: SYSTEM_ACTOR,
    }),
  );
}

/** Everything a change could touch: refused requests must leave all of it as it was. */
async function snapshot() {
  const [audit] = await database.db.select({ n: count() }).from(auditEvents);
  return {
    identities: await database.db.select().from(identities).orderBy(asc(identities.id)),
    events: (await database.db.select({ n: count() }).from(identityEvents))[0]?.n,
    assignments: await database.db
      .select({ id: voiceprints.id, identityId: voiceprints.identityId, at: voiceprints.assignedAt })
      .from(voiceprints)
      .orderBy(asc(voiceprints.id)),
    audit: audit?.n,
  };
}
async function auditSince(before: number, keyId?: string) {
  const rows = await database.db.select().from(auditEvents).orderBy(asc(auditEvents.createdAt), asc(auditEvents.id));
  return rows.slice(before).filter((row) => keyId === undefined || row.keyId === keyId);
}
const auditCount = async () => (await database.db.select({ n: count() }).from(auditEvents))[0]?.n ?? 0;

describe(`identities on ${engine}`, () => {
  it('a recording detail shows each voiceprint unassigned, its utterances with id and upstreamId, meta as stored', async () => {
    const voiceprint = must(of('cust-0003')[0]);
    const meta = { queue: 'cards', agent: 'A-17', nested: { tags: ['vip', 2], empty: null } };
    await database.db.update(recordings).set({ meta }).where(eq(recordings.id, voiceprint.recordingId));
    const response = await get(`/v1/recordings/${voiceprint.recordingId}`);
    expect(response.status).toBe(200);
    const detail = (await response.json()) as {
      meta: unknown;
      utterances: { id: string; upstreamId: string }[];
      voiceprints: { id: string; speakerLabel: string; identityId: string | null; identityKind: string | null }[];
    };
    expect(detail.meta).toEqual(meta);
    expect(detail.utterances.length).toBeGreaterThan(0);
    for (const u of detail.utterances) {
      expect(u.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(u.upstreamId).toMatch(/^\d+$/);
    }
    expect(detail.voiceprints).toContainEqual(
      expect.objectContaining({
        id: voiceprint.id,
        speakerLabel: voiceprint.speakerLabel,
        identityId: null,
        identityKind: null,
      }),
    );
  });

  it('enrols a customer from its voiceprints: 201, the view, its history and the audit entry; recordings name it', async () => {
    const mine = of('cust-0003');
    expect(mine.length).toBeGreaterThanOrEqual(4);
    const before = await auditCount();
    const response = await post('/v1/identities', {
      kind: 'customer',
      name: 'Customer three',
      accountRef: 'acc-0003',
      voiceprintIds: ids(mine),
      reason: 'enrolled at the branch',
    });
    expect(response.status).toBe(201);
    const identity = (await response.json()) as View;
    expect(response.headers.get('location')).toBe(`/v1/identities/${identity.id}`);
    const callTimes = mine.map((v) => must(v.callAt)).sort();
    expect(identity).toMatchObject({
      kind: 'customer',
      name: 'Customer three',
      accountRef: 'acc-0003',
      accountRefs: ['acc-0003'],
      recordingCount: mine.length,
      voiceprintCount: mine.length,
      firstSeenAt: callTimes[0],
      lastSeenAt: callTimes.at(-1),
      watchlisted: false,
      mergedInto: null,
      origin: 'analyst',
    });
    expect(identity.analystEditedAt).not.toBeNull();
    const events = await history(identity.id);
    expect(events).toEqual([
      expect.objectContaining({
        action: 'created',
        reason: 'enrolled at the branch',
        source: 'api',
        keyId: writer.id,
        voiceprintIds: expect.arrayContaining(ids(mine)),
      }),
    ]);
    expect(Date.now() - Date.parse(must(events[0]).createdAt)).toBeLessThan(60_000);
    const audit = await auditSince(before);
    expect(audit[0]).toMatchObject({
      action: 'identity.create',
      source: 'api',
      keyId: writer.id,
      requestId: response.headers.get('x-request-id'),
      resultCount: 1,
    });
    expect(audit[0]?.targetIds).toEqual(expect.arrayContaining([identity.id, ...ids(mine)]));
    const assigned = await assignment(ids(mine));
    for (const v of mine) expect(assigned.get(v.id)).toMatchObject({ identityId: identity.id, assignedBy: 'analyst' });

    const detail = (await (await get(`/v1/recordings/${must(mine[0]).recordingId}`)).json()) as {
      voiceprints: { id: string; identityId: string | null; identityKind: string | null }[];
    };
    expect(detail.voiceprints.find((v) => v.id === must(mine[0]).id)).toMatchObject({
      identityId: identity.id,
      identityKind: 'customer',
    });
  });

  it('refuses a customer without accountRef, too little speech, a mostly spoofed voiceprint; changes nothing', async () => {
    const customer = of('cust-0001');
    const before = await snapshot();
    const noAccount = await expectProblem(
      await post('/v1/identities', { kind: 'customer', voiceprintIds: ids(customer) }),
      400,
      'validation',
    );
    expect(noAccount.errors?.map((e) => e.path)).toEqual(['json.accountRef']);

    const strict = testApp(database.db, { voices: { ...DEFAULT_VOICE_SETTINGS, enrolMinSpeechS: 1000 } });
    const little = await expectProblem(
      await strict.request('/v1/identities', {
        method: 'POST',
        headers: { authorization: `Bearer ${writer.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'fraudster', voiceprintIds: ids(customer) }),
      }),
      400,
      'validation',
    );
    const speech = customer.reduce((sum, v) => sum + v.speechSeconds, 0);
    expect(little.errors?.map((e) => e.path)).toEqual(['json.voiceprintIds']);
    expect(little.detail).toContain(`${speech.toFixed(1)} s of speech`);
    expect(little.detail).toContain('1000 s');

    const fake = must(seeded.find(spoofed), 'a mostly spoofed voiceprint');
    for (const kind of ['customer', 'staff']) {
      const refused = await expectProblem(
        await post('/v1/identities', { kind, accountRef: 'acc-0001', voiceprintIds: [...ids(customer), fake.id] }),
        409,
        'conflict',
      );
      expect(refused.detail).toContain(fake.id);
      expect(refused.detail).toContain('spoofed');
    }

    const unknownId = '00000000-0000-4000-8000-000000000001';
    const missing = await expectProblem(
      await post('/v1/identities', { kind: 'fraudster', voiceprintIds: [...ids(customer), unknownId, 'nope'] }),
      404,
      'not-found',
    );
    expect(missing.detail).toContain(unknownId);
    expect(missing.detail).toContain('nope');
    expect(await snapshot()).toEqual(before);

    await expectProblem(
      await post('/v1/identities', { kind: 'fraudster', voiceprintIds: ids(customer) }, reader.key),
      403,
      'forbidden',
    );
    // a fraudster's identity takes spoofed speech
    const fraudster = await created({ kind: 'fraudster', voiceprintIds: [fake.id], reason: 'cloned voice' });
    expect(fraudster.voiceprintCount).toBe(1);
  });

  it('moves voiceprints in: history on both sides; refuses one already in it, emptying a source, the spoof rule', async () => {
    const [first, second, third] = of('fraud-002');
    const target = await created({ kind: 'fraudster', name: 'F2', voiceprintIds: [must(first).id] });
    const holder = await unknownIdentity([must(second).id, must(third).id]);

    const before = await auditCount();
    const response = await post(`/v1/identities/${target.id}/voiceprints`, {
      voiceprintIds: [must(second).id],
      reason: 'same voice, heard again',
    });
    expect(response.status).toBe(200);
    expect((await response.json()) as View).toMatchObject({ id: target.id, voiceprintCount: 2 });
    const into = await history(target.id);
    expect(into[0]).toMatchObject({
      action: 'moved_in',
      voiceprintIds: [must(second).id],
      relatedIdentityIds: [holder],
      reason: 'same voice, heard again',
      keyId: writer.id,
      source: 'api',
    });
    const out = await history(holder);
    expect(out[0]).toMatchObject({
      action: 'moved_out',
      voiceprintIds: [must(second).id],
      relatedIdentityIds: [target.id],
      reason: 'same voice, heard again',
      keyId: writer.id,
    });
    expect((await view(holder)).analystEditedAt).not.toBeNull();
    expect((await auditSince(before, writer.id)).map((a) => [a.action, a.keyId])).toEqual([
      ['identity.move', writer.id],
    ]);

    const customer = await customerOf('acc-0003');
    const fake = must(of('fraud-001', spoofed)[1], 'a second spoofed fraud-001 voiceprint');
    const unchanged = await snapshot();
    const already = await expectProblem(
      await post(`/v1/identities/${target.id}/voiceprints`, { voiceprintIds: [must(first).id], reason: 'again' }),
      409,
      'conflict',
    );
    expect(already.detail).toContain(must(first).id);
    const emptying = await expectProblem(
      await post(`/v1/identities/${target.id}/voiceprints`, { voiceprintIds: [must(third).id], reason: 'all of it' }),
      409,
      'conflict',
    );
    expect(emptying.detail).toContain(holder);
    expect(emptying.detail).toContain('merge');
    const spoof = await expectProblem(
      await post(`/v1/identities/${customer.id}/voiceprints`, { voiceprintIds: [fake.id], reason: 'sounds alike' }),
      409,
      'conflict',
    );
    expect(spoof.detail).toContain(fake.id);
    const unknownId = '00000000-0000-4000-8000-000000000002';
    const missing = await expectProblem(
      await post(`/v1/identities/${target.id}/voiceprints`, { voiceprintIds: [unknownId], reason: 'x' }),
      404,
      'not-found',
    );
    expect(missing.detail).toContain(unknownId);
    const noReason = await expectProblem(
      await post(`/v1/identities/${target.id}/voiceprints`, { voiceprintIds: [must(third).id] }),
      400,
      'validation',
    );
    expect(noReason.errors?.map((e) => e.path)).toEqual(['json.reason']);
    expect(await snapshot()).toEqual(unchanged);

    // unassigned voiceprints move in too
    const loose = must(of('fraud-003', (v) => !spoofed(v))[0]);
    const moved = await post(`/v1/identities/${target.id}/voiceprints`, { voiceprintIds: [loose.id], reason: 'heard' });
    expect(moved.status).toBe(200);
    expect((await assignment([loose.id])).get(loose.id)?.identityId).toBe(target.id);
  });

  it('merges identities: members move, the merged ones point at the target and leave the list; refusals change nothing', async () => {
    const agent = of('agent-002');
    const staff = await created({ kind: 'staff', name: 'Agent two', voiceprintIds: [must(agent[0]).id] });
    const u1 = await unknownIdentity([must(agent[1]).id, must(agent[2]).id]);
    const u2 = await unknownIdentity([must(agent[3]).id]);
    const before = await auditCount();
    const response = await post(`/v1/identities/${staff.id}/merge`, { from: [u1, u2], reason: 'same agent' });
    expect(response.status).toBe(200);
    expect((await response.json()) as View).toMatchObject({ id: staff.id, kind: 'staff', voiceprintCount: 4 });
    expect((await auditSince(before, writer.id)).map((a) => [a.action, a.keyId, a.targetIds])).toEqual([
      ['identity.merge', writer.id, [staff.id, u1, u2]],
    ]);
    for (const merged of [u1, u2]) {
      const gone = await view(merged);
      expect(gone).toMatchObject({ id: merged, mergedInto: staff.id, voiceprintCount: 0, nearest: [] });
      expect(gone.retiredAt).not.toBeNull();
      expect(gone.analystEditedAt).not.toBeNull();
      expect((await history(merged)).map((e) => [e.action, e.relatedIdentityIds, e.reason, e.keyId])).toEqual(
        expect.arrayContaining([
          ['merged_into', [staff.id], 'same agent', writer.id],
          ['moved_out', [staff.id], 'same agent', writer.id],
        ]),
      );
    }
    expect((await history(staff.id))[0]).toMatchObject({
      action: 'merged',
      relatedIdentityIds: [u1, u2],
      voiceprintIds: expect.arrayContaining(ids(agent.slice(1, 4))),
      reason: 'same agent',
      keyId: writer.id,
    });
    const live = await allIdentities('');
    expect(live).toContain(staff.id);
    expect(live).not.toContain(u1);
    expect(await allIdentities('includeRetired=true')).toEqual(expect.arrayContaining([u1, u2]));

    const unchanged = await snapshot();
    const itself = await expectProblem(
      await post(`/v1/identities/${staff.id}/merge`, { from: [staff.id], reason: 'x' }),
      400,
      'validation',
    );
    expect(itself.errors?.map((e) => e.path)).toEqual(['json.from']);
    const unknownId = '00000000-0000-4000-8000-000000000003';
    expect(
      (
        await expectProblem(
          await post(`/v1/identities/${staff.id}/merge`, { from: [unknownId], reason: 'x' }),
          404,
          'not-found',
        )
      ).detail,
    ).toContain(unknownId);
    await expectProblem(await post(`/v1/identities/${unknownId}/merge`, { from: [u1], reason: 'x' }), 404, 'not-found');
    const again = await expectProblem(
      await post(`/v1/identities/${staff.id}/merge`, { from: [u1], reason: 'x' }),
      409,
      'conflict',
    );
    expect(again.detail).toContain('already merged');
    const customer = await customerOf('acc-0003');
    const kinds = await expectProblem(
      await post(`/v1/identities/${staff.id}/merge`, { from: [customer.id], reason: 'x' }),
      409,
      'conflict',
    );
    expect(kinds.detail).toContain(customer.id);
    const unknownTarget = await unknownIdentity([must(of('agent-001')[0]).id]);
    const mid = await snapshot();
    const intoUnknown = await expectProblem(
      await post(`/v1/identities/${unknownTarget}/merge`, { from: [customer.id], reason: 'x' }),
      409,
      'conflict',
    );
    expect(intoUnknown.detail).toContain(`merge ${unknownTarget} into ${customer.id}`);
    const fakes = await unknownIdentity(ids(of('fraud-003', spoofed)));
    const withFakes = await snapshot();
    const spoof = await expectProblem(
      await post(`/v1/identities/${customer.id}/merge`, { from: [fakes], reason: 'x' }),
      409,
      'conflict',
    );
    expect(spoof.detail).toContain('spoofed');
    expect(await snapshot()).toEqual(withFakes);
    expect(mid.identities.length).toBe(unchanged.identities.length + 1);
  });

  it('splits voiceprints off into a new identity of the same kind and account; refuses all, none, or others', async () => {
    const customer = await customerOf('acc-0003');
    const members = ids(of('cust-0003'));
    const before = await auditCount();
    const response = await post(`/v1/identities/${customer.id}/split`, {
      voiceprintIds: [must(members[0])],
      reason: 'a relative on the line',
    });
    expect(response.status).toBe(201);
    const part = (await response.json()) as View;
    expect(part).toMatchObject({ kind: 'customer', accountRef: 'acc-0003', voiceprintCount: 1, origin: 'analyst' });
    expect((await view(customer.id)).voiceprintCount).toBe(members.length - 1);
    expect((await history(part.id))[0]).toMatchObject({
      action: 'split',
      relatedIdentityIds: [customer.id],
      voiceprintIds: [members[0]],
      reason: 'a relative on the line',
      keyId: writer.id,
    });
    expect((await history(customer.id))[0]).toMatchObject({
      action: 'moved_out',
      relatedIdentityIds: [part.id],
      reason: 'a relative on the line',
    });
    expect((await auditSince(before, writer.id)).map((a) => a.action)).toEqual(['identity.split']);

    const unchanged = await snapshot();
    const all = await expectProblem(
      await post(`/v1/identities/${customer.id}/split`, { voiceprintIds: members.slice(1), reason: 'x' }),
      409,
      'conflict',
    );
    expect(all.detail).toContain('empty');
    const none = await expectProblem(
      await post(`/v1/identities/${customer.id}/split`, { voiceprintIds: [], reason: 'x' }),
      400,
      'validation',
    );
    expect(none.errors?.map((e) => e.path)).toEqual(['json.voiceprintIds']);
    const others = await expectProblem(
      await post(`/v1/identities/${customer.id}/split`, { voiceprintIds: [must(members[0])], reason: 'x' }),
      409,
      'conflict',
    );
    expect(others.detail).toContain(members[0]);
    expect(others.detail).toContain('voiceprintIds');
    expect(await snapshot()).toEqual(unchanged);

    // an unknown identity's part stays unknown, and both are an analyst's from now on
    const agent = ids(of('agent-003'));
    const unknown = await unknownIdentity(agent.slice(0, 3));
    const split = await post(`/v1/identities/${unknown}/split`, { voiceprintIds: [agent[0]], reason: 'two agents' });
    expect(split.status).toBe(201);
    const piece = (await split.json()) as View;
    expect(piece).toMatchObject({ kind: 'unknown', voiceprintCount: 1 });
    expect(piece.analystEditedAt).not.toBeNull();
    expect((await view(unknown)).analystEditedAt).not.toBeNull();
  });

  it('lists and pages identities, their voiceprints and history; filters by kind and account', async () => {
    const everyone = await allIdentities('', 2);
    const [total] = await database.db
      .select({ n: count() })
      .from(identities)
      .where(sql`${identities.retiredAt} is null and ${identities.mergedInto} is null`);
    expect(everyone.length).toBe(total?.n);
    expect(new Set(everyone).size).toBe(everyone.length);
    const customers = (await (await get('/v1/identities?kind=customer')).json()) as { items: View[] };
    expect(customers.items.length).toBeGreaterThan(0);
    expect(customers.items.every((i) => i.kind === 'customer')).toBe(true);
    // acc-0001's calls: the fraud-003 and fraud-001 voices were heard there
    const onAccount = (await (await get('/v1/identities?accountRef=acc-0001')).json()) as { items: View[] };
    expect(onAccount.items.length).toBeGreaterThan(0);
    for (const i of onAccount.items) expect(i.accountRefs).toContain('acc-0001');
    const heard = await queryRows<{ id: string }>(
      database.db,
      sql`select distinct i.id from identities i join voiceprints v on v.identity_id = i.id
          join recordings r on r.id = v.recording_id
          where r.account_ref = 'acc-0001' and i.retired_at is null`,
    );
    expect(onAccount.items.map((i) => i.id).sort()).toEqual(heard.map((h) => h.id).sort());

    const customer = await customerOf('acc-0003');
    const pages: { voiceprintId: string; callAt: string }[] = [];
    let cursor: string | null = null;
    do {
      const response = await get(
        `/v1/identities/${customer.id}/voiceprints?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(response.status).toBe(200);
      const page = (await response.json()) as { items: typeof pages; nextCursor: string | null };
      expect(page.items.length).toBe(1);
      pages.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages.length).toBe(customer.voiceprintCount);
    expect(pages.map((p) => p.callAt)).toEqual(
      pages
        .map((p) => p.callAt)
        .sort()
        .reverse(),
    );
    const [first] = (await (await get(`/v1/identities/${customer.id}/voiceprints`)).json()).items as Record<
      string,
      unknown
    >[];
    expect(Object.keys(must(first)).sort()).toEqual(
      [
        'voiceprintId',
        'recordingId',
        'speakerLabel',
        'accountRef',
        'channel',
        'callAt',
        'speechSeconds',
        'meanPSpoofed',
        'assignedBy',
        'assignedAt',
      ].sort(),
    );

    const full = await history(customer.id);
    const paged: Event[] = [];
    cursor = null;
    do {
      const response = await get(`/v1/identities/${customer.id}/history?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      const page = (await response.json()) as { items: Event[]; nextCursor: string | null };
      paged.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(full);
    expect(full.map((e) => e.action)).toEqual(['moved_out', 'created']);

    const badCursor = await expectProblem(await get('/v1/identities?cursor=bogus!'), 400, 'validation');
    expect(badCursor.errors?.map((e) => e.path)).toEqual(['query.cursor']);
    await expectProblem(await get('/v1/identities?limit=501'), 400, 'validation');
    const proposed = await expectProblem(await get('/v1/identities?proposed=customer'), 400, 'validation');
    expect(proposed.errors?.map((e) => e.path)).toEqual(['query.proposed']);
    // nothing here is proposed as staff (agents need 10 accounts in 30 days)
    expect(((await (await get('/v1/identities?proposed=staff')).json()) as { items: unknown[] }).items).toEqual([]);
  });

  it('nearest: the 5 live identities with the most similar centroids, itself and merged ones left out', async () => {
    const customer = await customerOf('acc-0003');
    const exact = await queryRows<{ id: string; similarity: number }>(
      database.db,
      sql`select n.id, 1 - (n.centroid <=> c.centroid) as similarity
          from identities n, identities c
          where c.id = ${customer.id} and n.id <> c.id and n.retired_at is null and n.centroid is not null
          order by 1 - (n.centroid <=> c.centroid) desc limit 5`,
    );
    expect(exact.length).toBe(5);
    const nearest = (await view(customer.id)).nearest;
    expect(nearest.map((n) => n.identityId)).toEqual(exact.map((e) => e.id));
    nearest.forEach((n, i) => {
      expect(n.similarity).toBeCloseTo(Number(must(exact[i]).similarity), 5);
    });
    // the split-off part of the same customer is the same voice: the nearest of all
    const part = must((await allIdentitiesFull('kind=customer&accountRef=acc-0003')).find((i) => i.id !== customer.id));
    expect(must(nearest[0]).identityId).toBe(part.id);
    expect(must(nearest[0]).similarity).toBeGreaterThan(0.4);

    // the query is one the HNSW index answers (on this small table the planner would rather scan)
    const plan = await withTransaction(database.db, async (tx) => {
      await tx.execute(sql`set local enable_seqscan = off`);
      const rows = await queryRows<Record<string, string>>(tx, sql`explain ${nearestIdentitiesQuery(customer.id, 5)}`);
      return rows.map((r) => Object.values(r).join(' ')).join('\n');
    });
    expect(plan).toMatch(/Index Scan using identities_centroid_hnsw/);
  });

  it('audits every view with the key, the request and the ids it showed', async () => {
    const customer = await customerOf('acc-0003');
    const before = await auditCount();
    const responses = [
      await get(`/v1/identities/${customer.id}`),
      await get('/v1/identities?kind=customer'),
      await get(`/v1/identities/${customer.id}/voiceprints`),
      await get(`/v1/identities/${customer.id}/history`),
    ];
    const entries = await auditSince(before);
    expect(entries.map((e) => [e.action, e.source, e.keyId, e.requestId])).toEqual(
      ['identity.view', 'identity.list', 'identity.voiceprints', 'identity.history'].map((action, i) => [
        action,
        'api',
        reader.id,
        must(responses[i]).headers.get('x-request-id'),
      ]),
    );
    const shown = (await (await get(`/v1/identities/${customer.id}/voiceprints`)).json()) as {
      items: { voiceprintId: string }[];
    };
    expect(must(entries[2]).targetIds).toEqual([customer.id, ...shown.items.map((v) => v.voiceprintId)]);
    expect(must(entries[0]).targetIds[0]).toBe(customer.id);
  });

  it('enrols from voiceprints of other identities: history on both sides, an emptied one merged into the new', async () => {
    const [v1, v2, v3] = ids(of('cust-0001'));
    const holder = await unknownIdentity([must(v1), must(v2), must(v3)]);
    const customer = await created({
      kind: 'customer',
      accountRef: 'acc-0001',
      voiceprintIds: [v1, v2],
      reason: 'called in, verified',
    });
    expect((await history(customer.id))[0]).toMatchObject({ action: 'created', relatedIdentityIds: [holder] });
    const left = await view(holder);
    expect(left).toMatchObject({ voiceprintCount: 1, mergedInto: null, retiredAt: null });
    expect(left.analystEditedAt).not.toBeNull();
    expect((await history(holder))[0]).toMatchObject({
      action: 'moved_out',
      voiceprintIds: expect.arrayContaining([v1, v2]),
      relatedIdentityIds: [customer.id],
      reason: 'called in, verified',
      keyId: writer.id,
    });

    // the last voiceprint too: the holder is left empty, and points at the identity that took it
    const staff = await created({ kind: 'staff', voiceprintIds: [v3, ...ids(of('agent-001')).slice(1)], reason: 'r' });
    const emptied = await view(holder);
    expect(emptied).toMatchObject({ voiceprintCount: 0, mergedInto: staff.id, nearest: [] });
    expect(emptied.retiredAt).not.toBeNull();
    expect((await history(holder)).map((e) => e.action).slice(0, 2)).toEqual(
      expect.arrayContaining(['moved_out', 'merged_into']),
    );
  });

  it('membership refuses to put voiceprints into a merged identity (a writer that chose it before the merge)', async () => {
    const [merged] = await database.db
      .select({ id: identities.id })
      .from(identities)
      .where(sql`${identities.mergedInto} is not null`)
      .limit(1);
    const loose = must(of('cust-0002')[0], 'an unassigned voiceprint');
    const before = await snapshot();
    await expect(
      withTransaction(database.db, (tx) =>
        moveVoiceprints(tx, must(merged).id, [loose.id], {
          actor: SYSTEM_ACTOR,
          assignedBy: 'online',
          action: 'joined',
        }),
      ),
    ).rejects.toThrow(/was merged into .*: it takes no voiceprints/);
    expect(await snapshot()).toEqual(before);
  });

  it('answers 404 for unknown and malformed ids on every endpoint, without an audit entry', async () => {
    const before = await auditCount();
    for (const id of ['00000000-0000-4000-8000-000000000009', 'not-a-uuid']) {
      await expectProblem(await get(`/v1/identities/${id}`), 404, 'not-found');
      await expectProblem(await get(`/v1/identities/${id}/voiceprints`), 404, 'not-found');
      await expectProblem(await get(`/v1/identities/${id}/history`), 404, 'not-found');
      const vp = must(seeded[0]).id;
      await expectProblem(
        await post(`/v1/identities/${id}/merge`, { from: [must(seeded[0]).id], reason: 'x' }),
        404,
        'not-found',
      );
      await expectProblem(
        await post(`/v1/identities/${id}/split`, { voiceprintIds: [vp], reason: 'x' }),
        404,
        'not-found',
      );
      await expectProblem(
        await post(`/v1/identities/${id}/voiceprints`, { voiceprintIds: [vp], reason: 'x' }),
        404,
        'not-found',
      );
    }
    expect(await auditCount()).toBe(before);
  });
});

async function customerOf(accountRef: string): Promise<View> {
  const [row] = await database.db
    .select({ id: identities.id })
    .from(identities)
    .where(
      sql`${identities.kind} = 'customer' and ${identities.accountRef} = ${accountRef} and ${identities.name} is not null`,
    )
    .orderBy(asc(identities.createdAt));
  return view(must(row, `the customer of ${accountRef}`).id);
}

async function allIdentitiesFull(query: string, limit = 500): Promise<View[]> {
  const items: View[] = [];
  let cursor: string | null = null;
  do {
    const response = await get(
      `/v1/identities?limit=${limit}${query ? `&${query}` : ''}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    expect(response.status).toBe(200);
    const page = (await response.json()) as { items: View[]; nextCursor: string | null };
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

async function allIdentities(query: string, limit = 500): Promise<string[]> {
  return (await allIdentitiesFull(query, limit)).map((i) => i.id);
}
