import fs from 'node:fs';
import path from 'node:path';
import { Agent, type Dispatcher, FormData, request } from 'undici';
import type { AlertDetailResponse, AlertPageResponse } from '../alerts/routes.ts';
import type { RecordingStatus } from '../db/schema.ts';
import { VoxtraceError } from '../errors.ts';
import { LIST_LIMIT_MAX, RECORDING_IDS_MAX } from '../http/limits.ts';
import type { Problem } from '../http/problems.ts';
import type { RecordingDetailResponse, RecordingPageResponse, RecordingSummaryResponse } from '../recordings/routes.ts';
import { type RetryPolicy, withRetries } from '../retry.ts';
import type {
  SpoofClusterMemberPageResponse,
  SpoofClusterPageResponse,
  SpoofClusterResponse,
  SpoofSearchResponse,
} from '../spoofs/routes.ts';
import type { SpoofSearchBody } from '../spoofs/search-request.ts';
import type {
  CreateIdentityBody,
  IdentityHistoryPageResponse,
  IdentityPageResponse,
  IdentityResponse,
  IdentityVoiceprintPageResponse,
} from '../voices/identities/routes.ts';
import type { VoiceSearchResponse } from '../voices/routes.ts';
import type { VoiceSearchBody } from '../voices/search-request.ts';
import type { StaffDecidedResponse } from '../voices/staff/routes.ts';
import type { WatchlistEntryResponse, WatchlistPageResponse } from '../voices/watchlist/routes.ts';

export type IdentityListQuery = {
  kind?: string;
  accountRef?: string;
  includeRetired?: boolean;
  proposed?: 'staff';
  limit?: number;
  cursor?: string;
};

/**
 * A typed client of voxtrace's own API, for the CLI commands that act through it (`ingest`, `demo`)
 * rather than on the database. Its types are the routes' own (imported as types only, so the CLI
 * loads none of the server). Requests are retried on 5xx, 429 and network errors; an upload is
 * safe to resend, as the API recognises the same bytes.
 */

/** What the API answered: the body it promises for success, or the detail of its problem. */
export type ApiResult<T> = { ok: true; status: number; value: T } | { ok: false; status: number; detail: string };

/** The API could not be reached, or refused the key: every further request would fail too. */
export class ApiRequestError extends VoxtraceError {}
/** 401/403: the key is unknown, revoked, or lacks the scope. */
export class ApiKeyRefusedError extends ApiRequestError {}

export type ApiClientOptions = {
  /** The API's base URL, e.g. http://127.0.0.1:8750 (VOXTRACE_API_URL or --url). */
  apiUrl: string;
  apiKey: string;
  /** Keep-alive connections in the pool: as many as requests will be in flight. */
  connections: number;
  /** Tries per request; default 4, first backoff 500 ms. */
  retry?: { attempts?: number; baseDelayMs?: number };
};

/** A multipart form, or a value sent as JSON. */
type RequestBody = FormData | { json: unknown };

export type UploadFields = { accountRef: string | null; channel?: string; callAt: string };

/**
 * @example
 * const api = createApiClient({ apiUrl: 'http://127.0.0.1:8750', apiKey, connections: 4 });
 * const answer = await api.uploadRecording('call.wav', { accountRef: 'acc-1', callAt: '2026-11-01T09:00:00Z' });
 * if (answer.ok) console.log(answer.value.id);
 * await api.close();
 */
