import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_SPOOF_SETTINGS, DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { clusterEvidenceStatement } from '../src/spoofs/clusters/queries.ts';
import { reclusterSpoofs } from '../src/spoofs/clusters/recluster.ts';
import { nearestSpoofedStatement } from '../src/spoofs/clusters/recluster-queries.ts';
import { repoRoot } from './support/cli.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { analyseAll } from './support/identity-calls.ts';
import { clustersOf, direction, spoofCall, utteranceOf } from './support/spoof-calls.ts';

/**
 * Batch reclustering of spoofed utterances and the near-miss look-back, on a real database with
 * deepfake embeddings of a chosen geometry (test/support/spoof-calls.ts).
 */

let database: TestDatabase;
const settings = DEFAULT_SPOOF_SETTINGS;
const start = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.close();
});

const analyse = () => analyseAll(database.db, DEFAULT_VOICE_SETTINGS, settings);
const call = (vectors: number[][], hour: number, label: 'spoofed' | 'bonafide' = 'spoofed') =>
  spoofCall(database.db, vectors, new Date(start + hour * HOUR), label);
const clusterSet = async (recordingIds: string[]) =>
  new Set((await Promise.all(recordingIds.map((id) => clustersOf(database.db, id)))).flat());
const clusterTable = () =>
  queryRows<{ id: string; status: string; size: number }>(
    database.db,
    sql`select id, status, size from spoof_clusters order by id`,
  );
const verdictOf = async (recordingId: string) =>
  (
    await queryRows<{ verdict: string; nearMisses: number }>(
      database.db,
      sql`select verdict, near_misses as "nearMisses" from recording_spoof_verdicts where recording_id = ${recordingId}`,
    )
  )[0];
const nearMissOf = async (recordingId: string) =>
  (
    await queryRows<{ nearMiss: string | null }>(
      database.db,
      sql`select near_miss_cluster_id as "nearMiss" from utterances where recording_id = ${recordingId}`,
    )
  ).map((r) => r.nearMiss);

describe('the near-miss look-back and recluster spoofs', () => {
  const familyA = direction('recluster-a');
  const familyB = direction('recluster-b');
  const a: string[] = [];
  let missedEarly = '';
  let genuine = '';

  it('looks back over stored bonafide speech when a cluster forms: a spoof the upstream missed before the campaign existed becomes a near miss, and its call suspicious', async () => {
    missedEarly = await call([utteranceOf(familyA, 'missed-early')], 0, 'bonafide');
    genuine = await call([direction('recluster-genuine')], 0, 'bonafide');
    await analyse();
    expect((await verdictOf(missedEarly))?.verdict).toBe('bonafide');
    for (let c = 0; c < 4; c++) a.push(await call([utteranceOf(familyA, `a-${c}`)], 1 + c));
    await analyse();
    const [clusterA] = await clusterSet(a);
    expect(clusterA).toBeTruthy();
    expect(await nearMissOf(missedEarly)).toEqual([clusterA]);
    expect(await verdictOf(missedEarly)).toEqual({ verdict: 'suspicious', nearMisses: 1 });
    expect(await nearMissOf(genuine)).toEqual([null]);
    expect((await verdictOf(genuine))?.verdict).toBe('bonafide');
    const [looked] = await queryRows<{ size: number; lookedBack: number }>(
      database.db,
      sql`select size, looked_back_size as "lookedBack" from spoof_clusters where id = ${clusterA as string}`,
    );
    expect(looked?.lookedBack).toBe(looked?.size);
  });

  it('keeps every id when run on what the online step built, and again when run twice', async () => {
    for (let c = 0; c < 3; c++) a.push(await call([utteranceOf(familyA, `a-more-${c}`)], 10 + c));
    await analyse();
    const before = await clusterTable();
    const first = await reclusterSpoofs(database.db, settings, CLI_ACTOR);
    expect(first).toMatchObject({ created: [], retired: [], merged: [], clusters: 1 });
    expect(await clusterTable()).toEqual(before);
    const second = await reclusterSpoofs(database.db, settings, CLI_ACTOR);
    expect(second).toMatchObject({
      created: [],
      grown: [],
      shrunk: [],
      retired: [],
      merged: [],
      moved: 0,
      unchanged: 1,
    });
    expect(await clusterTable()).toEqual(before);
  });

  it('adds one cluster for a new far family the online step has not placed, and raises its campaign', async () => {
    const [clusterA] = await clusterSet(a);
    // stored, not analysed: only recluster sees them
    const b: string[] = [];
    for (let c = 0; c < 5; c++)
      b.push(await call([utteranceOf(familyB, `b-${c}`), utteranceOf(familyB, `b2-${c}`)], 20 + c));
    const summary = await reclusterSpoofs(database.db, settings, CLI_ACTOR);
    expect(summary.created).toHaveLength(1);
    expect(summary).toMatchObject({ retired: [], merged: [], clusters: 2 });
    expect(await clusterSet(b)).toEqual(new Set(summary.created));
    expect(await clusterSet(a)).toEqual(new Set([clusterA]));
    const campaigns = await queryRows<{ clusterId: string }>(
      database.db,
      sql`select cluster_id as "clusterId" from alerts where type = 'new_spoof_campaign' order by created_at`,
    );
    expect(campaigns.map((c) => c.clusterId)).toEqual([clusterA, summary.created[0]]);
    // analysing them afterwards places nothing again
    const table = await clusterTable();
    await analyse();
    expect(await clusterTable()).toEqual(table);
    const history = await queryRows<{ action: string; reason: string }>(
      database.db,
      sql`select action, reason from spoof_cluster_events where cluster_id = ${summary.created[0] as string}`,
    );
    expect(history).toEqual([{ action: 'created', reason: 'recluster spoofs' }]);
  });

  it('takes members that no longer form a cluster out, retiring a cluster left with none, with the reason', async () => {
    // a cluster of scattered noise, as a bad earlier rule might have left: recluster undoes it
    const scattered: string[] = [];
    for (let c = 0; c < 4; c++) scattered.push(await call([direction(`scattered-${c}`)], 30 + c));
    const utterances = await queryRows<{ id: string }>(
      database.db,
      sql`select id from utterances where recording_id = any(${sql.param(scattered)}::uuid[])`,
    );
    const [made] = await queryRows<{ id: string }>(
      database.db,
      sql`insert into spoof_clusters (origin, centroid, member_sum, size, recording_count, account_count)
          values ('online', array_fill(0.1, array[768])::halfvec(768), array_fill(0.1, array[768])::vector(768), 4, 4, 4)
          returning id`,
    );
    await database.db.execute(
      sql`update utterances set spoof_cluster_id = ${made?.id as string} where id = any(${sql.param(utterances.map((u) => u.id))}::uuid[])`,
    );
    const summary = await reclusterSpoofs(database.db, settings, CLI_ACTOR);
    expect(summary.retired).toEqual([made?.id]);
    expect(summary.unclustered).toBe(4);
    const [row] = await queryRows<{ status: string; reason: string }>(
      database.db,
      sql`select status, status_reason as reason from spoof_clusters where id = ${made?.id as string}`,
    );
    expect(row).toEqual({ status: 'retired', reason: 'recluster spoofs: 4 of its 4 members no longer form a cluster' });
    expect(await clusterSet(scattered)).toEqual(new Set([null]));
  });
});

