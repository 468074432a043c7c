import { and, asc, count, desc, eq, gte, inArray, isNull, lt, type SQL, sql } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import { z } from 'zod';
import type { Db } from '../db/client.ts';
import {
  identities,
  type RecordingStatus,
  recordings,
  type UpstreamApi,
  utterances,
  voiceprints,
} from '../db/schema.ts';
import { NotFoundError } from '../errors.ts';
import { LIST_LIMIT_DEFAULT } from '../http/limits.ts';
import { isUuid } from '../ids.ts';
import type { StoredCounts } from './store.ts';

/**
 * The columns of a recording summary: everything but the raw upstream document and body, which
 * can be megabytes and belong to the detail view only.
 */
export const recordingSummaryColumns = {
  id: recordings.id,
  status: recordings.status,
  source: recordings.source,
  sha256: recordings.sha256,
  accountRef: recordings.accountRef,
  channel: recordings.channel,
  callAt: recordings.callAt,
  meta: recordings.meta,
  fileName: recordings.fileName,
  audioFormat: recordings.audioFormat,
  audioBytes: recordings.audioBytes,
  durationS: recordings.durationS,
  attempts: recordings.attempts,
  error: recordings.error,
  upstreamApi: recordings.upstreamApi,
  upstreamCid: recordings.upstreamCid,
  upstreamPid: recordings.upstreamPid,
  createdAt: recordings.createdAt,
  updatedAt: recordings.updatedAt,
  completedAt: recordings.completedAt,
};
type SummaryRow = Pick<typeof recordings.$inferSelect, keyof typeof recordingSummaryColumns>;

/** A recording without utterances, vectors or the raw document: what lists and intake answer. */
export type RecordingSummary = ReturnType<typeof toRecordingSummary>;

/**
 * Shapes a row selected with `recordingSummaryColumns` for the API.
 * @example const [row] = await db.select(recordingSummaryColumns).from(recordings); toRecordingSummary(row);
 */
export function toRecordingSummary(row: SummaryRow) {
  return {
    id: row.id,
    status: row.status,
    source: row.source,
    sha256: row.sha256,
    accountRef: row.accountRef,
    channel: row.channel,
    callAt: row.callAt?.toISOString() ?? null,
    meta: row.meta,
    fileName: row.fileName,
    audioFormat: row.audioFormat,
    audioBytes: row.audioBytes,
    durationS: row.durationS,
    attempts: row.attempts,
    error: row.error,
    upstream: { api: row.upstreamApi, cid: row.upstreamCid, pid: row.upstreamPid },
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    completedAt: row.completedAt?.toISOString() ?? null,
  };
}

/**
 * Status, source and spooled file of each of these recordings that exists, by id (what the spool
 * sweep and a retry check against the files on disk).
 * @example const states = await spoolFileStates(db, ids); states.get(id)?.status;
 */
export async function spoolFileStates(
  db: Db,
  ids: string[],
): Promise<Map<string, { status: RecordingStatus; source: 'upload' | 'import'; spoolFile: string | null }>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .select({
      id: recordings.id,
      status: recordings.status,
      source: recordings.source,
      spoolFile: recordings.spoolFile,
    })
    .from(recordings)
    // one array parameter, however many files the spool holds
    .where(sql`${recordings.id} = any(${sql.param(ids)}::uuid[])`);
  return new Map(rows.map(({ id, ...state }) => [id, state]));
}

/**
 * The recording that holds this results document already, or null: the same upstream process
 * (api, cid and pid) when the document names one, else the same bytes (`document_sha256`).
 * @example const existing = await findStoredDocument(db, { api: 'deepfake', cid: 42, pid: 7 }, sha256);
 */
export async function findStoredDocument(
  db: Db,
  upstream: { api: UpstreamApi; cid: number | null; pid: number | null },
  documentSha256: string,
): Promise<string | null> {
  const where =
    upstream.pid !== null
      ? and(
          eq(recordings.upstreamApi, upstream.api),
          upstream.cid === null ? isNull(recordings.upstreamCid) : eq(recordings.upstreamCid, upstream.cid),
          eq(recordings.upstreamPid, upstream.pid),
        )
      : and(eq(recordings.documentSha256, documentSha256), isNull(recordings.upstreamPid));
  const [row] = await db.select({ id: recordings.id }).from(recordings).where(where).limit(1);
  return row?.id ?? null;
}

/**
 * What is stored for a recording: its utterances, those with a deepfake vector, its voiceprints.
 * @example const { utterances, voiceprints, deepfakeEmbeddings } = await storedCounts(db, id);
 */
