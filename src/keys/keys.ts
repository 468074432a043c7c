import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { and, asc, count, eq, isNull, or, type SQL, sql } from 'drizzle-orm';
import { type Actor, recordAudit, SYSTEM_ACTOR } from '../audit/audit.ts';
import type { Db } from '../db/client.ts';
import { type ApiKeyScope, apiKeys } from '../db/schema.ts';
import { withTransaction } from '../db/transaction.ts';
import { NotFoundError } from '../errors.ts';
import { isUuid } from '../ids.ts';

/**
 * API keys: creating, listing and revoking them, for the API (`admin` scope) and the CLI alike.
 * Every one of these is written to the audit trail with the actor that asked.
 */

const KEY_PREFIX = 'vxt_';

/** `read` ⊂ `write` ⊂ `admin`. */
const SCOPE_RANK: Record<ApiKeyScope, number> = { read: 1, write: 2, admin: 3 };

export function scopeAllows(held: ApiKeyScope, needed: ApiKeyScope): boolean {
  return SCOPE_RANK[held] >= SCOPE_RANK[needed];
}

// Keys carry 192 random bits, so a fast hash is enough: nothing to brute-force, unlike passwords.
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export type ApiKeyInfo = {
  id: string;
  name: string;
  scope: ApiKeyScope;
  createdAt: string;
  revokedAt: string | null;
};

const infoColumns = {
  id: apiKeys.id,
  name: apiKeys.name,
  scope: apiKeys.scope,
  createdAt: apiKeys.createdAt,
  revokedAt: apiKeys.revokedAt,
};

function toInfo(row: {
  id: string;
  name: string;
  scope: ApiKeyScope;
  createdAt: Date;
  revokedAt: Date | null;
}): ApiKeyInfo {
  return { ...row, createdAt: row.createdAt.toISOString(), revokedAt: row.revokedAt?.toISOString() ?? null };
}

/**
 * Creates a key; the secret is returned once and only its hash is stored.
 * @example const { key } = await createApiKey(db, { scope: 'read', name: 'analyst' }, CLI_ACTOR);
 */
export async function createApiKey(db: Db, input: { scope: ApiKeyScope; name?: string }, actor: Actor) {
  const key = `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
  return withTransaction(db, async (tx) => {
    const [row] = await tx
      .insert(apiKeys)
      .values({
        name: input.name ?? `${input.scope} key`,
        scope: input.scope,
        keyHash: hashKey(key),
        keyPrefix: key.slice(0, KEY_PREFIX.length + 6),
      })
      .returning(infoColumns);
    const info = toInfo(row as Parameters<typeof toInfo>[0]);
    await recordAudit(tx, actor, {
      action: 'key.create',
      targetIds: [info.id],
      params: { scope: info.scope, name: info.name },
      resultCount: 1,
    });
    return { key, ...info };
  });
}

/** Every key, oldest first (never a secret). */
export async function listApiKeys(db: Db, actor: Actor): Promise<ApiKeyInfo[]> {
  const rows = await db.select(infoColumns).from(apiKeys).orderBy(asc(apiKeys.createdAt), asc(apiKeys.id));
  await recordAudit(db, actor, { action: 'key.list', targetIds: [], params: {}, resultCount: rows.length });
  return rows.map(toInfo);
}

/**
 * Revokes by id or by the key itself (the CLI takes either); revoking twice keeps the first time.
 * @example await revokeApiKey(db, 'vxt_...', CLI_ACTOR);
 */
export async function revokeApiKey(db: Db, idOrKey: string, actor: Actor): Promise<ApiKeyInfo> {
  const byKey = eq(apiKeys.keyHash, hashKey(idOrKey));
  return revokeWhere(
    db,
    actor,
    isUuid(idOrKey) ? or(eq(apiKeys.id, idOrKey), byKey) : byKey,
    'no API key has that id or value',
  );
}

/** Revokes by id only: what the API offers, since a secret in a URL would end up in access logs. */
export async function revokeApiKeyById(db: Db, id: string, actor: Actor): Promise<ApiKeyInfo> {
  if (!isUuid(id)) throw new NotFoundError(`no API key ${id}`);
  return revokeWhere(db, actor, eq(apiKeys.id, id), `no API key ${id}`);
}

async function revokeWhere(db: Db, actor: Actor, where: SQL | undefined, notFound: string): Promise<ApiKeyInfo> {
  return withTransaction(db, async (tx) => {
    const [row] = await tx
      .update(apiKeys)
      .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, now())` })
      .where(where)
      .returning(infoColumns);
    if (!row) throw new NotFoundError(notFound);
    // the digest covers what identified the key, never the secret itself: the id is enough to tell
    await recordAudit(tx, actor, { action: 'key.revoke', targetIds: [row.id], params: { id: row.id }, resultCount: 1 });
    return toInfo(row);
  });
}

/** The unrevoked key with this secret, or null. */
export async function findActiveKey(db: Db, key: string): Promise<{ id: string; scope: ApiKeyScope } | null> {
  const [row] = await db
    .select({ id: apiKeys.id, scope: apiKeys.scope })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, hashKey(key)), isNull(apiKeys.revokedAt)))
    .limit(1);
  return row ?? null;
}

/**
 * When no key exists yet, creates the first `admin` key and writes it to `<dataDir>/admin-key`
 * (mode 600) once its transaction has committed, so that the file never holds a key the database
 * does not. Returns the new key, or null when keys already exist.
 */
export async function ensureFirstAdminKey(db: Db, dataDir: string): Promise<string | null> {
  const key = await withTransaction(db, async (tx) => {
    // serialises replicas starting together on an empty database
    await tx.execute(sql`select pg_advisory_xact_lock(${0x766f786b})`);
    const [existing] = await tx.select({ n: count() }).from(apiKeys);
    if ((existing?.n ?? 0) > 0) return null;
    return (await createApiKey(tx, { scope: 'admin', name: 'admin' }, SYSTEM_ACTOR)).key;
  });
  if (key) {
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, 'admin-key');
    fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
  }
  return key;
}
