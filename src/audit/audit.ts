import { createHash } from 'node:crypto';
import type { Db } from '../db/client.ts';
import { type AuditSource, auditEvents } from '../db/schema.ts';

/**
 * Who is acting: an API key (with the request that carried it), a person at the CLI, or voxtrace
 * itself. Services take an Actor from their caller and pass it here; they never see HTTP.
 */
export type Actor = { source: AuditSource; keyId: string | null; requestId: string | null };

/** A person at the command line (`voxtrace keys …`): no key, no request. */
export const CLI_ACTOR: Actor = { source: 'cli', keyId: null, requestId: null };
/** voxtrace acting on its own (the first admin key at start-up). */
export const SYSTEM_ACTOR: Actor = { source: 'system', keyId: null, requestId: null };

export type AuditEntry = {
  /** What was done, `<subject>.<verb>`: `recording.view`, `key.create`, … */
  action: string;
  /** The ids it touched (recordings, keys, voiceprints…). */
  targetIds: string[];
  /** The parameters it was asked with; only their digest is kept (a query vector is biometric data). */
  params: unknown;
  /** How many results it answered. */
  resultCount: number;
};

/**
 * Appends one entry to the audit trail (`audit_events`, which refuses updates and deletes). Every
 * feature service that reads biometric data or manages keys calls this before it answers, in the
 * same transaction as its writes when it has any: no audit row, no answer.
 * @example await recordAudit(db, actor, { action: 'recording.view', targetIds: [id], params: { include }, resultCount: 1 });
 */
export async function recordAudit(db: Db, actor: Actor, entry: AuditEntry): Promise<void> {
  await db.insert(auditEvents).values({
    source: actor.source,
    keyId: actor.keyId,
    requestId: actor.requestId,
    action: entry.action,
    targetIds: entry.targetIds,
    paramsDigest: paramsDigest(entry.params),
    resultCount: entry.resultCount,
  });
}

/**
 * sha256 of the parameters as canonical JSON (object keys sorted, `undefined` left out): the same
 * question always has the same digest, so a governance review can group identical queries without
 * the trail holding what was asked.
 * @example paramsDigest({ b: 1, a: [2] }) === paramsDigest({ a: [2], b: 1 }); // true
 */
export function paramsDigest(params: unknown): string {
  return createHash('sha256').update(canonicalJson(params)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
