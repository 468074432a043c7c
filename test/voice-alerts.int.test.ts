import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR, SYSTEM_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { refreshCalibration } from '../src/voices/calibration.ts';
import { createIdentity } from '../src/voices/identities/membership.ts';
import { scanVoiceReuse } from '../src/voices/reuse/scan.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { analyseAll, callOf, person, storeCall } from './support/identity-calls.ts';

/**
 * Voice reuse, staff proposals and decisions, enrolment at intake and the account view, through
 * the analysis steps and the HTTP API on a real database: a fraudster on three accounts inside and
 * outside the 30-day window, an agent heard on 50 accounts before and after being confirmed staff,
 * a proposal rejected for good, a customer enrolled from calls authenticated by other means.
 */

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let writer: { key: string; id: string };

const DAY = 86_400_000;
const start = Date.UTC(2026, 2, 1);
const at = (days: number) => new Date(start + days * DAY);

type Alert = {
  id: string;
  type: string;
  status: string;
  identityId: string;
  recordingIds: string[];
  accountRefs: string[];
};
type Identity = { id: string; kind: string; staffProposal?: { evidence: { accounts: number } } };

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
const json = async <T>(response: Response): Promise<T> => {
  expect(response.status).toBeLessThan(300);
  return (await response.json()) as T;
};
const reuseAlerts = async (identityId: string) =>
  (await json<{ items: Alert[] }>(await call('GET', `/v1/alerts?type=voice_reuse&identityId=${identityId}`))).items;
const identityOfVoiceprint = async (voiceprintId: string) => {
  const [row] = await queryRows<{ identityId: string | null }>(
    database.db,
    sql`select identity_id as "identityId" from voiceprints where id = ${voiceprintId}`,
  );
  return row?.identityId ?? null;
};
const proposals = async () =>
  (await json<{ items: Identity[] }>(await call('GET', '/v1/identities?proposed=staff'))).items;

/** `calls` two-speaker contact-centre calls of `agent`, each with a new customer on a new account. */
async function agentCalls(agent: number[], name: string, calls: number, firstDay: number, offset = 0) {
  const stored: { recordingId: string; agent: string }[] = [];
  for (let c = offset; c < offset + calls; c++) {
    const customer = person(51, `${name}-caller-${c}`);
    const { recordingId, ids } = await storeCall(
      database.db,
      [
        { label: 'speaker_0', unit: callOf(customer, 1) },
        { label: 'speaker_1', unit: callOf(agent, c) },
      ],
      `${name}-acc-${c}`,
      { callAt: new Date(at(firstDay).getTime() + (c - offset) * (DAY / 3)), channel: 'contact-centre' },
    );
    stored.push({ recordingId, agent: ids.speaker_1 as string });
  }
  await analyseAll(database.db);
  return stored;
}

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  writer = await createApiKey(database.db, { scope: 'write', name: 'fraud team' }, CLI_ACTOR);
});
afterAll(async () => {
  await database?.close();
});

/**
 * Three calls (`unitOf(i)`, on accounts `${name}-0..2`, days 0, 5 and 10) put into one identity as
 * reclustering would: formed from calls whose analysis is done, so no step saw them together.
 */
async function reclusteredIdentity(name: string, unitOf: (i: number) => number[]): Promise<string> {
  const voiceprintIds: string[] = [];
  for (const [i, day] of [0, 5, 10].entries()) {
    const { ids } = await storeCall(database.db, [{ label: 'speaker_0', unit: unitOf(i) }], `${name}-${i}`, {
      callAt: at(day),
    });
    voiceprintIds.push(ids.speaker_0 as string);
  }
  await database.db.execute(sql`update recording_events set status = 'done'`);
  return withTransaction(database.db, (tx) =>
    createIdentity(tx, {
      kind: 'unknown',
      origin: 'recluster',
      voiceprintIds,
      assignedBy: 'recluster',
      action: 'created',
      actor: SYSTEM_ACTOR,
    }),
  );
}

