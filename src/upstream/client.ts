import fs from 'node:fs';
import path from 'node:path';
import { Agent, type Dispatcher, FormData, request } from 'undici';
import { z } from 'zod';
import { createSemaphore } from '../concurrency.ts';
import type { UpstreamApi } from '../db/schema.ts';
import type { Logger } from '../log.ts';
import { withRetries } from '../retry.ts';

/**
 * Client of the Behavioral Signals REST API (and of voxtrace's stand-in, which speaks the same
 * protocol). Success is exactly 200; every other status is an error with a `{code, message}` body.
 */

export const processItemSchema = z.looseObject({
  pid: z.number().int(),
  cid: z.number().int().nullish(),
  name: z.string().nullish(),
  status: z.number().int(),
  statusmsg: z.string().nullish(),
  duration: z.number().nullish(),
  datetime: z.string().nullish(),
  meta: z.string().nullish(),
});
export type ProcessItem = z.infer<typeof processItemSchema>;

/** Upstream process statuses: 0 pending, 1 processing, 2 completed; negative ones are terminal failures. */
export const PROCESS_STATUS = {
  pending: 0,
  processing: 1,
  completed: 2,
  failed: -1,
  insufficientCredits: -2,
  serverError: -3,
} as const;

export type UpstreamErrorKind = 'http' | 'network' | 'timeout' | 'invalid-response';

/**
 * A failed upstream call, after retries. `status`/`code`/`upstreamMessage` come from the upstream's
 * answer when there was one; `attempts` counts the calls made. A submission that failed this way
 * may still have been accepted upstream: the worker looks the process up by name before uploading
 * again (docs/ingestion.md), so no caller needs to tell such failures apart.
 */
export class UpstreamError extends Error {
  readonly kind: UpstreamErrorKind;
  readonly status: number | null;
  readonly code: number | null;
  readonly upstreamMessage: string | null;
  readonly attempts: number;
  constructor(
    message: string,
    fields: {
      kind: UpstreamErrorKind;
      status?: number | null;
      code?: number | null;
      upstreamMessage?: string | null;
      attempts: number;
      cause?: unknown;
    },
  ) {
    super(message, { cause: fields.cause });
    this.name = 'UpstreamError';
    this.kind = fields.kind;
    this.status = fields.status ?? null;
    this.code = fields.code ?? null;
    this.upstreamMessage = fields.upstreamMessage ?? null;
    this.attempts = fields.attempts;
  }
}

export type UpstreamClientOptions = {
  /** Base URL including `/v5`, e.g. https://api.behavioralsignals.com/v5 */
  baseUrl: string;
  cid: string;
  token: string;
  api: UpstreamApi;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Calls in flight at once from this client; the rest wait their turn. */
  maxConcurrent?: number;
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  log?: Logger;
  /** Called before each retry (tests and metrics). */
  onRetry?: (info: { operation: string; attempt: number; delayMs: number; reason: string }) => void;
};

export type RawResults = {
  /** The body as received. */
  rawBody: string;
  /** The parsed JSON, or null when the body is not JSON (then `jsonError` says why). */
  document: unknown;
  jsonError: string | null;
};

