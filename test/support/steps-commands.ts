import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../../src/db/client.ts';
import { recordingEvents } from '../../src/db/schema.ts';
import { withTransaction } from '../../src/db/transaction.ts';
import { recordStored } from '../../src/recordings/store.ts';
import { insertImportedRecording } from '../../src/recordings/transitions.ts';
import type { TestStepSpec } from './analysis-steps.ts';
import { cleanEnv, repoRoot } from './cli.ts';

/** What the tests of `analyze` and `import` share: the commands run with test steps, and backlog states. */

const entry = path.join(repoRoot, 'test/support/steps-cli.ts');

/**
 * Runs `voxtrace <args>` with `specs` as its analysis steps (test/support/steps-cli.ts) to
 * completion, with only the given voxtrace variables set.
 * @example const result = await runWithSteps([{ name: 'a' }], ['analyze', '--json'], target.env);
 */
export function runWithSteps(specs: TestStepSpec[], args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [entry, JSON.stringify(specs), ...args], {
      env: cleanEnv(env),
      cwd: repoRoot,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`voxtrace ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 90_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `count` stored recordings (imported, with no rows), each with its pending `stored` event; their ids. */
export async function storedRecordings(db: Db, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    await withTransaction(db, async (tx) => {
      const id = (await insertImportedRecording(tx, {
        documentSha256: randomUUID(),
        upstreamApi: 'deepfake',
        upstreamCid: null,
        upstreamPid: null,
        rawDocument: { results: [] },
        accountRef: null,
        channel: null,
      })) as string;
      await recordStored(tx, id, { utterances: [], voiceprints: [] });
      ids.push(id);
    });
  }
  return ids;
}

export const OTHER_RUNNER = 'other-host:4242:abcdef';

/** What another runner leaves while it works on a recording's event: its lease, live `seconds` more. */
export async function leaseToOtherRunner(db: Db, recordingId: string, seconds: number) {
  await db
    .update(recordingEvents)
    .set({ leaseOwner: OTHER_RUNNER, leaseExpiresAt: sql`now() + make_interval(secs => ${seconds})` })
    .where(eq(recordingEvents.recordingId, recordingId));
}

/** What a failed step leaves: the recording's event due again `seconds` from now. */
export async function retryLater(db: Db, recordingId: string, seconds: number) {
  await db
    .update(recordingEvents)
    .set({ attempts: 1, error: 'step a: failed before', nextAttemptAt: sql`now() + make_interval(secs => ${seconds})` })
    .where(eq(recordingEvents.recordingId, recordingId));
}
