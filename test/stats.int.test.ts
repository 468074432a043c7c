import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { identities, recordingEvents, recordings, voiceprints } from '../src/db/schema.ts';
import { importDocumentFile } from '../src/import/import.ts';
import { createApiKey } from '../src/keys/keys.ts';
import type { StatsResponse } from '../src/stats/routes.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { enqueueAudio } from './support/ingest.ts';
import { must } from './support/must.ts';
import { expectedCounts, syntheticDocument } from './support/synthetic-documents.ts';

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let readKey = '';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-stats-'));

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  readKey = (await createApiKey(database.db, { scope: 'read' }, CLI_ACTOR)).key;
});
afterAll(async () => {
  await database?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function stats(): Promise<StatsResponse> {
  const response = await app.request('/v1/stats', { headers: { authorization: `Bearer ${readKey}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as StatsResponse;
}

describe(`GET /v1/stats on ${engine}`, () => {
  it('counts every status (0 included), the analysis backlog, what is stored and the identities', async () => {
    expect(await stats()).toEqual({
      recordings: { queued: 0, submitting: 0, submitted: 0, complete: 0, failed: 0, dead: 0 },
      analysisPending: 0,
      analysisDead: 0,
      utterances: 0,
      voiceprints: 0,
      unassignedVoiceprints: 0,
      identities: { customer: 0, fraudster: 0, staff: 0, unknown: 0 },
      openAlerts: {
        watchlist_hit: 0,
        voice_reuse: 0,
        new_spoof_campaign: 0,
        spoof_cluster_growth: 0,
        voice_clone_suspected: 0,
        voice_clone_cross_account: 0,
      },
      watchlisted: 0,
      staffProposals: 0,
    });

    // three imported documents (complete, each with its pending analysis event), one of them dead
    const documents = [51, 52, 53].map((seed) => syntheticDocument(seed, 5100 + seed));
    const imported: string[] = [];
    for (const [i, document] of documents.entries()) {
      const file = path.join(tmp, `doc-${i}.json`);
      fs.writeFileSync(file, JSON.stringify(document));
      imported.push(must((await importDocumentFile(database.db, file, { api: 'auto' })).recordingId));
    }
    await database.db
      .update(recordingEvents)
      .set({ status: 'dead', error: 'step x: broken', completedAt: new Date() })
      .where(eq(recordingEvents.recordingId, imported[0] as string));
    // uploads in the queue, one of them failed
    const spoolDir = path.join(tmp, 'spool');
    const queued = [
      await enqueueAudio(database.db, spoolDir, Buffer.from('a')),
      await enqueueAudio(database.db, spoolDir, Buffer.from('b')),
    ];
    await database.db
      .update(recordings)
      .set({ status: 'failed' })
      .where(eq(recordings.id, queued[0] as string));
    // one voiceprint in a customer identity, and identities that no longer count: retired, merged
    const [first] = await database.db.select().from(voiceprints).limit(1);
    const [customer] = await database.db
      .insert(identities)
      .values({ kind: 'customer', accountRef: 'ACC-1', origin: 'analyst', memberCount: 1 })
      .returning();
    await database.db
      .update(voiceprints)
      .set({ identityId: customer?.id, assignedBy: 'analyst', assignedAt: new Date() })
      .where(eq(voiceprints.id, must(first).id));
    await database.db.insert(identities).values([
      { kind: 'fraudster', origin: 'analyst' },
      { kind: 'unknown', origin: 'online' },
      { kind: 'unknown', origin: 'recluster', retiredAt: new Date() },
      { kind: 'unknown', origin: 'recluster', mergedInto: customer?.id },
    ]);

    const totals = documents.map(expectedCounts).reduce((sum, c) => ({
      utterances: sum.utterances + c.utterances,
      voiceprints: sum.voiceprints + c.voiceprints,
      deepfakeEmbeddings: sum.deepfakeEmbeddings + c.deepfakeEmbeddings,
    }));
    expect(await stats()).toEqual({
      recordings: { queued: 1, submitting: 0, submitted: 0, complete: 3, failed: 1, dead: 0 },
      analysisPending: 2,
      analysisDead: 1,
      utterances: totals.utterances,
      voiceprints: totals.voiceprints,
      unassignedVoiceprints: totals.voiceprints - 1,
      identities: { customer: 1, fraudster: 1, staff: 0, unknown: 1 },
      openAlerts: expect.objectContaining({ watchlist_hit: 0, voice_reuse: 0 }),
      watchlisted: 0,
      staffProposals: 0,
    });
  });

  it('needs a key (read scope is enough) and is in the OpenAPI document', async () => {
    await expectProblem(await app.request('/v1/stats'), 401, 'unauthorized');
    const document = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, { get?: { operationId?: string } }>;
    };
    expect(document.paths['/v1/stats']?.get?.operationId).toBe('getStats');
  });
});
