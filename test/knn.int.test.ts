import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { identities, recordings, utterances, voiceprints } from '../src/db/schema.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { InvalidInputError } from '../src/errors.ts';
import {
  chooseMethod,
  deepfakeSpace,
  EXACT_MAX_ROWS,
  explainNearestNeighbours,
  type KnnFilter,
  nearestNeighbours,
  nearestNeighboursOfEach,
  speakerSpace,
} from '../src/search/knn.ts';
import { createVoiceModel, familyName } from '../src/standin/voices.ts';
import { normalise } from '../src/vectors.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';

// 5,000 voiceprints, one per recording, with call context laid out so that each filter below
// keeps a known share: channel `ivr` 1 % (50 rows), `branch` 0.1 % (5), `web` 50 %.
const ROWS = 5_000;
const model = createVoiceModel(42);
let database: TestDatabase;
type Row = {
  id: string;
  recordingId: string;
  accountRef: string;
  channel: string;
  callAt: Date;
  staff: boolean;
  unit: number[];
};
let rows: Row[] = [];
let deepfakeVectors: number[][];
const isSpoof = (i: number) => i % 10 === 0;
const channelOf = (i: number) => (i % 100 === 0 ? 'ivr' : i % 1000 === 7 ? 'branch' : i % 2 === 1 ? 'web' : 'phone');
const base = Date.parse('2026-01-01T00:00:00Z');

function bruteForce(unit: number[], k: number, keep: (row: Row) => boolean) {
  return rows
    .filter(keep)
    .map((row) => ({ id: row.id, similarity: row.unit.reduce((sum, v, d) => sum + v * (unit[d] as number), 0) }))
    .sort((a, b) => b.similarity - a.similarity)
    .slice(0, k);
}

function recall(found: { id: string }[], truth: { id: string }[]): number {
  const ids = new Set(found.map((f) => f.id));
  return truth.filter((t) => ids.has(t.id)).length / truth.length;
}

beforeAll(async () => {
  database = await createTestDatabase();
  const db = database.db;
  const [staff] = await db
    .insert(identities)
    .values({ kind: 'staff', origin: 'analyst', name: 'agents' })
    .returning({ id: identities.id });
  // Bulk-load the way an operator backfills: drop the HNSW indexes, load, rebuild them from the
  // very definitions the migrations created (incremental HNSW inserts are ~5× slower on PGlite).
  const hnsw = await queryRows<{ indexname: string; indexdef: string }>(
    db,
    sql`select indexname, indexdef from pg_indexes
        where indexname in ('voiceprints_embedding_hnsw', 'spoofed_utterances_embedding_hnsw')`,
  );
  expect(hnsw).toHaveLength(2);
  for (const index of hnsw) await db.execute(sql.raw(`drop index ${index.indexname}`));
  deepfakeVectors = Array.from(
    { length: ROWS },
    (_, i) =>
      normalise(
        model.deepfakeEmbedding({
          speakerId: `speaker-${i % 500}`,
          callKey: `call-${i % 1000}`,
          utteranceId: String(i),
          spoofFamily: isSpoof(i) ? familyName(i % 5) : null,
        }),
      ).unit,
  );
  for (let start = 0; start < ROWS; start += 500) {
    const batch = Array.from({ length: 500 }, (_, j) => start + j);
    const made = await db
      .insert(recordings)
      .values(
        batch.map((i) => ({
          source: 'import' as const,
          status: 'complete' as const,
          accountRef: `acct-${i % 1000}`,
          channel: channelOf(i),
          callAt: new Date(base + i * 60_000),
          documentSha256: `doc-${i}`,
        })),
      )
      .returning({ id: recordings.id });
    const units = batch.map((i) => normalise(model.speakerEmbedding(`speaker-${i}`, 'call-0')).unit);
    const stored = await db
      .insert(voiceprints)
      .values(
        batch.map((i, j) => ({
          recordingId: made[j]?.id as string,
          speakerLabel: 'SPEAKER_00',
          embedding: units[j] as number[],
          rawNorm: 200,
          speechSeconds: 10,
          utteranceCount: 1,
          identityId: i % 250 === 3 ? (staff?.id as string) : null,
        })),
      )
      .returning({ id: voiceprints.id });
    await db.insert(utterances).values(
      batch.map((i, j) => ({
        recordingId: made[j]?.id as string,
        upstreamId: '0',
        deepfakeEmbedding: deepfakeVectors[i] as number[],
        deepfakeRawNorm: 7,
        deepfakeLabel: isSpoof(i) ? 'spoofed' : 'bonafide',
      })),
    );
    rows.push(
      ...batch.map((i, j) => ({
        id: stored[j]?.id as string,
        recordingId: made[j]?.id as string,
        accountRef: `acct-${i % 1000}`,
        channel: channelOf(i),
        callAt: new Date(base + i * 60_000),
        staff: i % 250 === 3,
        unit: units[j] as number[],
      })),
    );
  }
  for (const index of hnsw) await db.execute(sql.raw(index.indexdef));
  for (const table of ['recordings', 'voiceprints', 'utterances', 'identities']) {
    await db.execute(sql.raw(`analyze ${table}`));
  }
}, 300_000);
afterAll(async () => {
  rows = [];
  await database?.close();
});

