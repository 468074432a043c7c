import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_SPOOF_SETTINGS, DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { reclusterSpoofs } from '../src/spoofs/clusters/recluster.ts';
import type {
  SpoofClusterGraphResponse,
  SpoofClusterMemberPageResponse,
  SpoofClusterPageResponse,
  SpoofClusterResponse,
  SpoofSearchResponse,
} from '../src/spoofs/routes.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { analyseAll } from './support/identity-calls.ts';
import { clustersOf, direction, spoofCall, utteranceOf, utterancesOf } from './support/spoof-calls.ts';

/**
 * The Spoofs API over HTTP on a real database: spoof search, the cluster list and views, label,
 * merge and split, and an analyst's merge and split surviving a recluster. Two generator families
 * (A: 6 calls, B: 5 calls on another channel), a recent burst of family C, a spoof of A the
 * upstream missed, genuine speech, and a family never stored (the novel query).
 */

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let reader: string;
let writer: string;
const start = Date.UTC(2026, 2, 1);
const HOUR = 3_600_000;
const familyA = direction('api-a');
const familyB = direction('api-b');
const familyC = direction('api-c');
const unseen = direction('api-unseen');
const calls = { a: [] as string[], b: [] as string[], c: [] as string[], missed: '', genuine: '' };
const clusters = { a: '', b: '', c: '' };

const request = (method: string, path: string, key: string, body?: unknown) =>
  app.request(path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const search = (body: unknown) => request('POST', '/v1/spoofs/search', reader, body);
const answer = async (body: unknown) => {
  const response = await search(body);
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as SpoofSearchResponse;
};
const only = async (recordingIds: string[]) => {
  const set = new Set((await Promise.all(recordingIds.map((id) => clustersOf(database.db, id)))).flat());
  expect(set.size).toBe(1);
  return [...set][0] as string;
};

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  reader = (await createApiKey(database.db, { scope: 'read', name: 'analyst' }, CLI_ACTOR)).key;
  writer = (await createApiKey(database.db, { scope: 'write', name: 'lead' }, CLI_ACTOR)).key;
  for (let c = 0; c < 6; c++) {
    calls.a.push(
      await spoofCall(database.db, [utteranceOf(familyA, `a-${c}`)], new Date(start + c * 24 * HOUR), 'spoofed', {
        accountRef: `acc-a-${c % 3}`,
      }),
    );
  }
  for (let c = 0; c < 5; c++) {
    calls.b.push(
      await spoofCall(database.db, [utteranceOf(familyB, `b-${c}`)], new Date(start + c * HOUR), 'spoofed', {
        channel: 'branch',
      }),
    );
  }
  for (let c = 0; c < 4; c++) {
    calls.c.push(await spoofCall(database.db, [utteranceOf(familyC, `c-${c}`)], new Date(Date.now() - (c + 1) * HOUR)));
  }
  calls.missed = await spoofCall(
    database.db,
    [utteranceOf(familyA, 'missed')],
    new Date(start + 30 * HOUR),
    'bonafide',
  );
  calls.genuine = await spoofCall(database.db, [direction('api-genuine')], new Date(start + 30 * HOUR), 'bonafide');
  await analyseAll(database.db, DEFAULT_VOICE_SETTINGS, DEFAULT_SPOOF_SETTINGS);
  clusters.a = await only(calls.a);
  clusters.b = await only(calls.b);
  clusters.c = await only(calls.c);
});
afterAll(async () => {
  await database?.close();
});

