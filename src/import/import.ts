import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { type Db, dataErrorMessage, queryRows } from '../db/client.ts';
import { recordings, type UpstreamApi } from '../db/schema.ts';
import { type DocumentRows, insertDocumentRows, rowsForDocument } from '../recordings/store.ts';
import { type ParsedDocument, parseResultsDocument, ResultsDocumentError } from '../upstream/results.ts';

export type ImportOptions = {
  api: UpstreamApi | 'auto';
  accountRef?: string;
  channel?: string;
};

export type ImportOutcome = {
  file: string;
  status: 'imported' | 'unchanged' | 'rejected';
  recordingId: string | null;
  utterances: number;
  voiceprints: number;
  deepfakeEmbeddings: number;
  error: string | null;
};

/**
 * Imports one saved results document as a complete recording, all or nothing: the recording, its
 * utterances and voiceprints commit in one transaction. A document already stored (same api, cid
 * and pid; or the same bytes when it has no pid) is `unchanged`; a bad one is `rejected` with the
 * reason, and nothing of it is stored.
 * @example const outcome = await importDocumentFile(db, 'results.json', { api: 'auto' });
 */
export async function importDocumentFile(db: Db, file: string, options: ImportOptions): Promise<ImportOutcome> {
  const rejected = (error: string): ImportOutcome => ({ ...emptyOutcome(file), status: 'rejected', error });
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    return rejected(`cannot read the file: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return rejected(`not valid JSON: ${(error as Error).message}`);
  }
  let parsed: ParsedDocument;
  let rows: DocumentRows;
  try {
    parsed = parseResultsDocument(json, { api: options.api });
    rows = rowsForDocument(parsed);
  } catch (error) {
    if (error instanceof ResultsDocumentError) return rejected(error.message);
    throw error;
  }
  try {
    return await importParsed(db, { file, json, parsed, rows, documentSha256: sha256(bytes), options });
  } catch (error) {
    const refused = dataErrorMessage(error);
    if (refused) return rejected(`the database refused the document (nothing was stored): ${refused}`);
    throw error;
  }
}

async function importParsed(
  db: Db,
  input: {
    file: string;
    json: unknown;
    parsed: ParsedDocument;
    rows: DocumentRows;
    documentSha256: string;
    options: ImportOptions;
  },
): Promise<ImportOutcome> {
  const { parsed, options } = input;
  return db.transaction(async (tx) => {
    const existing = await findExisting(tx as unknown as Db, parsed, input.documentSha256);
    if (existing) return unchanged(tx as unknown as Db, input.file, existing);
    const [inserted] = await tx
      .insert(recordings)
      .values({
        source: 'import',
        documentSha256: input.documentSha256,
        accountRef: options.accountRef ?? null,
        channel: options.channel ?? null,
        status: 'complete',
        upstreamApi: parsed.api,
        upstreamCid: parsed.cid,
        upstreamPid: parsed.pid,
        rawDocument: input.json,
        completedAt: new Date(),
      })
      // a concurrent import of the same document won the race: report it unchanged
      .onConflictDoNothing()
      .returning({ id: recordings.id });
    if (!inserted) {
      const winner = await findExisting(tx as unknown as Db, parsed, input.documentSha256);
      return unchanged(tx as unknown as Db, input.file, winner as string);
    }
    const counts = await insertDocumentRows(tx as unknown as Db, inserted.id, input.rows);
    return { file: input.file, status: 'imported', recordingId: inserted.id, ...counts, error: null };
  });
}

async function findExisting(db: Db, parsed: ParsedDocument, documentSha256: string): Promise<string | null> {
  const where =
    parsed.pid !== null
      ? and(
          eq(recordings.upstreamApi, parsed.api),
          parsed.cid === null ? isNull(recordings.upstreamCid) : eq(recordings.upstreamCid, parsed.cid),
          eq(recordings.upstreamPid, parsed.pid),
        )
      : and(eq(recordings.documentSha256, documentSha256), isNull(recordings.upstreamPid));
  const [row] = await db.select({ id: recordings.id }).from(recordings).where(where).limit(1);
  return row?.id ?? null;
}

/** An already stored document reports what is stored for it. */
async function unchanged(db: Db, file: string, recordingId: string): Promise<ImportOutcome> {
  const [counts] = await queryRows<{ utterances: number; voiceprints: number; deepfake: number }>(
    db,
    sql`select (select count(*)::int from utterances where recording_id = ${recordingId}) as utterances,
               (select count(*)::int from utterances where recording_id = ${recordingId}
                  and deepfake_embedding is not null) as deepfake,
               (select count(*)::int from voiceprints where recording_id = ${recordingId}) as voiceprints`,
  );
  return {
    file,
    status: 'unchanged',
    recordingId,
    utterances: counts?.utterances ?? 0,
    voiceprints: counts?.voiceprints ?? 0,
    deepfakeEmbeddings: counts?.deepfake ?? 0,
    error: null,
  };
}

function emptyOutcome(file: string): ImportOutcome {
  return {
    file,
    status: 'rejected',
    recordingId: null,
    utterances: 0,
    voiceprints: 0,
    deepfakeEmbeddings: 0,
    error: null,
  };
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
