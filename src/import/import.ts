import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { type Db, dataErrorMessage } from '../db/client.ts';
import type { UpstreamApi } from '../db/schema.ts';
import { withTransaction } from '../db/transaction.ts';
import { findStoredDocument, storedCounts } from '../recordings/queries.ts';
import { type DocumentRows, recordStored, rowsForDocument } from '../recordings/store.ts';
import { insertImportedRecording } from '../recordings/transitions.ts';
import { type ParsedDocument, parseResultsDocument, ResultsDocumentError } from '../upstream/results.ts';

export type ImportOptions = {
  api: UpstreamApi | 'auto';
  accountRef?: string;
  channel?: string;
  /** When the call took place, and what else is known of it (an import manifest's line). */
  callAt?: Date;
  meta?: Record<string, unknown>;
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
 * utterances and voiceprints and its outbox event (`recordStored`, as the worker stores results)
 * commit in one transaction. A document already stored (same api, cid
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
  return withTransaction(db, async (tx) => {
    const existing = await findStoredDocument(tx, parsed, input.documentSha256);
    if (existing) return unchanged(tx, input.file, existing);
    const recordingId = await insertImportedRecording(tx, {
      documentSha256: input.documentSha256,
      upstreamApi: parsed.api,
      upstreamCid: parsed.cid,
      upstreamPid: parsed.pid,
      rawDocument: input.json,
      accountRef: options.accountRef ?? null,
      channel: options.channel ?? null,
      callAt: options.callAt ?? null,
      meta: options.meta ?? {},
    });
    if (!recordingId) {
      // a concurrent import of the same document won the race: report it unchanged
      const winner = await findStoredDocument(tx, parsed, input.documentSha256);
      return unchanged(tx, input.file, winner as string);
    }
    const counts = await recordStored(tx, recordingId, input.rows);
    return { file: input.file, status: 'imported', recordingId, ...counts, error: null };
  });
}

/** An already stored document reports what is stored for it. */
async function unchanged(db: Db, file: string, recordingId: string): Promise<ImportOutcome> {
  return { file, status: 'unchanged', recordingId, ...(await storedCounts(db, recordingId)), error: null };
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
