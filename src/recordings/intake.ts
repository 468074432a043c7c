import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import busboy from 'busboy';
import { z } from 'zod';
import { audioMeter, byteLimit, type MeteredAudio } from '../audio/meter.ts';
import { type SniffedAudio, sniffAudio } from '../audio/sniff.ts';
import type { Db } from '../db/client.ts';
import type { UpstreamApi } from '../db/schema.ts';
import {
  ConflictError,
  type FieldError,
  InvalidInputError,
  NotFoundError,
  PayloadTooLargeError,
  UnsupportedMediaError,
} from '../errors.ts';
import { isUuid } from '../ids.ts';
import { findRecordingBySha256, isoInstant, type RecordingSummary, spoolFileStates } from './queries.ts';
import { ensureSpoolDir, removeSpoolFile, spoolFileExists, spoolFileName, spoolPath, tempUploadPath } from './spool.ts';
import { insertQueuedRecording, REQUEUEABLE_STATUSES, requeueRecording } from './transitions.ts';

/**
 * Intake: audio arrives as a multipart upload, streams into the spool while it is hashed, and
 * becomes a `queued` recording row — the worker's job. Nothing here knows about HTTP: errors are
 * the domain errors of src/errors.ts, which the HTTP layer turns into problems.
 */

export type IntakeSettings = {
  /** `$VOXTRACE_DATA_DIR/spool`: where uploads wait for the worker. */
  spoolDir: string;
  /** VOXTRACE_MAX_UPLOAD_MB in bytes: the largest audio file taken. */
  maxUploadBytes: number;
  /** The upstream API recordings are queued for (VOXTRACE_UPSTREAM_API). */
  upstreamApi: UpstreamApi;
};

/** A multipart/form-data request body, as it arrives. */
export type UploadRequest = {
  body: ReadableStream<Uint8Array> | Readable | null;
  contentType: string | undefined;
  /** The Content-Length header, when the client sent one: lets a too-large upload fail before it is read. */
  contentLength: string | undefined;
};

export type CreatedRecording = {
  /** False when a recording of the same bytes existed already: it is answered instead. */
  created: boolean;
  recording: RecordingSummary;
};

/** The fields the upload form takes: `file` (the one file part) and text fields. */
export const UPLOAD_FIELDS = ['file', 'accountRef', 'channel', 'callAt', 'meta', 'enrolCustomer'] as const;
const TEXT_FIELDS = new Set<string>(UPLOAD_FIELDS.filter((f) => f !== 'file'));
const MAX_FIELD_BYTES = 64 * 1024;
const MAX_PARTS = 32;
// what a form may carry besides the audio: every allowed field at its size limit, part headers
// and boundaries. A Content-Length beyond limit + this cannot be an acceptable upload.
const FORM_OVERHEAD_BYTES = MAX_PARTS * (MAX_FIELD_BYTES + 1024);
const MAX_FILE_NAME_CHARS = 255;

/** One upload streamed into a temporary spool file; its text fields are not validated yet. */
type SpooledUpload = {
  fields: [name: string, value: string][];
  /** Problems found while reading the form: unknown or repeated parts, truncated values. */
  formErrors: FieldError[];
  file: SpooledFile | null;
};
type SpooledFile = MeteredAudio & { tempPath: string; fileName: string };

/**
 * Takes one uploaded recording: streams the multipart body's `file` part into the spool (hashing
 * and counting as it goes, so memory stays flat for any size), validates the form, recognises WAV
 * or MP3 by content, then stores a `queued` recording. The same bytes twice give the same
 * recording (`created: false` the second time).
 *
 * Throws, leaving no row and no file behind: PayloadTooLargeError (over `maxUploadBytes`),
 * UnsupportedMediaError (not a multipart form, or not WAV/MP3 audio), InvalidInputError (missing
 * file, unknown fields, bad `meta` or `callAt`, unreadable form).
 * @example
 * const { created, recording } = await createRecording(db, settings, {
 *   body: request.body, contentType: request.headers.get('content-type') ?? undefined, contentLength: undefined,
 * });
 */