describe('POST /v1/spoofs/search', () => {
  it('places a raw embedding of a known family in its cluster, with the nearest members and clusters', async () => {
    const found = await answer({ query: { embedding: utteranceOf(familyA, 'query-a') }, k: 4, clusters: 2 });
    expect(found.verdict).toEqual({ clusterId: clusters.a, novel: false });
    expect(found.clusters).toHaveLength(2);
    expect(found.clusters[0]).toMatchObject({ clusterId: clusters.a, votes: 4, size: 6, label: null });
    expect(found.clusters[0]?.similarity).toBeGreaterThan(0.9);
    expect(found.clusters[1]?.similarity).toBeLessThan(0.3);
    expect(found.neighbours).toHaveLength(4);
    expect(found.neighbours.every((n) => n.clusterId === clusters.a && calls.a.includes(n.recordingId))).toBe(true);
    const similarities = found.neighbours.map((n) => n.similarity);
    expect(similarities).toEqual([...similarities].sort((x, y) => y - x));
    expect(found.neighbours[0]).toMatchObject({ pSpoofed: 0.9999, accountRef: expect.stringMatching(/^acc-a-/) });
    expect(found.plan).toMatchObject({ method: 'hnsw', efSearch: expect.any(Number) });
  });

  it('calls a spoof of no known family novel; a genuine stored utterance is neither in a cluster nor novel', async () => {
    const fresh = await answer({ query: { embedding: `[${unseen.join(',')}]` } });
    expect(fresh.verdict).toEqual({ clusterId: null, novel: true });
    expect(fresh.neighbours).toHaveLength(10); // the default k, of 15 spoofed utterances
    const [genuine] = await utterancesOf(database.db, calls.genuine);
    const bonafide = await answer({ query: { utteranceId: genuine } });
    expect(bonafide.verdict).toEqual({ clusterId: null, novel: false });
  });

  it('answers a stored member with its cluster and leaves its own recording out', async () => {
    const [member] = await utterancesOf(database.db, calls.a[2] as string);
    const found = await answer({ query: { utteranceId: member }, k: 10 });
    expect(found.verdict).toEqual({ clusterId: clusters.a, novel: false });
    expect(found.neighbours.some((n) => n.recordingId === calls.a[2])).toBe(false);
    expect(found.neighbours.filter((n) => n.clusterId === clusters.a)).toHaveLength(5);
  });

  it('answers a recording whose spoof the upstream missed with the cluster it sits inside', async () => {
    const found = await answer({ query: { recordingId: calls.missed } });
    expect(found.verdict).toEqual({ clusterId: clusters.a, novel: false });
    expect(found.neighbours[0]?.clusterId).toBe(clusters.a);
  });

  it('is complete under a filter: min(k, matching) spoofed utterances that pass it', async () => {
    const query = { embedding: utteranceOf(familyA, 'query-filter') };
    const branch = await answer({ query, k: 10, filter: { channels: ['branch'] } });
    expect(branch.neighbours.map((n) => n.recordingId).sort()).toEqual([...calls.b].sort());
    expect(branch.plan.method).toBe('exact');
    const accounts = await answer({ query, k: 10, filter: { accountRefs: ['acc-a-1'] } });
    expect(accounts.neighbours.map((n) => n.recordingId).sort()).toEqual([calls.a[1], calls.a[4]].sort());
    const window = await answer({
      query,
      k: 10,
      filter: {
        from: new Date(start + 2 * 24 * HOUR).toISOString(),
        to: new Date(start + 3 * 24 * HOUR).toISOString(),
      },
    });
    expect(window.neighbours.map((n) => n.recordingId).sort()).toEqual([calls.a[2], calls.a[3]].sort());
    expect((await answer({ query, filter: { minPSpoofed: 0.99999 } })).neighbours).toEqual([]);
  });

  it('answers bad input with a problem naming the field, and audits each answer', async () => {
    const before = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from audit_events where action = 'spoof.search'`,
    );
    const cases: [unknown, string][] = [
      [{ query: { embedding: [1, 2, 3] } }, 'json.query'],
      [{ query: { embedding: `[${Array(768).fill('1e999').join(',')}]` } }, 'query.embedding'],
      [{ query: { utteranceId: calls.a[0] }, k: 0 }, 'json.k'],
      [
        { query: { embedding: unseen }, filter: { from: '2026-03-05T00:00:00Z', to: '2026-03-01T00:00:00Z' } },
        'json.filter.to',
      ],
      [{ query: { embedding: unseen }, filter: { minPSpoofed: 2 } }, 'json.filter.minPSpoofed'],
      [{ query: { embedding: unseen }, clusters: -1 }, 'json.clusters'],
    ];
    for (const [body, path] of cases) {
      const problem = await expectProblem(await search(body), 400, 'validation');
      expect(
        problem.errors?.some((e) => e.path.startsWith(path)),
        JSON.stringify(problem),
      ).toBe(true);
    }
    const unknown = await expectProblem(await search({ query: { utteranceId: calls.a[0] } }), 404, 'not-found');
    expect(unknown.detail).toMatch(/^query\.utteranceId: no utterance/);
    const noRecording = await expectProblem(
      await search({ query: { recordingId: '00000000-0000-4000-8000-000000000000' } }),
      404,
      'not-found',
    );
    expect(noRecording.detail).toMatch(/^query\.recordingId: no recording/);
    const after = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from audit_events where action = 'spoof.search'`,
    );
    expect(after[0]?.n).toBe(before[0]?.n);
    await answer({ query: { recordingId: calls.b[0] } });
    const [audit] = await queryRows<{ targetIds: string[]; resultCount: number }>(
      database.db,
      sql`select target_ids::text[] as "targetIds", result_count as "resultCount" from audit_events
          where action = 'spoof.search' order by created_at desc limit 1`,
    );
    expect(audit?.resultCount).toBe(10);
    expect(audit?.targetIds).toContain((await utterancesOf(database.db, calls.b[0] as string))[0]);
  });
});

