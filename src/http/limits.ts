/**
 * Limits of the API that its clients need too. A module of constants and nothing else, so that the
 * CLI's API client can read them without loading the server (drizzle, zod, hono).
 */

/** Every list: `limit` defaults to this (CONVENTIONS.md). */
export const LIST_LIMIT_DEFAULT = 50;
/** Every list: the largest `limit`. */
export const LIST_LIMIT_MAX = 500;
/** `GET /v1/recordings?ids=`: at most this many ids, so that one page can always hold them all. */
export const RECORDING_IDS_MAX = 100;
