import { type SQL, sql } from 'drizzle-orm';
import pgvector from 'pgvector';
import { type Db, queryRows } from '../db/client.ts';
import { DEEPFAKE_DIMENSIONS, type IdentityKind, SPEAKER_DIMENSIONS } from '../db/schema.ts';
import { withTransaction } from '../db/transaction.ts';
import { InvalidInputError } from '../errors.ts';

/**
 * One kNN builder for both vector spaces (speaker voiceprints, deepfake utterances): the nearest
 * rows to a vector by cosine distance, under filters joined to the rows' recordings, always
 * complete — `min(k, matching rows)` rows (or groups) whatever the filter.
 *
 * How it answers (the plan, named in every answer):
 * - `hnsw`: nothing is filtered; the HNSW index answers `order by <=> limit k` directly.
 * - `hnsw-iterative`: a filter the planner estimates to keep many rows; the index scan runs with
 *   pgvector's iterative scan (`hnsw.iterative_scan = relaxed_order`), which keeps walking the graph
 *   until `k` rows pass the filter (or `hnsw.max_scan_tuples` were visited), and the rows are put
 *   back in distance order afterwards.
 * - `exact`: a selective filter — the planner's own row estimate for the filter (table statistics,
 *   an `EXPLAIN` of the filter alone) says an index walk would visit more than `max_scan_tuples`
 *   rows to find `k`, or the matching rows are few enough to compare them all — or the caller asked
 *   for it. The filter's own indexes find the rows; every one is compared.
 * An index answer with fewer than `k` rows is never final: the same query runs exact, so a filter
 * the estimate misjudged still gets a complete answer (the plan then says `exact`).
 *
 * `ef_search` and the iterative scan are set with `set_config(…, true)` — `SET LOCAL` — inside the
 * query's transaction (joined when the caller has one), so they never leak to other queries. The
 * plain `hnsw` walk sets them inside its own statement and needs no transaction of its own: one
 * round trip where BEGIN, the settings and COMMIT made it four.
 */

export type VectorSpace = {
  name: 'speaker' | 'deepfake';
  dimensions: number;
  /** the SQL type the query vector is cast to, matching the column (and its index) */
  vectorType: 'vector' | 'halfvec';
  /** `from … join recordings r …`: the searched rows aliased `t`, their recording `r` */
  from: SQL;
  /** the searched column, `t.<column>` */
  column: SQL;
  /** a partial index's predicate, repeated verbatim so that the planner can use the index */
  rowPredicate: SQL | null;
  /** the answer's columns beyond the common ones */
  columns: SQL;
  /** whether rows carry an identity (`i`), so that identity filters apply */
  hasIdentities: boolean;
  /** the HNSW index the walk uses: its row count (`pg_class.reltuples`) is the space's size */
  index: string;
};

/** Voiceprints (192-d `vector`), with their identity. */
export const speakerSpace: VectorSpace = {
  name: 'speaker',
  dimensions: SPEAKER_DIMENSIONS,
  vectorType: 'vector',
  from: sql`voiceprints t join recordings r on r.id = t.recording_id left join identities i on i.id = t.identity_id`,
  column: sql`t.embedding`,
  rowPredicate: null,
  columns: sql`t.speaker_label as "speakerLabel", t.identity_id as "identityId", i.kind as "identityKind"`,
  hasIdentities: true,
  index: 'voiceprints_embedding_hnsw',
};

/**
 * Spoofed utterances (768-d `halfvec`): `spoofed_utterances` and its HNSW index, each row joined to
 * its utterance (`u`: label, pSpoofed, times, cluster) and recording.
 */
