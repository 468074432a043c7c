/**
 * Just enough MP3 parsing to know a file's duration from its first bytes: skip an ID3v2 tag,
 * find the first MPEG audio frame header, then use the Xing/Info or VBRI frame count when the
 * encoder wrote one (VBR files), else estimate from the size at the first frame's bitrate (CBR).
 */

type FrameHeader = {
  bitrateKbps: number;
  sampleRate: number;
  samplesPerFrame: number;
  frameBytes: number;
  mpeg1: boolean;
  mono: boolean;
};

// kbps by bitrate index; index 0 ("free") and 15 (invalid) are rejected before lookup
const BITRATES: Record<string, number[]> = {
  'mpeg1-layer1': [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  'mpeg1-layer2': [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  'mpeg1-layer3': [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  'mpeg2-layer1': [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  'mpeg2-layer23': [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const SAMPLE_RATES: Record<number, number[]> = {
  3: [44100, 48000, 32000], // MPEG-1
  2: [22050, 24000, 16000], // MPEG-2
  0: [11025, 12000, 8000], // MPEG-2.5
};

/** Reads the 4-byte MPEG audio frame header at `at`, or null when there is none. */
function frameHeaderAt(bytes: Uint8Array, at: number): FrameHeader | null {
  if (at + 4 > bytes.length) return null;
  const b1 = bytes[at + 1] as number;
  const b2 = bytes[at + 2] as number;
  const b3 = bytes[at + 3] as number;
  if (bytes[at] !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const version = (b1 >> 3) & 3; // 0 = 2.5, 1 = reserved, 2 = 2, 3 = 1
  const layerBits = (b1 >> 1) & 3; // 1 = III, 2 = II, 3 = I, 0 = reserved
  const bitrateIndex = b2 >> 4;
  const sampleRateIndex = (b2 >> 2) & 3;
  if (version === 1 || layerBits === 0 || bitrateIndex === 0 || bitrateIndex === 15 || sampleRateIndex === 3) {
    return null;
  }
  const layer = 4 - layerBits;
  const mpeg1 = version === 3;
  const table = mpeg1 ? `mpeg1-layer${layer}` : layer === 1 ? 'mpeg2-layer1' : 'mpeg2-layer23';
  const bitrateKbps = BITRATES[table]?.[bitrateIndex] as number;
  const sampleRate = SAMPLE_RATES[version]?.[sampleRateIndex] as number;
  const padding = (b2 >> 1) & 1;
  const samplesPerFrame = layer === 1 ? 384 : layer === 2 || mpeg1 ? 1152 : 576;
  const frameBytes =
    layer === 1
      ? (Math.floor((12 * bitrateKbps * 1000) / sampleRate) + padding) * 4
      : Math.floor(((samplesPerFrame / 8) * bitrateKbps * 1000) / sampleRate) + padding;
  return { bitrateKbps, sampleRate, samplesPerFrame, frameBytes, mpeg1, mono: b3 >> 6 === 3 };
}

/** Bytes taken by an ID3v2 tag at the start (0 when there is none). */
function id3v2Length(bytes: Uint8Array): number {
  if (bytes.length < 10 || bytes[0] !== 0x49 || bytes[1] !== 0x44 || bytes[2] !== 0x33) return 0; // "ID3"
  // the size is "syncsafe": 4 bytes of 7 bits each
  const size =
    (((bytes[6] as number) & 0x7f) << 21) |
    (((bytes[7] as number) & 0x7f) << 14) |
    (((bytes[8] as number) & 0x7f) << 7) |
    ((bytes[9] as number) & 0x7f);
  const footer = ((bytes[5] as number) & 0x10) !== 0 ? 10 : 0;
  return 10 + size + footer;
}

/** Frame count from a Xing/Info header (LAME and most encoders) or a VBRI header (Fraunhofer). */
function vbrFrameCount(bytes: Uint8Array, frameStart: number, header: FrameHeader): number | null {
  const sideInfo = header.mpeg1 ? (header.mono ? 17 : 32) : header.mono ? 9 : 17;
  const xing = frameStart + 4 + sideInfo;
  const tag = ascii(bytes, xing, 4);
  if ((tag === 'Xing' || tag === 'Info') && xing + 12 <= bytes.length) {
    const flags = readUInt32BE(bytes, xing + 4);
    if (flags & 1) return readUInt32BE(bytes, xing + 8);
    return null;
  }
  const vbri = frameStart + 4 + 32;
  if (ascii(bytes, vbri, 4) === 'VBRI' && vbri + 18 <= bytes.length) return readUInt32BE(bytes, vbri + 14);
  return null;
}

/**
 * The duration of an MP3 from its first bytes and total size, or null when the bytes are not
 * MP3 audio. A frame header found by scanning must be followed by another one, so that random
 * bytes which happen to contain 0xFFE… are not taken for MP3.
 * @example const info = readMp3Head(head, fileSize); // { durationS: 12.5 }
 */
export function readMp3Head(head: Uint8Array, totalBytes: number): { durationS: number } | null {
  const audioStart = id3v2Length(head);
  // encoders may pad after the tag; a file without a tag must start with a frame
  const scanLimit = audioStart > 0 ? Math.min(head.length - 4, audioStart + 4096) : 0;
  for (let at = audioStart; at <= scanLimit; at++) {
    const header = frameHeaderAt(head, at);
    if (!header) continue;
    const next = at + header.frameBytes;
    // the next frame must be a frame too (when we can see it), at the same sample rate
    if (next + 4 <= head.length) {
      const following = frameHeaderAt(head, next);
      if (!following || following.sampleRate !== header.sampleRate) continue;
    }
    const frames = vbrFrameCount(head, at, header);
    if (frames !== null) return { durationS: (frames * header.samplesPerFrame) / header.sampleRate };
    return { durationS: ((totalBytes - at) * 8) / (header.bitrateKbps * 1000) };
  }
  return null;
}

function ascii(bytes: Uint8Array, at: number, length: number): string {
  if (at + length > bytes.length) return '';
  return String.fromCharCode(...bytes.subarray(at, at + length));
}

function readUInt32BE(bytes: Uint8Array, at: number): number {
  return (
    (((bytes[at] as number) << 24) |
      ((bytes[at + 1] as number) << 16) |
      ((bytes[at + 2] as number) << 8) |
      (bytes[at + 3] as number)) >>>
    0
  );
}
