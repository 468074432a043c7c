import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { AUDIO_HEAD_BYTES } from './sniff.ts';

/**
 * A pass-through that fails with `tooLarge()` as soon as more than `maxBytes` have passed; each
 * chunk within the limit is shown to `seen` first. Bounds a body however it arrives (chunked, or
 * with a false Content-Length).
 * @example await pipeline(request, byteLimit(limit, () => new PayloadTooLargeError('…')), parser);
 */
export function byteLimit(maxBytes: number, tooLarge: () => Error, seen: (chunk: Buffer) => void = () => {}) {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        callback(tooLarge());
        return;
      }
      seen(chunk);
      callback(null, chunk);
    },
  });
}

export type MeteredAudio = { sha256: string; bytes: number; head: Buffer };

/**
 * Meters audio as it streams through: hashes it, counts it and keeps its first AUDIO_HEAD_BYTES
 * (enough to recognise it), so that a 500 MB upload costs the memory of a 5 kB one. With `maxBytes`,
 * fails with `tooLarge()` as soon as the audio passes it. `result()` once the stream has ended.
 * @example const meter = audioMeter(); await pipeline(upload, meter.transform, fs.createWriteStream(file)); meter.result();
 */
export function audioMeter(limit: { maxBytes: number; tooLarge: () => Error } | null = null) {
  const hash = createHash('sha256');
  const head: Buffer[] = [];
  let headBytes = 0;
  let bytes = 0;
  const transform = byteLimit(
    limit?.maxBytes ?? Number.POSITIVE_INFINITY,
    limit?.tooLarge ?? (() => new Error()),
    (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (headBytes < AUDIO_HEAD_BYTES) {
        // a copy, so the kept bytes do not pin a whole (possibly large) chunk
        const part = Buffer.from(chunk.subarray(0, AUDIO_HEAD_BYTES - headBytes));
        head.push(part);
        headBytes += part.length;
      }
    },
  );
  return { transform, result: (): MeteredAudio => ({ sha256: hash.digest('hex'), bytes, head: Buffer.concat(head) }) };
}