export const deepfakeSpace: VectorSpace = {
  name: 'deepfake',
  dimensions: DEEPFAKE_DIMENSIONS,
  vectorType: 'halfvec',
  from: sql`spoofed_utterances t join utterances u on u.id = t.id join recordings r on r.id = t.recording_id`,
  column: sql`t.embedding`,
  rowPredicate: null,
  columns: sql`u.speaker_label as "speakerLabel", u.p_spoofed as "pSpoofed", u.start_s as "startS", u.end_s as "endS",
    u.spoof_cluster_id as "clusterId"`,
  hasIdentities: false,
  index: 'spoofed_utterances_embedding_hnsw',
};

export type KnnFilter = {
  accountRefs?: readonly string[];
  excludeAccountRefs?: readonly string[];
  channels?: readonly string[];
  /** on the recording's `call_at`, inclusive */
  from?: Date;
  to?: Date;
  identityKinds?: readonly IdentityKind[];
  /** rows in an identity of these kinds are left out (staff, by default, in voice search) */
  excludeIdentityKinds?: readonly IdentityKind[];
  excludeRecordingIds?: readonly string[];
  /** deepfake space only: utterances whose pSpoofed is at least this */
  minPSpoofed?: number;
};

export type KnnMethod = 'hnsw' | 'hnsw-iterative' | 'exact';

export type KnnPlan = {
  method: KnnMethod;
  /** the `hnsw.ef_search` of the index walk; null for an exact answer */
  efSearch: number | null;
  /** wall time of the whole answer (estimate, index walk, any exact re-run), milliseconds */
  ms: number;
  /** the planner's estimate of the rows matching the filter (null when nothing is filtered) */
  estimatedRows: number | null;
};

export type Neighbour = {
  id: string;
  recordingId: string;
  similarity: number;
  accountRef: string | null;
  channel: string | null;
  callAt: Date | null;
  /** the space's own columns (`speakerLabel`, `identityId`, `identityKind`; or `pSpoofed`, …) */
  [column: string]: unknown;
};

export type KnnOptions = {
  k: number;
  filter?: KnnFilter;
  exact?: boolean;
  /** the index walk's candidate list; defaults to DEFAULT_EF_SEARCH, never below k */
  efSearch?: number;
  /** one row per account (`r.account_ref`) or identity (`t.identity_id`): the best of each */
  groupBy?: 'account' | 'identity';
  /** estimated matching rows at or below which the answer is exact (EXACT_MAX_ROWS) */
  exactMaxRows?: number;
};

export const K_MAX = 1000;
/** pgvector's own ceiling for `hnsw.ef_search` */
export const EF_SEARCH_MAX = 1000;
/** Candidates per index walk unless asked otherwise (bench/voices-knn.ts measured the trade-off). */
export const DEFAULT_EF_SEARCH = 100;
/** How many rows an iterative index walk may visit before it gives up (pgvector's default). */
export const MAX_SCAN_TUPLES = 20_000;
/**
 * Matching rows few enough to compare every one. At 1,000,000 voiceprints a 1 % filter keeps about
 * 10,000: its iterative walk found 0.73 of the true top 10 (bench/results/voices-knn.json), its
 * exact answer all of them; below this, exactness wins over the walk's few milliseconds.
 */
export const EXACT_MAX_ROWS = 20_000;

/**
 * The `k` rows nearest `vector` in `space` under `filter`, with the plan that found them.
 * @example const { neighbours, plan } = await nearestNeighbours(db, speakerSpace, unit, { k: 10, filter: { channels: ['ivr'] } });
 */