describe(`voice reuse on ${engine}`, () => {
  it('raises voice_reuse for one voice on 3 accounts within 30 days, and adds a later call to the same alert', async () => {
    const fraudster = person(51, 'fraudster');
    const calls = [];
    for (const [i, day] of [0, 9, 20].entries()) {
      calls.push(
        await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, i) }], `victim-${i}`, {
          callAt: at(day),
          channel: 'ivr',
        }),
      );
      await analyseAll(database.db);
    }
    const identityId = (await identityOfVoiceprint(calls[0]?.ids.speaker_0 as string)) as string;
    expect(identityId).not.toBeNull();
    const [alert, ...others] = await reuseAlerts(identityId);
    expect(others).toHaveLength(0);
    expect(alert).toMatchObject({ status: 'open', accountRefs: ['victim-0', 'victim-1', 'victim-2'] });
    expect(alert?.recordingIds.sort()).toEqual(calls.map((c) => c.recordingId).sort());

    const fourth = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(fraudster, 3) }], 'victim-3', {
      callAt: at(25),
    });
    await analyseAll(database.db);
    const [updated, ...again] = await reuseAlerts(identityId);
    expect(again).toHaveLength(0);
    expect(updated?.id).toBe(alert?.id);
    expect(updated?.recordingIds).toContain(fourth.recordingId);
    expect(updated?.accountRefs).toEqual(['victim-0', 'victim-1', 'victim-2', 'victim-3']);
  });

  it('after reclustering, finds reuse in an identity no step saw whole (scanVoiceReuse)', async () => {
    const voice = person(51, 'scattered');
    const identityId = await reclusteredIdentity('scattered', (i) => callOf(voice, i));
    expect(await reuseAlerts(identityId)).toHaveLength(0);
    expect(await scanVoiceReuse(database.db, DEFAULT_VOICE_SETTINGS, [identityId])).toEqual([identityId]);
    const [alert] = await reuseAlerts(identityId);
    expect(alert?.accountRefs).toEqual(['scattered-0', 'scattered-1', 'scattered-2']);
    // a second scan adds nothing
    await scanVoiceReuse(database.db, DEFAULT_VOICE_SETTINGS, [identityId]);
    expect(await reuseAlerts(identityId)).toHaveLength(1);
  });

  it('raises nothing for an identity that holds three people, one on each account (no call the voice of another)', async () => {
    const identityId = await reclusteredIdentity('chained', (i) => callOf(person(51, `chained-${i}`), 0));
    expect(await scanVoiceReuse(database.db, DEFAULT_VOICE_SETTINGS, [identityId])).toEqual([]);
    expect(await reuseAlerts(identityId)).toHaveLength(0);
  });

  it('raises nothing for the same voice on 3 accounts whose calls are more than 30 days apart', async () => {
    const traveller = person(51, 'traveller');
    const first = await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(traveller, 0) }], 'home-0', {
      callAt: at(0),
    });
    for (const [i, day] of [40, 80, 120].entries()) {
      await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(traveller, i + 1) }], `home-${i + 1}`, {
        callAt: at(day),
      });
    }
    await analyseAll(database.db);
    const identityId = (await identityOfVoiceprint(first.ids.speaker_0 as string)) as string;
    expect(identityId).not.toBeNull();
    expect(await reuseAlerts(identityId)).toHaveLength(0);
  });
});

