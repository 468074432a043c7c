import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { DEFAULT_SPOOF_SETTINGS, DEFAULT_VOICE_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { createLogger } from '../src/log.ts';
import { refreshClusterFigures } from '../src/spoofs/clusters/queries.ts';
import { SPOOF_CLUSTER_STEP, spoofClusterStep } from '../src/spoofs/clusters/step.ts';
import { testApp } from './support/app.ts';
import { repoRoot } from './support/cli.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { analyseAll } from './support/identity-calls.ts';
import { clustersOf, direction, mixDirections, spoofCall, utteranceOf } from './support/spoof-calls.ts';

/**
 * Online spoof clusters through the analysis steps on a real database, on deepfake embeddings of a
 * chosen geometry (test/support/spoof-calls.ts).
 */

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let reader: { key: string };
const settings = { ...DEFAULT_SPOOF_SETTINGS, growthPerDay: 3 };
const start = Date.UTC(2026, 4, 1);
const HOUR = 3_600_000;

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  reader = await createApiKey(database.db, { scope: 'read', name: 'analyst' }, CLI_ACTOR);
});
afterAll(async () => {
  await database?.close();
});

const mix = mixDirections;
const call = (vectors: number[][], at: Date, label: 'spoofed' | 'bonafide' = 'spoofed') =>
  spoofCall(database.db, vectors, at, label);
const analyse = () => analyseAll(database.db, DEFAULT_VOICE_SETTINGS, settings);
const clusterOf = (recordingId: string) => clustersOf(database.db, recordingId);
const alerts = (type: string) =>
  queryRows<{ id: string; clusterId: string; recordingIds: string[]; evidence: unknown[] }>(
    database.db,
    sql`select id, cluster_id as "clusterId", recording_ids::text[] as "recordingIds", evidence
        from alerts where type = ${type} order by created_at`,
  );

