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

/**
 * The manifest of a demo call, from the RIFF chunks of its head (`sniffAudio(...).chunks`); null
 * when there is none, or it does not parse (any other WAV file).
 * @example const manifest = manifestFromChunks(sniffAudio(head, size)?.chunks ?? new Map());
 */
export function manifestFromChunks(chunks: ReadonlyMap<string, Buffer>): CallManifest | null {
  const bytes = chunks.get(MANIFEST_CHUNK_ID);
  if (!bytes) return null;
  try {
    return parseManifest(JSON.parse(bytes.toString('utf8')));
  } catch {
    return null;
  }
}