describe('the queries behind recluster and the cluster views', () => {
  it('walks the spoofed utterances’ HNSW index for the kNN graph, and reads members through utterances_spoof_cluster_idx', async () => {
    const [some] = await queryRows<{ id: string; cluster: string }>(
      database.db,
      sql`select id, spoof_cluster_id as cluster from utterances where spoof_cluster_id is not null limit 1`,
    );
    const plan = async (statement: ReturnType<typeof sql>) =>
      withTransaction(database.db, async (tx) => {
        // a test database is tiny: without this the planner reads the table rather than any index
        await tx.execute(sql`set local enable_seqscan = off`);
        const rows = await queryRows<{ 'QUERY PLAN': string }>(tx, sql`explain ${statement}`);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    expect(await plan(nearestSpoofedStatement([some?.id as string], { k: 20, minSimilarity: 0.65 }))).toMatch(
      /Index Scan using spoofed_utterances_embedding_hnsw/,
    );
    expect(
      await plan(sql`select count(*) from utterances where spoof_cluster_id = ${some?.cluster as string}`),
    ).toMatch(/utterances_spoof_cluster_idx/);
  });

  it('finds the recordings of a growth window through recordings_seen_at_idx, never by reading them all', async () => {
    const [some] = await queryRows<{ cluster: string }>(
      database.db,
      sql`select spoof_cluster_id as cluster from utterances where spoof_cluster_id is not null limit 1`,
    );
    const until = new Date();
    const window = { since: new Date(until.getTime() - 24 * 3600_000), until };
    const plan = (statement: ReturnType<typeof sql>) =>
      withTransaction(database.db, async (tx) => {
        await tx.execute(sql`set local enable_seqscan = off`);
        const rows = await queryRows<{ 'QUERY PLAN': string }>(tx, sql`explain ${statement}`);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    expect(await plan(clusterEvidenceStatement(some?.cluster as string, window))).not.toMatch(/Seq Scan/);
    // the window's own predicate, as the statement writes it: the index's expression must be the query's
    expect(
      await plan(
        sql`select count(*) from recordings r where coalesce(r.call_at, r.created_at) > ${window.since.toISOString()}::timestamptz
            and coalesce(r.call_at, r.created_at) <= ${window.until.toISOString()}::timestamptz`,
      ),
    ).toMatch(/recordings_seen_at_idx/);
  });
});

describe('the near-miss SQL docs/spoofs.md gives analysts', () => {
  it('counts the near misses of each campaign, pasted as written', async () => {
    const text = fs.readFileSync(path.join(repoRoot, 'docs', 'spoofs.md'), 'utf8');
    const query = [...text.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => (m[1] as string).trim())[4] as string;
    expect(query).toMatch(/near_miss_cluster_id/);
    const rows = await queryRows<{ cluster_id: string; near_misses: number | string; calls: number | string }>(
      database.db,
      sql.raw(query),
    );
    const expected = await queryRows<{ clusterId: string; n: number }>(
      database.db,
      sql`select near_miss_cluster_id as "clusterId", count(*)::int as n from utterances
          where near_miss_cluster_id is not null group by 1 order by 2 desc, 1`,
    );
    expect(expected.length).toBeGreaterThan(0);
    expect(rows.map((r) => [r.cluster_id, Number(r.near_misses)])).toEqual(expected.map((e) => [e.clusterId, e.n]));
  });
});