export async function nearestNeighbours(
  db: Db,
  space: VectorSpace,
  vector: ArrayLike<number>,
  options: KnnOptions,
): Promise<{ neighbours: Neighbour[]; plan: KnnPlan }> {
  const started = performance.now();
  const query = prepare(space, vector, options);
  const answer = (neighbours: Neighbour[], method: KnnMethod, estimatedRows: number | null) => ({
    neighbours,
    plan: {
      method,
      efSearch: method === 'exact' ? null : query.efSearch,
      ms: Math.round((performance.now() - started) * 1000) / 1000,
      estimatedRows,
    } satisfies KnnPlan,
  });
  const plainWalk = isPlainWalk(query, options);
  if (plainWalk) {
    // the commonest search (nothing filtered) is one statement that carries its own settings: no
    // transaction of its own, so no BEGIN and COMMIT round trips (bench/spoofs-knn.ts)
    const rows = await queryRows<RawRow>(db, settledWalkStatement(query));
    if (rows.length >= query.k) return answer(rows.map(toNeighbour), 'hnsw', null);
  }
  return withTransaction(db, async (tx) => {
    const estimate = await estimateFor(tx, query, options.filter ?? {});
    // a plain walk that came back short is answered exact: walking again would find the same rows
    let method: KnnMethod = plainWalk ? 'exact' : decide(query, options, estimate);
    let neighbours: Neighbour[] = [];
    if (method !== 'exact') {
      await applySettings(tx, query, method);
      neighbours = await indexAnswer(tx, query);
      // an index walk that found fewer than k may have given up early: only an exact answer is sure
      if (neighbours.length < query.k) method = 'exact';
    }
    if (method === 'exact') {
      await exactSettings(tx);
      neighbours = await exactAnswer(tx, query);
    }
    return answer(neighbours, method, estimate?.matching ?? null);
  });
}

/**
 * The `k` rows nearest each of `vectors`, under one filter: what `nearestNeighbours` answers for
 * each, after one estimate and one `SET LOCAL` for them all, where a call per vector pays those two
 * round trips every time (the online spoof step walks once per utterance of a call,
 * bench/spoofs-batch.ts). One walk per vector: a lateral join of the walks in one statement measured
 * slower than the walks one by one (7.8 against 6.3 ms a vector, 50,000 halfvec rows). Ungrouped
 * only. A walk that found fewer than `k` rows is answered exact for its vector, as in nearestNeighbours.
 * @example const [first, second] = await nearestNeighboursOfEach(tx, deepfakeSpace, [a, b], { k: 16 });
 */
export async function nearestNeighboursOfEach(
  db: Db,
  space: VectorSpace,
  vectors: readonly ArrayLike<number>[],
  options: Omit<KnnOptions, 'groupBy'>,
): Promise<Neighbour[][]> {
  if ('groupBy' in options && options.groupBy) throw new InvalidInputError('groupBy applies to one vector at a time');
  const queries = vectors.map((vector) => prepare(space, vector, options));
  const [first] = queries;
  if (!first) return [];
  return withTransaction(db, async (tx) => {
    const method = await planFor(tx, first, options);
    if (method !== 'exact') await applySettings(tx, first, method);
    let exactSet = false;
    const answers: Neighbour[][] = [];
    for (const query of queries) {
      const walked = method === 'exact' ? [] : await indexAnswer(tx, query);
      if (walked.length >= query.k) {
        answers.push(walked);
        continue;
      }
      if (!exactSet) await exactSettings(tx);
      exactSet = true;
      answers.push(await exactAnswer(tx, query));
    }
    return answers;
  });
}

function prepare(space: VectorSpace, vector: ArrayLike<number>, options: KnnOptions): KnnQuery {
  const literal = vectorLiteral(space, vector);
  const k = options.k;
  if (!Number.isInteger(k) || k < 1 || k > K_MAX) throw new InvalidInputError(`k must be 1–${K_MAX}, got ${k}`);
  const filter = filterSql(space, options.filter ?? {});
  const efSearch = Math.min(EF_SEARCH_MAX, Math.max(k, options.efSearch ?? DEFAULT_EF_SEARCH));
  return { space, literal, k, filter, groupBy: options.groupBy, efSearch };
}

/** Nothing filtered, grouped or asked exact: a walk of the index, settled in one statement. */
function isPlainWalk(query: KnnQuery, options: KnnOptions): boolean {
  return !query.filter && !query.groupBy && !options.exact;
}

