import { z } from 'zod';
import { DEEPFAKE_DIMENSIONS, SPEAKER_DIMENSIONS, type UpstreamApi } from '../db/schema.ts';

/**
 * The Behavioral Signals results document: `{pid, cid, code, message, results: [item]}` on the wire,
 * or a bare `results` array as saved documents sometimes are. One item per (utterance, task).
 * Only what voxtrace stores is validated strictly; everything else stays in the raw document.
 */
const numberish = z.union([z.number(), z.string()]);

const predictionSchema = z.looseObject({
  label: z.string().nullish(),
  posterior: z.union([z.string(), z.number()]).nullish(),
});

const itemSchema = z.looseObject({
  id: z.union([z.string(), z.number()]).transform(String),
  task: z.string(),
  startTime: numberish.nullish(),
  endTime: numberish.nullish(),
  // added by the Python SDK when it saves a document; never on the wire
  st: z.number().nullish(),
  et: z.number().nullish(),
  prediction: z.array(predictionSchema).nullish(),
  finalLabel: z.string().nullish(),
  level: z.string().nullish(),
  embedding: z.unknown().optional(),
});
export type ResultItem = z.infer<typeof itemSchema>;

const envelopeSchema = z.looseObject({
  pid: z.number().int().nullish(),
  cid: z.number().int().nullish(),
  code: z.number().int().nullish(),
  message: z.string().nullish(),
  results: z.array(z.unknown()),
});

/** Tasks only the Behavioral API produces: their presence identifies a Behavioral document. */
export const BEHAVIORAL_ONLY_TASKS = new Set([
  'gender',
  'age',
  'emotion',
  'positivity',
  'strength',
  'speaking_rate',
  'hesitation',
  'engagement',
]);

export type ParsedUtterance = {
  upstreamId: string;
  startS: number | null;
  endS: number | null;
  speakerLabel: string | null;
  transcript: string | null;
  language: string | null;
  deepfakeLabel: string | null;
  pSpoofed: number | null;
  /** Raw (unnormalised) `features` vector of the Deepfake API; null when absent. */
  deepfakeEmbedding: number[] | null;
  /** The same vector as the upstream wrote it (its own string when it sent one): pgvector accepts it as is. */
  deepfakeEmbeddingText: string | null;
  /** Raw 192-d speaker vector when this utterance's diarization item carries one. */
  speakerEmbedding: number[] | null;
  speakerEmbeddingText: string | null;
  tasks: string[];
};

export type ParsedDocument = {
  api: UpstreamApi;
  pid: number | null;
  cid: number | null;
  utterances: ParsedUtterance[];
};

/** A document that cannot be stored; `path` says where (utterance id and task) when known. */
export class ResultsDocumentError extends Error {
  readonly utteranceId: string | undefined;
  readonly task: string | undefined;
  constructor(message: string, where: { utteranceId?: string; task?: string } = {}) {
    const prefix =
      where.utteranceId !== undefined
        ? `utterance ${JSON.stringify(where.utteranceId)}${where.task ? `, task ${where.task}` : ''}: `
        : '';
    super(`${prefix}${message}`);
    this.name = 'ResultsDocumentError';
    this.utteranceId = where.utteranceId;
    this.task = where.task;
  }
}

/**
 * Parses a results document (already JSON-decoded) into utterances, strictly for every vector
 * voxtrace stores. `api: 'auto'` picks behavioral when a behavioral-only task appears.
 * Throws ResultsDocumentError naming the utterance, the task and what was wrong.
 * @example const doc = parseResultsDocument(JSON.parse(text), { api: 'auto' });
 */
export function parseResultsDocument(input: unknown, options: { api: UpstreamApi | 'auto' }): ParsedDocument {
  let rawItems: unknown[];
  let pid: number | null = null;
  let cid: number | null = null;
  if (Array.isArray(input)) {
    rawItems = input;
  } else {
    const envelope = envelopeSchema.safeParse(input);
    if (!envelope.success) {
      throw new ResultsDocumentError(
        `not a results document: expected an object with a "results" array, or a bare results array (${formatIssues(envelope.error)})`,
      );
    }
    const { code, message } = envelope.data;
    if (code !== undefined && code !== null && code !== 2) {
      throw new ResultsDocumentError(
        `the document is not a completed result (code ${code}${message ? `: ${message}` : ''}); only code 2 carries results`,
      );
    }
    rawItems = envelope.data.results;
    pid = envelope.data.pid ?? null;
    cid = envelope.data.cid ?? null;
  }
  if (rawItems.length === 0) throw new ResultsDocumentError('the document has no results items');

  const items: ResultItem[] = rawItems.map((raw, index) => {
    const parsed = itemSchema.safeParse(raw);
    if (!parsed.success) {
      const id = (raw as { id?: unknown })?.id;
      const task = (raw as { task?: unknown })?.task;
      throw new ResultsDocumentError(`results[${index}] is not a valid item: ${formatIssues(parsed.error)}`, {
        utteranceId: typeof id === 'string' || typeof id === 'number' ? String(id) : undefined,
        task: typeof task === 'string' ? task : undefined,
      });
    }
    return parsed.data;
  });

  const api = options.api === 'auto' ? detectApi(items) : options.api;
  const groups = new Map<string, ResultItem[]>();
  for (const item of items) {
    const group = groups.get(item.id);
    if (group) group.push(item);
    else groups.set(item.id, [item]);
  }
  const utterances = [...groups.entries()].map(([id, group]) => parseUtterance(id, group, api));
  return { api, pid, cid, utterances };
}

