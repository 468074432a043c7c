import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { desc, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import { type RecordingStatus, recordings } from '../src/db/schema.ts';
import { createApiKey } from '../src/keys/keys.ts';
import type { RecordingSummaryResponse } from '../src/recordings/routes.ts';
import { encodeCallWav } from '../src/standin/wav.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { expectProblem } from './support/http.ts';

type Page = { items: RecordingSummaryResponse[]; nextCursor: string | null };

let database: TestDatabase;
let tempRoot: string;
let app: ReturnType<typeof testApp>;
const keys = { read: '', write: '' };

// seven calls over two accounts, three channels, five statuses and a week of call times
const calls: { accountRef: string; channel: string; callAt: string; status: RecordingStatus }[] = [
  { accountRef: 'ACC-1', channel: 'phone', callAt: '2026-03-01T09:00:00Z', status: 'complete' },
  { accountRef: 'ACC-1', channel: 'web', callAt: '2026-03-02T09:00:00Z', status: 'failed' },
  { accountRef: 'ACC-2', channel: 'phone', callAt: '2026-03-03T09:00:00Z', status: 'complete' },
  { accountRef: 'ACC-2', channel: 'app', callAt: '2026-03-04T09:00:00Z', status: 'dead' },
  { accountRef: 'ACC-1', channel: 'phone', callAt: '2026-03-05T09:00:00Z', status: 'queued' },
  { accountRef: 'ACC-2', channel: 'web', callAt: '2026-03-06T09:00:00Z', status: 'submitted' },
  { accountRef: 'ACC-1', channel: 'app', callAt: '2026-03-07T09:00:00Z', status: 'complete' },
];
const ids: string[] = []; // in upload order

beforeAll(async () => {
  database = await createTestDatabase();
  tempRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-list-'));
  app = testApp(database.db, {
    intake: { spoolDir: path.join(tempRoot, 'spool'), maxUploadBytes: 1024 * 1024, upstreamApi: 'deepfake' },
  });
  keys.read = (await createApiKey(database.db, { scope: 'read' }, CLI_ACTOR)).key;
  keys.write = (await createApiKey(database.db, { scope: 'write' }, CLI_ACTOR)).key;
  for (const [i, call] of calls.entries()) {
    const form = new FormData();
    form.append('file', new Blob([encodeCallWav(null, { audioSeconds: 0.1, seed: 500 + i })]), `call-${i}.wav`);
    form.append('accountRef', call.accountRef);
    form.append('channel', call.channel);
    form.append('callAt', call.callAt);
    form.append('meta', JSON.stringify({ n: i }));
    const response = await app.request('/v1/recordings', {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${keys.write}` },
    });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    ids.push(id);
    await database.db.update(recordings).set({ status: call.status }).where(eq(recordings.id, id));
  }
});
afterAll(async () => {
  await database?.close();
  if (tempRoot) fs.rmSync(tempRoot, { recursive: true, force: true });
});

const get = (url: string, key: string | null = keys.read) =>
  app.request(url, key ? { headers: { authorization: `Bearer ${key}` } } : {});

async function page(query: string): Promise<Page> {
  const response = await get(`/v1/recordings${query ? `?${query}` : ''}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Page;
}

/** Follows nextCursor to the end; every page but the last must be full. */
async function allPages(query: string, limit: number): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const params = new URLSearchParams(query);
    params.set('limit', String(limit));
    if (cursor) params.set('cursor', cursor);
    const current = await page(params.toString());
    pages.push(current);
    cursor = current.nextCursor;
    if (cursor) expect(current.items).toHaveLength(limit);
    expect(pages.length).toBeLessThan(100); // a cursor that never ends is a bug, not a long list
  } while (cursor);
  return pages;
}

/** The order the API promises, read from the table itself. */
async function expectedOrder(only: string[]): Promise<string[]> {
  const rows = await database.db
    .select({ id: recordings.id })
    .from(recordings)
    .where(inArray(recordings.id, only))
    .orderBy(desc(recordings.createdAt), desc(recordings.id));
  return rows.map((r) => r.id);
}

describe(`GET /v1/recordings on ${engine}`, () => {
  it('pages through everything newest first, 3 at a time, ending with nextCursor null', async () => {
    const pages = await allPages('', 3);
    expect(pages.map((p) => p.items.length)).toEqual([3, 3, 1]);
    expect(pages.at(-1)?.nextCursor).toBeNull();
    const listed = pages.flatMap((p) => p.items.map((item) => item.id));
    expect(listed).toEqual(await expectedOrder(ids));
    expect(listed).toEqual([...ids].reverse()); // uploaded one after the other: newest first
  });

  it('answers summaries: context, audio and job fields; no utterances, vectors or documents', async () => {
    const { items, nextCursor } = await page('');
    expect(nextCursor).toBeNull();
    const newest = items[0] as RecordingSummaryResponse;
    expect(Object.keys(newest).sort()).toEqual(
      [
        'accountRef',
        'attempts',
        'audioBytes',
        'audioFormat',
        'callAt',
        'channel',
        'completedAt',
        'createdAt',
        'durationS',
        'error',
        'fileName',
        'id',
        'meta',
        'sha256',
        'source',
        'status',
        'updatedAt',
        'upstream',
      ].sort(),
    );
    expect(newest).toMatchObject({
      id: ids[6],
      status: 'complete',
      source: 'upload',
      accountRef: 'ACC-1',
      channel: 'app',
      callAt: '2026-03-07T09:00:00.000Z',
      meta: { n: 6 },
      fileName: 'call-6.wav',
      audioFormat: 'wav',
      attempts: 0,
      upstream: { api: 'deepfake', cid: null, pid: null },
    });
  });

  it('filters by status, accountRef, channel and a callAt range (from inclusive, to exclusive)', async () => {
    const idsOf = async (query: string) => (await page(query)).items.map((i) => i.id);
    const expected = (keep: (call: (typeof calls)[number]) => boolean) =>
      calls.flatMap((call, i) => (keep(call) ? [ids[i] as string] : [])).reverse();

    expect(await idsOf('status=complete')).toEqual(expected((c) => c.status === 'complete'));
    expect(await idsOf('status=dead')).toEqual(expected((c) => c.status === 'dead'));
    expect(await idsOf('accountRef=ACC-2')).toEqual(expected((c) => c.accountRef === 'ACC-2'));
    expect(await idsOf('channel=phone')).toEqual(expected((c) => c.channel === 'phone'));
    expect(await idsOf('from=2026-03-03T09:00:00Z&to=2026-03-06T09:00:00Z')).toEqual(
      expected((c) => c.callAt >= '2026-03-03T09:00:00Z' && c.callAt < '2026-03-06T09:00:00Z'),
    );
    expect(await idsOf('from=2026-03-05')).toEqual(expected((c) => c.callAt >= '2026-03-05'));
    expect(await idsOf('to=2026-03-02T10:00:00%2B01:00')).toEqual(expected((c) => c.callAt < '2026-03-02T09:00:00Z'));
    expect(await idsOf('accountRef=ACC-1&channel=phone&status=complete')).toEqual([ids[0]]);
    expect(await idsOf('accountRef=nobody')).toEqual([]);
    expect(await idsOf('status=submitting')).toEqual([]);
  });

  it('answers the recordings named by ids (up to 100 in one request), newest first, with the other filters', async () => {
    const idsOf = async (query: string) => (await page(query)).items.map((i) => i.id);
    const some = [ids[1], ids[3], ids[4]] as string[];
    expect(await idsOf(`ids=${some.join(',')}`)).toEqual(await expectedOrder(some));
    expect(await idsOf(`ids=${some.join(', ')}&limit=1`)).toEqual((await expectedOrder(some)).slice(0, 1));
    const status = calls[3]?.status as string;
    expect(await idsOf(`ids=${some.join(',')}&status=${status}`)).toEqual(
      await expectedOrder(some.filter((id) => calls[ids.indexOf(id)]?.status === status)),
    );
    // an id that names no recording is simply not in the answer
    expect(await idsOf(`ids=00000000-0000-4000-8000-000000000000,${ids[0]}`)).toEqual([ids[0]]);
    const hundred = Array.from({ length: 100 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    expect(await idsOf(`ids=${hundred.join(',')}`)).toEqual([]);
  });

  it('keeps the filter across pages', async () => {
    const pages = await allPages('accountRef=ACC-1', 1);
    expect(pages.map((p) => p.items.length)).toEqual([1, 1, 1, 1]);
    expect(pages.flatMap((p) => p.items.map((i) => i.id))).toEqual(
      calls.flatMap((c, i) => (c.accountRef === 'ACC-1' ? [ids[i]] : [])).reverse(),
    );
  });

  it('orders rows created in the same microsecond by id, and rows a microsecond apart by time, across pages', async () => {
    // three instants one microsecond apart, all in one millisecond (a Date could not tell them
    // apart), shared by seven rows: ties everywhere
    for (const [i, id] of ids.entries()) {
      await database.db
        .update(recordings)
        .set({ createdAt: sql`timestamptz '2026-01-01 00:00:00.123456+00' + ${i % 3} * interval '1 microsecond'` })
        .where(eq(recordings.id, id));
    }
    try {
      for (const limit of [1, 2, 3, 6]) {
        const listed = (await allPages('', limit)).flatMap((p) => p.items.map((i) => i.id));
        expect(listed).toEqual(await expectedOrder(ids));
      }
    } finally {
      // back to upload order for the other tests
      for (const [i, id] of ids.entries()) {
        await database.db
          .update(recordings)
          .set({ createdAt: new Date(Date.UTC(2026, 0, 10, 0, 0, i)) })
          .where(eq(recordings.id, id));
      }
    }
  });

  it('answers 50 by default and at most 500 a page', async () => {
    // bulk rows straight into the table: 60 imported recordings of one account
    await database.db.insert(recordings).values(
      Array.from({ length: 60 }, () => ({
        source: 'import' as const,
        status: 'complete' as const,
        accountRef: 'BULK',
        documentSha256: randomBytes(32).toString('hex'),
      })),
    );
    const first = await page('accountRef=BULK');
    expect(first.items).toHaveLength(50);
    expect(first.nextCursor).not.toBeNull();
    const rest = await page(`accountRef=BULK&cursor=${first.nextCursor}`);
    expect(rest.items).toHaveLength(10);
    expect(rest.nextCursor).toBeNull();
    const max = await page('accountRef=BULK&limit=500');
    expect(max.items).toHaveLength(60);
    expect(max.nextCursor).toBeNull();
    expect(new Set([...first.items, ...rest.items].map((i) => i.id)).size).toBe(60);
  });

  it('400 naming the parameter for a bad limit, cursor, status or time', async () => {
    const validCursor = (await page('limit=1')).nextCursor as string;
    const tampered = Buffer.from(`abc:${ids[0]}`).toString('base64url');
    const cases: [string, string][] = [
      ['limit=0', 'query.limit'],
      ['limit=501', 'query.limit'],
      ['limit=-1', 'query.limit'],
      ['limit=ten', 'query.limit'],
      ['limit=2.5', 'query.limit'],
      ['cursor=garbage!', 'query.cursor'],
      ['cursor=Zm9v', 'query.cursor'],
      [`cursor=${tampered}`, 'query.cursor'],
      [`cursor=${validCursor.slice(0, -4)}`, 'query.cursor'],
      ['status=finished', 'query.status'],
      ['from=yesterday', 'query.from'],
      ['to=2026-03-01T09:00:00', 'query.to'],
      ['from=2026-03-05&to=2026-03-01', 'query.to'],
      ['accountRef=', 'query.accountRef'],
      ['ids=', 'query.ids'],
      ['ids=not-a-uuid', 'query.ids'],
      [`ids=${ids[0]},,${ids[1]}`, 'query.ids'],
      [`ids=${Array.from({ length: 101 }, () => ids[0]).join(',')}`, 'query.ids'],
    ];
    for (const [query, path] of cases) {
      const problem = await expectProblem(await get(`/v1/recordings?${query}`), 400, 'validation');
      expect(
        (problem.errors ?? []).map((e) => e.path),
        query,
      ).toEqual([path]);
      expect(problem.detail).toContain(path);
    }
    expect((await get(`/v1/recordings?cursor=${validCursor}`)).status).toBe(200);
  });

  it('needs a key with read scope', async () => {
    await expectProblem(await get('/v1/recordings', null), 401, 'unauthorized');
    expect((await get('/v1/recordings', keys.write)).status).toBe(200);
  });

  it('is described in the OpenAPI document', async () => {
    const doc = await (await get('/openapi.json', null)).json();
    const operation = doc.paths['/v1/recordings'].get;
    expect(operation.operationId).toBe('listRecordings');
    expect(operation.parameters.map((p: { name: string }) => p.name).sort()).toEqual(
      ['accountRef', 'channel', 'cursor', 'from', 'ids', 'limit', 'status', 'to'].sort(),
    );
  });
});