function decide(query: KnnQuery, options: KnnOptions, estimate: { matching: number; indexed: number | null } | null) {
  return chooseMethod({
    k: query.k,
    exact: options.exact ?? false,
    estimatedRows: estimate?.matching ?? null,
    indexedRows: estimate?.indexed ?? null,
    exactMaxRows: options.exactMaxRows ?? EXACT_MAX_ROWS,
  });
}

async function planFor(tx: Db, query: KnnQuery, options: KnnOptions): Promise<KnnMethod> {
  const estimate = await estimateFor(tx, query, options.filter ?? {});
  return decide(query, options, estimate);
}

/**
 * An exact answer reads a few thousand rows through the filter's indexes: a parallel plan's start-up
 * (~20 ms for its workers at 1M rows, bench/voices-knn.ts) costs more than it saves.
 */
async function exactSettings(tx: Db): Promise<void> {
  await tx.execute(sql`select set_config('max_parallel_workers_per_gather', '0', true)`);
}

/** `SET LOCAL` the walk's settings: iterative when filtered or grouped (a plain walk stops at ef_search rows). */
async function applySettings(tx: Db, query: KnnQuery, method: KnnMethod): Promise<void> {
  const iterative = method === 'hnsw-iterative' || Boolean(query.groupBy);
  await tx.execute(sql`select ${sql.join(walkSettings(query, iterative), sql`, `)}`);
}

/** The walk's `set_config(…, true)` calls: what applySettings runs and settledWalkStatement carries. */
function walkSettings(query: KnnQuery, iterative: boolean): SQL[] {
  return [
    sql`set_config('hnsw.ef_search', ${String(query.efSearch)}, true)`,
    sql`set_config('hnsw.iterative_scan', ${iterative ? 'relaxed_order' : 'off'}, true)`,
    sql`set_config('hnsw.max_scan_tuples', ${String(MAX_SCAN_TUPLES)}, true)`,
  ];
}

/**
 * The plan `nearestNeighbours` would choose for these options, with PostgreSQL's `EXPLAIN` of the
 * statement that plan runs (under the same settings): what the EXPLAIN tests pin per case.
 * @example const { method, explain } = await explainNearestNeighbours(db, speakerSpace, unit, { k: 10 });
 */
export async function explainNearestNeighbours(
  db: Db,
  space: VectorSpace,
  vector: ArrayLike<number>,
  options: KnnOptions,
): Promise<{ method: KnnMethod; explain: string }> {
  const query = prepare(space, vector, options);
  return withTransaction(db, async (tx) => {
    if (isPlainWalk(query, options)) {
      const rows = await queryRows<{ 'QUERY PLAN': string }>(tx, sql`explain ${settledWalkStatement(query)}`);
      return { method: 'hnsw' as const, explain: rows.map((r) => r['QUERY PLAN']).join('\n') };
    }
    const method = await planFor(tx, query, options);
    if (method !== 'exact') await applySettings(tx, query, method);
    else await exactSettings(tx);
    const statement = method === 'exact' ? exactStatement(query) : indexWalkStatement(query, query.k);
    const rows = await queryRows<{ 'QUERY PLAN': string }>(tx, sql`explain ${statement}`);
    return { method, explain: rows.map((r) => r['QUERY PLAN']).join('\n') };
  });
}

/**
 * Exact when asked, when the filter keeps few rows (EXACT_MAX_ROWS), or when an iterative walk
 * would have to visit more than MAX_SCAN_TUPLES rows to find k of them: k / selectivity, the
 * selectivity being the planner's estimate of matching rows over the rows in the index. Grouped
 * answers need k groups, which no walk can promise: they go exact when the over-fetched candidates
 * do not hold k groups (indexAnswer).
 * @example chooseMethod({ k: 10, exact: false, estimatedRows: 9_000, indexedRows: 1_000_000 }) // 'exact'
 */