export type ListQuery = {
  page?: number;
  pageSize?: number;
  sort?: 'asc' | 'desc';
  startDate?: string;
  endDate?: string;
};

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 60_000,
  bodyTimeoutMs: 120_000,
  maxConcurrent: 8,
  maxAttempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
};

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
// Statuses after which a POST was certainly not acted on: safe to resubmit without a look-up.
const NOT_PROCESSED_STATUS = new Set([429, 503]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH']);

type Operation = {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: () => Promise<{ body: FormData | string; headers?: Record<string, string> }>;
  /** POSTs that create a process: only retried when the upstream certainly did not act on them. */
  creates?: boolean;
};

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;

/**
 * @example
 * const client = createUpstreamClient({ baseUrl, cid: '42', token, api: 'deepfake' });
 * const process = await client.submitFile({ file: 'call.wav', name: recordingId, embeddings: true });
 */
export function createUpstreamClient(options: UpstreamClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, '');
  const clientsPath = `${options.api === 'deepfake' ? '/detection' : ''}/clients/${encodeURIComponent(options.cid)}`;
  const policy = {
    maxAttempts: options.retry?.maxAttempts ?? DEFAULTS.maxAttempts,
    baseDelayMs: options.retry?.baseDelayMs ?? DEFAULTS.baseDelayMs,
    maxDelayMs: options.retry?.maxDelayMs ?? DEFAULTS.maxDelayMs,
  };
  const agent = new Agent({
    connect: { timeout: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs },
    headersTimeout: options.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
    keepAliveTimeout: 30_000,
    connections: options.maxConcurrent ?? DEFAULTS.maxConcurrent,
  });
  const slots = createSemaphore(options.maxConcurrent ?? DEFAULTS.maxConcurrent);
  const log = options.log;

  /**
   * One call with retries on 429, 5xx and network errors. A POST that creates a process is retried
   * only when the upstream certainly did not act on it (429, 503, or no connection made): a 500 or a
   * lost answer may hide an accepted upload, which the worker resolves by name instead.
   */
  function call(op: Operation): Promise<{ status: number; text: string; attempts: number }> {
    return withRetries<{ status: number; text: string; attempts: number }>(
      policy,
      async (attempt) => {
        let failure: UpstreamError;
        let retryable: boolean;
        let retryAfterMs: number | null = null;
        try {
          const response = await slots.run(() => send(op));
          if (response.status === 200) return { done: { ...response, attempts: attempt } };
          const parsed = parseErrorBody(response.text);
          retryAfterMs = response.retryAfterMs;
          retryable =
            RETRYABLE_STATUS.has(response.status) && (!op.creates || NOT_PROCESSED_STATUS.has(response.status));
          failure = new UpstreamError(
            `${op.name}: upstream answered ${response.status}${parsed.message ? `: ${parsed.message}` : ''}`,
            {
              kind: 'http',
              status: response.status,
              code: parsed.code,
              upstreamMessage: parsed.message,
              attempts: attempt,
            },
          );
        } catch (error) {
          const code = (error as { code?: string })?.code ?? '';
          failure = networkFailure(op, error, code, attempt);
          retryable = !op.creates || CONNECT_FAILURES.has(code);
        }
        if (!retryable) throw failure;
        return {
          failed: failure.message,
          retryAfterMs,
          giveUp: () => {
            throw failure;
          },
        };
      },
      ({ attempt, delayMs, reason }) => {
        log?.warn(
          { operation: op.name, attempt, delayMs: Math.round(delayMs), reason },
          'upstream call failed; retrying',
        );
        options.onRetry?.({ operation: op.name, attempt, delayMs, reason });
      },
    );
  }

  async function send(op: Operation) {
    const url = new URL(`${base}${op.path}`);
    for (const [k, v] of Object.entries(op.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const payload = op.body ? await op.body() : undefined;
    const response = await request(url, {
      method: op.method,
      dispatcher: agent as Dispatcher,
      headers: {
        'x-auth-token': options.token,
        'x-auth-client': options.cid,
        accept: 'application/json',
        ...payload?.headers,
      },
      body: payload?.body,
    });
    const text = await response.body.text();
    return { status: response.statusCode, text, retryAfterMs: parseRetryAfter(response.headers['retry-after']) };
  }

  function networkFailure(op: Operation, error: unknown, code: string, attempt: number): UpstreamError {
    const timeout = TIMEOUT_CODES.has(code);
    return new UpstreamError(
      `${op.name}: ${timeout ? 'timed out' : 'network error'} (${code || (error as Error)?.message || 'unknown'})`,
      { kind: timeout ? 'timeout' : 'network', attempts: attempt, cause: error },
    );
  }

  function parseProcess(op: string, text: string, attempts: number): ProcessItem {
    const json = safeJson(text);
    const parsed = processItemSchema.safeParse(json.value);
    if (!parsed.success) {
      throw new UpstreamError(`${op}: the upstream answered 200 without a process item`, {
        kind: 'invalid-response',
        attempts,
      });
    }
    return parsed.data;
  }

  return {
    api: options.api,

    /** Checks the credentials (`GET /v5/auth`); throws UpstreamError 401/403 when they are wrong. */
    async checkAuth(): Promise<void> {
      await call({ name: 'auth', method: 'GET', path: '/auth' });
    },

    /**
     * Uploads a file as a streamed multipart body (the file is read from disk as it is sent, so
     * memory stays flat for any size) with `embeddings=true` unless told otherwise.
     */
    async submitFile(input: {
      file: string;
      name: string;
      embeddings?: boolean;
      meta?: Record<string, unknown>;
      enableGeneratorDetection?: boolean;
    }): Promise<ProcessItem> {
      const op = 'submit';
      const { text, attempts } = await call({
        name: op,
        method: 'POST',
        path: `${clientsPath}/processes/audio`,
        creates: true,
        body: async () => {
          const form = new FormData();
          // a fresh lazy Blob per attempt: nothing of the file is held in memory
          form.append('file', await fs.openAsBlob(input.file), path.basename(input.file));
          form.append('name', input.name);
          form.append('embeddings', String(input.embeddings ?? true));
          if (input.meta) form.append('meta', JSON.stringify(input.meta));
          if (input.enableGeneratorDetection !== undefined && options.api === 'deepfake') {
            form.append('enable_generator_detection', String(input.enableGeneratorDetection));
          }
          return { body: form };
        },
      });
      return parseProcess(op, text, attempts);
    },

    /** Submits audio the upstream downloads itself (a presigned URL). */
    async submitUrl(input: {
      url: string;
      name: string;
      embeddings?: boolean;
      meta?: Record<string, unknown>;
    }): Promise<ProcessItem> {
      const op = 'submit-url';
      const { text, attempts } = await call({
        name: op,
        method: 'POST',
        path: `${clientsPath}/processes/s3-presigned-url`,
        creates: true,
        body: async () => ({
          body: JSON.stringify({
            url: input.url,
            name: input.name,
            embeddings: input.embeddings ?? true,
            ...(input.meta ? { meta: JSON.stringify(input.meta) } : {}),
          }),
          headers: { 'content-type': 'application/json' },
        }),
      });
      return parseProcess(op, text, attempts);
    },

    async getProcess(pid: number): Promise<ProcessItem> {
      const op = 'status';
      const { text, attempts } = await call({ name: op, method: 'GET', path: `${clientsPath}/processes/${pid}` });
      return parseProcess(op, text, attempts);
    },

    /**
     * The results document as received. A body that is not JSON is returned, not thrown: the
     * caller keeps it (raw_body) and marks the recording failed.
     */
    async getResults(pid: number): Promise<RawResults> {
      const { text } = await call({ name: 'results', method: 'GET', path: `${clientsPath}/processes/${pid}/results` });
      const json = safeJson(text);
      return { rawBody: text, document: json.value ?? null, jsonError: json.error };
    },

    /** One page of processes (the upstream answers a bare array). */
    async listProcesses(query: ListQuery = {}): Promise<ProcessItem[]> {
      const op = 'list';
      const { text, attempts } = await call({ name: op, method: 'GET', path: `${clientsPath}/processes`, query });
      const parsed = z.array(processItemSchema).safeParse(safeJson(text).value);
      if (!parsed.success) {
        throw new UpstreamError(`${op}: the upstream answered 200 without a list of processes`, {
          kind: 'invalid-response',
          attempts,
        });
      }
      return parsed.data;
    },

    /**
     * Every process, page by page (newest first unless `sort` says otherwise).
     * @example for await (const p of client.allProcesses({ startDate: '2026-11-01' })) if (p.name === id) …
     */
    async *allProcesses(query: Omit<ListQuery, 'page'> = {}): AsyncGenerator<ProcessItem> {
      const pageSize = query.pageSize ?? 1000;
      for (let page = 0; ; page++) {
        const items = await this.listProcesses({ sort: 'desc', ...query, page, pageSize });
        yield* items;
        if (items.length < pageSize) return;
      }
    },

    /** Waits for calls in flight, then closes the pool. */
    close: () => agent.close(),
    /** Closes the pool now, failing calls in flight (shutdown: their recordings are released first). */
    destroy: () => agent.destroy(),
  };
}

function safeJson(text: string): { value: unknown; error: string | null } {
  try {
    return { value: JSON.parse(text), error: null };
  } catch (error) {
    return { value: undefined, error: (error as Error).message };
  }
}

function parseErrorBody(text: string): { code: number | null; message: string | null } {
  const body = safeJson(text).value as { code?: unknown; message?: unknown } | undefined;
  return {
    code: typeof body?.code === 'number' ? body.code : null,
    message: typeof body?.message === 'string' ? body.message : text ? text.slice(0, 200) : null,
  };
}

/** Retry-After as delay-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(header: string | string[] | undefined, now = Date.now()): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
