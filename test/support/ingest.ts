import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../../src/db/client.ts';
import { recordings } from '../../src/db/schema.ts';
import { generateDemoCalls } from '../../src/standin/demo-data.ts';
import type { CallManifest } from '../../src/standin/manifest.ts';
import { encodeCallWav } from '../../src/standin/wav.ts';

/** Demo calls (WAV bytes whose manifest the stand-in reads), deterministic for a seed. */
export function demoCallFiles(count: number, seed: number): { manifest: CallManifest; bytes: Buffer }[] {
  const calls = generateDemoCalls({
    calls: count,
    speakers: Math.max(4, count),
    fraudsters: 1,
    campaigns: 1,
    seed,
    now: new Date('2026-11-01T00:00:00Z'),
  });
  return [...calls].map(({ manifest }) => ({ manifest, bytes: encodeCallWav(manifest) }));
}

/**
 * Queues audio the way intake leaves it: the file in the spool, a `queued` row pointing at it.
 * @example const id = await enqueueAudio(db, spoolDir, bytes);
 */
export async function enqueueAudio(db: Db, spoolDir: string, bytes: Buffer, accountRef = 'acc-test'): Promise<string> {
  const id = randomUUID();
  const spoolFile = `${id}.wav`;
  fs.mkdirSync(spoolDir, { recursive: true });
  fs.writeFileSync(path.join(spoolDir, spoolFile), bytes);
  await db.insert(recordings).values({
    id,
    source: 'upload',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    status: 'queued',
    accountRef,
    callAt: new Date(),
    fileName: 'call.wav',
    audioFormat: 'wav',
    audioBytes: bytes.length,
    spoolFile,
  });
  return id;
}