export function chooseMethod(input: {
  k: number;
  exact: boolean;
  /** null: nothing is filtered */
  estimatedRows: number | null;
  /** null or ≤ 0: unknown (a table never analysed) */
  indexedRows: number | null;
  exactMaxRows?: number;
}): KnnMethod {
  if (input.exact) return 'exact';
  if (input.estimatedRows === null) return 'hnsw';
  if (input.estimatedRows <= (input.exactMaxRows ?? EXACT_MAX_ROWS)) return 'exact';
  if (input.indexedRows && input.indexedRows > 0) {
    const selectivity = Math.min(1, input.estimatedRows / input.indexedRows);
    if (input.k / selectivity > MAX_SCAN_TUPLES) return 'exact';
  }
  return 'hnsw-iterative';
}

type KnnQuery = {
  space: VectorSpace;
  literal: string;
  k: number;
  filter: SQL | null;
  groupBy: KnnOptions['groupBy'];
  efSearch: number;
};

/** The SQL type of the space's vectors, `halfvec(768)`. */
function vectorType(space: VectorSpace): SQL {
  return sql.raw(`${space.vectorType}(${space.dimensions})`);
}

function distance(query: KnnQuery): SQL {
  return sql`${query.space.column} <=> ${query.literal}::${vectorType(query.space)}`;
}

function whereSql(query: KnnQuery, extra: SQL | null = null): SQL {
  const parts = [query.space.rowPredicate, query.filter, extra].filter((p): p is SQL => p !== null);
  return parts.length === 0 ? sql`` : sql`where ${sql.join(parts, sql` and `)}`;
}

function selectList(query: KnnQuery): SQL {
  return sql`t.id, t.recording_id as "recordingId", r.account_ref as "accountRef", r.channel, r.call_at as "callAt",
             ${query.space.columns}, ${distance(query)} as distance`;
}

function groupKey(query: KnnQuery): SQL | null {
  if (query.groupBy === 'account') return sql`coalesce(r.account_ref, 'recording:' || r.id::text)`;
  if (query.groupBy === 'identity') {
    if (!query.space.hasIdentities) throw new InvalidInputError('groupBy identity applies to voices only');
    return sql`coalesce(t.identity_id::text, 'row:' || t.id::text)`;
  }
  return null;
}

/**
 * The index walk: `order by <=> limit n` on the space's HNSW index. Ungrouped it asks for k;
 * grouped it over-fetches (8k, then 64k candidates) and keeps each group's best, and hands over
 * to the exact answer when even that does not hold k groups.
 */
async function indexAnswer(tx: Db, query: KnnQuery): Promise<Neighbour[]> {
  const key = groupKey(query);
  for (const limit of key ? [query.k * 8, query.k * 64] : [query.k]) {
    // relaxed_order returns rows nearly in order; the materialised CTE keeps the index walk intact
    // and the outer query restores the exact order
    const rows = await queryRows<RawRow>(tx, indexWalkStatement(query, limit));
    if (!key) return rows.map(toNeighbour);
    const best = bestPerGroup(rows).slice(0, query.k);
    if (best.length >= query.k) return best.map(toNeighbour);
    if (rows.length < limit) return [];
  }
  return [];
}

/** Every matching row compared: the filter's indexes find them, a top-k sort picks the nearest. */
async function exactAnswer(tx: Db, query: KnnQuery): Promise<Neighbour[]> {
  const rows = await queryRows<RawRow>(tx, exactStatement(query));
  return rows.map(toNeighbour);
}

/** The index walk's statement: relaxed_order returns rows nearly in order; the materialised CTE
 * keeps the walk intact and the outer query restores the exact order. */
function indexWalkStatement(query: KnnQuery, limit: number): SQL {
  return sql`with walked as materialized (${walk(query, limit)})
             select * from walked order by distance, id`;
}

/** The index walk itself, `order by <=> limit`: the inner query of both walk statements. */
function walk(query: KnnQuery, limit: number, gate: SQL | null = null): SQL {
  const key = groupKey(query);
  return sql`select ${selectList(query)}${key ? sql`, ${key} as group_key` : sql``}
             from ${query.space.from}
             ${whereSql(query, gate)}
             order by ${distance(query)}
             limit ${limit}`;
}

