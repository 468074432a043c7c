import type pg from 'pg';
import { type BinaryRows, copyBinary, copyBuffer } from '../../../bench/support/copy-binary.ts';
import type { Database } from '../../db/client.ts';

/**
 * Bulk loading for the eval: PostgreSQL's binary COPY of rows built with BinaryRows
 * (bench/support/copy-binary.ts), on either engine: a pg client's COPY FROM STDIN on PostgreSQL,
 * `/dev/blob` on PGlite.
 */

/** A COPY target on an open database: `copy(table, columns, rows)` loads one buffer of rows. */
export type Copier = {
  copy(table: string, columns: readonly string[], rows: BinaryRows): Promise<void>;
  close(): Promise<void>;
};

/**
 * Opens a COPY path on the database's own connection layer: a dedicated client of the pg pool,
 * or the PGlite instance itself.
 * @example const copier = await openCopier(database); await copier.copy('utterances', columns, rows);
 */
export async function openCopier(database: Database): Promise<Copier> {
  const client = (database.db as unknown as { $client: unknown }).$client;
  if (database.engine === 'pglite') {
    const pglite = client as { query(sql: string, params: unknown[], options: { blob: Blob }): Promise<unknown> };
    return {
      async copy(table, columns, rows) {
        await pglite.query(`copy ${table} (${columns.join(', ')}) from '/dev/blob' (format binary)`, [], {
          blob: new Blob([new Uint8Array(copyBuffer(rows))]),
        });
      },
      async close() {},
    };
  }
  const connection = await (client as pg.Pool).connect();
  return {
    async copy(table, columns, rows) {
      const chunk = rows.take(true);
      await copyBinary(connection as unknown as pg.Client, table, [...columns], chunk ? [chunk] : []);
    },
    async close() {
      connection.release();
    },
  };
}