const query = (i: number) => normalise(model.speakerEmbedding(`speaker-${i}`, 'call-1')).unit;

describe(`the kNN builder on ${engine} (${ROWS} voiceprints, after ANALYZE)`, () => {
  it('unfiltered: an HNSW index walk, ordered by similarity, near the exact answer', async () => {
    const explained = await explainNearestNeighbours(database.db, speakerSpace, query(11), { k: 10 });
    expect(explained.method).toBe('hnsw');
    expect(explained.explain).toMatch(/Index Scan using voiceprints_embedding_hnsw/);
    let total = 0;
    for (const i of [11, 222, 3333, 4444, 1717]) {
      const { neighbours, plan } = await nearestNeighbours(database.db, speakerSpace, query(i), { k: 10 });
      expect(plan.method).toBe('hnsw');
      expect(plan.efSearch).toBeGreaterThanOrEqual(10);
      expect(plan.ms).toBeGreaterThan(0);
      expect(neighbours).toHaveLength(10);
      const similarities = neighbours.map((n) => n.similarity);
      expect(similarities).toEqual([...similarities].sort((a, b) => b - a));
      // the speaker's other call is the nearest voiceprint
      expect(neighbours[0]?.id).toBe(rows[i]?.id);
      total += recall(
        neighbours,
        bruteForce(query(i), 10, () => true),
      );
    }
    expect(total / 5).toBeGreaterThanOrEqual(0.9);
  });

  it('the plain walk carries its settings in its one statement: in force for the walk, gone after it', async () => {
    const { explain } = await explainNearestNeighbours(database.db, speakerSpace, query(11), { k: 10, efSearch: 30 });
    // the settings gate the walk: evaluated once, before the index scan below them returns a row
    expect(explain).toMatch(
      /One-Time Filter: .*set_config\('hnsw\.ef_search'::text, '30'::text, true\)[\s\S]*Index Scan/,
    );
    // a caller's transaction left a walk that stops after 1 candidate: were the walk's own settings
    // applied after its first row (or not at all), it would come back short and be answered exact
    const inCallers = await withTransaction(database.db, async (tx) => {
      await tx.execute(
        sql`select set_config('hnsw.ef_search', '1', true), set_config('hnsw.iterative_scan', 'off', true)`,
      );
      return nearestNeighbours(tx, speakerSpace, query(222), { k: 10, efSearch: 10 });
    });
    expect(inCallers.plan).toMatchObject({ method: 'hnsw', efSearch: 10 });
    expect(inCallers.neighbours).toHaveLength(10);
    // outside a transaction they last for the statement only: the same connection is back to its own
    const after = await database.withSession(async (session) => {
      const before = await queryRows<{ ef: string }>(session, sql`select current_setting('hnsw.ef_search') as ef`);
      await nearestNeighbours(session, speakerSpace, query(222), { k: 10, efSearch: 77 });
      const now = await queryRows<{ ef: string }>(session, sql`select current_setting('hnsw.ef_search') as ef`);
      return { before: before[0]?.ef, now: now[0]?.ef };
    });
    expect(after.now).toBe(after.before);
    expect(after.now).not.toBe('77');
  });

  it.each([
    ['1 %', ['ivr'], 50],
    ['0.1 %', ['branch'], 5],
  ])(
    'a %s channel filter is answered exactly and completely: min(k, matching rows)',
    async (_share, channels, matching) => {
      const filter: KnnFilter = { channels };
      const explained = await explainNearestNeighbours(database.db, speakerSpace, query(5), { k: 10, filter });
      expect(explained.method).toBe('exact');
      expect(explained.explain).not.toMatch(/voiceprints_embedding_hnsw/);
      const { neighbours, plan } = await nearestNeighbours(database.db, speakerSpace, query(5), { k: 10, filter });
      expect(plan).toMatchObject({ method: 'exact', efSearch: null });
      expect(plan.estimatedRows).toBeLessThanOrEqual(EXACT_MAX_ROWS);
      expect(neighbours).toHaveLength(Math.min(10, matching));
      const truth = bruteForce(query(5), 10, (row) => channels.includes(row.channel));
      expect(neighbours.map((n) => n.id)).toEqual(truth.map((t) => t.id));
      expect(neighbours.every((n) => channels.includes(String(n.channel)))).toBe(true);
    },
  );

  it('a broad filter walks the index iteratively and keeps only matching rows', async () => {
    const filter: KnnFilter = { channels: ['web'] };
    // 2,500 matching rows would be compared exactly under the default threshold: lower it so that
    // this small table shows the walk a large one takes
    const options = { k: 10, filter, exactMaxRows: 500 };
    const explained = await explainNearestNeighbours(database.db, speakerSpace, query(9), options);
    expect(explained.method).toBe('hnsw-iterative');
    expect(explained.explain).toMatch(/Index Scan using voiceprints_embedding_hnsw/);
    const { neighbours, plan } = await nearestNeighbours(database.db, speakerSpace, query(9), options);
    expect(plan.method).toBe('hnsw-iterative');
    expect(plan.estimatedRows).toBeGreaterThan(1_000);
    expect(neighbours).toHaveLength(10);
    expect(neighbours.every((n) => n.channel === 'web')).toBe(true);
    expect(
      recall(
        neighbours,
        bruteForce(query(9), 10, (row) => row.channel === 'web'),
      ),
    ).toBeGreaterThanOrEqual(0.8);
  });

  it('accounts in / not in, a callAt range and excluded recordings all hold, together', async () => {
    const accounts = Array.from({ length: 20 }, (_, i) => `acct-${i}`);
    const from = new Date(base + 100 * 60_000);
    const to = new Date(base + 4000 * 60_000);
    const excluded = rows.filter((r) => r.accountRef === 'acct-1').map((r) => r.recordingId);
    const filter: KnnFilter = {
      accountRefs: accounts,
      excludeAccountRefs: ['acct-2'],
      from,
      to,
      excludeRecordingIds: excluded.slice(0, 2),
    };
    const keep = (row: Row) =>
      accounts.includes(row.accountRef) &&
      row.accountRef !== 'acct-2' &&
      row.callAt >= from &&
      row.callAt <= to &&
      !excluded.slice(0, 2).includes(row.recordingId);
    const { neighbours, plan } = await nearestNeighbours(database.db, speakerSpace, query(1), { k: 100, filter });
    const truth = bruteForce(query(1), 100, keep);
    expect(plan.method).toBe('exact');
    expect(neighbours.map((n) => n.id)).toEqual(truth.map((t) => t.id));
    expect(truth.length).toBeLessThan(100); // fewer match than k: all of them come back
  });

  it('identity kinds: staff left out, or only staff', async () => {
    const without = await nearestNeighbours(database.db, speakerSpace, query(3), {
      k: 30,
      filter: { excludeIdentityKinds: ['staff'] },
    });
    expect(without.neighbours).toHaveLength(30);
    expect(without.neighbours.some((n) => n.identityKind === 'staff')).toBe(false);
    expect(without.neighbours.map((n) => n.id)).not.toContain(rows[3]?.id);
    const only = await nearestNeighbours(database.db, speakerSpace, query(3), {
      k: 30,
      filter: { identityKinds: ['staff'] },
    });
    expect(only.plan.method).toBe('exact');
    expect(only.neighbours).toHaveLength(rows.filter((r) => r.staff).length);
    expect(only.neighbours[0]?.id).toBe(rows[3]?.id);
  });

  it('groupBy account: the best voiceprint of each of k accounts, exact or walked', async () => {
    for (const exact of [false, true]) {
      const { neighbours } = await nearestNeighbours(database.db, speakerSpace, query(7), {
        k: 12,
        groupBy: 'account',
        exact,
      });
      expect(neighbours).toHaveLength(12);
      expect(new Set(neighbours.map((n) => n.accountRef)).size).toBe(12);
      const truth = bruteForce(query(7), ROWS, () => true);
      const firstPerAccount = new Map<string, string>();
      for (const t of truth) {
        const account = rows.find((r) => r.id === t.id)?.accountRef as string;
        if (!firstPerAccount.has(account)) firstPerAccount.set(account, t.id);
      }
      const expected = [...firstPerAccount.values()].slice(0, 12);
      expect(
        recall(
          neighbours,
          expected.map((id) => ({ id })),
        ),
      ).toBeGreaterThanOrEqual(exact ? 1 : 0.8);
    }
  });

  it('exact on request', async () => {
    const { neighbours, plan } = await nearestNeighbours(database.db, speakerSpace, query(8), { k: 10, exact: true });
    expect(plan).toMatchObject({ method: 'exact', efSearch: null });
    expect(neighbours.map((n) => n.id)).toEqual(bruteForce(query(8), 10, () => true).map((t) => t.id));
  });

  it('the deepfake space answers spoofed utterances only, from the partial index', async () => {
    const explained = await explainNearestNeighbours(database.db, deepfakeSpace, deepfakeVectors[320] as number[], {
      k: 10,
    });
    expect(explained.explain).toMatch(/Index Scan using spoofed_utterances_embedding_hnsw/);
    const own = await nearestNeighbours(database.db, deepfakeSpace, deepfakeVectors[320] as number[], { k: 3 });
    expect(own.neighbours[0]?.similarity).toBeCloseTo(1, 2);
    // a bonafide utterance's own vector: its exact match is not a spoof, so it must not come back
    const { neighbours } = await nearestNeighbours(database.db, deepfakeSpace, deepfakeVectors[321] as number[], {
      k: 20,
    });
    expect(neighbours).toHaveLength(20);
    expect(neighbours[0]?.similarity).toBeLessThan(0.99);
    const labels = await queryRows<{ deepfake_label: string }>(
      database.db,
      sql`select distinct deepfake_label from utterances where id = any(${sql.param(neighbours.map((n) => n.id))}::uuid[])`,
    );
    expect(labels).toEqual([{ deepfake_label: 'spoofed' }]);
  });

  it('answers several vectors in one call as nearestNeighbours answers each: by the index walk, and exact when the filter keeps few rows', async () => {
    const vectors = [320, 330, 321].map((i) => deepfakeVectors[i] as number[]);
    const filter = { excludeRecordingIds: [(rows[320] as Row).recordingId] };
    // 500 spoofed rows would be compared exactly: the online spoof step walks the index at any size, as here
    const options = { k: 12, filter, exactMaxRows: 0 };
    const each = await nearestNeighboursOfEach(database.db, deepfakeSpace, vectors, options);
    expect(each).toHaveLength(3);
    for (const [i, vector] of vectors.entries()) {
      const { neighbours, plan } = await nearestNeighbours(database.db, deepfakeSpace, vector, options);
      expect(plan.method).toBe('hnsw-iterative');
      expect(each[i]).toEqual(neighbours);
    }
    expect(each[0]?.map((n) => n.recordingId)).not.toContain((rows[320] as Row).recordingId);
    // `branch` keeps 5 voiceprints: fewer than k, so each answer is exact and holds all five
    const few = await nearestNeighboursOfEach(database.db, speakerSpace, [query(1), query(2)], {
      k: 10,
      filter: { channels: ['branch'] },
    });
    for (const [i, unit] of [query(1), query(2)].entries()) {
      expect(few[i]?.map((n) => n.id)).toEqual(
        bruteForce(unit, 10, (row) => row.channel === 'branch').map((t) => t.id),
      );
    }
    expect(await nearestNeighboursOfEach(database.db, deepfakeSpace, [], { k: 5 })).toEqual([]);
    await expect(
      nearestNeighboursOfEach(database.db, deepfakeSpace, [deepfakeVectors[320] as number[], [1, 2]], { k: 5 }),
    ).rejects.toThrow(/768 values, got 2/);
  });

  it('rejects a vector of the wrong length or with non-finite values, and k out of range', async () => {
    await expect(nearestNeighbours(database.db, speakerSpace, [1, 2, 3], { k: 10 })).rejects.toThrow(
      /192 values, got 3/,
    );
    await expect(nearestNeighbours(database.db, deepfakeSpace, [1], { k: 10 })).rejects.toThrow(/768 values, got 1/);
    const nan = [...query(1)];
    nan[5] = Number.NaN;
    await expect(nearestNeighbours(database.db, speakerSpace, nan, { k: 10 })).rejects.toThrow(InvalidInputError);
    await expect(nearestNeighbours(database.db, speakerSpace, query(1), { k: 0 })).rejects.toThrow(/k must be/);
  });
});

describe('choosing the plan from the estimate', () => {
  it('exact for few matching rows or when a walk would visit more than max_scan_tuples', () => {
    const choose = (k: number, estimatedRows: number | null, indexedRows = 1_000_000) =>
      chooseMethod({ k, exact: false, estimatedRows, indexedRows });
    expect(choose(10, null)).toBe('hnsw');
    expect(choose(10, 1_000)).toBe('exact'); // 0.1 % of 1M
    expect(choose(10, 10_000)).toBe('exact'); // 1 %: every matching row compared
    expect(choose(10, 50_000)).toBe('hnsw-iterative'); // 5 %: ~200 rows visited for 10
    expect(choose(1000, 30_000)).toBe('exact'); // 3 %: 33,000 rows to visit for 1,000
    expect(choose(10, 500_000)).toBe('hnsw-iterative');
    expect(chooseMethod({ k: 10, exact: true, estimatedRows: null, indexedRows: null })).toBe('exact');
  });
});