describe('online spoof clusters', () => {
  const familyA = direction('family-a');
  const familyB = direction('family-b');
  const relativeOfA = mix(familyA, direction('family-a-variant'), 0.55);
  const recordings: Record<string, string[]> = { a: [], b: [], relative: [] };

  it('leaves the first spoofed calls of a family as noise, and seeds a cluster from the fourth call, raising new_spoof_campaign once', async () => {
    for (let c = 0; c < 3; c++)
      recordings.a?.push(await call([utteranceOf(familyA, `a-${c}`)], new Date(start + c * 48 * HOUR)));
    await analyse();
    for (const id of recordings.a ?? []) expect(await clusterOf(id)).toEqual([null]);
    expect(await alerts('new_spoof_campaign')).toEqual([]);

    recordings.a?.push(await call([utteranceOf(familyA, 'a-3')], new Date(start + 3 * 48 * HOUR)));
    await analyse();
    const ids = new Set((await Promise.all((recordings.a ?? []).map(clusterOf))).flat());
    expect(ids.size).toBe(1);
    const [clusterId] = [...ids];
    expect(clusterId).toBeTruthy();
    const [campaign, ...more] = await alerts('new_spoof_campaign');
    expect(more).toEqual([]);
    expect(campaign?.clusterId).toBe(clusterId);
    expect([...(campaign?.recordingIds ?? [])].sort()).toEqual([...(recordings.a ?? [])].sort());
    const [cluster] = await queryRows<{
      size: number;
      recordingCount: number;
      accountCount: number;
      radius: number;
      medoid: string | null;
      channels: string[];
    }>(
      database.db,
      sql`select size, recording_count as "recordingCount", account_count as "accountCount", radius,
                 medoid_utterance_id as medoid, channels from spoof_clusters where id = ${clusterId}`,
    );
    expect(cluster).toMatchObject({ size: 4, recordingCount: 4, accountCount: 4, channels: ['ivr'] });
    expect(cluster?.radius).toBeGreaterThan(0);
    expect(cluster?.radius).toBeLessThan(0.25);
    expect(cluster?.medoid).toBeTruthy();
  });

  it('lets a later call of the family join, shown in the recording view; raises no second campaign', async () => {
    const id = await call([utteranceOf(familyA, 'a-4'), utteranceOf(familyA, 'a-5')], new Date(start + 4 * 48 * HOUR));
    recordings.a?.push(id);
    await analyse();
    const [first] = await clusterOf(recordings.a?.[0] as string);
    expect(await clusterOf(id)).toEqual([first, first]);
    const response = await app.request(`/v1/recordings/${id}`, { headers: { authorization: `Bearer ${reader.key}` } });
    const body = (await response.json()) as {
      spoof: { verdict: string; clusterIds: string[]; timeline: { clusterId: string }[] };
    };
    expect(body.spoof.clusterIds).toEqual([first]);
    expect(body.spoof.timeline.map((t) => t.clusterId)).toEqual([first, first]);
    const [size] = await queryRows<{ size: number }>(
      database.db,
      sql`select size from spoof_clusters where id = ${first}`,
    );
    expect(size?.size).toBe(6);
    expect(await alerts('new_spoof_campaign')).toHaveLength(1);
  });

  it('keeps false alarms as noise: unrelated genuine speech labelled spoofed, even many in one call', async () => {
    const falseAlarms: string[] = [];
    for (let c = 0; c < 8; c++) falseAlarms.push(await call([direction(`genuine-${c}`)], new Date(start + c * HOUR)));
    // one call's utterances are alike whatever they are: five of them do not make a campaign
    const caller = direction('genuine-caller');
    falseAlarms.push(
      await call(
        [0, 1, 2, 3, 4].map((u) => utteranceOf(caller, `caller-${u}`)),
        new Date(start),
      ),
    );
    await analyse();
    for (const id of falseAlarms) expect((await clusterOf(id)).every((c) => c === null)).toBe(true);
    expect(await alerts('new_spoof_campaign')).toHaveLength(1);
  });

  it('gives a far family and a near relative clusters of their own', async () => {
    for (let c = 0; c < 4; c++) {
      recordings.b?.push(await call([utteranceOf(familyB, `b-${c}`)], new Date(start + c * HOUR)));
      recordings.relative?.push(await call([utteranceOf(relativeOfA, `r-${c}`)], new Date(start + c * HOUR)));
    }
    await analyse();
    const clusterA = (await clusterOf(recordings.a?.[0] as string))[0];
    const clusterB = new Set((await Promise.all((recordings.b ?? []).map(clusterOf))).flat());
    const clusterR = new Set((await Promise.all((recordings.relative ?? []).map(clusterOf))).flat());
    expect(clusterB.size).toBe(1);
    expect(clusterR.size).toBe(1);
    const [b] = [...clusterB];
    const [r] = [...clusterR];
    expect(new Set([clusterA, b, r]).size).toBe(3);
    expect(b).toBeTruthy();
    expect(r).toBeTruthy();
    expect((await alerts('new_spoof_campaign')).map((a) => a.clusterId).sort()).toEqual([clusterA, b, r].sort());
  });

  it('flags a spoof the upstream labelled bonafide inside a cluster as a near miss, and the call suspicious; genuine speech and a relative are not', async () => {
    const clusterA = (await clusterOf(recordings.a?.[0] as string))[0];
    const missed = await call([utteranceOf(familyA, 'missed')], new Date(start + 12 * HOUR), 'bonafide');
    const genuine = await call([direction('genuine-speaker')], new Date(start + 12 * HOUR), 'bonafide');
    const relative = await call([utteranceOf(relativeOfA, 'r-missed')], new Date(start + 12 * HOUR), 'bonafide');
    await analyse();
    const nearMissOf = async (recordingId: string) =>
      (
        await queryRows<{ nearMiss: string | null; cluster: string | null }>(
          database.db,
          sql`select near_miss_cluster_id as "nearMiss", spoof_cluster_id as cluster from utterances where recording_id = ${recordingId}`,
        )
      )[0];
    expect(await nearMissOf(missed)).toEqual({ nearMiss: clusterA, cluster: null });
    expect((await nearMissOf(genuine))?.nearMiss).toBeNull();
    // the relative's own cluster is near it: inside that one, if anything, never inside family A's
    expect((await nearMissOf(relative))?.nearMiss).not.toBe(clusterA);
    const response = await app.request(`/v1/recordings/${missed}`, {
      headers: { authorization: `Bearer ${reader.key}` },
    });
    const { spoof } = (await response.json()) as {
      spoof: {
        verdict: string;
        nearMisses: { utteranceId: string; clusterId: string }[];
        clusterIds: string[];
        timeline: { nearMiss: boolean; clusterId: string }[];
      };
    };
    expect(spoof.verdict).toBe('suspicious');
    expect(spoof.nearMisses).toEqual([{ utteranceId: expect.any(String), clusterId: clusterA }]);
    expect(spoof.clusterIds).toEqual([clusterA]);
    expect(spoof.timeline.map((t) => [t.nearMiss, t.clusterId])).toEqual([[true, clusterA]]);
    const genuineView = (await (
      await app.request(`/v1/recordings/${genuine}`, { headers: { authorization: `Bearer ${reader.key}` } })
    ).json()) as { spoof: { verdict: string } };
    expect(genuineView.spoof.verdict).toBe('bonafide');
  });

  it('raises spoof_cluster_growth once a cluster gains the configured recordings within 24 hours, then updates it', async () => {
    const day = start + 30 * 24 * HOUR;
    for (let c = 0; c < 2; c++)
      recordings.a?.push(await call([utteranceOf(familyA, `burst-${c}`)], new Date(day + c * HOUR)));
    await analyse();
    expect(await alerts('spoof_cluster_growth')).toEqual([]);
    recordings.a?.push(await call([utteranceOf(familyA, 'burst-2')], new Date(day + 2 * HOUR)));
    await analyse();
    const [growth, ...more] = await alerts('spoof_cluster_growth');
    expect(more).toEqual([]);
    expect(growth?.recordingIds).toHaveLength(3);
    recordings.a?.push(await call([utteranceOf(familyA, 'burst-3')], new Date(day + 3 * HOUR)));
    await analyse();
    const updated = await alerts('spoof_cluster_growth');
    expect(updated).toHaveLength(1);
    expect(updated[0]?.id).toBe(growth?.id);
    expect(updated[0]?.recordingIds).toHaveLength(4);
  });

  it('answers the campaigns query docs/spoofs.md gives analysts, pasted as written', async () => {
    const text = fs.readFileSync(path.join(repoRoot, 'docs', 'spoofs.md'), 'utf8');
    const campaigns = [...text.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => (m[1] as string).trim())[3] as string;
    expect(campaigns).toMatch(/from spoof_clusters/);
    const rows = await queryRows<{ id: string; size: number; recording_count: number; account_count: number }>(
      database.db,
      sql.raw(campaigns),
    );
    const clusterA = (await clusterOf(recordings.a?.[0] as string))[0];
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({ id: clusterA, size: 10, recording_count: 9 });
    expect(rows.slice(1).map((r) => r.size)).toEqual([4, 4]);
  });

  it('seeds a cluster with the first utterance of a call and places the call’s next ones in it, not in clusters of their own', async () => {
    const familyD = direction('family-d');
    const waiting = [];
    for (let c = 0; c < 3; c++) {
      waiting.push(await call([utteranceOf(familyD, `d-${c}`)], new Date(start + (40 + c) * 48 * HOUR)));
    }
    await analyse();
    const many = await call(
      [0, 1, 2].map((u) => utteranceOf(familyD, `d-many-${u}`)),
      new Date(start + 44 * 48 * HOUR),
    );
    await analyse();
    const placed = (await Promise.all([...waiting, many].map(clusterOf))).flat();
    expect(placed).toHaveLength(6);
    expect(new Set(placed).size).toBe(1);
    expect(placed[0]).toBeTruthy();
    const [cluster] = await queryRows<{ size: number; recordingCount: number }>(
      database.db,
      sql`select size, recording_count as "recordingCount" from spoof_clusters where id = ${placed[0] as string}`,
    );
    expect(cluster).toEqual({ size: 6, recordingCount: 4 });
  });

  it('places nothing twice when the step runs again on a recording', async () => {
    const id = await call([utteranceOf(familyB, 'b-again')], new Date(start + 10 * HOUR));
    await analyse();
    const before = await queryRows(database.db, sql`select id, size, updated_at from spoof_clusters order by id`);
    const alertsBefore = await queryRows(database.db, sql`select id, recording_ids from alerts order by id`);
    const event = { id: 'replayed', recordingId: id, kind: 'stored' as const, stepsDone: [], attempts: 1 };
    await spoofClusterStep(settings).run({ tx: database.db, event, log: createLogger('silent') });
    expect(await queryRows(database.db, sql`select id, size, updated_at from spoof_clusters order by id`)).toEqual(
      before,
    );
    expect(await queryRows(database.db, sql`select id, recording_ids from alerts order by id`)).toEqual(alertsBefore);
    const [done] = await queryRows<{ steps: string[] }>(
      database.db,
      sql`select steps_done as steps from recording_events where recording_id = ${id}`,
    );
    expect(done?.steps).toContain(SPOOF_CLUSTER_STEP);
  });

  it('absorbs the noise that waited before its cluster formed, beyond the seed’s own nearest', async () => {
    const familyC = direction('family-c');
    // 20 utterances in two calls: each sees the other call only (2 recordings): noise, waiting
    const waiting = [
      await call(
        Array.from({ length: 10 }, (_, u) => utteranceOf(familyC, `c-x-${u}`)),
        new Date(start + 40 * HOUR),
      ),
      await call(
        Array.from({ length: 10 }, (_, u) => utteranceOf(familyC, `c-y-${u}`)),
        new Date(start + 41 * HOUR),
      ),
    ];
    await analyse();
    for (const id of waiting) expect((await clusterOf(id)).every((c) => c === null)).toBe(true);
    // a third call seeds the cluster from its 16 nearest; the other 4 are reached from the members
    const third = await call([utteranceOf(familyC, 'c-z')], new Date(start + 42 * HOUR));
    await analyse();
    const [clusterC] = await clusterOf(third);
    expect(clusterC).toBeTruthy();
    for (const id of waiting) expect(new Set(await clusterOf(id))).toEqual(new Set([clusterC]));
    const [cluster] = await queryRows<{ size: number; recordings: number }>(
      database.db,
      sql`select size, recording_count as recordings from spoof_clusters where id = ${clusterC}`,
    );
    expect(cluster).toEqual({ size: 21, recordings: 3 });
  });

  it('keeps the figures it grows on each join equal to a full recompute (the radius and medoid aside)', async () => {
    const figures = () =>
      queryRows(
        database.db,
        sql`select id, size, recording_count, account_count, channels, first_seen_at, last_seen_at,
                   round(mean_p_spoofed::numeric, 9) as mean_p from spoof_clusters order by id`,
      );
    const grown = await figures();
    const ids = (await queryRows<{ id: string }>(database.db, sql`select id from spoof_clusters`)).map((r) => r.id);
    await refreshClusterFigures(database.db, ids);
    expect(grown).toEqual(await figures());
  });
});