export function detectApi(items: Pick<ResultItem, 'task'>[]): UpstreamApi {
  return items.some((item) => BEHAVIORAL_ONLY_TASKS.has(item.task)) ? 'behavioral' : 'deepfake';
}

function parseUtterance(id: string, items: ResultItem[], api: UpstreamApi): ParsedUtterance {
  const byTask = new Map<string, ResultItem>();
  for (const item of items) {
    if (byTask.has(item.task) && STORED_TASKS.has(item.task)) {
      throw new ResultsDocumentError('the task appears twice in one utterance', { utteranceId: id, task: item.task });
    }
    if (!byTask.has(item.task)) byTask.set(item.task, item);
  }
  const first = items[0] as ResultItem;
  const diarization = byTask.get('diarization');
  const deepfake = byTask.get('deepfake');
  const features = api === 'deepfake' ? byTask.get('features') : undefined;
  const speakerEmbedding = diarization
    ? parseVector(diarization.embedding, SPEAKER_DIMENSIONS, id, 'diarization')
    : null;
  const deepfakeEmbedding = features ? parseVector(features.embedding, DEEPFAKE_DIMENSIONS, id, 'features') : null;
  return {
    upstreamId: id,
    startS: parseTime(first.startTime, first.st, id, 'startTime'),
    endS: parseTime(first.endTime, first.et, id, 'endTime'),
    speakerLabel: labelOf(diarization),
    transcript: labelOf(byTask.get('asr')),
    language: labelOf(byTask.get('language')),
    deepfakeLabel: labelOf(deepfake),
    pSpoofed: deepfake ? spoofedPosterior(deepfake, id) : null,
    speakerEmbedding,
    speakerEmbeddingText: speakerEmbedding && vectorText(diarization?.embedding, speakerEmbedding),
    deepfakeEmbedding,
    deepfakeEmbeddingText: deepfakeEmbedding && vectorText(features?.embedding, deepfakeEmbedding),
    tasks: [...byTask.keys()],
  };
}

const STORED_TASKS = new Set(['asr', 'diarization', 'language', 'deepfake', 'features']);

function labelOf(item: ResultItem | undefined): string | null {
  if (!item) return null;
  return item.finalLabel ?? item.prediction?.[0]?.label ?? null;
}

function parseTime(
  wire: string | number | null | undefined,
  sdk: number | null | undefined,
  id: string,
  field: string,
) {
  const value = wire ?? sdk;
  if (value === null || value === undefined || value === '') return null;
  const seconds = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new ResultsDocumentError(`${field} ${JSON.stringify(value)} is not a time in seconds`, { utteranceId: id });
  }
  return seconds;
}

function spoofedPosterior(item: ResultItem, id: string): number | null {
  const spoofed = item.prediction?.find((p) => p.label === 'spoofed');
  if (!spoofed || spoofed.posterior === null || spoofed.posterior === undefined) return null;
  const p = typeof spoofed.posterior === 'number' ? spoofed.posterior : Number(spoofed.posterior);
  if (spoofed.posterior === '' || !Number.isFinite(p) || p < 0 || p > 1) {
    throw new ResultsDocumentError(
      `posterior of "spoofed" is ${JSON.stringify(spoofed.posterior)}, not a probability between 0 and 1`,
      { utteranceId: id, task: 'deepfake' },
    );
  }
  return p;
}

/** The largest finite float32: pgvector stores single precision and refuses anything beyond. */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * A parsed vector as pgvector text: the upstream's own string when it sent one (already checked to
 * be a JSON array of finite numbers, which pgvector's input accepts as is), else the values written
 * out. Saves formatting ~10,000 numbers per recording.
 */
function vectorText(wire: unknown, values: number[]): string {
  return typeof wire === 'string' ? wire : `[${values.join(',')}]`;
}

/**
 * Parses one serialized vector strictly: a JSON array (or a string holding one) of exactly
 * `dimensions` finite numbers within float32 range. `null`/absent means the upstream sent no
 * vector for this item.
 */
export function parseVector(value: unknown, dimensions: number, utteranceId: string, task: string): number[] | null {
  if (value === null || value === undefined) return null;
  const where = { utteranceId, task };
  let array: unknown = value;
  if (typeof value === 'string') {
    try {
      array = JSON.parse(value);
    } catch {
      throw new ResultsDocumentError(
        `embedding is not a JSON array of numbers: ${describeBadVectorText(value)}`,
        where,
      );
    }
  }
  if (!Array.isArray(array)) {
    throw new ResultsDocumentError(`embedding is not an array (found ${typeName(array)})`, where);
  }
  if (array.length !== dimensions) {
    throw new ResultsDocumentError(`embedding has ${array.length} values, expected ${dimensions}`, where);
  }
  for (let i = 0; i < array.length; i++) {
    const v = array[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ResultsDocumentError(`embedding value ${i} is ${JSON.stringify(v)}, not a finite number`, where);
    }
    if (Math.abs(v) > FLOAT32_MAX) {
      throw new ResultsDocumentError(`embedding value ${i} is ${v}, beyond single precision (±3.4e38)`, where);
    }
  }
  return array as number[];
}

function describeBadVectorText(text: string): string {
  if (text.includes('...') || text.includes('…'))
    return 'it is trimmed with "..." (a shortened example, not a full vector)';
  const token = /\b(NaN|-?Infinity)\b/.exec(text);
  if (token) return `it contains ${token[1]}`;
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  return `cannot parse ${JSON.stringify(shown)}`;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  return typeof value;
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