export async function storedCounts(db: Db, recordingId: string): Promise<StoredCounts> {
  const [utterance] = await db
    .select({ all: count(), withVector: count(utterances.deepfakeEmbedding) })
    .from(utterances)
    .where(eq(utterances.recordingId, recordingId));
  const [voiceprint] = await db
    .select({ n: count() })
    .from(voiceprints)
    .where(eq(voiceprints.recordingId, recordingId));
  return {
    utterances: utterance?.all ?? 0,
    voiceprints: voiceprint?.n ?? 0,
    deepfakeEmbeddings: utterance?.withVector ?? 0,
  };
}

/**
 * The summary of the recording whose audio has this sha256, or null.
 * @example const existing = await findRecordingBySha256(db, sha256);
 */
export async function findRecordingBySha256(db: Db, sha256: string): Promise<RecordingSummary | null> {
  const [row] = await db.select(recordingSummaryColumns).from(recordings).where(eq(recordings.sha256, sha256));
  return row ? toRecordingSummary(row) : null;
}

const ISO_INSTANT_MESSAGE =
  'must be an ISO-8601 date-time with a time zone (2026-03-01T09:30:00Z, 2026-03-01T10:30:00+01:00) or a date (2026-03-01, midnight UTC)';
const isoDateTime = z.iso.datetime({ offset: true });
const isoDate = z.iso.date();

/**
 * An instant as the API takes one (`callAt`, `from`, `to`): an ISO-8601 date-time with a time zone,
 * or a plain date (midnight UTC). A local time without a zone is refused: it would name a
 * different instant on every server.
 * @example isoInstant.parse('2026-03-01T09:30:00Z'); // Date
 */
export const isoInstant = z
  .string()
  .trim()
  .refine((v) => (isoDateTime.safeParse(v).success || isoDate.safeParse(v).success) && !Number.isNaN(Date.parse(v)), {
    message: ISO_INSTANT_MESSAGE,
  })
  .transform((v) => new Date(v));

/**
 * What `listRecordings` takes. The route's query schema (`listRecordingsQuerySchema`) is where a
 * request's values are validated and converted, once; callers in code pass these typed values.
 */
export type RecordingListFilters = {
  status?: RecordingStatus;
  accountRef?: string;
  channel?: string;
  /** `call_at` at or after this instant. */
  from?: Date;
  /** `call_at` before this instant (exclusive: consecutive ranges do not overlap). */
  to?: Date;
  /** Page size, 1–500 (LIST_LIMIT_MAX); 50 when absent. */
  limit?: number;
  /** Where the previous page ended: its `nextCursor`, decoded (`decodeListCursor`). */
  after?: ListPosition;
  /** Only these recordings (at most RECORDING_IDS_MAX): the states of many known recordings in one request. */
  ids?: string[];
};

export type RecordingPage = { items: RecordingSummary[]; nextCursor: string | null };

/** Where a page ends: the sort key of its last row, `created_at` in microseconds (the column's precision) and id. */
export type ListPosition = { createdAtMicros: string; id: string };

/** One page of a list (CONVENTIONS: `{items, nextCursor}`; nextCursor null on the last). */
export type Page<T> = { items: T[]; nextCursor: string | null };

/**
 * Reads a list cursor; null when it is not one `listRecordings` gave out.
 * @example if (!decodeListCursor(query.cursor)) reject('cursor');
 */
export function decodeListCursor(cursor: string): ListPosition | null {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return null;
  const [createdAtMicros, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  if (rest.length > 0 || !createdAtMicros || !id) return null;
  if (!/^-?\d{1,17}$/.test(createdAtMicros) || !isUuid(id)) return null;
  return { createdAtMicros, id };
}

/** A list cursor (`decodeListCursor` reads it): every keyset list of voxtrace gives these out. */
export function encodeListCursor(position: ListPosition): string {
  return Buffer.from(`${position.createdAtMicros}:${position.id}`, 'utf8').toString('base64url');
}

/**
 * Recordings newest first, filtered, one page at a time. Keyset pagination on (created_at desc,
 * id desc) — served by `recordings_created_idx` — so pages stay fast and stable while rows are
 * added: a new upload lands before the first page, never shifting later ones.
 * @example
 * const first = await listRecordings(db, { status: 'failed', limit: 100 });
 * const next = first.nextCursor ? decodeListCursor(first.nextCursor) : null;
 * const second = await listRecordings(db, { status: 'failed', limit: 100, after: next ?? undefined });
 */
export async function listRecordings(db: Db, filters: RecordingListFilters = {}): Promise<RecordingPage> {
  const limit = filters.limit ?? LIST_LIMIT_DEFAULT;
  const after = filters.after;
  const conditions: SQL[] = [];
  if (filters.ids !== undefined) conditions.push(inArray(recordings.id, filters.ids));
  if (filters.status) conditions.push(eq(recordings.status, filters.status));
  if (filters.accountRef !== undefined) conditions.push(eq(recordings.accountRef, filters.accountRef));
  if (filters.channel !== undefined) conditions.push(eq(recordings.channel, filters.channel));
  if (filters.from) conditions.push(gte(recordings.callAt, filters.from));
  if (filters.to) conditions.push(lt(recordings.callAt, filters.to));
  if (after) {
    // microseconds, not a JS Date: a Date keeps milliseconds only, and rows created within the
    // same millisecond would be skipped or repeated across pages
    conditions.push(
      sql`(${recordings.createdAt}, ${recordings.id}) < (timestamptz 'epoch' + ${after.createdAtMicros}::bigint * interval '1 microsecond', ${after.id}::uuid)`,
    );
  }
  const rows = await db
    .select({
      ...recordingSummaryColumns,
      createdAtMicros: sql<string>`(extract(epoch from ${recordings.createdAt}) * 1000000)::bigint::text`,
    })
    .from(recordings)
    .where(and(...conditions))
    .orderBy(desc(recordings.createdAt), desc(recordings.id))
    // one more than asked: tells whether another page follows without a count
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map((row) => toRecordingSummary(row)),
    nextCursor:
      rows.length > limit && last ? encodeListCursor({ createdAtMicros: last.createdAtMicros, id: last.id }) : null,
  };
}