/**
 * The unfiltered, ungrouped walk with its settings in the same statement: the `set_config(…, true)`
 * calls, joined into one value that the walk's `where` names, become a filter that PostgreSQL
 * evaluates once before the walk's first row is fetched — and pgvector reads its settings at that
 * first fetch (hnswgettuple), so the walk runs under them (test/knn.int.test.ts pins both the plan
 * and the effect). `true` keeps them to the statement's own transaction, or to the caller's, as
 * `applySettings` does. Only for walks the planner chooses whatever the settings: it costs the
 * index with the ef_search it sees when planning, before these run.
 */
function settledWalkStatement(query: KnnQuery): SQL {
  return sql`select w.* from (select ${sql.join(walkSettings(query, false), sql` || `)} as applied) settings
             cross join lateral (${walk(query, query.k, sql`settings.applied is not null`)}) w
             order by w.distance, w.id`;
}

function exactStatement(query: KnnQuery): SQL {
  const key = groupKey(query);
  // `+ 0` keeps the planner off the HNSW index: an index walk is what this answer must not be
  const exactDistance = sql`(${distance(query)}) + 0`;
  return key
    ? sql`select * from (
            select distinct on (${key}) ${selectList(query)}
            from ${query.space.from}
            ${whereSql(query)}
            order by ${key}, ${exactDistance}, t.id
          ) best
          order by distance, id
          limit ${query.k}`
    : sql`select ${selectList(query)}
          from ${query.space.from}
          ${whereSql(query)}
          order by ${exactDistance}, t.id
          limit ${query.k}`;
}

type RawRow = Record<string, unknown> & { id: string; distance: number | string; group_key?: string };

