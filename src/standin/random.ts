import { createHash } from 'node:crypto';

/**
 * Seeded randomness for the stand-in and demo-data: everything they make must be the same for
 * the same seed, so tests, demos and benchmarks can be reproduced exactly.
 */

/**
 * A small, fast seeded generator (mulberry32): numbers in [0, 1).
 * @example const random = seededRandom(42); const x = random();
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A 32-bit seed from any text (FNV-1a): stable across runs and platforms.
 * @example const random = seededRandom(seedFrom('call-000001', 'utterance', 3));
 */
export function seedFrom(...parts: (string | number)[]): number {
  let hash = 0x811c9dc5;
  const text = parts.join('\u0000');
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A uniform number in [min, max).
 * @example const seconds = between(random, 2, 9);
 */
export function between(random: () => number, min: number, max: number): number {
  return min + random() * (max - min);
}

/**
 * A uniform integer in [min, max] (both included).
 * @example const count = integerBetween(random, 3, 8);
 */
export function integerBetween(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/**
 * One element chosen uniformly; the array must not be empty.
 * @example const channel = pickOne(random, ['phone', 'app', 'web']);
 */
export function pickOne<T>(random: () => number, items: readonly T[]): T {
  if (items.length === 0) throw new Error('pickOne needs at least one item');
  return items[Math.floor(random() * items.length)] as T;
}

/**
 * The sha256 of a text, hex.
 * @example const key = sha256Hex('http://example.com/a.wav');
 */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
