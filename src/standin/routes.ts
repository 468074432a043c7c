import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { HttpBindings } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { UpstreamApi } from '../db/schema.ts';
import type { Logger } from '../log.ts';
import { type AudioInfo, inspectAudio, unknownAudioManifest } from './audio.ts';
import { dropAfterPart, type Waits } from './delivery.ts';
import { type DocumentSpoiler, resultsDocumentText } from './documents.ts';
import type { FaultInjector, FaultRule, RequestKind } from './faults.ts';
import type { CallManifest } from './manifest.ts';
import { type ProcessOutcome, type ProcessStore, processItem, processStatus } from './processes.ts';
import { sha256Hex } from './random.ts';
import { type DigestedAudio, digestStream, readMultipartUpload, UploadError } from './upload.ts';
import type { VoiceModel } from './voices.ts';
import { apiError, FlagError, parseCid, parseFlag, tokenMatches } from './wire.ts';

/**
 * The upstream protocol: the same routes under /v5/detection/clients/{cid} (Deepfake Detection
 * API) and /v5/clients/{cid} (Behavioral API), plus GET /v5/auth. Every request is checked in
 * the same order: credentials, input, the process's existence (and readiness for results);
 * only a request that would succeed meets the fault plan, then the work is done and delivered.
 */
export type StandinEnv = { Bindings: HttpBindings };
type StandinContext = Context<StandinEnv>;

export type StandinState = {
  token: string;
  seed: number;
  store: ProcessStore;
  model: VoiceModel;
  log: Logger;
  faults: FaultInjector;
  waits: Waits;
  requests: Record<RequestKind, number>;
  /** Processes created per process name. */
  submissions: Map<string, number>;
};

/** Audio at a URL the stand-in cannot reach is taken to be this long. */
export const URL_AUDIO_DEFAULT_SECONDS = 60;
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

const listQuerySchema = z.object({
  page: z.coerce.number().int('must be a whole number').min(0, 'must be 0 or more').default(0),
  pageSize: z.coerce
    .number()
    .int('must be a whole number')
    .min(1, 'must be 1 to 1000')
    .max(1000, 'must be 1 to 1000')
    .default(1000),
  sort: z.enum(['asc', 'desc'], { error: 'must be asc or desc' }).default('asc'),
  startDate: z.string().refine(isIsoDate, 'must be a date YYYY-MM-DD').optional(),
  endDate: z.string().refine(isIsoDate, 'must be a date YYYY-MM-DD').optional(),
});