export function createApiClient(options: ApiClientOptions) {
  const base = options.apiUrl.replace(/\/+$/, '');
  const policy: RetryPolicy = {
    maxAttempts: options.retry?.attempts ?? 4,
    baseDelayMs: options.retry?.baseDelayMs ?? 500,
    maxDelayMs: 30_000,
  };
  // one keep-alive pool for the whole run: thousands of uploads reuse a few connections
  const agent = new Agent({ connections: options.connections, keepAliveTimeout: 30_000 });

  async function send(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    pathAndQuery: string,
    body?: () => Promise<RequestBody>,
  ) {
    const payload = body ? await body() : undefined;
    const json = payload !== undefined && !(payload instanceof FormData);
    const response = await request(`${base}${pathAndQuery}`, {
      method,
      dispatcher: agent as Dispatcher,
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        accept: 'application/json',
        ...(json ? { 'content-type': 'application/json' } : {}),
      },
      body: json ? JSON.stringify(payload.json) : payload,
    });
    const text = await response.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (a proxy's error page): the text itself is the best detail there is
    }
    return { status: response.statusCode, body: parsed, retryAfter: response.headers['retry-after'] };
  }

  /**
   * One request with retries. Answers the last answer for anything but 401/403 (ApiKeyRefusedError)
   * and a network failure on every try (ApiRequestError).
   */
  function call<T>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    pathAndQuery: string,
    success: readonly number[],
    body?: () => Promise<RequestBody>,
    retry = true,
  ): Promise<ApiResult<T>> {
    return withRetries<ApiResult<T>>(retry ? policy : { ...policy, maxAttempts: 1 }, async () => {
      let answer: Awaited<ReturnType<typeof send>>;
      try {
        answer = await send(method, pathAndQuery, body);
      } catch (error) {
        const code = (error as { code?: string }).code;
        const failure = `${code ?? 'network error'}: ${(error as Error).message}`;
        return {
          failed: failure,
          giveUp: () => {
            throw new ApiRequestError(
              `${method} ${base}${pathAndQuery} failed ${policy.maxAttempts} times; last: ${failure}`,
            );
          },
        };
      }
      const result: ApiResult<T> = success.includes(answer.status)
        ? { ok: true, status: answer.status, value: answer.body as T }
        : { ok: false, status: answer.status, detail: problemDetail(answer) };
      if (answer.status === 401 || answer.status === 403) {
        throw new ApiKeyRefusedError(
          `the API refused the key (${answer.status}): ${problemDetail(answer)} (check --key or VOXTRACE_API_KEY)`,
        );
      }
      if (answer.status < 500 && answer.status !== 429) return { done: result };
      const retryAfterMs = Number(answer.retryAfter) * 1000;
      return {
        failed: `HTTP ${answer.status}: ${problemDetail(answer)}`,
        retryAfterMs: Number.isFinite(retryAfterMs) ? retryAfterMs : null,
        giveUp: () => result,
      };
    });
  }

  return {
    /**
     * `POST /v1/recordings` as a streamed multipart form: the file is read from disk as it is sent.
     * 202 (a new recording) and 200 (the same bytes were uploaded before) are both success.
     */
    uploadRecording(file: string, fields: UploadFields) {
      return call<RecordingSummaryResponse>('POST', '/v1/recordings', [200, 202], async () => {
        const form = new FormData();
        if (fields.accountRef !== null) form.append('accountRef', fields.accountRef);
        if (fields.channel !== undefined) form.append('channel', fields.channel);
        form.append('callAt', fields.callAt);
        // a fresh lazy Blob per attempt, so that a retry sends the file from its start
        form.append('file', await fs.openAsBlob(file), path.basename(file));
        return form;
      });
    },
    /** The summaries of up to RECORDING_IDS_MAX recordings in one request (`GET /v1/recordings?ids=`). */
    recordingsByIds(ids: string[]) {
      if (ids.length === 0 || ids.length > RECORDING_IDS_MAX) {
        throw new RangeError(`recordingsByIds takes 1 to ${RECORDING_IDS_MAX} ids, got ${ids.length}`);
      }
      const query = new URLSearchParams({ ids: ids.join(','), limit: String(ids.length) });
      return call<RecordingPageResponse>('GET', `/v1/recordings?${query}`, [200]);
    },
    /** One page of the recordings in `status`, the largest page the API gives. */
    listRecordings(status: RecordingStatus, cursor: string | null) {
      const query = new URLSearchParams({ status, limit: String(LIST_LIMIT_MAX) });
      if (cursor) query.set('cursor', cursor);
      return call<RecordingPageResponse>('GET', `/v1/recordings?${query}`, [200]);
    },
    /** One page of identities (`GET /v1/identities`). */
    listIdentities(filters: IdentityListQuery) {
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(filters)) if (value !== undefined) query.set(name, String(value));
      return call<IdentityPageResponse>('GET', `/v1/identities${query.size ? `?${query}` : ''}`, [200]);
    },
    /** One identity with its nearest identities. */
    getIdentity(id: string) {
      return call<IdentityResponse>('GET', `/v1/identities/${encodeURIComponent(id)}`, [200]);
    },
    /** One page of an identity's voiceprints, or of its history. */
    identityPage<K extends 'voiceprints' | 'history'>(id: string, what: K, cursor: string | null) {
      const query = new URLSearchParams({ limit: String(LIST_LIMIT_MAX) });
      if (cursor) query.set('cursor', cursor);
      return call<K extends 'voiceprints' ? IdentityVoiceprintPageResponse : IdentityHistoryPageResponse>(
        'GET',
        `/v1/identities/${encodeURIComponent(id)}/${what}?${query}`,
        [200],
      );
    },
    // Changes are sent once: a change that committed before its answer was lost must not be repeated.
    createIdentity(body: CreateIdentityBody) {
      return call<IdentityResponse>('POST', '/v1/identities', [201], async () => ({ json: body }), false);
    },
    mergeIdentities(id: string, body: { from: string[]; reason: string }) {
      return call<IdentityResponse>(
        'POST',
        `/v1/identities/${encodeURIComponent(id)}/merge`,
        [200],
        async () => ({ json: body }),
        false,
      );
    },
    splitIdentity(id: string, body: { voiceprintIds: string[]; reason: string }) {
      return call<IdentityResponse>(
        'POST',
        `/v1/identities/${encodeURIComponent(id)}/split`,
        [201],
        async () => ({ json: body }),
        false,
      );
    },
    moveVoiceprints(id: string, body: { voiceprintIds: string[]; reason: string }) {
      return call<IdentityResponse>(
        'POST',
        `/v1/identities/${encodeURIComponent(id)}/voiceprints`,
        [200],
        async () => ({ json: body }),
        false,
      );
    },
    /** One recording with its voiceprints (`GET /v1/recordings/{id}`). */
    getRecording(id: string) {
      return call<RecordingDetailResponse>('GET', `/v1/recordings/${encodeURIComponent(id)}`, [200]);
    },
    /** `POST /v1/watchlist`: 201 listed (after the look-back), 200 already listed. Sent once. */
    addToWatchlist(body: { voiceprintId?: string; identityId?: string; reason: string; name?: string }) {
      return call<WatchlistEntryResponse>('POST', '/v1/watchlist', [200, 201], async () => ({ json: body }), false);
    },
    listWatchlist(cursor: string | null) {
      const query = new URLSearchParams({ limit: String(LIST_LIMIT_MAX) });
      if (cursor) query.set('cursor', cursor);
      return call<WatchlistPageResponse>('GET', `/v1/watchlist?${query}`, [200]);
    },
    removeFromWatchlist(identityId: string, reason: string | undefined) {
      return call<null>(
        'DELETE',
        `/v1/watchlist/${encodeURIComponent(identityId)}`,
        [204],
        reason ? async () => ({ json: { reason } }) : undefined,
        false,
      );
    },
    listAlerts(filters: Record<string, string | number | undefined>) {
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(filters)) if (value !== undefined) query.set(name, String(value));
      return call<AlertPageResponse>('GET', `/v1/alerts${query.size ? `?${query}` : ''}`, [200]);
    },
    getAlert(id: string) {
      return call<AlertDetailResponse>('GET', `/v1/alerts/${encodeURIComponent(id)}`, [200]);
    },
    changeAlert(id: string, action: 'ack' | 'dismiss', note: string | undefined) {
      return call<AlertDetailResponse>(
        'POST',
        `/v1/alerts/${encodeURIComponent(id)}/${action}`,
        [200],
        note ? async () => ({ json: { note } }) : undefined,
        false,
      );
    },
    decideStaff(id: string, decision: 'confirm' | 'reject', note: string | undefined) {
      return call<StaffDecidedResponse>(
        'POST',
        `/v1/identities/${encodeURIComponent(id)}/${decision}-staff`,
        [200],
        note ? async () => ({ json: { note } }) : undefined,
        false,
      );
    },
    /** `POST /v1/voices/search`: searches read, and are safe to resend. */
    searchVoices(body: VoiceSearchBody) {
      return call<VoiceSearchResponse>('POST', '/v1/voices/search', [200], async () => ({ json: body }));
    },
    /** `POST /v1/spoofs/search`: searches read, and are safe to resend. */
    searchSpoofs(body: SpoofSearchBody) {
      return call<SpoofSearchResponse>('POST', '/v1/spoofs/search', [200], async () => ({ json: body }));
    },
    listSpoofClusters(filters: { sort?: string; status?: string; limit?: number; cursor?: string }) {
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(filters)) if (value !== undefined) query.set(name, String(value));
      return call<SpoofClusterPageResponse>('GET', `/v1/spoof-clusters${query.size ? `?${query}` : ''}`, [200]);
    },
    getSpoofCluster(id: string) {
      return call<SpoofClusterResponse>('GET', `/v1/spoof-clusters/${encodeURIComponent(id)}`, [200]);
    },
    spoofClusterMembers(id: string, cursor: string | null) {
      const query = new URLSearchParams({ limit: String(LIST_LIMIT_MAX) });
      if (cursor) query.set('cursor', cursor);
      return call<SpoofClusterMemberPageResponse>(
        'GET',
        `/v1/spoof-clusters/${encodeURIComponent(id)}/members?${query}`,
        [200],
      );
    },
    labelSpoofCluster(id: string, body: { label?: string | null; notes?: string | null }) {
      return call<SpoofClusterResponse>(
        'PATCH',
        `/v1/spoof-clusters/${encodeURIComponent(id)}`,
        [200],
        async () => ({ json: body }),
        false,
      );
    },
    mergeSpoofClusters(id: string, body: { from: string[]; reason: string }) {
      return call<SpoofClusterResponse>(
        'POST',
        `/v1/spoof-clusters/${encodeURIComponent(id)}/merge`,
        [200],
        async () => ({ json: body }),
        false,
      );
    },
    splitSpoofCluster(id: string, body: { utteranceIds: string[]; reason: string }) {
      return call<SpoofClusterResponse>(
        'POST',
        `/v1/spoof-clusters/${encodeURIComponent(id)}/split`,
        [201],
        async () => ({ json: body }),
        false,
      );
    },
    close: () => agent.close(),
  };
}
export type ApiClient = ReturnType<typeof createApiClient>;

/** The `detail` of a problem+json answer, or what else the body says. */
function problemDetail(answer: { status: number; body: unknown }): string {
  const body = answer.body as Partial<Problem> | string | null;
  if (body && typeof body === 'object') {
    if (typeof body.detail === 'string' && body.detail) return body.detail;
    if (typeof body.title === 'string') return body.title;
  }
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
  return `HTTP ${answer.status}`;
}
