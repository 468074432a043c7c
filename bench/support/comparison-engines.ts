import fs from 'node:fs';
import path from 'node:path';

/**
 * The engines voxtrace's search is compared with, on the same vectors and queries: hnswlib-node in
 * this process and LanceDB embedded. They live in bench/package.json (its own node_modules, never
 * a dependency of voxtrace): `npm ci --prefix bench --omit=optional`. They are loaded by name at
 * run time, so that the project type-checks without them installed.
 */
const benchRequire = async (name: string): Promise<unknown> => {
  // LanceDB's Rust logger: warnings only about its own deprecations would fill the run's log
  process.env.LANCEDB_LOG ??= 'error';
  process.env.RUST_LOG ??= 'error';
  const entry = path.join(import.meta.dirname, '..', 'node_modules', name);
  if (!fs.existsSync(entry)) {
    throw new Error(`${name} is not installed under bench/: run \`npm ci --prefix bench --omit=optional\``);
  }
  return import(name);
};

type HnswlibIndex = {
  initIndex(maxElements: number, m: number, efConstruction: number, randomSeed: number): void;
  addPoint(point: number[], label: number): void;
  setEf(ef: number): void;
  searchKnn(query: number[], k: number, filter?: (label: number) => boolean): { neighbors: number[] };
};

/**
 * An hnswlib index (inner product on unit vectors = cosine) over `count` vectors, labels = row
 * numbers, built single-threaded (hnswlib-node adds one point per call).
 */
export async function buildHnswlib(input: {
  vectors: Float32Array;
  count: number;
  dimensions: number;
  m: number;
  efConstruction: number;
  log?: (line: string) => void;
  /** while its first element is 1 the build waits (the caller is measuring latencies meanwhile) */
  pause?: Int32Array;
}) {
  const hnswlib = (await benchRequire('hnswlib-node')) as {
    default: { HierarchicalNSW: new (space: string, dimensions: number) => HnswlibIndex };
  };
  const index = new hnswlib.default.HierarchicalNSW('ip', input.dimensions);
  index.initIndex(input.count, input.m, input.efConstruction, 100);
  const dims = input.dimensions;
  const started = performance.now();
  for (let v = 0; v < input.count; v++) {
    if (input.pause && v % 1000 === 0) while (Atomics.load(input.pause, 0) === 1) Atomics.wait(input.pause, 0, 1, 1000);
    index.addPoint(Array.from(input.vectors.subarray(v * dims, (v + 1) * dims)), v);
    if (input.log && (v + 1) % 100_000 === 0) {
      input.log(
        `  hnswlib: ${(v + 1).toLocaleString('en')} points, ${((performance.now() - started) / 1000).toFixed(0)} s`,
      );
    }
  }
  return {
    search(query: number[], k: number, ef: number, allowed: (row: number) => boolean): number[] {
      index.setEf(ef);
      return index.searchKnn(query, k, allowed).neighbors;
    },
  };
}

type LanceTable = {
  add(data: unknown): Promise<unknown>;
  createIndex(column: string, options?: unknown): Promise<void>;
  countRows(): Promise<number>;
  vectorSearch(vector: number[] | Float32Array): LanceQuery;
};
type LanceQuery = {
  distanceType(type: 'cosine'): LanceQuery;
  where(predicate: string): LanceQuery;
  nprobes(n: number): LanceQuery;
  refineFactor(n: number): LanceQuery;
  ef(n: number): LanceQuery;
  limit(n: number): LanceQuery;
  select(columns: string[]): LanceQuery;
  toArray(): Promise<{ row: number }[]>;
};

export type LanceIndexKind = 'ivf_flat' | 'ivf_pq' | 'ivf_hnsw_sq';

/**
 * A LanceDB table (row number, vector, staff flag) in `dir`, loaded in batches, with its vector
 * index (cosine) and a bitmap index on `staff` (the default search leaves staff out, as a prefilter).
 */
export async function buildLance(input: {
  dir: string;
  vectors: Float32Array;
  staff: Uint8Array;
  count: number;
  dimensions: number;
  index: LanceIndexKind;
  log?: (line: string) => void;
}) {
  const lancedb = (await benchRequire('@lancedb/lancedb')) as {
    connect(uri: string): Promise<{ createEmptyTable(name: string, schema: unknown): Promise<LanceTable> }>;
    Index: {
      ivfFlat(options: Record<string, unknown>): unknown;
      ivfPq(options: Record<string, unknown>): unknown;
      hnswSq(options: Record<string, unknown>): unknown;
      bitmap(): unknown;
    };
  };
  // biome-ignore lint/suspicious/noExplicitAny: apache-arrow is loaded by name (see benchRequire)
  const arrow = (await benchRequire('apache-arrow')) as any;
  fs.rmSync(input.dir, { recursive: true, force: true });
  fs.mkdirSync(input.dir, { recursive: true });
  const db = await lancedb.connect(input.dir);
  const dims = input.dimensions;
  const vectorType = new arrow.FixedSizeList(dims, new arrow.Field('item', new arrow.Float32(), true));
  const schema = new arrow.Schema([
    new arrow.Field('row', new arrow.Int32(), false),
    new arrow.Field('vector', vectorType, false),
    new arrow.Field('staff', new arrow.Bool(), false),
  ]);
  const table = await db.createEmptyTable('voiceprints', schema);
  const loadStarted = performance.now();
  const batch = 20_000;
  for (let start = 0; start < input.count; start += batch) {
    const length = Math.min(batch, input.count - start);
    const rows = Array.from({ length }, (_, i) => ({
      row: start + i,
      vector: Array.from(input.vectors.subarray((start + i) * dims, (start + i + 1) * dims)),
      staff: input.staff[start + i] === 1,
    }));
    await table.add(rows);
  }
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  input.log?.(
    `  lancedb: ${(await table.countRows()).toLocaleString('en')} rows loaded in ${loadSeconds.toFixed(0)} s`,
  );
  const indexStarted = performance.now();
  const config =
    input.index === 'ivf_flat'
      ? lancedb.Index.ivfFlat({ distanceType: 'cosine' })
      : input.index === 'ivf_pq'
        ? lancedb.Index.ivfPq({ distanceType: 'cosine' })
        : lancedb.Index.hnswSq({ distanceType: 'cosine' });
  await table.createIndex('vector', { config });
  const vectorIndexSeconds = (performance.now() - indexStarted) / 1000;
  await table.createIndex('staff', { config: lancedb.Index.bitmap() });
  const indexSeconds = (performance.now() - indexStarted) / 1000;
  return {
    loadSeconds,
    vectorIndexSeconds,
    indexSeconds,
    bytes: directoryBytes(input.dir),
    async search(query: Float32Array, k: number, tuning: { nprobes: number; refineFactor?: number; ef?: number }) {
      let q = table.vectorSearch(query).distanceType('cosine').where('staff = false').nprobes(tuning.nprobes);
      if (tuning.refineFactor) q = q.refineFactor(tuning.refineFactor);
      if (tuning.ef) q = q.ef(tuning.ef);
      const rows = await q.select(['row']).limit(k).toArray();
      return rows.map((r) => r.row);
    },
  };
}

function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}
