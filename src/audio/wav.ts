/**
 * Just enough RIFF/WAVE parsing to know a file's duration from its first bytes: the fmt chunk's byte
 * rate and the data chunk's size. Other chunks that lie wholly within those bytes are handed back
 * by id, for whoever knows what they mean (the stand-in reads its call manifest from one).
 */
export type WavHead = { durationS: number; chunks: ReadonlyMap<string, Buffer> };

/**
 * Duration and the other chunks before `data`, from the first bytes of a WAV file. `totalBytes` is
 * the whole file's size: it stands in for a data size that streaming writers leave as 0 or
 * 0xFFFFFFFF. Null when the bytes are not a WAV.
 * @example const info = readWavHead(head, fileSize); // { durationS: 0.125, chunks: Map { 'LIST' => … } }
 */
export function readWavHead(head: Uint8Array, totalBytes: number): WavHead | null {
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (bytes.length < 12 || bytes.toString('ascii', 0, 4) !== 'RIFF' || bytes.toString('ascii', 8, 12) !== 'WAVE') {
    return null;
  }
  let byteRate: number | null = null;
  const chunks = new Map<string, Buffer>();
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = bytes.toString('ascii', at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ') {
      if (body + 12 <= bytes.length) byteRate = bytes.readUInt32LE(body + 8);
    } else if (id === 'data') {
      if (!byteRate) return null;
      const available = Math.max(0, totalBytes - body);
      const dataBytes = size === 0 || size === 0xffffffff ? available : Math.min(size, available);
      return { durationS: dataBytes / byteRate, chunks };
    } else if (body + size <= bytes.length) {
      chunks.set(id, bytes.subarray(body, body + size));
    }
    at = body + size + (size % 2); // RIFF chunks are word-aligned: one pad byte after an odd size
  }
  // the data chunk lies beyond the bytes we peeked at (a huge header): estimate from the size
  if (!byteRate) return null;
  return { durationS: Math.max(0, totalBytes - at) / byteRate, chunks };
}