const urlSubmissionSchema = z.object({
  url: z
    .string({ error: 'url is required' })
    .refine((v) => /^https?:\/\//i.test(v) && URL.canParse(v), 'url must be an http(s) URL'),
  name: z.string().nullish(),
  embeddings: z.unknown().optional(),
  meta: z.string({ error: 'meta must be a JSON string' }).nullish(),
  enable_generator_detection: z.unknown().optional(),
});

/**
 * The protocol routes over a stand-in's state.
 * @example app.route('/', upstreamRoutes(state));
 */
export function upstreamRoutes(state: StandinState): Hono<StandinEnv> {
  const app = new Hono<StandinEnv>();

  app.get('/v5/auth', async (c) => {
    const denied = guard(state, c, 'auth');
    if (denied) return denied;
    const cid = parseCid(c.req.header('x-auth-client'));
    if (cid === null) return apiError(c, 401, 'X-Auth-Client must carry the numeric client id');
    const rule = state.faults.pick('auth', null);
    return respond(state, c, 'auth', rule, null, () => JSON.stringify({ cid, message: 'Authenticated' }));
  });

  const apis: [string, UpstreamApi][] = [
    ['/v5/detection/clients/:cid', 'deepfake'],
    ['/v5/clients/:cid', 'behavioral'],
  ];
  for (const [prefix, api] of apis) {
    app.post(`${prefix}/processes/audio`, (c) => submitAudio(state, c, api));
    app.post(`${prefix}/processes/s3-presigned-url`, (c) => submitUrl(state, c, api));
    app.get(`${prefix}/processes`, (c) => listProcesses(state, c, api));
    app.get(`${prefix}/processes/:pid`, (c) => showProcess(state, c, api));
    app.get(`${prefix}/processes/:pid/results`, (c) => showResults(state, c, api));
  }
  return app;
}

/** Counts the request and checks X-Auth-Token; a Response when the request must stop here. */
function guard(state: StandinState, c: StandinContext, kind: RequestKind): Response | null {
  state.requests[kind]++;
  if (!tokenMatches(c.req.header('x-auth-token'), state.token)) {
    return apiError(c, 401, 'missing or invalid X-Auth-Token');
  }
  return null;
}

function clientId(c: StandinContext): number | null {
  return parseCid(c.req.param('cid'));
}

const badCid = (c: StandinContext) => apiError(c, 400, `the client id must be a number, got "${c.req.param('cid')}"`);

async function submitAudio(state: StandinState, c: StandinContext, api: UpstreamApi) {
  const denied = guard(state, c, 'submit');
  if (denied) return denied;
  const cid = clientId(c);
  if (cid === null) return badCid(c);
  let upload: Awaited<ReturnType<typeof readMultipartUpload>>;
  try {
    upload = await readMultipartUpload(c.req.raw);
  } catch (error) {
    if (error instanceof UploadError) return apiError(c, 400, error.message);
    throw error;
  }
  const { fields, file } = upload;
  if (!file) return apiError(c, 400, 'the form has no "file" part: send the audio as file=@call.wav');
  const flags = submissionFlags(c, {
    embeddings: fields.get('embeddings'),
    generatorDetection: fields.get('enable_generator_detection'),
    meta: fields.get('meta'),
  });
  if (flags instanceof Response) return flags;
  const audio = inspectAudio(file.head, file.size);
  if (!audio) {
    return apiError(c, 400, `unsupported audio format: "${file.filename}" is neither WAV nor MP3`);
  }
  const name = fields.get('name') || file.filename || 'audio';
  const rule = state.faults.pick('submit', name);
  const refused = refusal(state, c, 'submit', rule, name);
  if (refused) return refused;
  return createProcess(state, c, { kind: 'submit', rule, api, cid, name, flags, audio: describeAudio(file, audio) });
}

async function submitUrl(state: StandinState, c: StandinContext, api: UpstreamApi) {
  const denied = guard(state, c, 'submit-url');
  if (denied) return denied;
  const cid = clientId(c);
  if (cid === null) return badCid(c);
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return apiError(c, 400, 'expected a JSON body {url, name, embeddings, meta?}');
  }
  const parsed = urlSubmissionSchema.safeParse(body);
  if (!parsed.success) return apiError(c, 400, parsed.error.issues.map((i) => i.message).join('; '));
  const flags = submissionFlags(c, {
    embeddings: parsed.data.embeddings,
    generatorDetection: parsed.data.enable_generator_detection,
    meta: parsed.data.meta ?? undefined,
  });
  if (flags instanceof Response) return flags;
  const url = new URL(parsed.data.url);
  const name = parsed.data.name || decodeURIComponent(url.pathname.split('/').pop() ?? '') || 'audio';
  const rule = state.faults.pick('submit-url', name);
  const refused = refusal(state, c, 'submit-url', rule, name);
  if (refused) return refused;
  const source = await audioAtUrl(url);
  return createProcess(state, c, { kind: 'submit-url', rule, api, cid, name, flags, ...source });
}

/** A submission that passed every check becomes a process, counted, and answered as the API does. */
function createProcess(
  state: StandinState,
  c: StandinContext,
  input: {
    kind: 'submit' | 'submit-url';
    rule: FaultRule | null;
    api: UpstreamApi;
    cid: number;
    name: string;
    flags: SubmissionFlags;
    audio: AudioDescription;
    /** why fetching the audio failed (URL submissions): the process ends -1 with it */
    failure?: string | null;
  },
) {
  const { kind, rule, api, name, flags } = input;
  const process = state.store.add({
    ...input.audio,
    api,
    cid: input.cid,
    name,
    meta: flags.meta,
    embeddings: flags.embeddings,
    generatorDetection: api === 'deepfake' && flags.generatorDetection,
    ...outcomeOf(rule, input.failure ?? null),
  });
  countSubmission(state, name);
  state.log.debug({ pid: process.pid, api, name, durationS: process.durationS }, 'process created');
  return respond(state, c, kind, rule, name, () => JSON.stringify(processItem(process, Date.now())));
}

