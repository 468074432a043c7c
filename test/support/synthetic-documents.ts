import type { UpstreamApi } from '../../src/db/schema.ts';
import { generateDemoCalls } from '../../src/standin/demo-data.ts';
import { documentForCall } from '../../src/standin/documents.ts';
import type { CallManifest } from '../../src/standin/manifest.ts';
import { createVoiceModel } from '../../src/standin/voices.ts';

/**
 * Realistic results documents from the shared generator: `demo-data` calls, answered the way the
 * stand-in answers them. Deterministic for a seed.
 */
export type SyntheticCall = { manifest: CallManifest; document: ReturnType<typeof documentForCall> };

const FIXED_NOW = new Date('2026-11-01T00:00:00Z');

/**
 * @example const [call] = syntheticCalls({ count: 1, seed: 7 }); call.document.results.length;
 */
export function syntheticCalls(options: {
  count: number;
  seed: number;
  firstPid?: number;
  api?: UpstreamApi;
}): SyntheticCall[] {
  const model = createVoiceModel(options.seed);
  const speakers = Math.max(4, Math.ceil(options.count / 4));
  const calls = generateDemoCalls({
    calls: options.count,
    speakers,
    fraudsters: Math.min(3, speakers),
    campaigns: 2,
    seed: options.seed,
    now: FIXED_NOW,
  });
  return [...calls].map(({ manifest }, i) => ({
    manifest,
    document: documentForCall(manifest, {
      pid: (options.firstPid ?? options.seed * 100_000) + i,
      model,
      api: options.api,
    }),
  }));
}

/** One call's document, with its pid. */
export function syntheticDocument(seed: number, pid = seed) {
  return (syntheticCalls({ count: 1, seed, firstPid: pid })[0] as SyntheticCall).document;
}

type Item = { id: string; task: string; embedding: string | null };

/** What importing a document should store: distinct utterances, speakers with a vector, deepfake vectors. */
export function expectedCounts(document: { results: Item[] }) {
  const results = document.results;
  return {
    utterances: new Set(results.map((i) => i.id)).size,
    voiceprints: results.filter((i) => i.task === 'diarization' && i.embedding).length,
    deepfakeEmbeddings: results.filter((i) => i.task === 'features' && i.embedding).length,
  };
}