export async function createRecording(
  db: Db,
  settings: IntakeSettings,
  request: UploadRequest,
): Promise<CreatedRecording> {
  const upload = await spoolUpload(settings, request);
  try {
    const context = validateUploadForm(upload);
    const file = upload.file as SpooledFile;
    const audio = sniffAudio(file.head, file.bytes);
    if (!audio) {
      throw new UnsupportedMediaError(
        `the file${file.fileName ? ` "${file.fileName}"` : ''} is neither WAV nor MP3 audio ` +
          '(the format is recognised by the content, not the file name)',
      );
    }
    return await enqueueSpooledFile(db, settings, file, audio, context);
  } finally {
    // a no-op once the file was renamed into place; otherwise the upload was refused
    if (upload.file) await fs.rm(upload.file.tempPath, { force: true });
  }
}

type UploadContext = {
  accountRef: string | null;
  channel: string | null;
  /** When the call took place; null: when it is uploaded, by the database's clock. */
  callAt: Date | null;
  meta: Record<string, unknown>;
  /** after analysis, the call's non-staff speaker becomes (or joins) the account's customer identity */
  enrolCustomer: boolean;
};

const optionalText = z
  .string()
  .trim()
  .max(200, 'must be at most 200 characters')
  .transform((v) => (v === '' ? null : v))
  .optional();

const metaObject = z.string().transform((text, ctx): Record<string, unknown> => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `must be a JSON object; this is not JSON: ${(error as Error).message}` });
    return z.NEVER;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    ctx.addIssue({ code: 'custom', message: `must be a JSON object ({"key": "value"}), not ${kind}` });
    return z.NEVER;
  }
  return value as Record<string, unknown>;
});

const uploadFormSchema = z.object({
  accountRef: optionalText,
  channel: optionalText,
  callAt: isoInstant.optional(),
  meta: metaObject.optional(),
  enrolCustomer: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .transform((v) => v === 'true')
    .optional(),
});

/** Validates the form once the stream has ended (fields may come before or after the file). */
function validateUploadForm(upload: SpooledUpload): UploadContext {
  const errors = [...upload.formErrors];
  const seen = new Set<string>();
  for (const [name] of upload.fields) {
    if (name === 'file') errors.push({ path: 'form.file', message: 'must be a file part (with a filename), not text' });
    else if (!TEXT_FIELDS.has(name)) {
      errors.push({ path: `form.${name}`, message: `unknown field; the form takes ${UPLOAD_FIELDS.join(', ')}` });
    } else if (seen.has(name)) errors.push({ path: `form.${name}`, message: 'given more than once' });
    seen.add(name);
  }
  if (!upload.file && !errors.some((e) => e.path === 'form.file')) {
    errors.push({ path: 'form.file', message: 'required: the audio as a file part named "file"' });
  } else if (upload.file?.bytes === 0) {
    errors.push({ path: 'form.file', message: 'the file is empty' });
  }
  const parsed = uploadFormSchema.safeParse(
    Object.fromEntries(upload.fields.filter(([name]) => TEXT_FIELDS.has(name))),
  );
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      errors.push({ path: ['form', ...issue.path.map(String)].join('.'), message: issue.message });
    }
  }
  if (parsed.success && parsed.data.enrolCustomer && !parsed.data.accountRef) {
    errors.push({ path: 'form.enrolCustomer', message: 'needs accountRef: a customer is enrolled for an account' });
  }
  if (errors.length > 0 || !parsed.success) {
    throw new InvalidInputError(errors.map((e) => `${e.path}: ${e.message}`).join('; '), errors);
  }
  return {
    accountRef: parsed.data.accountRef ?? null,
    channel: parsed.data.channel ?? null,
    callAt: parsed.data.callAt ?? null,
    meta: parsed.data.meta ?? {},
    enrolCustomer: parsed.data.enrolCustomer ?? false,
  };
}

/**
 * Moves the spooled file into place and inserts its row. Order matters for crashes: the file gets
 * its final name (from an id made here) before the row that points at it exists, so a committed
 * row always has its audio; a crash in between leaves only an orphan file, never a row without
 * audio, and the client (which got no answer) sends again.
 */
