import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { importDocumentFile } from '../src/import/import.ts';
import { createApiKey, revokeApiKey } from '../src/keys/keys.ts';
import type { RecordingDetailResponse } from '../src/recordings/routes.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';
import { must } from './support/must.ts';
import { syntheticDocument } from './support/synthetic-documents.ts';

const realFile = path.resolve(import.meta.dirname, '../../shared/upstream/real-results-behavioral-1speaker.json');

let database: TestDatabase;
let app: ReturnType<typeof testApp>;
const keys = { read: '', write: '', admin: '', revoked: '' };
let recordingId: string;

beforeAll(async () => {
  database = await createTestDatabase();
  app = testApp(database.db);
  keys.read = (await createApiKey(database.db, { scope: 'read' }, CLI_ACTOR)).key;
  keys.write = (await createApiKey(database.db, { scope: 'write' }, CLI_ACTOR)).key;
  keys.admin = (await createApiKey(database.db, { scope: 'admin' }, CLI_ACTOR)).key;
  keys.revoked = (await createApiKey(database.db, { scope: 'admin' }, CLI_ACTOR)).key;
  await revokeApiKey(database.db, keys.revoked, CLI_ACTOR);
  recordingId = (await importDocumentFile(database.db, realFile, { api: 'auto' })).recordingId as string;
});
afterAll(async () => {
  await database?.close();
});

const get = (url: string, key?: string) => app.request(url, key ? { headers: { authorization: `Bearer ${key}` } } : {});

describe(`open endpoints on ${engine}`, () => {
  it('/healthz, /readyz and /openapi.json need no key', async () => {
    expect(await (await get('/healthz')).json()).toEqual({ status: 'ok' });
    expect(await (await get('/readyz')).json()).toEqual({ status: 'ready' });
    const doc = await (await get('/openapi.json')).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths['/v1/recordings/{id}'].get.operationId).toBe('getRecording');
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas.Problem).toBeDefined();
  });

  it('/readyz answers 503 when the database does not', async () => {
    const down = testApp(database.db, {
      ready: async () => {
        throw new Error('down');
      },
    });
    const response = await down.request('/readyz');
    expect(response.status).toBe(503);
  });

  it('/docs serves its page and assets locally', async () => {
    const page = await (await get('/docs')).text();
    expect(page).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(page).not.toMatch(/https?:\/\//);
    const bundle = await get('/docs/assets/swagger-ui-bundle.js');
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    await expectProblem(await get('/docs/assets/../../package.json'), 404, 'not-found');
  });
});

describe(`auth on ${engine}`, () => {
  const url = () => `/v1/recordings/${recordingId}`;

  it('401 without a key, with a malformed header, an unknown key or a revoked key', async () => {
    const none = await expectProblem(await get(url()), 401, 'unauthorized');
    expect(none.detail).toMatch(/Authorization: Bearer/);
    const malformed = await app.request(url(), { headers: { authorization: `Token ${keys.read}` } });
    await expectProblem(malformed, 401, 'unauthorized');
    expect(malformed.headers.get('www-authenticate')).toBe('Bearer');
    const unknown = await expectProblem(await get(url(), 'vxt_not-a-real-key'), 401, 'unauthorized');
    const revoked = await expectProblem(await get(url(), keys.revoked), 401, 'unauthorized');
    // unknown and revoked keys read the same: answers do not tell which keys exist
    expect(revoked.detail).toBe(unknown.detail);
  });

  it('read, write and admin keys may read', async () => {
    for (const key of [keys.read, keys.write, keys.admin]) expect((await get(url(), key)).status).toBe(200);
  });
});