describe('the spoof-cluster views', () => {
  it('lists clusters by size, growth and recency, paged by cursor', async () => {
    const list = async (query: string) => {
      const response = await request('GET', `/v1/spoof-clusters${query}`, reader);
      expect(response.status).toBe(200);
      return (await response.json()) as SpoofClusterPageResponse;
    };
    const bySize = await list('');
    expect(bySize.items.map((c) => c.id)).toEqual([clusters.a, clusters.b, clusters.c]);
    expect(bySize.items[0]).toMatchObject({
      status: 'active',
      size: 6,
      accountCount: 3,
      label: null,
      notes: null,
      medoidUtteranceId: expect.any(String),
      firstSeenAt: new Date(start).toISOString(),
      lastSeenAt: new Date(start + 5 * 24 * HOUR).toISOString(),
    });
    expect(bySize.items[0]?.meanPSpoofed).toBeCloseTo(0.9999, 6);
    expect((await list('?sort=growth')).items.map((c) => [c.id, c.growth])).toEqual([
      [clusters.c, 4],
      ...[clusters.a, clusters.b]
        .sort()
        .reverse()
        .map((id) => [id, 0]),
    ]);
    expect((await list('?sort=recent')).items.map((c) => c.id)).toEqual([clusters.c, clusters.a, clusters.b]);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: SpoofClusterPageResponse = await list(`?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      paged.push(...page.items.map((c) => c.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual([clusters.a, clusters.b, clusters.c]);
    await expectProblem(await request('GET', '/v1/spoof-clusters?sort=biggest', reader), 400, 'validation');
    await expectProblem(await request('GET', '/v1/spoof-clusters?cursor=nope', reader), 400, 'validation');
  });

  it('shows one cluster with its daily timeline and accounts; its members paged; its graph as JSON and CSV', async () => {
    const response = await request('GET', `/v1/spoof-clusters/${clusters.a}`, reader);
    const view = (await response.json()) as SpoofClusterResponse;
    expect(view.timeline).toEqual(
      [0, 1, 2, 3, 4, 5].map((d) => ({
        day: new Date(start + d * 24 * HOUR).toISOString().slice(0, 10),
        utterances: 1,
        recordings: 1,
      })),
    );
    expect(view.accountRefs).toEqual(['acc-a-0', 'acc-a-1', 'acc-a-2']);
    expect(view.history.map((h) => h.action)).toEqual(['created']);
    const members = (await (
      await request('GET', `/v1/spoof-clusters/${clusters.a}/members?limit=4`, reader)
    ).json()) as SpoofClusterMemberPageResponse;
    expect(members.items.map((m) => m.recordingId)).toEqual([...calls.a].reverse().slice(0, 4));
    const rest = (await (
      await request('GET', `/v1/spoof-clusters/${clusters.a}/members?limit=4&cursor=${members.nextCursor}`, reader)
    ).json()) as SpoofClusterMemberPageResponse;
    expect(rest.items.map((m) => m.recordingId)).toEqual([calls.a[1], calls.a[0]]);
    expect(rest.nextCursor).toBeNull();
    expect(members.items[0]?.similarity).toBeGreaterThan(0.85);

    const graph = (await (
      await request('GET', `/v1/spoof-clusters/${clusters.a}/graph`, reader)
    ).json()) as SpoofClusterGraphResponse;
    expect(graph).toMatchObject({ clusterId: clusters.a, size: 6, truncated: false, minSimilarity: 0.5 });
    expect(graph.nodes).toHaveLength(6);
    expect(graph.edges).toHaveLength(15);
    const small = (await (
      await request('GET', `/v1/spoof-clusters/${clusters.a}/graph?maxMembers=3&minSimilarity=0.95`, reader)
    ).json()) as SpoofClusterGraphResponse;
    expect(small).toMatchObject({ truncated: true, edges: [] });
    expect(small.nodes).toHaveLength(3);
    const csv = await request('GET', `/v1/spoof-clusters/${clusters.a}/graph?format=csv`, reader);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await csv.text()).trim().split('\n');
    expect(lines[0]).toBe('source,target,similarity');
    expect(lines).toHaveLength(16);
    await expectProblem(await request('GET', `/v1/spoof-clusters/${calls.a[0]}`, reader), 404, 'not-found');
    await expectProblem(
      await request('GET', `/v1/spoof-clusters/${clusters.a}/graph?maxMembers=5000`, reader),
      400,
      'validation',
    );
  });
});

describe('label, merge and split', () => {
  it('labels a cluster and keeps the change in its history; refuses an empty change and a reader', async () => {
    const response = await request('PATCH', `/v1/spoof-clusters/${clusters.b}`, writer, {
      label: 'branch voice clones',
      notes: 'seen at two branches',
    });
    expect(response.status).toBe(200);
    const view = (await response.json()) as SpoofClusterResponse;
    expect(view).toMatchObject({ label: 'branch voice clones', notes: 'seen at two branches' });
    expect(view.history.map((h) => h.action)).toEqual(['created', 'labelled']);
    await expectProblem(await request('PATCH', `/v1/spoof-clusters/${clusters.b}`, writer, {}), 400, 'validation');
    await expectProblem(
      await request('PATCH', `/v1/spoof-clusters/${clusters.b}`, reader, { label: 'x' }),
      403,
      'forbidden',
    );
  });

  it('refuses a merge into itself, of an unknown cluster, or without a reason, and changes nothing', async () => {
    const before = await queryRows(database.db, sql`select id, status, size from spoof_clusters order by id`);
    const self = await expectProblem(
      await request('POST', `/v1/spoof-clusters/${clusters.a}/merge`, writer, { from: [clusters.a], reason: 'x' }),
      400,
      'validation',
    );
    expect(self.detail).toMatch(/^json\.from: .*itself/);
    await expectProblem(
      await request('POST', `/v1/spoof-clusters/${clusters.a}/merge`, writer, {
        from: ['00000000-0000-4000-8000-000000000000'],
        reason: 'x',
      }),
      404,
      'not-found',
    );
    await expectProblem(
      await request('POST', `/v1/spoof-clusters/${clusters.a}/merge`, writer, { from: [clusters.b], reason: ' ' }),
      400,
      'validation',
    );
    expect(await queryRows(database.db, sql`select id, status, size from spoof_clusters order by id`)).toEqual(before);
  });

  it('merges B into A: members, figures, label and history move; B points at A; a merge into B is then refused', async () => {
    const response = await request('POST', `/v1/spoof-clusters/${clusters.a}/merge`, writer, {
      from: [clusters.b],
      reason: 'one generator, two channels',
    });
    expect(response.status).toBe(200);
    const view = (await response.json()) as SpoofClusterResponse;
    expect(view).toMatchObject({ id: clusters.a, size: 11, label: 'branch voice clones', status: 'active' });
    expect(view.analystEditedAt).not.toBeNull();
    expect(view.history.at(-1)).toMatchObject({
      action: 'merged',
      relatedClusterIds: [clusters.b],
      reason: 'one generator, two channels',
      source: 'api',
    });
    expect(await only([...calls.a, ...calls.b])).toBe(clusters.a);
    const merged = (await (
      await request('GET', `/v1/spoof-clusters/${clusters.b}`, reader)
    ).json()) as SpoofClusterResponse;
    expect(merged).toMatchObject({ status: 'merged', mergedInto: clusters.a, size: 0 });
    const refused = await expectProblem(
      await request('POST', `/v1/spoof-clusters/${clusters.b}/merge`, writer, { from: [clusters.c], reason: 'x' }),
      409,
      'conflict',
    );
    expect(refused.detail).toMatch(/merged into/);
    await expectProblem(
      await request('POST', `/v1/spoof-clusters/${clusters.c}/merge`, writer, { from: [clusters.b], reason: 'x' }),
      409,
      'conflict',
    );
  });

  it('splits B’s members back out into a new cluster (201), refusing a split of non-members or of every member', async () => {
    const bMembers = (await Promise.all(calls.b.map((id) => utterancesOf(database.db, id)))).flat();
    const aMember = (await utterancesOf(database.db, calls.a[0] as string))[0] as string;
    const all = [...bMembers, ...(await Promise.all(calls.a.map((id) => utterancesOf(database.db, id)))).flat()];
    for (const utteranceIds of [[], ['00000000-0000-4000-8000-000000000000'], all]) {
      await expectProblem(
        await request('POST', `/v1/spoof-clusters/${clusters.a}/split`, writer, { utteranceIds, reason: 'x' }),
        400,
        'validation',
      );
    }
    const response = await request('POST', `/v1/spoof-clusters/${clusters.a}/split`, writer, {
      utteranceIds: bMembers,
      reason: 'the branch calls are a second generator',
    });
    expect(response.status).toBe(201);
    const created = (await response.json()) as SpoofClusterResponse;
    expect(response.headers.get('location')).toBe(`/v1/spoof-clusters/${created.id}`);
    expect(created).toMatchObject({ size: 5, origin: 'analyst', status: 'active' });
    expect(created.history.map((h) => h.action)).toEqual(['split_from']);
    expect(await only(calls.b)).toBe(created.id);
    expect(await only(calls.a)).toBe(clusters.a);
    expect(aMember).toBeTruthy();
    clusters.b = created.id;
  });

  it('keeps an analyst’s merge and split through a recluster', async () => {
    // merge C into A too: recluster alone would put C back on its own
    await request('POST', `/v1/spoof-clusters/${clusters.a}/merge`, writer, {
      from: [clusters.c],
      reason: 'same actor',
    });
    const before = await queryRows(
      database.db,
      sql`select id, status, size, merged_into from spoof_clusters order by id`,
    );
    const membership = await Promise.all([...calls.a, ...calls.b, ...calls.c].map((id) => clustersOf(database.db, id)));
    const summary = await reclusterSpoofs(database.db, DEFAULT_SPOOF_SETTINGS, CLI_ACTOR);
    expect(summary).toMatchObject({ utterances: 0, created: [], retired: [], merged: [] });
    expect(
      await queryRows(database.db, sql`select id, status, size, merged_into from spoof_clusters order by id`),
    ).toEqual(before);
    expect(await Promise.all([...calls.a, ...calls.b, ...calls.c].map((id) => clustersOf(database.db, id)))).toEqual(
      membership,
    );
    // and a new call of family B still joins the analyst's split-off cluster online
    const late = await spoofCall(database.db, [utteranceOf(familyB, 'b-late')], new Date(start + 40 * HOUR));
    await analyseAll(database.db, DEFAULT_VOICE_SETTINGS, DEFAULT_SPOOF_SETTINGS);
    expect(await clustersOf(database.db, late)).toEqual([clusters.b]);
  });

  it('leaves an audit row for every read and change of the clusters', async () => {
    const rows = await queryRows<{ action: string; n: number }>(
      database.db,
      sql`select action, count(*)::int as n from audit_events where action like 'spoof_cluster.%' group by 1 order by 1`,
    );
    const counts = Object.fromEntries(rows.map((r) => [r.action, r.n]));
    expect(counts).toMatchObject({
      'spoof_cluster.label': 1,
      'spoof_cluster.merge': 2,
      'spoof_cluster.split': 1,
      'spoof_cluster.graph': 3,
      'spoof_cluster.members': 2,
    });
    expect(counts['spoof_cluster.list']).toBeGreaterThanOrEqual(6);
    expect(counts['spoof_cluster.view']).toBeGreaterThanOrEqual(2);
  });
});