function bestPerGroup(rows: RawRow[]): RawRow[] {
  const seen = new Set<string>();
  return rows.filter((row) => {
    const key = String(row.group_key);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function toNeighbour(row: RawRow): Neighbour {
  const { distance: d, group_key: _key, callAt, ...rest } = row;
  return {
    ...rest,
    id: row.id,
    recordingId: String(rest.recordingId),
    accountRef: (rest.accountRef as string | null) ?? null,
    channel: (rest.channel as string | null) ?? null,
    callAt: callAt == null ? null : new Date(callAt as string),
    similarity: 1 - Number(d),
  };
}

/**
 * How many rows the filter keeps. A filter that only leaves rows out — staff, the query's own
 * recordings — is counted from what it leaves out (the staff identities' member counts, two
 * voiceprints per excluded recording at most) against the index's size, with no planning round
 * trip: it is the default of every voice search. Any other filter asks the planner.
 */
async function estimateFor(
  tx: Db,
  query: KnnQuery,
  filter: KnnFilter,
): Promise<{ matching: number; indexed: number | null } | null> {
  if (!query.filter) return null;
  const onlyExclusions = Object.entries(filter).every(
    ([name, value]) =>
      value === undefined ||
      ((name === 'excludeIdentityKinds' || name === 'excludeRecordingIds') && Array.isArray(value)),
  );
  if (!onlyExclusions) return estimateMatchingRows(tx, query.space, query.filter);
  const kinds = filter.excludeIdentityKinds ?? [];
  const [counts] = await queryRows<{ indexed: number | string | null; excluded: number | string | null }>(
    tx,
    sql`select (select reltuples from pg_class where oid = to_regclass(${query.space.index})) as indexed,
               ${
                 kinds.length > 0 && query.space.hasIdentities
                   ? sql`(select coalesce(sum(member_count), 0) from identities
                          where kind = any(${sql.param([...kinds])}::text[]) and retired_at is null)`
                   : sql`0`
               } as excluded`,
  );
  const indexed = counts?.indexed == null ? null : Number(counts.indexed);
  // an index never vacuumed or analysed has no row count: let the planner estimate instead
  if (indexed === null || indexed <= 0) return estimateMatchingRows(tx, query.space, query.filter);
  const excluded = Number(counts?.excluded ?? 0) + 2 * (filter.excludeRecordingIds?.length ?? 0);
  return { matching: Math.max(0, Math.round(indexed - excluded)), indexed };
}

/**
 * The planner's estimate of the rows matching the filter — the `Plan Rows` of `EXPLAIN` on the
 * filter alone, from the tables' statistics, nothing executed — and the rows in the space's index.
 */
async function estimateMatchingRows(
  tx: Db,
  space: VectorSpace,
  filter: SQL,
): Promise<{ matching: number; indexed: number | null }> {
  const where = [space.rowPredicate, filter].filter((p): p is SQL => p !== null);
  const rows = await queryRows<{ 'QUERY PLAN': unknown }>(
    tx,
    sql`explain (format json) select 1 from ${space.from} where ${sql.join(where, sql` and `)}`,
  );
  const document = rows[0]?.['QUERY PLAN'];
  const parsed = (typeof document === 'string' ? JSON.parse(document) : document) as [
    { Plan: { 'Plan Rows': number } },
  ];
  const [size] = await queryRows<{ reltuples: number | string | null }>(
    tx,
    sql`select reltuples from pg_class where oid = to_regclass(${space.index})`,
  );
  const indexed = size?.reltuples == null ? null : Number(size.reltuples);
  return { matching: Math.round(parsed[0].Plan['Plan Rows']), indexed };
}

function filterSql(space: VectorSpace, filter: KnnFilter): SQL | null {
  const parts: SQL[] = [];
  if (filter.accountRefs) parts.push(sql`r.account_ref = any(${sql.param([...filter.accountRefs])}::text[])`);
  if (filter.excludeAccountRefs?.length) {
    parts.push(
      sql`(r.account_ref is null or r.account_ref <> all(${sql.param([...filter.excludeAccountRefs])}::text[]))`,
    );
  }
  if (filter.channels) parts.push(sql`r.channel = any(${sql.param([...filter.channels])}::text[])`);
  if (filter.from) parts.push(sql`r.call_at >= ${filter.from.toISOString()}::timestamptz`);
  if (filter.to) parts.push(sql`r.call_at <= ${filter.to.toISOString()}::timestamptz`);
  if (filter.excludeRecordingIds?.length) {
    parts.push(sql`t.recording_id <> all(${sql.param([...filter.excludeRecordingIds])}::uuid[])`);
  }
  if (filter.minPSpoofed !== undefined) {
    if (space.name !== 'deepfake') throw new InvalidInputError('minPSpoofed applies to the deepfake space only');
    parts.push(sql`u.p_spoofed >= ${filter.minPSpoofed}`);
  }
  if (space.hasIdentities) {
    if (filter.identityKinds) parts.push(sql`i.kind = any(${sql.param([...filter.identityKinds])}::text[])`);
    if (filter.excludeIdentityKinds?.length) {
      parts.push(sql`(i.kind is null or i.kind <> all(${sql.param([...filter.excludeIdentityKinds])}::text[]))`);
    }
  } else if (filter.identityKinds || filter.excludeIdentityKinds?.length) {
    throw new InvalidInputError(`identity filters apply to voices only, not the ${space.name} space`);
  }
  return parts.length === 0 ? null : sql.join(parts, sql` and `);
}

function vectorLiteral(space: VectorSpace, vector: ArrayLike<number>): string {
  if (vector.length !== space.dimensions) {
    throw new InvalidInputError(`a ${space.name} vector has ${space.dimensions} values, got ${vector.length}`);
  }
  const values = Array.from(vector);
  if (!values.every(Number.isFinite)) throw new InvalidInputError(`a ${space.name} vector's values must be finite`);
  return pgvector.toSql(values) as string;
}
