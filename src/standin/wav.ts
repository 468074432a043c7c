import { type CallManifest, parseManifest } from './manifest.ts';
import { seededRandom } from './random.ts';

/**
 * WAV files of synthetic calls. The call's manifest rides in a custom RIFF chunk (`vxtm`) placed
 * before `data`, so the first bytes of an upload reveal it; players skip unknown chunks, so the
 * file stays a valid WAV. The audio itself is a short stretch of quiet noise: the manifest, not
 * the samples, says how long the call is and who speaks in it.
 */
export const MANIFEST_CHUNK_ID = 'vxtm';

const SAMPLE_RATE = 8000;
const BYTES_PER_SAMPLE = 2;

/**
 * A mono 16-bit 8 kHz WAV carrying `manifest` in a `vxtm` chunk before `data`.
 * @example fs.writeFileSync('call.wav', encodeCallWav(manifest, { audioSeconds: 0.125 }));
 */
export function encodeCallWav(manifest: CallManifest | null, options: { audioSeconds?: number; seed?: number } = {}) {
  const samples = Math.round((options.audioSeconds ?? 0.125) * SAMPLE_RATE);
  const manifestBytes = manifest ? Buffer.from(JSON.stringify(manifest), 'utf8') : null;
  const manifestChunk = manifestBytes ? 8 + manifestBytes.length + (manifestBytes.length % 2) : 0;
  const dataBytes = samples * BYTES_PER_SAMPLE;
  const total = 12 + 24 + manifestChunk + 8 + dataBytes;
  const out = Buffer.alloc(total);
  let at = 0;
  at += out.write('RIFF', at, 'ascii');
  at = out.writeUInt32LE(total - 8, at);
  at += out.write('WAVE', at, 'ascii');
  at += out.write('fmt ', at, 'ascii');
  at = out.writeUInt32LE(16, at);
  at = out.writeUInt16LE(1, at); // PCM
  at = out.writeUInt16LE(1, at); // mono
  at = out.writeUInt32LE(SAMPLE_RATE, at);
  at = out.writeUInt32LE(SAMPLE_RATE * BYTES_PER_SAMPLE, at); // byte rate
  at = out.writeUInt16LE(BYTES_PER_SAMPLE, at); // block align
  at = out.writeUInt16LE(16, at); // bits per sample
  if (manifestBytes) {
    at += out.write(MANIFEST_CHUNK_ID, at, 'ascii');
    at = out.writeUInt32LE(manifestBytes.length, at);
    at += manifestBytes.copy(out, at);
    at += manifestBytes.length % 2; // RIFF chunks are word-aligned: one pad byte after an odd size
  }
  at += out.write('data', at, 'ascii');
  at = out.writeUInt32LE(dataBytes, at);
  const random = seededRandom(options.seed ?? 1);
  for (let i = 0; i < samples; i++) {
    // about -50 dBFS: audible as hiss, far from silence detectors' idea of an empty file
    at = out.writeInt16LE(Math.round((random() - 0.5) * 200), at);
  }
  return out;
}

export type WavInfo = { durationS: number; manifest: CallManifest | null };

/**
 * Duration (from the fmt chunk's byte rate and the data chunk's size) and the manifest, read
 * from the first bytes of a WAV file. `totalBytes` is the whole file's size: it stands in for a
 * data size that streaming writers leave as 0 or 0xFFFFFFFF. Null when the bytes are not a WAV.
 * @example const info = readWavHead(head, fileSize); // { durationS: 0.125, manifest: {...} }
 */
export function readWavHead(head: Uint8Array, totalBytes: number): WavInfo | null {
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (bytes.length < 12 || bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') {
    return null;
  }
  let byteRate: number | null = null;
  let manifest: CallManifest | null = null;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = bytes.toString('ascii', at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ' && body + 12 <= bytes.length) {
      byteRate = bytes.readUInt32LE(body + 8);
    } else if (id === MANIFEST_CHUNK_ID && body + size <= bytes.length) {
      manifest = decodeManifest(bytes.subarray(body, body + size));
    } else if (id === 'data') {
      if (!byteRate) return null;
      const available = Math.max(0, totalBytes - body);
      const dataBytes = size === 0 || size === 0xffffffff ? available : Math.min(size, available);
      return { durationS: dataBytes / byteRate, manifest };
    }
    at = body + size + (size % 2);
  }
  // the data chunk lies beyond the bytes we peeked at (a huge header): estimate from the size
  if (!byteRate) return null;
  return { durationS: Math.max(0, totalBytes - at) / byteRate, manifest };
}

function decodeManifest(bytes: Buffer): CallManifest | null {
  try {
    return parseManifest(JSON.parse(bytes.toString('utf8')));
  } catch {
    return null;
  }
}