async function listProcesses(state: StandinState, c: StandinContext, api: UpstreamApi) {
  const denied = guard(state, c, 'list');
  if (denied) return denied;
  const cid = clientId(c);
  if (cid === null) return badCid(c);
  const query = listQuerySchema.safeParse(c.req.query());
  if (!query.success) {
    return apiError(c, 400, query.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const rule = state.faults.pick('list', null);
  return respond(state, c, 'list', rule, null, () => {
    const at = Date.now();
    return JSON.stringify(state.store.list(api, cid, query.data).map((p) => processItem(p, at)));
  });
}

async function showProcess(state: StandinState, c: StandinContext, api: UpstreamApi) {
  const denied = guard(state, c, 'status');
  if (denied) return denied;
  const found = findProcess(state, c, api);
  if (found instanceof Response) return found;
  const rule = state.faults.pick('status', found.name);
  return respond(state, c, 'status', rule, found.name, () => JSON.stringify(processItem(found, Date.now())));
}

async function showResults(state: StandinState, c: StandinContext, api: UpstreamApi) {
  const denied = guard(state, c, 'results');
  if (denied) return denied;
  const found = findProcess(state, c, api);
  if (found instanceof Response) return found;
  const { status, statusmsg } = processStatus(found, Date.now());
  if (status !== 2) {
    return apiError(c, 409, `process ${found.pid} has no results: its status is ${status} (${statusmsg})`);
  }
  const rule = state.faults.pick('results', found.name);
  if (rule?.fault === 'non-json') {
    return respond(state, c, 'results', rule, found.name, () => '<html><body><h1>502 Bad Gateway</h1></body></html>');
  }
  const spoiler: DocumentSpoiler =
    rule?.fault === 'trimmed' || rule?.fault === 'wrong-dimensions' || rule?.fault === 'nul-byte' ? rule.fault : null;
  return respond(state, c, 'results', rule, found.name, () => resultsDocumentText(found, state.model, { spoiler }));
}

function findProcess(state: StandinState, c: StandinContext, api: UpstreamApi) {
  const cid = clientId(c);
  if (cid === null) return badCid(c);
  const pidText = c.req.param('pid') ?? '';
  const pid = /^\d{1,15}$/.test(pidText) ? Number(pidText) : null;
  const process = pid === null ? undefined : state.store.get(api, cid, pid);
  if (!process) return apiError(c, 404, `no process ${JSON.stringify(pidText)} for client ${cid}`);
  return process;
}

/** The status faults: the request is refused before any work is done. */
function refusal(
  state: StandinState,
  c: StandinContext,
  kind: RequestKind,
  rule: FaultRule | null,
  name: string | null,
): Response | null {
  if (!rule) return null;
  const retryAfter = String(rule.retryAfter ?? 1);
  switch (rule.fault) {
    case 'status-429':
      logFault(state, kind, rule, name);
      return apiError(c, 429, 'Too many requests, slow down', { 'Retry-After': retryAfter });
    case 'status-500':
      logFault(state, kind, rule, name);
      return apiError(c, 500, 'Internal server error');
    case 'status-503':
      logFault(state, kind, rule, name);
      return apiError(c, 503, 'Service temporarily unavailable', { 'Retry-After': retryAfter });
    default:
      return null;
  }
}

/** Sends a 200 JSON body, unless the fault says to refuse, withhold, delay or cut it. */
async function respond(
  state: StandinState,
  c: StandinContext,
  kind: RequestKind,
  rule: FaultRule | null,
  name: string | null,
  body: () => string,
): Promise<Response> {
  const refused = refusal(state, c, kind, rule, name);
  if (refused) return refused;
  if (rule) logFault(state, kind, rule, name);
  // a client that gives up ends the wait: its work stays done, nobody is left to answer
  if (rule?.fault === 'hold') await state.waits.hold(c.req.raw.signal);
  if (rule?.fault === 'slow') await state.waits.sleep(rule.delayMs ?? 30_000, c.req.raw.signal);
  // the body is made after any wait, so a held status answers with the status at release
  const text = body();
  if (rule?.fault === 'drop') return dropAfterPart(c, text);
  return c.body(text, 200, { 'content-type': 'application/json' });
}

function logFault(state: StandinState, kind: RequestKind, rule: FaultRule, name: string | null) {
  state.log.info({ kind, fault: rule.fault, name }, 'stand-in fault injected');
}

function countSubmission(state: StandinState, name: string) {
  state.submissions.set(name, (state.submissions.get(name) ?? 0) + 1);
}

function outcomeOf(
  rule: FaultRule | null,
  failure: string | null,
): { outcome: ProcessOutcome; failureReason: string | null } {
  if (rule?.fault === 'insufficient-credits') return { outcome: 'insufficient-credits', failureReason: null };
  if (rule?.fault === 'fail') return { outcome: 'fail', failureReason: 'the audio could not be decoded' };
  if (failure) return { outcome: 'fail', failureReason: failure };
  return { outcome: 'complete', failureReason: null };
}

type SubmissionFlags = { embeddings: boolean; generatorDetection: boolean; meta: string | null };

/** The submission's flags, or the 400 answer naming the one that is wrong. */
function submissionFlags(
  c: StandinContext,
  input: { embeddings: unknown; generatorDetection: unknown; meta: string | undefined },
): SubmissionFlags | Response {
  try {
    return readSubmissionFlags(c, input);
  } catch (error) {
    if (error instanceof FlagError) return apiError(c, 400, error.message);
    throw error;
  }
}

/**
 * embeddings and enable_generator_detection from the form (or JSON body) or the query string
 * (the vendor's docs call it a query parameter, its curl example sends a form field): either
 * saying true turns it on. meta must be JSON text when present.
 */
function readSubmissionFlags(
  c: StandinContext,
  input: { embeddings: unknown; generatorDetection: unknown; meta: string | undefined },
): SubmissionFlags {
  const embeddings =
    parseFlag('embeddings', input.embeddings) === true || parseFlag('embeddings', c.req.query('embeddings')) === true;
  const generatorDetection =
    parseFlag('enable_generator_detection', input.generatorDetection) === true ||
    parseFlag('enable_generator_detection', c.req.query('enable_generator_detection')) === true;
  const meta = input.meta === undefined || input.meta === '' ? null : input.meta;
  if (meta !== null) {
    try {
      JSON.parse(meta);
    } catch {
      throw new FlagError('meta must be a JSON string, e.g. {"key": "value"}');
    }
  }
  return { embeddings, generatorDetection, meta };
}

type AudioDescription = { durationS: number; manifest: CallManifest; callKey: string };

/** What the stand-in "hears" in a file: the manifest's call, or one new speaker named by the hash. */
function describeAudio(file: DigestedAudio, audio: AudioInfo): AudioDescription {
  const manifest = audio.manifest ?? unknownAudioManifest({ sha256: file.sha256, durationS: audio.durationS });
  return { durationS: manifest.durationS, manifest, callKey: file.sha256 };
}

/**
 * The audio behind a URL submission. The stand-in has no internet: it downloads only from
 * this machine (127.0.0.1, localhost, ::1); any other URL stands for unknown audio of
 * URL_AUDIO_DEFAULT_SECONDS, one speaker named after the hash of the URL without its query
 * string (a presigned URL's signature changes, the object it names does not).
 */
async function audioAtUrl(url: URL): Promise<{ audio: AudioDescription; failure: string | null }> {
  const unreachable = (durationS: number, failure: string | null) => {
    const key = sha256Hex(`${url.origin}${url.pathname}`);
    return { audio: { durationS, manifest: unknownAudioManifest({ sha256: key, durationS }), callKey: key }, failure };
  };
  if (!LOCAL_HOSTS.has(url.hostname)) return unreachable(URL_AUDIO_DEFAULT_SECONDS, null);
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      return unreachable(0, `could not download the audio (HTTP ${response.status})`);
    }
    const file = await digestStream(Readable.fromWeb(response.body as unknown as NodeReadableStream));
    const audio = inspectAudio(file.head, file.size);
    if (!audio) return unreachable(0, 'the file at the URL is neither WAV nor MP3');
    return { audio: describeAudio(file, audio), failure: null };
  } catch (error) {
    return unreachable(0, `could not download the audio: ${(error as Error).message}`);
  }
}

function isIsoDate(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`));
}