describe(`GET /v1/recordings/:id on ${engine}`, () => {
  it('returns the recording, its utterances and voiceprints without vectors by default', async () => {
    const response = await get(`/v1/recordings/${recordingId}`, keys.read);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await response.json()) as RecordingDetailResponse;
    expect(body).toMatchObject({
      id: recordingId,
      status: 'complete',
      source: 'import',
      upstream: { api: 'behavioral' },
    });
    expect(body.utterances).toHaveLength(9);
    expect(body.utterances[0]).toMatchObject({
      upstreamId: '0',
      startS: 2.268,
      speakerLabel: 'SPEAKER_00',
      language: 'en',
    });
    expect(body.utterances[0]).not.toHaveProperty('deepfakeEmbedding');
    expect(body.voiceprints).toHaveLength(1);
    expect(body.voiceprints[0]).not.toHaveProperty('embedding');
    expect(body).not.toHaveProperty('rawDocument');
  });

  it('includes unit vectors with rawNorm, and the raw document, when asked', async () => {
    const body = (await (
      await get(`/v1/recordings/${recordingId}?include=embeddings,document`, keys.read)
    ).json()) as RecordingDetailResponse;
    const vp = body.voiceprints[0];
    expect(vp?.embedding).toHaveLength(192);
    expect(Math.hypot(...(must(vp).embedding as number[]))).toBeCloseTo(1, 5);
    expect(vp?.rawNorm).toBeGreaterThan(150);
    expect(body.utterances.every((u) => u.deepfakeEmbedding === null)).toBe(true);
    expect((body.rawDocument as { results: unknown[] }).results).toHaveLength(107);
  });

  it("includes each utterance's deepfake vector (768 values, unit length, with its norm) when asked", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-http-')), 'deepfake.json');
    fs.writeFileSync(file, JSON.stringify(syntheticDocument(31)));
    const deepfakeId = must((await importDocumentFile(database.db, file, { api: 'auto' })).recordingId);
    fs.rmSync(path.dirname(file), { recursive: true });
    const withVectors = (await (
      await get(`/v1/recordings/${deepfakeId}?include=embeddings`, keys.read)
    ).json()) as RecordingDetailResponse;
    const vectors = withVectors.utterances.flatMap((u) => (u.deepfakeEmbedding ? [u] : []));
    expect(vectors.length).toBeGreaterThan(0);
    for (const u of vectors) {
      expect(u.deepfakeEmbedding).toHaveLength(768);
      expect(Math.hypot(...(u.deepfakeEmbedding as number[]))).toBeCloseTo(1, 2);
      expect(u.deepfakeRawNorm).toBeGreaterThan(0);
    }
    const without = (await (await get(`/v1/recordings/${deepfakeId}`, keys.read)).json()) as RecordingDetailResponse;
    expect(without.utterances).toHaveLength(withVectors.utterances.length);
    for (const u of without.utterances) expect(u).not.toHaveProperty('deepfakeEmbedding');
  });

  it('404 problem for an unknown id and for an id that is not a uuid; 400 for a bad include', async () => {
    await expectProblem(await get('/v1/recordings/00000000-0000-4000-8000-000000000000', keys.read), 404, 'not-found');
    await expectProblem(await get('/v1/recordings/not-a-uuid', keys.read), 404, 'not-found');
    const bad = await expectProblem(
      await get(`/v1/recordings/${recordingId}?include=vectors`, keys.read),
      400,
      'validation',
    );
    expect(bad.errors).toEqual([{ path: 'query.include', message: 'a comma-separated list of: embeddings, document' }]);
    await expectProblem(await get('/v1/nothing-here', keys.read), 404, 'not-found');
  });

  it('answers 500 as a problem without internals when a service fails', async () => {
    const broken = {
      ...database.db,
      select: () => {
        throw new Error('secret internals');
      },
    } as unknown as typeof database.db;
    const failing = testApp(broken);
    const response = await failing.request('/v1/recordings/not-a-uuid', {
      headers: { authorization: `Bearer ${keys.read}` },
    });
    const body = await expectProblem(response, 500, 'internal');
    expect(JSON.stringify(body)).not.toContain('secret internals');
  });
});

describe(`/v1/keys (admin) on ${engine}`, () => {
  const post = (url: string, key: string, body?: string, contentType = 'application/json') =>
    app.request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
      ...(body !== undefined ? { body } : {}),
    });

  it('403 for read and write keys: the scope is named', async () => {
    const read = await expectProblem(await get('/v1/keys', keys.read), 403, 'forbidden');
    expect(read.detail).toBe('this needs a key with scope "admin"; this key has "read"');
    await expectProblem(await get('/v1/keys', keys.write), 403, 'forbidden');
    await expectProblem(await post('/v1/keys', keys.write, '{"scope":"read"}'), 403, 'forbidden');
  });

  it('creates, lists and revokes keys; a revoked key stops working at once', async () => {
    const created = await post('/v1/keys', keys.admin, JSON.stringify({ scope: 'read', name: 'analyst' }));
    expect(created.status).toBe(201);
    const body = await created.json();
    expect(body).toMatchObject({
      name: 'analyst',
      scope: 'read',
      revokedAt: null,
      key: expect.stringMatching(/^vxt_/),
    });
    expect((await get(`/v1/recordings/${recordingId}`, body.key)).status).toBe(200);
    const list = await (await get('/v1/keys', keys.admin)).json();
    expect(list.items.map((k: { id: string }) => k.id)).toContain(body.id);
    expect(JSON.stringify(list)).not.toContain(body.key);
    const revoked = await post(`/v1/keys/${body.id}/revoke`, keys.admin);
    expect(revoked.status).toBe(200);
    expect((await revoked.json()).revokedAt).not.toBeNull();
    await expectProblem(await get(`/v1/recordings/${recordingId}`, body.key), 401, 'unauthorized');
    await expectProblem(await post('/v1/keys/not-a-uuid/revoke', keys.admin), 404, 'not-found');
    await expectProblem(
      await post('/v1/keys/00000000-0000-4000-8000-000000000000/revoke', keys.admin),
      404,
      'not-found',
    );
  });

  it('400 validation problems name each wrong field, 415 for a body that is not JSON; nothing is created', async () => {
    const before = (await (await get('/v1/keys', keys.admin)).json()).items.length;
    const wrong = await expectProblem(
      await post('/v1/keys', keys.admin, '{"scope":"root","extra":1}'),
      400,
      'validation',
    );
    expect((wrong.errors ?? []).map((e: { path: string }) => e.path).sort()).toEqual(['json', 'json.scope']);
    const malformed = await expectProblem(await post('/v1/keys', keys.admin, '{"scope":'), 400, 'validation');
    expect(malformed.detail).toMatch(/JSON/i);
    await expectProblem(await post('/v1/keys', keys.admin, 'scope=read', 'text/plain'), 415, 'unsupported-media-type');
    expect((await (await get('/v1/keys', keys.admin)).json()).items.length).toBe(before);
  });
});
