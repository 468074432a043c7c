import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import busboy from 'busboy';
import { audioMeter } from '../audio/meter.ts';

/**
 * Uploads are streamed, never buffered: the file part is hashed chunk by chunk and only its
 * first bytes are kept (enough to recognise the audio and read a manifest), so a 500 MB upload
 * costs the same memory as a 5 kB one.
 */
export type DigestedAudio = { sha256: string; head: Buffer; size: number };
export type MultipartUpload = { fields: Map<string, string>; file: (DigestedAudio & { filename: string }) | null };

/** The request body is not an upload the stand-in can read; the message says why. */
export class UploadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UploadError';
  }
}

/**
 * Reads a multipart/form-data request: its text fields, and its `file` part digested (other
 * file parts are drained and ignored).
 * @example const { fields, file } = await readMultipartUpload(c.req.raw);
 */
export async function readMultipartUpload(request: Request): Promise<MultipartUpload> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^multipart\/form-data\b/i.test(contentType)) {
    throw new UploadError(`expected a multipart/form-data body with a "file" part, got "${contentType || 'nothing'}"`);
  }
  if (!/\bboundary=/i.test(contentType)) {
    throw new UploadError('the multipart/form-data content type has no boundary');
  }
  if (!request.body) throw new UploadError('the request has no body');
  const fields = new Map<string, string>();
  let file: Promise<MultipartUpload['file']> = Promise.resolve(null);
  let fileSeen = false;
  const parser = busboy({
    headers: { 'content-type': contentType },
    limits: { fields: 50, fieldSize: 1024 * 1024 },
  });
  parser.on('field', (name, value, info) => {
    if (info.valueTruncated) {
      parser.destroy(new UploadError(`the form field "${name}" is larger than 1 MiB`));
      return;
    }
    fields.set(name, value);
  });
  parser.on('file', (name, stream, info) => {
    if (name !== 'file' || fileSeen) {
      stream.resume();
      return;
    }
    fileSeen = true;
    file = digestStream(stream).then((digest) => ({ ...digest, filename: info.filename ?? '' }));
    // keep a rejection from being unhandled before it is awaited below
    file.catch(() => {});
  });
  try {
    await pipeline(Readable.fromWeb(request.body as unknown as NodeReadableStream), parser);
    return { fields, file: await file };
  } catch (error) {
    if (error instanceof UploadError) throw error;
    throw new UploadError(`the multipart body could not be read: ${(error as Error).message}`);
  }
}

/**
 * Hashes a byte stream and keeps its first bytes (the shared audio meter), discarding the rest as it flows.
 * @example const { sha256, head, size } = await digestStream(Readable.fromWeb(response.body));
 */
export async function digestStream(stream: Readable): Promise<DigestedAudio> {
  const meter = audioMeter();
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  await pipeline(stream, meter.transform, discard);
  const { sha256, head, bytes } = meter.result();
  return { sha256, head, size: bytes };
}
