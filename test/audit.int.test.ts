import path from 'node:path';
import { asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR, paramsDigest } from '../src/audit/audit.ts';
import { auditEvents, voiceprints } from '../src/db/schema.ts';
import { importDocumentFile } from '../src/import/import.ts';
import { createApiKey } from '../src/keys/keys.ts';
import { testApp } from './support/app.ts';
import { runCli } from './support/cli.ts';
import { createCliTarget, createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { must } from './support/must.ts';

const realFile = path.resolve(import.meta.dirname, '../../shared/upstream/real-results-behavioral-1speaker.json');

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
let reader: { key: string; id: string };
let admin: { key: string; id: string };
let recordingId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  reader = await createApiKey(database.db, { scope: 'read', name: 'analyst' }, CLI_ACTOR);
  admin = await createApiKey(database.db, { scope: 'admin', name: 'ops' }, CLI_ACTOR);
  recordingId = must((await importDocumentFile(database.db, realFile, { api: 'auto' })).recordingId);
});
afterAll(async () => {
  await database?.close();
});

const get = (url: string, key: string) => app.request(url, { headers: { authorization: `Bearer ${key}` } });
const trail = () => database.db.select().from(auditEvents).orderBy(asc(auditEvents.createdAt), asc(auditEvents.id));
const newSince = async (count: number) => (await trail()).slice(count);

describe(`the audit trail on ${engine}`, () => {
  it('gets one entry for a recording detail with embeddings or the raw document, naming who, what and the request', async () => {
    const before = (await trail()).length;
    const response = await get(`/v1/recordings/${recordingId}?include=embeddings`, reader.key);
    expect(response.status).toBe(200);
    const [voiceprint] = await database.db
      .select({ id: voiceprints.id })
      .from(voiceprints)
      .where(eq(voiceprints.recordingId, recordingId));
    const entries = await newSince(before);
    expect(entries).toEqual([
      expect.objectContaining({
        source: 'api',
        keyId: reader.id,
        requestId: response.headers.get('x-request-id'),
        action: 'recording.view',
        targetIds: [recordingId, voiceprint?.id],
        paramsDigest: paramsDigest({ include: { embeddings: true, document: false } }),
        resultCount: 1,
      }),
    ]);
    expect((await get(`/v1/recordings/${recordingId}?include=document`, reader.key)).status).toBe(200);
    expect((await newSince(before + 1)).map((e) => [e.action, e.paramsDigest])).toEqual([
      ['recording.view', paramsDigest({ include: { embeddings: false, document: true } })],
    ]);
  });

  it('gets no entry for a detail without vectors or document, nor for an unknown recording', async () => {
    const before = (await trail()).length;
    expect((await get(`/v1/recordings/${recordingId}`, reader.key)).status).toBe(200);
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await get(`/v1/recordings/${unknown}?include=embeddings`, reader.key)).status).toBe(404);
    expect(await newSince(before)).toEqual([]);
  });

  it('records key management over the API and the CLI, never a secret', async () => {
    const before = (await trail()).length;
    const created = await app.request('/v1/keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scope: 'read', name: 'temp' }),
    });
    const { id, key } = (await created.json()) as { id: string; key: string };
    await app.request(`/v1/keys/${id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${admin.key}` } });
    await get('/v1/keys', admin.key);
    const entries = await newSince(before);
    expect(entries.map((e) => [e.source, e.keyId, e.action, e.targetIds])).toEqual([
      ['api', admin.id, 'key.create', [id]],
      ['api', admin.id, 'key.revoke', [id]],
      ['api', admin.id, 'key.list', []],
    ]);
    expect(entries.at(-1)?.resultCount).toBe(3); // reader, admin and temp
    expect(JSON.stringify(entries)).not.toContain(key);
  });

  it('cannot be changed: UPDATE, DELETE and TRUNCATE are refused and nothing changes', async () => {
    const before = await trail();
    expect(before.length).toBeGreaterThan(0);
    // the database's own refusal, under the driver's "Failed query" wrapper
    const refusal = (statement: ReturnType<typeof sql>) =>
      database.db.execute(statement).then(
        () => 'allowed',
        (error: Error & { cause?: Error }) => error.cause?.message ?? error.message,
      );
    expect(await refusal(sql`update audit_events set action = 'nothing'`)).toMatch(
      /append-only: UPDATE is not allowed/,
    );
    expect(await refusal(sql`delete from audit_events`)).toMatch(/append-only: DELETE is not allowed/);
    expect(await refusal(sql`truncate audit_events`)).toMatch(/append-only: TRUNCATE is not allowed/);
    expect(await trail()).toEqual(before);
  });

  it('is written before the answer: a view that cannot be audited is not answered', async () => {
    await database.db.execute(sql`alter table audit_events rename to audit_events_away`);
    try {
      await expectProblem(await get(`/v1/recordings/${recordingId}?include=embeddings`, reader.key), 500, 'internal');
      // what is not biometric is still answered
      expect((await get(`/v1/recordings/${recordingId}`, reader.key)).status).toBe(200);
    } finally {
      await database.db.execute(sql`alter table audit_events_away rename to audit_events`);
    }
  });

  it('digests parameters canonically: key order does not matter, values do', () => {
    expect(paramsDigest({ b: 1, a: [2, { d: 3, c: 4 }] })).toBe(paramsDigest({ a: [2, { c: 4, d: 3 }], b: 1 }));
    expect(paramsDigest({ a: 1, skipped: undefined })).toBe(paramsDigest({ a: 1 }));
    expect(paramsDigest({ a: 1 })).not.toBe(paramsDigest({ a: 2 }));
    expect(paramsDigest({ a: 1 })).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe(`./voxtrace keys in the audit trail on ${engine}`, () => {
  it('records the CLI as the actor, with no key and no request', async () => {
    const target = await createCliTarget();
    try {
      const created = await runCli(['keys', 'create', '--scope', 'write', '--name', 'batch'], target.env);
      expect(created.code).toBe(0);
      const entries = await target.inspect((db) =>
        db.db.select().from(auditEvents).orderBy(asc(auditEvents.createdAt)),
      );
      expect(entries.map((e) => [e.source, e.keyId, e.requestId, e.action])).toEqual([
        ['cli', null, null, 'key.create'],
      ]);
      expect(JSON.stringify(entries)).not.toContain(created.stdout.trim());
    } finally {
      await target.cleanup();
    }
  });
});
