import { readMp3Head } from './mp3.ts';
import { readWavHead } from './wav.ts';

/**
 * Recognising audio by its content, for intake and for the stand-in alike: WAV or MP3, whatever
 * the file is called, from its first bytes and its size.
 */

/** How many leading bytes of a file are kept to recognise its audio (and, in a demo call, its manifest). */
export const AUDIO_HEAD_BYTES = 64 * 1024;

export type SniffedAudio = {
  format: 'wav' | 'mp3';
  /** Seconds of audio according to the file itself. */
  durationS: number;
  /** RIFF chunks other than fmt and data found in the head, by id (WAV only; empty for MP3). */
  chunks: ReadonlyMap<string, Buffer>;
};

/**
 * Recognises WAV or MP3 audio from a file's first bytes (up to AUDIO_HEAD_BYTES) and its total
 * size; null for anything else (the caller decides what to answer).
 * @example const audio = sniffAudio(head, size); if (!audio) reject('not WAV or MP3');
 */
export function sniffAudio(head: Uint8Array, totalBytes: number): SniffedAudio | null {
  const wav = readWavHead(head, totalBytes);
  if (wav) return { format: 'wav', durationS: wav.durationS, chunks: wav.chunks };
  const mp3 = readMp3Head(head, totalBytes);
  if (mp3) return { format: 'mp3', durationS: mp3.durationS, chunks: new Map() };
  return null;
}
