import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { withSnapshotReaders } from '../src/db/snapshot.ts';
import { withTransaction } from '../src/db/transaction.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { itNotOnPglite } from './support/engine.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase({ migrated: false });
  await database.db.execute(sql`create table snapshot_probe (n int not null)`);
  await database.db.execute(sql`insert into snapshot_probe values (1)`);
});
afterAll(() => database.close());

const count = async (db: typeof database.db) =>
  ((await queryRows<{ n: number }>(db, sql`select count(*)::int as n from snapshot_probe`))[0] as { n: number }).n;

describe(`readers of a transaction’s snapshot on ${engine}`, () => {
  itNotOnPglite(
    'multi-process',
    'see what the transaction saw when it exported, not what commits after, and cannot write',
    async () => {
      await withTransaction(database.db, async (tx) => {
        expect(await count(tx)).toBe(1);
        await withSnapshotReaders(database.db, tx, 2, async (readers) => {
          expect(readers).toHaveLength(2);
          // committed by another session after the export: outside the snapshot
          await database.db.execute(sql`insert into snapshot_probe values (2)`);
          expect(await count(database.db)).toBe(2);
          for (const reader of readers) expect(await count(reader)).toBe(1);
          const refused = await (readers[0] as typeof tx).execute(sql`insert into snapshot_probe values (3)`).then(
            () => 'written',
            (error: Error & { cause?: Error }) => (error.cause ?? error).message,
          );
          expect(refused).toMatch(/read-only transaction/);
        });
      });
      expect(await count(database.db)).toBe(2);
    },
  );

  it('never waits for a connection the pool cannot give: with none spare there are no readers', async () => {
    await withTransaction(database.db, async (tx) => {
      // the test pool holds 4: the transaction has one, so at most 3 readers whatever is asked
      const got = await withSnapshotReaders(database.db, tx, 10, async (readers) => readers.length);
      expect(got).toBe(engine === 'postgres' ? 3 : 0);
    });
  });
});
