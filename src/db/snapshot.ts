import { sql } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { type Db, queryRows } from './client.ts';
import * as schema from './schema.ts';

/**
 * Runs `fn` with up to `count` read-only connections that see exactly what `tx` sees: `tx`
 * exports its snapshot (pg_export_snapshot) and each reader imports it into a REPEATABLE READ
 * READ ONLY transaction, as pg_dump's parallel jobs do. A long read inside a transaction that
 * holds a lock (recluster's kNN graph) can so use the server's other cores and still read one
 * consistent state. The snapshot is the one `tx` reads with, not its own uncommitted writes:
 * call this before `tx` writes what the readers should see. `db` is the database `tx` came from. On PGlite (one connection, one process)
 * there are no readers and `fn` gets an empty list: the caller reads on `tx` alone.
 * @example await withSnapshotReaders(db, tx, 1, async (readers) => Promise.all([tx, ...readers].map(work)));
 */
export async function withSnapshotReaders<T>(
  db: Db,
  tx: Db,
  count: number,
  fn: (readers: Db[]) => Promise<T>,
): Promise<T> {
  const pool = (db as unknown as { $client: unknown }).$client;
  if (!(pool instanceof pg.Pool)) return fn([]);
  // never wait on a pool `tx` itself may have exhausted: only connections free or still to open
  const spare = (pool.options.max ?? 10) - pool.totalCount + pool.idleCount;
  const readers = Math.min(count, spare);
  if (readers < 1) return fn([]);
  const [{ snapshot }] = (await queryRows<{ snapshot: string }>(tx, sql`select pg_export_snapshot() as snapshot`)) as [
    { snapshot: string },
  ];
  const clients: pg.PoolClient[] = [];
  try {
    for (let i = 0; i < readers; i++) {
      const client = await pool.connect();
      clients.push(client);
      await client.query('begin isolation level repeatable read read only');
      // the snapshot's name is the server's own (e.g. 00000003-0000001B-1), never user input
      await client.query(`set transaction snapshot '${snapshot.replaceAll("'", '')}'`);
    }
    return await fn(clients.map((client) => drizzleNodePg({ client, schema, casing: 'snake_case' }) as unknown as Db));
  } finally {
    for (const client of clients) {
      // a connection whose rollback fails is broken: the pool drops it rather than reuse it
      await client.query('rollback').then(
        () => client.release(),
        (error: Error) => client.release(error),
      );
    }
  }
}