async function enqueueSpooledFile(
  db: Db,
  settings: IntakeSettings,
  file: SpooledFile,
  audio: SniffedAudio,
  context: UploadContext,
): Promise<CreatedRecording> {
  const id = randomUUID();
  const spoolFile = spoolFileName(id, audio.format);
  await fs.rename(file.tempPath, spoolPath(settings.spoolDir, spoolFile));
  let inserted: RecordingSummary | null;
  try {
    inserted = await insertQueuedRecording(db, {
      id,
      sha256: file.sha256,
      upstreamApi: settings.upstreamApi,
      fileName: file.fileName || null,
      audioFormat: audio.format,
      audioBytes: file.bytes,
      durationS: audio.durationS,
      spoolFile,
      ...context,
    });
  } catch (error) {
    await removeSpoolFile(settings.spoolDir, spoolFile);
    throw error;
  }
  if (inserted) return { created: true, recording: inserted };
  // the same bytes were uploaded before (or are being uploaded right now): that recording wins
  await removeSpoolFile(settings.spoolDir, spoolFile);
  const existing = await findRecordingBySha256(db, file.sha256);
  if (!existing) {
    // the conflicting row was deleted between our insert and this read: rare enough to hand back
    throw new ConflictError('a recording of the same audio was being deleted meanwhile; send the upload again');
  }
  return { created: false, recording: existing };
}

/**
 * Streams a multipart body: the `file` part into a temporary spool file (through the audio
 * meter: hashed, counted, its head kept), text fields collected. Stops reading as soon as the file passes
 * the limit. On any error the temporary file is gone before this throws.
 */
async function spoolUpload(settings: IntakeSettings, request: UploadRequest): Promise<SpooledUpload> {
  const contentType = request.contentType ?? '';
  if (!/^multipart\/form-data\s*;.*\bboundary=/i.test(contentType)) {
    throw new UnsupportedMediaError(
      `send the audio as multipart/form-data with a "file" part; the request's content type is "${contentType || 'none'}"`,
    );
  }
  const limitText = formatMegabytes(settings.maxUploadBytes);
  const declaredBytes = request.contentLength ? Number(request.contentLength) : Number.NaN;
  if (Number.isFinite(declaredBytes) && declaredBytes > settings.maxUploadBytes + FORM_OVERHEAD_BYTES) {
    throw new PayloadTooLargeError(
      `the upload is ${formatMegabytes(declaredBytes)}; the limit is ${limitText} of audio (VOXTRACE_MAX_UPLOAD_MB)`,
    );
  }
  if (!request.body) {
    const message = 'required: the audio as a file part named "file" (the request has no body)';
    throw new InvalidInputError(`form.file: ${message}`, [{ path: 'form.file', message }]);
  }

  let parser: ReturnType<typeof busboy>;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      defParamCharset: 'utf8',
      limits: { fieldSize: MAX_FIELD_BYTES, fieldNameSize: 200, parts: MAX_PARTS },
    });
  } catch (error) {
    const message = `the multipart/form-data content type is not usable: ${(error as Error).message}`;
    throw new InvalidInputError(message, [{ path: 'form', message }]);
  }

  await ensureSpoolDir(settings.spoolDir);
  const tempPath = tempUploadPath(settings.spoolDir);
  // opened before parsing starts, so that cleanup can never race a lazily opened stream
  // re-creating the file after it was removed
  const handle = await fs.open(tempPath, 'wx');
  let handleOwnedByStream = false;

  const fields: SpooledUpload['fields'] = [];
  const formErrors: FieldError[] = [];
  let fileDone: Promise<SpooledFile | null> = Promise.resolve(null);
  let fileSeen = false;

  parser.on('field', (name, value, info) => {
    if (info.nameTruncated || info.valueTruncated) {
      formErrors.push({ path: `form.${name}`, message: `larger than ${MAX_FIELD_BYTES / 1024} KiB` });
    } else {
      fields.push([name, value]);
    }
  });
  parser.on('file', (name, stream, info) => {
    if (name !== 'file' || fileSeen) {
      formErrors.push(
        name === 'file'
          ? { path: 'form.file', message: 'send exactly one file' }
          : { path: `form.${name}`, message: `unknown field; the form takes ${UPLOAD_FIELDS.join(', ')}` },
      );
      stream.resume(); // drained, not stored
      return;
    }
    fileSeen = true;
    handleOwnedByStream = true;
    const meter = audioMeter({
      maxBytes: settings.maxUploadBytes,
      tooLarge: () => tooLarge(`the file is larger than the limit of ${limitText}`),
    });
    fileDone = pipeline(stream, meter.transform, handle.createWriteStream()).then(() => ({
      tempPath,
      fileName: (info.filename ?? '').slice(0, MAX_FILE_NAME_CHARS),
      ...meter.result(),
    }));
    // stop the whole body as soon as the file fails (too large, disk full): nothing more to read
    fileDone.catch((error) => parser.destroy(error));
  });
  parser.on('partsLimit', () => {
    formErrors.push({ path: 'form', message: `more than ${MAX_PARTS} parts` });
  });

  try {
    const source =
      request.body instanceof Readable ? request.body : Readable.fromWeb(request.body as NodeWebReadableStream);
    const bodyLimit = byteLimit(settings.maxUploadBytes + FORM_OVERHEAD_BYTES, () =>
      tooLarge(`the upload is larger than the limit of ${limitText}`),
    );
    await pipeline(source, bodyLimit, parser);
    const file = await fileDone;
    if (!handleOwnedByStream) await handle.close();
    if (!file) await fs.rm(tempPath, { force: true });
    return { fields, formErrors, file };
  } catch (error) {
    // wait for the file's pipeline to settle (it is torn down with the parser) before removing it
    const fileError = await fileDone.then(
      () => null,
      (e: unknown) => e,
    );
    if (!handleOwnedByStream) await handle.close().catch(() => {});
    await fs.rm(tempPath, { force: true });
    throw translateStreamError(fileError instanceof PayloadTooLargeError ? fileError : error);
  }
}