describe(`staff on ${engine}`, () => {
  it('an agent on 50 accounts raises voice_reuse and is proposed; confirmed staff, its alert is dismissed and no new one comes', async () => {
    const agent = person(51, 'agent-a');
    const calls = await agentCalls(agent, 'a', 50, 0);
    const identityId = (await identityOfVoiceprint(calls[0]?.agent as string)) as string;
    const [alert] = await reuseAlerts(identityId);
    expect(alert?.status).toBe('open');
    expect(alert?.accountRefs.length).toBeGreaterThanOrEqual(45);

    const proposed = (await proposals()).find((p) => p.id === identityId);
    expect(proposed?.staffProposal?.evidence.accounts).toBeGreaterThanOrEqual(10);
    // a customer heard once is never proposed
    expect((await proposals()).map((p) => p.id)).toEqual([identityId]);

    const confirmed = await json<Identity & { dismissedAlerts: number }>(
      await call('POST', `/v1/identities/${identityId}/confirm-staff`, { note: 'agent 0042' }),
    );
    expect(confirmed).toMatchObject({ id: identityId, kind: 'staff', dismissedAlerts: 1 });
    expect(await proposals()).toHaveLength(0);
    const [dismissed] = await reuseAlerts(identityId);
    expect(dismissed?.status).toBe('dismissed');

    await agentCalls(agent, 'a', 3, 18, 50);
    const after = await reuseAlerts(identityId);
    expect(after.map((a) => a.status)).toEqual(['dismissed']);

    // staff are out of voice search unless asked for
    const search = async (includeStaff: boolean) =>
      (
        await json<{ items: { identityKind: string | null }[] }>(
          await call('POST', '/v1/voices/search', { query: { embedding: callOf(agent, 999) }, k: 5, includeStaff }),
        )
      ).items;
    expect((await search(false)).some((i) => i.identityKind === 'staff')).toBe(false);
    expect((await search(true)).some((i) => i.identityKind === 'staff')).toBe(true);
    await expectProblem(await call('POST', `/v1/identities/${identityId}/confirm-staff`), 409, 'conflict');
  });

  it('a rejected proposal sticks: never proposed again, and it cannot be confirmed later', async () => {
    const agent = person(51, 'agent-b');
    const calls = await agentCalls(agent, 'b', 14, 40);
    const identityId = (await identityOfVoiceprint(calls[0]?.agent as string)) as string;
    expect((await proposals()).map((p) => p.id)).toEqual([identityId]);
    const rejected = await json<Identity>(
      await call('POST', `/v1/identities/${identityId}/reject-staff`, {
        note: 'works the contact centre as a fraudster',
      }),
    );
    expect(rejected.kind).toBe('unknown');
    await agentCalls(agent, 'b', 6, 45, 14);
    expect(await proposals()).toHaveLength(0);
    const [row] = await queryRows<{ status: string }>(
      database.db,
      sql`select status from staff_proposals where identity_id = ${identityId}`,
    );
    expect(row?.status).toBe('rejected');
    await expectProblem(await call('POST', `/v1/identities/${identityId}/confirm-staff`), 409, 'conflict');
  });

  it("proposes a customer's identity that an agent's calls joined; confirmed, it is staff on no account", async () => {
    const agent = person(51, 'agent-d');
    // the agent's first calls enrolled by mistake as an account's customer
    const first = await agentCalls(agent, 'd', 3, 100);
    const enrolled = await json<Identity>(
      await call('POST', '/v1/identities', {
        kind: 'customer',
        accountRef: 'd-acc-0',
        voiceprintIds: first.map((c) => c.agent),
      }),
    );
    const later = await agentCalls(agent, 'd', 14, 101, 3);
    expect(await identityOfVoiceprint(later.at(-1)?.agent as string)).toBe(enrolled.id);
    const proposed = (await proposals()).find((p) => p.id === enrolled.id);
    expect(proposed?.kind).toBe('customer');
    expect(proposed?.staffProposal?.evidence.accounts).toBeGreaterThanOrEqual(10);
    const [open] = await reuseAlerts(enrolled.id);
    expect(open?.status).toBe('open');
    const confirmed = await json<Identity & { accountRef: string | null; dismissedAlerts: number }>(
      await call('POST', `/v1/identities/${enrolled.id}/confirm-staff`, { note: 'agent 0077' }),
    );
    expect(confirmed).toMatchObject({ kind: 'staff', accountRef: null, dismissedAlerts: 1 });
  });

  it('leaves staff and proposed staff out of the impostor cohort', async () => {
    await agentCalls(person(51, 'agent-c'), 'c', 12, 70);
    const [row] = await queryRows<{ cohort: number; proposed: number }>(
      database.db,
      sql`select count(*) filter (where i.kind is distinct from 'staff' and p.identity_id is null)::int as cohort,
                 count(p.identity_id)::int as proposed
          from voiceprints v left join identities i on i.id = v.identity_id
          left join staff_proposals p on p.identity_id = v.identity_id and p.status = 'proposed'`,
    );
    expect(row?.proposed).toBeGreaterThanOrEqual(10);
    await refreshCalibration(database.db);
    // fewer than COHORT_MIN here: the prior stands in, and the row records the cohort it drew
    const [stored] = await queryRows<{ cohortSize: number }>(
      database.db,
      sql`select cohort_size as "cohortSize" from voice_calibrations order by created_at desc limit 1`,
    );
    expect(stored?.cohortSize).toBe(row?.cohort);
  });

  it('refuses to confirm an identity that was never proposed (409) or does not exist (404), changing nothing', async () => {
    const loner = person(51, 'loner');
    const calls = [];
    for (let c = 0; c < 3; c++) {
      calls.push(await storeCall(database.db, [{ label: 'speaker_0', unit: callOf(loner, c) }], 'loner-acc'));
    }
    await analyseAll(database.db);
    const identityId = (await identityOfVoiceprint(calls[0]?.ids.speaker_0 as string)) as string;
    const problem = await expectProblem(
      await call('POST', `/v1/identities/${identityId}/confirm-staff`),
      409,
      'conflict',
    );
    expect(problem.detail).toContain('not proposed');
    await expectProblem(
      await call('POST', '/v1/identities/00000000-0000-4000-8000-000000000000/confirm-staff'),
      404,
      'not-found',
    );
    const [row] = await queryRows<{ kind: string }>(
      database.db,
      sql`select kind from identities where id = ${identityId}`,
    );
    expect(row?.kind).toBe('unknown');
    await expectProblem(await call('GET', '/v1/identities?proposed=fraudster'), 400, 'validation');
  });
});

