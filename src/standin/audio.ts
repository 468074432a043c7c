import { sniffAudio } from '../audio/sniff.ts';
import { type CallManifest, type ManifestUtterance, speakerLabel } from './manifest.ts';
import { between, seededRandom, seedFrom } from './random.ts';
import { manifestFromChunks } from './wav.ts';

export type AudioInfo = {
  format: 'wav' | 'mp3';
  /** Seconds of audio according to the file itself (a manifest may declare another length). */
  durationS: number;
  manifest: CallManifest | null;
};

/**
 * What the stand-in sees of an upload: WAV or MP3 (`sniffAudio`, as intake recognises it) and, in a
 * demo call, the manifest that says who speaks when; null for anything else.
 * @example const info = inspectAudio(head, size); if (!info) reject('not WAV or MP3');
 */
export function inspectAudio(head: Uint8Array, totalBytes: number): AudioInfo | null {
  const audio = sniffAudio(head, totalBytes);
  if (!audio) return null;
  return { format: audio.format, durationS: audio.durationS, manifest: manifestFromChunks(audio.chunks) };
}

/**
 * The manifest of audio the stand-in knows nothing about: one new speaker, named after the
 * audio's hash (`audio-<first 16 hex>`), speaking in 2–9 s stretches (a few shorter ones)
 * laid out over the duration. The same bytes always give the same speaker and layout.
 * @example const manifest = unknownAudioManifest({ sha256, durationS: 42.5 });
 */
export function unknownAudioManifest(input: { sha256: string; durationS: number }): CallManifest {
  const label = speakerLabel(0);
  return {
    version: 1,
    callId: `audio-${input.sha256.slice(0, 16)}`,
    accountRef: null,
    channel: null,
    callAt: null,
    durationS: input.durationS,
    speakers: [{ label, speakerId: `audio-${input.sha256.slice(0, 16)}`, role: 'caller' }],
    utterances: layOutUtterances({
      random: seededRandom(seedFrom(input.sha256, 'layout')),
      durationS: input.durationS,
      speakerLabels: [label],
      spoofFamilyOf: () => null,
    }),
  };
}

/**
 * Utterances over [0, durationS]: mostly 2–9 s, about one in seven shorter than 2 s, separated by
 * short pauses, speakers taking turns (switching three times in four when there are several).
 * @example const utterances = layOutUtterances({ random, durationS: 60, speakerLabels: ['SPEAKER_00'], spoofFamilyOf: () => null });
 */
export function layOutUtterances(input: {
  random: () => number;
  durationS: number;
  speakerLabels: string[];
  spoofFamilyOf: (speakerLabel: string) => string | null;
}): ManifestUtterance[] {
  const { random, durationS, speakerLabels } = input;
  const round = (s: number) => Math.round(s * 1000) / 1000;
  const utterances: ManifestUtterance[] = [];
  let cursor = Math.min(between(random, 0.1, 1.2), durationS / 4);
  let speaker = 0;
  while (cursor < durationS - 0.3) {
    const length = random() < 0.15 ? between(random, 0.4, 1.9) : between(random, 2, 9);
    const end = Math.min(durationS, cursor + length);
    const label = speakerLabels[speaker] as string;
    utterances.push({
      id: String(utterances.length),
      start: round(cursor),
      end: round(end),
      speakerLabel: label,
      spoofFamily: input.spoofFamilyOf(label),
    });
    cursor = end + between(random, 0.15, 1.2);
    if (speakerLabels.length > 1 && random() < 0.75) speaker = (speaker + 1) % speakerLabels.length;
  }
  if (utterances.length === 0) {
    const label = speakerLabels[0] as string;
    utterances.push({
      id: '0',
      start: 0,
      end: round(durationS),
      speakerLabel: label,
      spoofFamily: input.spoofFamilyOf(label),
    });
  }
  return utterances;
}
