import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { createUpstreamClient, type UpstreamClient } from './client.ts';

/** The stand-in accepts any numeric client id; voxtrace uses this one when none is configured. */
export const STANDIN_CID = '1';

/**
 * Where the upstream is, from the config: the real API when `VOXTRACE_UPSTREAM_URL` is set, else
 * the stand-in at `http://127.0.0.1:$VOXTRACE_STANDIN_PORT/v5` with `VOXTRACE_STANDIN_TOKEN`.
 * Returns null for the stand-in when its token is unknown (only a stand-in started in-process, or
 * one whose token was configured, can be reached).
 * @example const target = upstreamTarget(config); // { baseUrl, cid, token, api, standin }
 */
export function upstreamTarget(config: Config, standinToken = config.standin.token) {
  if (config.upstream.url) {
    return {
      baseUrl: config.upstream.url,
      cid: config.upstream.cid as string,
      token: config.upstream.token as string,
      api: config.upstream.api,
      standin: false,
    };
  }
  if (!standinToken) return null;
  return {
    baseUrl: `http://127.0.0.1:${config.standin.port}/v5`,
    cid: STANDIN_CID,
    token: standinToken,
    api: config.upstream.api,
    standin: true,
  };
}

/**
 * @example const client = upstreamClientFromConfig(config, log); await client.checkAuth();
 */
export function upstreamClientFromConfig(config: Config, log?: Logger, standinToken?: string): UpstreamClient {
  const target = upstreamTarget(config, standinToken ?? config.standin.token);
  if (!target) {
    throw new Error(
      'no upstream configured: set VOXTRACE_UPSTREAM_URL, _CID and _TOKEN for the real API, or ' +
        'VOXTRACE_STANDIN_TOKEN to the token of a running `voxtrace standin`',
    );
  }
  return createUpstreamClient({ baseUrl: target.baseUrl, cid: target.cid, token: target.token, api: target.api, log });
}
