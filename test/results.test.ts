import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rowsForDocument } from '../src/recordings/store.ts';
import { parseResultsDocument, ResultsDocumentError } from '../src/upstream/results.ts';
import { must } from './support/must.ts';
import { syntheticDocument } from './support/synthetic-documents.ts';

const shared = new URL('../../shared/upstream/', import.meta.url);
const realDocument = JSON.parse(fs.readFileSync(new URL('real-results-behavioral-1speaker.json', shared), 'utf8'));
const exampleResponse = JSON.parse(fs.readFileSync(new URL('example-response.json', shared), 'utf8'));

function rejection(input: unknown, api: 'auto' | 'deepfake' | 'behavioral' = 'auto'): string {
  try {
    rowsForDocument(parseResultsDocument(input, { api }));
  } catch (error) {
    expect(error).toBeInstanceOf(ResultsDocumentError);
    return (error as Error).message;
  }
  throw new Error('the document was accepted');
}

/** A deep copy of a stand-in document with one item changed. */
function withItem(change: (items: Record<string, unknown>[]) => void) {
  const doc = structuredClone(syntheticDocument(7)) as unknown as { results: Record<string, unknown>[] };
  change(doc.results);
  return doc;
}
/** The first item of a task (for diarization: the first carrying a speaker vector). */
const first = (items: Record<string, unknown>[], task: string) =>
  items.find((i) => i.task === task && (task !== 'diarization' || i.embedding)) as Record<string, unknown>;
const sample = syntheticDocument(7).results;
const firstFeatures = String(first(sample as never, 'features').id);
const firstVoice = String(first(sample as never, 'diarization').id);
const firstVerdict = String(first(sample as never, 'deepfake').id);