function tooLarge(what: string): PayloadTooLargeError {
  return new PayloadTooLargeError(`${what} (VOXTRACE_MAX_UPLOAD_MB)`);
}

function translateStreamError(error: unknown): unknown {
  if (error instanceof PayloadTooLargeError || error instanceof InvalidInputError) return error;
  // the server's own trouble (disk full, permissions) is an internal error, not the client's
  if (error instanceof Error && 'syscall' in error) return error;
  const message = error instanceof Error ? error.message : String(error);
  // busboy's complaints (truncated body, malformed part headers) are the request's fault
  return new InvalidInputError(`the multipart body could not be read: ${message}`, [{ path: 'form', message }]);
}

function formatMegabytes(bytes: number): string {
  const mb = bytes / (1024 * 1024);
  return `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
}

/**
 * Queues a `failed` or `dead` recording again: attempts back to 0, error, lease, upstream pid and
 * the upstream's document/body cleared, due now. Its spooled audio must still be there.
 * Throws NotFoundError (unknown id, or not a uuid) and ConflictError (any other status, an
 * imported recording, audio gone from the spool).
 * @example const summary = await retryRecording(db, { spoolDir }, id); // summary.status === 'queued'
 */
export async function retryRecording(
  db: Db,
  settings: Pick<IntakeSettings, 'spoolDir'>,
  id: string,
): Promise<RecordingSummary> {
  if (!isUuid(id)) throw new NotFoundError(`no recording ${id}`);
  const row = (await spoolFileStates(db, [id])).get(id);
  if (!row) throw new NotFoundError(`no recording ${id}`);
  if (!(REQUEUEABLE_STATUSES as readonly string[]).includes(row.status)) {
    throw new ConflictError(
      `recording ${id} is "${row.status}"; only ${REQUEUEABLE_STATUSES.map((s) => `"${s}"`).join(' or ')} recordings can be retried`,
    );
  }
  if (row.source === 'import') {
    throw new ConflictError(`recording ${id} was imported from a results document: it has no audio to submit`);
  }
  if (!row.spoolFile || !(await spoolFileExists(settings.spoolDir, row.spoolFile))) {
    throw new ConflictError(`the audio of recording ${id} is no longer in the spool, so it cannot be submitted again`);
  }
  const requeued = await requeueRecording(db, id);
  if (!requeued) throw new ConflictError(`recording ${id} changed status meanwhile; it is no longer failed or dead`);
  return requeued;
}