describe(`enrolment at intake and the account view on ${engine}`, () => {
  it("enrols the call's non-staff speaker as the account's customer, and a later call joins it", async () => {
    const customer = person(51, 'enrolled-customer');
    const staffAgent = person(51, 'agent-a');
    const first = await storeCall(
      database.db,
      [
        { label: 'speaker_0', unit: callOf(staffAgent, 500) },
        { label: 'speaker_1', unit: callOf(customer, 0) },
      ],
      'acc-enrol',
      { enrolCustomer: true, callAt: at(60), channel: 'contact-centre' },
    );
    await analyseAll(database.db);
    const customerId = (await identityOfVoiceprint(first.ids.speaker_1 as string)) as string;
    const view = await json<{ kind: string; accountRef: string }>(await call('GET', `/v1/identities/${customerId}`));
    expect(view).toMatchObject({ kind: 'customer', accountRef: 'acc-enrol' });
    // the agent stays staff
    const agentIdentity = await identityOfVoiceprint(first.ids.speaker_0 as string);
    const [agentKind] = await queryRows<{ kind: string }>(
      database.db,
      sql`select kind from identities where id = ${agentIdentity}`,
    );
    expect(agentKind?.kind).toBe('staff');

    const second = await storeCall(
      database.db,
      [{ label: 'speaker_0', unit: callOf(customer, 1), speechSeconds: 4 }],
      'acc-enrol',
      {
        enrolCustomer: true,
        callAt: at(61),
      },
    );
    await analyseAll(database.db);
    expect(await identityOfVoiceprint(second.ids.speaker_0 as string)).toBe(customerId);

    const voices = await json<{
      items: {
        identityId: string | null;
        kind: string | null;
        voiceprintIds: string[];
        recordingCount: number;
        otherAccountRefs: string[];
      }[];
    }>(await call('GET', '/v1/accounts/acc-enrol/voices'));
    const byKind = Object.fromEntries(voices.items.map((v) => [v.kind ?? 'none', v]));
    expect(voices.items).toHaveLength(2);
    expect(byKind.customer).toMatchObject({ identityId: customerId, recordingCount: 2, otherAccountRefs: [] });
    expect(byKind.customer?.voiceprintIds.sort()).toEqual([first.ids.speaker_1, second.ids.speaker_0].sort());
    expect(byKind.staff?.otherAccountRefs.length).toBeGreaterThanOrEqual(50);
    expect(byKind.staff?.otherAccountRefs).toContain('a-acc-7');

    const empty = await json<{ items: unknown[]; nextCursor: string | null }>(
      await call('GET', '/v1/accounts/nobody/voices'),
    );
    expect(empty).toEqual({ items: [], nextCursor: null });
    const paged = await json<{ items: unknown[]; nextCursor: string | null }>(
      await call('GET', '/v1/accounts/acc-enrol/voices?limit=1'),
    );
    expect(paged.items).toHaveLength(1);
    const rest = await json<{ items: unknown[]; nextCursor: string | null }>(
      await call('GET', `/v1/accounts/acc-enrol/voices?limit=1&cursor=${paged.nextCursor}`),
    );
    expect(rest.items).toHaveLength(1);
    expect(rest.nextCursor).toBeNull();
  });

  it('enrols nobody when the call has two speakers who are not staff', async () => {
    const one = person(51, 'two-a');
    const two = person(51, 'two-b');
    const stored = await storeCall(
      database.db,
      [
        { label: 'speaker_0', unit: callOf(one, 0) },
        { label: 'speaker_1', unit: callOf(two, 0) },
      ],
      'acc-two',
      { enrolCustomer: true },
    );
    await analyseAll(database.db);
    const [row] = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from identities where kind = 'customer' and account_ref = 'acc-two'`,
    );
    expect(row?.n).toBe(0);
    expect(await identityOfVoiceprint(stored.ids.speaker_0 as string)).toBeNull();
  });
});
