import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { queryRows } from '../src/db/client.ts';
import { LeaseLostError, releaseAllLeases, releaseLease } from '../src/db/lease.ts';
import { recordings } from '../src/db/schema.ts';
import { withTransaction } from '../src/db/transaction.ts';
import {
  claimRecordings,
  completeRecording,
  markFinalFailure,
  markSubmitted,
  markSubmitting,
  requeueRecording,
  schedulePoll,
  scheduleRetry,
} from '../src/recordings/transitions.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { must } from './support/must.ts';

/**
 * The recording state machine (src/recordings/transitions.ts): each transition guarded, and every
 * time it writes taken from the database's clock. The process clock is set 25 years back here: a
 * transition that stamped `new Date()` would show it.
 */

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
  vi.useFakeTimers({ toFake: ['Date'], now: new Date('2001-01-01T00:00:00Z') });
});
afterAll(async () => {
  vi.useRealTimers();
  await database?.close();
});
afterEach(async () => {
  await database.db.execute(sql`delete from recordings`);
});

const dbNow = async () =>
  new Date(must((await queryRows<{ now: string }>(database.db, sql`select now()::text as now`))[0]).now);
const row = async (id: string) => must((await database.db.select().from(recordings).where(eq(recordings.id, id)))[0]);

async function queued(): Promise<string> {
  const id = randomUUID();
  await database.db
    .insert(recordings)
    .values({ id, source: 'upload', status: 'queued', spoolFile: `${id}.wav`, nextAttemptAt: sql`now()` });
  return id;
}

/** Seconds between a stored time and the database's now (positive: in the future). */
const fromNow = async (at: Date | null) => (must(at).getTime() - (await dbNow()).getTime()) / 1000;

