import { describe, expect, it } from 'vitest';
import { AUDIO_HEAD_BYTES } from '../src/audio/sniff.ts';
import { inspectAudio, unknownAudioManifest } from '../src/standin/audio.ts';
import { generateDemoCalls } from '../src/standin/demo-data.ts';
import { type CallManifest, callManifestSchema } from '../src/standin/manifest.ts';
import { encodeCallWav, MANIFEST_CHUNK_ID } from '../src/standin/wav.ts';

/** What the stand-in sees of an upload: its first bytes and its size. */
const inspect = (file: Buffer) => inspectAudio(file.subarray(0, AUDIO_HEAD_BYTES), file.length);

/**
 * A constant-bitrate MPEG-1 Layer III stream: 128 kbps, 44.1 kHz, 417-byte frames of silence.
 * `xing` makes the first frame an Info frame counting the others; `id3` puts an ID3v2 tag first.
 */
function mp3(frames: number, options: { xing?: boolean; id3?: boolean } = {}): Buffer {
  const frameBytes = 417;
  const audio = Buffer.alloc(frameBytes * frames);
  for (let i = 0; i < frames; i++) audio.set([0xff, 0xfb, 0x90, 0x00], i * frameBytes);
  if (options.xing) {
    // after the 4-byte header and 32 bytes of side information (MPEG-1 stereo)
    audio.write('Info', 36, 'ascii');
    audio.writeUInt32BE(1, 40); // flags: frame count present
    audio.writeUInt32BE(frames - 1, 44);
  }
  if (!options.id3) return audio;
  const tagBody = Buffer.alloc(1000);
  const tag = Buffer.from([0x49, 0x44, 0x33, 4, 0, 0, 0, 0, 1000 >> 7, 1000 & 0x7f]);
  return Buffer.concat([tag, tagBody, audio]);
}

const demoCalls = [
  ...generateDemoCalls({ calls: 40, speakers: 8, fraudsters: 2, campaigns: 2, seed: 3, now: new Date() }),
];

describe('call manifest in WAV files', () => {
  it('reads back every demo call manifest unchanged, from the first bytes, with the WAV duration', () => {
    for (const { manifest } of demoCalls) {
      const file = encodeCallWav(manifest);
      const info = inspect(file);
      expect(info).toEqual({ format: 'wav', durationS: 0.125, manifest });
      // the manifest chunk comes before the audio, so a peek at the head always finds it
      expect(file.indexOf(MANIFEST_CHUNK_ID)).toBeLessThan(file.indexOf('data'));
      expect(callManifestSchema.parse(manifest)).toEqual(manifest);
    }
  });

  it('is a plain WAV without a manifest; duration from the byte rate and the data size', () => {
    const file = encodeCallWav(null, { audioSeconds: 2.5 });
    expect(inspect(file)).toEqual({ format: 'wav', durationS: 2.5, manifest: null });
    // a streaming writer's "unknown" data size: the file size stands in
    const streamed = Buffer.from(file);
    streamed.writeUInt32LE(0xffffffff, streamed.indexOf('data') + 4);
    expect(inspect(streamed)?.durationS).toBe(2.5);
  });

  it('treats a broken manifest chunk as no manifest (the audio is still a WAV)', () => {
    const manifest = (demoCalls[0] as { manifest: CallManifest }).manifest;
    const file = encodeCallWav(manifest);
    const at = file.indexOf(MANIFEST_CHUNK_ID) + 8;
    file.write('!!', at, 'ascii');
    expect(inspect(file)).toMatchObject({ format: 'wav', manifest: null });
  });
});

describe('MP3 duration from the first bytes', () => {
  it('estimates constant-bitrate files from the size at the first frame bitrate', () => {
    const info = inspect(mp3(400));
    expect(info?.format).toBe('mp3');
    expect(info?.durationS).toBeCloseTo((400 * 1152) / 44100, 1);
  });

  it('skips an ID3v2 tag and uses a Xing/Info frame count when there is one', () => {
    const tagged = inspect(mp3(300, { id3: true }));
    expect(tagged?.durationS).toBeCloseTo((300 * 1152) / 44100, 1);
    const counted = inspect(mp3(300, { id3: true, xing: true }));
    expect(counted?.durationS).toBe((299 * 1152) / 44100);
  });

  it('reads MPEG-2 frames (16 kHz mono, 32 kbps, 576 samples per frame)', () => {
    const frames = 250;
    const audio = Buffer.alloc(144 * frames);
    for (let i = 0; i < frames; i++) audio.set([0xff, 0xf3, 0x48, 0xc0], i * 144);
    expect(inspect(audio)).toEqual({ format: 'mp3', durationS: 9, manifest: null });
  });

  it('refuses what is neither WAV nor MP3', () => {
    expect(inspect(Buffer.from('{"this": "is json"}'))).toBeNull();
    expect(inspect(Buffer.alloc(0))).toBeNull();
    // a frame sync followed by garbage instead of a second frame is not MP3
    const fake = Buffer.alloc(5000, 0x41);
    fake.set([0xff, 0xfb, 0x90, 0x00], 0);
    expect(inspect(fake)).toBeNull();
    const riffButNotWave = Buffer.concat([Buffer.from('RIFF\0\0\0\0AVI '), Buffer.alloc(100)]);
    expect(inspect(riffButNotWave)).toBeNull();
  });
});

describe('unknown audio', () => {
  it('is one speaker named after the hash, speaking in short stretches over the whole duration', () => {
    const sha256 = 'ab'.repeat(32);
    const manifest = unknownAudioManifest({ sha256, durationS: 300 });
    expect(manifest.speakers).toEqual([{ label: 'SPEAKER_00', speakerId: `audio-${'ab'.repeat(8)}`, role: 'caller' }]);
    expect(unknownAudioManifest({ sha256, durationS: 300 })).toEqual(manifest);
    const lengths = manifest.utterances.map((u) => u.end - u.start);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(9);
    expect(lengths.filter((l) => l >= 2).length).toBeGreaterThan(lengths.length / 2);
    expect(lengths.some((l) => l < 2)).toBe(true);
    manifest.utterances.forEach((u, i) => {
      expect(u.speakerLabel).toBe('SPEAKER_00');
      expect(u.spoofFamily).toBeNull();
      if (i > 0) expect(u.start).toBeGreaterThan((manifest.utterances[i - 1] as { end: number }).end);
    });
    expect((manifest.utterances.at(-1) as { end: number }).end).toBeGreaterThan(290);
    // even a very short file has one utterance
    const short = unknownAudioManifest({ sha256: 'cd'.repeat(32), durationS: 0.4 }).utterances;
    expect(short).toHaveLength(1);
    expect(short[0]).toMatchObject({ id: '0', end: 0.4, speakerLabel: 'SPEAKER_00', spoofFamily: null });
  });
});