describe('parseResultsDocument on the real Behavioral API document', () => {
  const parsed = parseResultsDocument(realDocument, { api: 'auto' });

  it('detects the Behavioral API and groups 107 items into 9 utterances', () => {
    expect(parsed.api).toBe('behavioral');
    expect(realDocument.results).toHaveLength(107);
    expect(parsed.utterances).toHaveLength(9);
    expect(parsed.utterances.map((u) => u.upstreamId)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
  });

  it('reads times, speaker, transcript and language; one speaker vector, no deepfake vectors', () => {
    const first = parsed.utterances[0];
    expect(first).toMatchObject({ startS: 2.268, endS: 24.028, speakerLabel: 'SPEAKER_00', language: 'en' });
    expect(first?.transcript).toMatch(/^ I despise individuals/);
    expect(first?.speakerEmbedding).toHaveLength(192);
    expect(parsed.utterances.filter((u) => u.speakerEmbedding)).toHaveLength(1);
    // Behavioral `features` live in another space: kept in the raw document, never stored
    expect(parsed.utterances.every((u) => u.deepfakeEmbedding === null)).toBe(true);
    expect(first?.tasks).toContain('emotion');
  });

  it('builds one voiceprint from the speaker vector with its original norm', () => {
    const rows = rowsForDocument(parsed);
    expect(rows.voiceprints).toHaveLength(1);
    const vp = rows.voiceprints[0];
    expect(vp?.utteranceCount).toBe(9);
    expect(vp?.speaker.norm).toBeGreaterThan(150);
    expect(vp?.speaker.norm).toBeLessThan(260);
    // the document's own text goes to the database, which normalises it (store.int tests the result)
    const items = realDocument.results as { task: string; embedding?: string }[];
    const wire = items.find((i) => i.task === 'diarization' && i.embedding)?.embedding;
    expect(vp?.speaker.text).toBe(wire);
    const values = JSON.parse(must(vp).speaker.text) as number[];
    expect(Math.hypot(...values)).toBeCloseTo(must(vp).speaker.norm, 9);
  });
});

describe('parseResultsDocument rejects what it cannot store, naming utterance and task', () => {
  it("rejects the docs' example with its trimmed vectors", () => {
    expect(rejection(exampleResponse)).toBe(
      'utterance "0", task diarization: embedding is not a JSON array of numbers: it is trimmed with "..." (a shortened example, not a full vector)',
    );
  });

  it('rejects a trimmed deepfake vector too', () => {
    const doc = withItem((items) => {
      first(items, 'features').embedding = '[0.24414099752902985, ..., -0.6791989803314209]';
    });
    expect(rejection(doc)).toMatch(new RegExp(`^utterance "${firstFeatures}", task features: .*trimmed`));
  });

  it('rejects a wrong length', () => {
    const doc = withItem((items) => {
      first(items, 'diarization').embedding = JSON.stringify(new Array(191).fill(1));
    });
    expect(rejection(doc)).toBe(`utterance "${firstVoice}", task diarization: embedding has 191 values, expected 192`);
  });

  it('rejects NaN, strings and non-arrays', () => {
    const nan = withItem((items) => {
      const v = new Array(768).fill('1').join(',');
      first(items, 'features').embedding = `[NaN,${v.slice(2)}]`;
    });
    expect(rejection(nan)).toMatch(/task features: .*contains NaN/);
    const text = withItem((items) => {
      first(items, 'features').embedding = JSON.stringify(['a', ...new Array(767).fill(0)]);
    });
    expect(rejection(text)).toBe(
      `utterance "${firstFeatures}", task features: embedding value 0 is "a", not a finite number`,
    );
    const object = withItem((items) => {
      first(items, 'diarization').embedding = '{"a": 1}';
    });
    expect(rejection(object)).toBe(
      `utterance "${firstVoice}", task diarization: embedding is not an array (found object)`,
    );
  });

  it('rejects an all-zero vector, which has no direction', () => {
    const doc = withItem((items) => {
      first(items, 'diarization').embedding = JSON.stringify(new Array(192).fill(0));
    });
    expect(rejection(doc)).toMatch(new RegExp(`utterance "${firstVoice}", task diarization: embedding is all zeros`));
    // zero in single precision, which is what the database holds
    const underflow = withItem((items) => {
      first(items, 'diarization').embedding = JSON.stringify(new Array(192).fill(1e-50));
    });
    expect(rejection(underflow)).toMatch(/task diarization: embedding is all zeros/);
  });

  it('rejects a value beyond single precision, which pgvector cannot hold', () => {
    const doc = withItem((items) => {
      first(items, 'features').embedding = `[${['1e39', ...new Array(767).fill('0.5')].join(', ')}]`;
    });
    expect(rejection(doc)).toBe(
      `utterance "${firstFeatures}", task features: embedding value 0 is 1e+39, beyond single precision (±3.4e38)`,
    );
  });

  it('rejects posteriors that are not probabilities, and unfinished or shapeless documents', () => {
    const doc = withItem((items) => {
      const deepfake = first(items, 'deepfake');
      const predictions = deepfake.prediction as { label: string; posterior: string }[];
      const spoofed = predictions.find((p) => p.label === 'spoofed') as { posterior: string };
      spoofed.posterior = 'high';
    });
    expect(rejection(doc)).toMatch(
      new RegExp(`utterance "${firstVerdict}", task deepfake: posterior of "spoofed" is "high"`),
    );
    expect(rejection({ pid: 1, cid: 1, code: 1, message: 'Processing', results: [] })).toMatch(
      /not a completed result \(code 1/,
    );
    expect(rejection({ hello: 'world' })).toMatch(/not a results document/);
    expect(rejection([])).toMatch(/no results items/);
    expect(rejection([{ id: '0' }])).toMatch(/results\[0\] is not a valid item: task/);
  });
});

describe('parseResultsDocument accepts every shape seen in the wild', () => {
  it('takes a bare results array, without pid', () => {
    const doc = syntheticDocument(3);
    const parsed = parseResultsDocument(doc.results, { api: 'auto' });
    expect(parsed).toMatchObject({ api: 'deepfake', pid: null, cid: null });
    expect(parsed.utterances).toHaveLength(new Set(doc.results.map((i) => i.id)).size);
  });

  it('treats missing keys as null and uses st/et when the wire times are absent', () => {
    const parsed = parseResultsDocument(
      [
        { id: '0', task: 'asr', st: 1.5, et: 3.25, finalLabel: 'hello' },
        { id: '0', task: 'diarization', st: 1.5, et: 3.25, prediction: [{ label: 'SPEAKER_01' }] },
        { id: '1', task: 'asr' },
      ],
      { api: 'auto' },
    );
    expect(parsed.utterances[0]).toMatchObject({
      startS: 1.5,
      endS: 3.25,
      transcript: 'hello',
      speakerLabel: 'SPEAKER_01',
    });
    expect(parsed.utterances[0]?.speakerEmbedding).toBeNull();
    expect(parsed.utterances[1]).toMatchObject({ startS: null, endS: null, speakerLabel: null, pSpoofed: null });
  });

  it('keeps unknown tasks without failing and reads string posteriors', () => {
    const doc = withItem((items) => {
      items.push({
        id: firstFeatures,
        task: 'generator_detection',
        prediction: [{ label: 'tts-x', posterior: '0.7' }],
        embedding: 'whatever',
      });
    });
    const parsed = parseResultsDocument(doc, { api: 'auto' });
    expect(parsed.api).toBe('deepfake');
    const utterance = parsed.utterances.find((u) => u.upstreamId === firstFeatures);
    expect(utterance?.tasks).toContain('generator_detection');
    expect(utterance?.deepfakeEmbedding).toHaveLength(768);
    expect(typeof utterance?.pSpoofed).toBe('number');
  });

  it('honours an explicit api over detection', () => {
    const parsed = parseResultsDocument(realDocument, { api: 'deepfake' });
    expect(parsed.api).toBe('deepfake');
    // as a Deepfake document, its 768-d `features` are validated and kept
    expect(parsed.utterances.filter((u) => u.deepfakeEmbedding)).toHaveLength(8);
  });
});