export type RecordingInclude = { embeddings?: boolean; document?: boolean };

// what the detail view shows of each utterance and voiceprint; vectors are added on request
const utteranceColumns = {
  id: utterances.id,
  upstreamId: utterances.upstreamId,
  startS: utterances.startS,
  endS: utterances.endS,
  speakerLabel: utterances.speakerLabel,
  transcript: utterances.transcript,
  language: utterances.language,
  deepfakeLabel: utterances.deepfakeLabel,
  pSpoofed: utterances.pSpoofed,
};
const voiceprintColumns = {
  id: voiceprints.id,
  speakerLabel: voiceprints.speakerLabel,
  rawNorm: voiceprints.rawNorm,
  speechSeconds: voiceprints.speechSeconds,
  utteranceCount: voiceprints.utteranceCount,
  meanPSpoofed: voiceprints.meanPSpoofed,
  // whose voice it is: null while it is in no identity
  identityId: voiceprints.identityId,
  identityKind: identities.kind,
};

/**
 * One recording with its utterances and voiceprints, shaped for the API. Vectors (unit length,
 * with `rawNorm`) and the raw document only when asked: they dominate the payload.
 * Throws NotFoundError for an unknown id, and for an id that is not a uuid.
 * @example const detail = await getRecordingDetail(db, id, { embeddings: true });
 */
export async function getRecordingDetail(db: Db, id: string, include: RecordingInclude = {}) {
  if (!isUuid(id)) throw new NotFoundError(`no recording ${id}`);
  // What is only shown on request is not even read otherwise: a raw document is ~200 KiB to detoast
  // and parse, and each utterance's halfvec(768) ~10 KiB of text.
  const unlessAsked = <T>(wanted: boolean | undefined, column: AnyPgColumn) =>
    wanted ? sql<T>`${column}`.mapWith(column) : sql<T>`null`;
  const [[recording], utteranceRows, voiceprintRows] = await Promise.all([
    db
      .select({
        ...recordingSummaryColumns,
        rawDocument: unlessAsked<unknown>(include.document, recordings.rawDocument),
        rawBody: unlessAsked<string | null>(include.document, recordings.rawBody),
      })
      .from(recordings)
      .where(eq(recordings.id, id)),
    db
      .select({
        ...utteranceColumns,
        deepfakeEmbedding: unlessAsked<number[] | null>(include.embeddings, utterances.deepfakeEmbedding),
        deepfakeRawNorm: unlessAsked<number | null>(include.embeddings, utterances.deepfakeRawNorm),
      })
      .from(utterances)
      .where(eq(utterances.recordingId, id))
      .orderBy(asc(utterances.startS), asc(utterances.upstreamId)),
    db
      .select({
        ...voiceprintColumns,
        embedding: unlessAsked<number[] | null>(include.embeddings, voiceprints.embedding),
      })
      .from(voiceprints)
      .leftJoin(identities, eq(identities.id, voiceprints.identityId))
      .where(eq(voiceprints.recordingId, id))
      .orderBy(asc(voiceprints.speakerLabel)),
  ]);
  if (!recording) throw new NotFoundError(`no recording ${id}`);
  return {
    ...toRecordingSummary(recording),
    utterances: utteranceRows.map(({ deepfakeEmbedding, deepfakeRawNorm, ...u }) =>
      include.embeddings ? { ...u, deepfakeEmbedding, deepfakeRawNorm } : u,
    ),
    voiceprints: voiceprintRows.map(({ embedding, ...v }) => (include.embeddings ? { ...v, embedding } : v)),
    ...(include.document ? { rawDocument: recording.rawDocument ?? null, rawBody: recording.rawBody } : {}),
  };
}
