import type { Command } from 'commander';
import type { ApiClient, ApiResult } from '../client/api.ts';
import { loadConfig } from '../config.ts';
import { VoxtraceError } from '../errors.ts';

/**
 * What the commands that act through the API share (`search`, `identities`): the `--url`/`--key`
 * options, one client for the command's length, answers as values or one-line errors, and tables.
 * They go through the API so that they work while `start` holds the embedded database, and so
 * that every search and change is audited with the key that made it.
 */

export type ApiOptions = { url?: string; key?: string };

export function withApiOptions(command: Command, keyHelp = 'API key (default: VOXTRACE_API_KEY)'): Command {
  return command.option('--url <url>', 'API base URL (default: VOXTRACE_API_URL)').option('--key <key>', keyHelp);
}

/** Runs `fn` with an API client built from the options and the environment, closed afterwards. */
export async function withApi<T>(opts: ApiOptions, fn: (api: ApiClient) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const apiKey = opts.key ?? config.apiKey;
  if (!apiKey) throw new VoxtraceError('no API key: pass --key <key> or set VOXTRACE_API_KEY');
  const apiUrl = opts.url ?? config.apiUrl;
  if (!/^https?:\/\//.test(apiUrl) || !URL.canParse(apiUrl)) {
    throw new VoxtraceError(`the API URL "${apiUrl}" is not an http(s):// URL (--url or VOXTRACE_API_URL)`);
  }
  // loaded here: the HTTP client (undici) is only the API commands'
  const { createApiClient } = await import('../client/api.ts');
  const api = createApiClient({ apiUrl, apiKey, connections: 1, retry: { attempts: 3, baseDelayMs: 200 } });
  try {
    return await fn(api);
  } finally {
    await api.close();
  }
}

/** The answer's value, or its problem as the command's one-line error. */
export function answered<T>(result: ApiResult<T>): T {
  if (!result.ok) throw new VoxtraceError(`${result.detail} (HTTP ${result.status})`);
  return result.value;
}

/** Rows under a header, each column as wide as its widest cell. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Every item of a paged list, page after page. */
export async function allPages<T>(
  page: (cursor: string | null) => Promise<ApiResult<{ items: T[]; nextCursor: string | null }>>,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const next: { items: T[]; nextCursor: string | null } = answered(await page(cursor));
    items.push(...next.items);
    cursor = next.nextCursor;
  } while (cursor);
  return items;
}

/** Ids given space- or comma-separated (`--voiceprints a b,c`). */
export function idList(values: string[]): string[] {
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}
