import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import type { AnalysisStep } from '../../src/analysis/runner.ts';
import type { Db } from '../../src/db/client.ts';

/**
 * Analysis steps for tests: each writes one row per run into `analysis_runs` (a table of the test's
 * own database, made by `createRunsTable`), so that a test can count how often each step committed
 * for each recording, and in which order.
 */
export type TestStepSpec = {
  name: string;
  /** Sleep this long inside the step's transaction, after its write (a crash window). */
  pauseMs?: number;
  /** Throw on the first N runs (after writing: the write must roll back). */
  failTimes?: number;
  /** The name of a step whose row for the same recording must already be visible. */
  after?: string;
};

export async function createRunsTable(db: Db) {
  await db.execute(sql`
    create table if not exists analysis_runs (
      id bigint generated always as identity primary key,
      event_id uuid not null,
      recording_id uuid not null,
      step text not null,
      pid integer not null
    )`);
}

export function testSteps(specs: TestStepSpec[]): AnalysisStep[] {
  return specs.map((spec) => {
    let failures = 0;
    return {
      name: spec.name,
      async run({ tx, event }) {
        if (spec.after) {
          const earlier = await tx.execute(
            sql`select 1 from analysis_runs where recording_id = ${event.recordingId} and step = ${spec.after}`,
          );
          if ((earlier as unknown as { rows: unknown[] }).rows.length === 0) {
            throw new Error(`step ${spec.name} ran before ${spec.after} for recording ${event.recordingId}`);
          }
        }
        await tx.execute(
          sql`insert into analysis_runs (event_id, recording_id, step, pid)
              values (${event.id}, ${event.recordingId}, ${spec.name}, ${process.pid})`,
        );
        if (spec.pauseMs) await sleep(spec.pauseMs);
        if (failures < (spec.failTimes ?? 0)) {
          failures++;
          throw new Error(`step ${spec.name} fails on purpose (${failures})`);
        }
      },
    };
  });
}

/** How many times each step committed, per recording: `{recordingId: {step: n}}`. */
export async function committedRuns(db: Db): Promise<Record<string, Record<string, number>>> {
  const result = (await db.execute(
    sql`select recording_id, step, count(*)::int as n from analysis_runs group by 1, 2`,
  )) as unknown as { rows: { recording_id: string; step: string; n: number }[] };
  const runs: Record<string, Record<string, number>> = {};
  for (const row of result.rows) runs[row.recording_id] = { ...runs[row.recording_id], [row.step]: row.n };
  return runs;
}