describe(`recording transitions on ${engine}`, () => {
  it('claim, submit, poll and complete stamp the database clock, never the process clock', async () => {
    expect(new Date().getUTCFullYear()).toBe(2001);
    const id = await queued();
    const [claimed] = await claimRecordings(database.db, { owner: 'w1', limit: 5, leaseSeconds: 30 });
    expect(claimed).toMatchObject({ id, status: 'queued', attempts: 0 });
    const lease = { id, owner: 'w1' };
    expect(await fromNow((await row(id)).leaseExpiresAt)).toBeCloseTo(30, 0);
    await markSubmitting(database.db, lease);
    await markSubmitted(database.db, lease, { api: 'deepfake', pid: 7, cid: 1 });
    const submitted = await row(id);
    expect(submitted).toMatchObject({ status: 'submitted', upstreamPid: 7, leaseOwner: 'w1' });
    expect(Math.abs(await fromNow(submitted.submittedAt))).toBeLessThan(5);
    expect(Math.abs(await fromNow(submitted.updatedAt))).toBeLessThan(5);

    await schedulePoll(database.db, lease);
    const polled = await row(id);
    // just submitted: the shortest poll delay, 0.5 s, on the database's clock
    expect(await fromNow(polled.nextAttemptAt)).toBeGreaterThan(0);
    expect(await fromNow(polled.nextAttemptAt)).toBeLessThanOrEqual(0.5);
    expect(polled.leaseOwner).toBeNull();

    await database.db
      .update(recordings)
      .set({ leaseOwner: 'w1', submittedAt: sql`now() - interval '1 minute'` })
      .where(eq(recordings.id, id));
    await schedulePoll(database.db, lease);
    // a quarter of the minute it has taken, capped at 10 s
    expect(await fromNow((await row(id)).nextAttemptAt)).toBeCloseTo(10, 0);

    await database.db.update(recordings).set({ leaseOwner: 'w1' }).where(eq(recordings.id, id));
    await withTransaction(database.db, (tx) =>
      completeRecording(tx, lease, { rawBody: '{"results":[]}', keepAudio: false }),
    );
    const done = await row(id);
    expect(done).toMatchObject({ status: 'complete', leaseOwner: null, spoolFile: null, rawDocument: { results: [] } });
    expect(Math.abs(await fromNow(done.completedAt))).toBeLessThan(5);
  });

  it('schedules a retry after the delay on the database clock, keeping the status', async () => {
    const id = await queued();
    await claimRecordings(database.db, { owner: 'w1', limit: 1, leaseSeconds: 30 });
    await markSubmitting(database.db, { id, owner: 'w1' });
    await scheduleRetry(database.db, { id, owner: 'w1' }, { attempts: 1, error: 'boom', delayMs: 20_000 });
    const retried = await row(id);
    expect(retried).toMatchObject({ status: 'submitting', attempts: 1, error: 'boom', leaseOwner: null });
    expect(await fromNow(retried.nextAttemptAt)).toBeCloseTo(20, 0);
    // not due yet: no claim takes it
    expect(await claimRecordings(database.db, { owner: 'w2', limit: 5, leaseSeconds: 30 })).toEqual([]);
  });

  it('refuses every guarded transition without the lease, changing nothing', async () => {
    const id = await queued();
    await claimRecordings(database.db, { owner: 'w1', limit: 1, leaseSeconds: 30 });
    const before = await row(id);
    const stranger = { id, owner: 'w2' };
    await expect(markSubmitting(database.db, stranger)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(markSubmitted(database.db, stranger, { api: 'deepfake', pid: 1, cid: null })).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    await expect(schedulePoll(database.db, stranger)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(scheduleRetry(database.db, stranger, { attempts: 1, error: 'x', delayMs: 1 })).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    await expect(markFinalFailure(database.db, stranger, { status: 'failed', error: 'x' })).rejects.toBeInstanceOf(
      LeaseLostError,
    );
    // complete also needs `submitted`: the holder of a queued recording cannot complete it
    await expect(
      withTransaction(database.db, (tx) =>
        completeRecording(tx, { id, owner: 'w1' }, { rawBody: '{}', keepAudio: false }),
      ),
    ).rejects.toBeInstanceOf(LeaseLostError);
    await releaseLease(database.db, recordings, stranger);
    expect(await row(id)).toEqual(before);
  });

  it('reclaims an expired lease, and lets every lease of an owner go at once', async () => {
    const [a, b] = [await queued(), await queued()];
    await claimRecordings(database.db, { owner: 'dead', limit: 2, leaseSeconds: 30 });
    expect(await claimRecordings(database.db, { owner: 'w2', limit: 2, leaseSeconds: 30 })).toEqual([]);
    await database.db
      .update(recordings)
      .set({ leaseExpiresAt: sql`now() - interval '1 second'` })
      .where(eq(recordings.id, a));
    expect((await claimRecordings(database.db, { owner: 'w2', limit: 2, leaseSeconds: 30 })).map((r) => r.id)).toEqual([
      a,
    ]);
    // the switch the crash tests turn off: without reclaim, the expired lease stays
    await database.db
      .update(recordings)
      .set({ leaseOwner: 'dead', leaseExpiresAt: sql`now() - interval '1 second'` })
      .where(eq(recordings.id, a));
    expect(
      await claimRecordings(database.db, { owner: 'w3', limit: 2, leaseSeconds: 30, reclaimExpired: false }),
    ).toEqual([]);
    await releaseAllLeases(database.db, recordings, 'dead');
    expect((await row(a)).leaseOwner).toBeNull();
    expect((await row(b)).leaseOwner).toBeNull();
  });

  it('requeues only failed or dead recordings, clearing what the upstream sent', async () => {
    const id = await queued();
    expect(await requeueRecording(database.db, id)).toBeNull();
    await database.db
      .update(recordings)
      .set({ status: 'dead', attempts: 8, upstreamPid: 3, rawBody: 'x', error: 'gone' })
      .where(eq(recordings.id, id));
    expect(await requeueRecording(database.db, id)).toMatchObject({ id, status: 'queued', attempts: 0, error: null });
    expect(await row(id)).toMatchObject({ upstreamPid: null, rawBody: null, leaseOwner: null });
  });

  it('joins an outer transaction: a failure after the inner work rolls both back', async () => {
    const id = randomUUID();
    await expect(
      withTransaction(database.db, async (outer) => {
        await withTransaction(outer, async (inner) => {
          await inner.insert(recordings).values({ id, source: 'import', status: 'complete' });
        });
        throw new Error('after the inner work');
      }),
    ).rejects.toThrow('after the inner work');
    expect(await database.db.select().from(recordings).where(eq(recordings.id, id))).toEqual([]);
  });
});
