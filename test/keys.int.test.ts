import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_ACTOR } from '../src/audit/audit.ts';
import {
  createApiKey,
  ensureFirstAdminKey,
  findActiveKey,
  listApiKeys,
  revokeApiKey,
  scopeAllows,
} from '../src/keys/keys.ts';
import { runCli } from './support/cli.ts';
import { createCliTarget, createTestDatabase, engine, type TestDatabase } from './support/db.ts';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.close();
});

describe(`API keys on ${engine}`, () => {
  it('store only a hash, find active keys, and revoke by id or by key', async () => {
    const a = await createApiKey(database.db, { scope: 'write', name: 'ingest' }, CLI_ACTOR);
    const b = await createApiKey(database.db, { scope: 'read' }, CLI_ACTOR);
    expect(a.key).toMatch(/^vxt_[A-Za-z0-9_-]{32}$/);
    expect(await findActiveKey(database.db, a.key)).toEqual({ id: a.id, scope: 'write' });
    const stored = JSON.stringify(await database.db.query.apiKeys.findMany());
    expect(stored).not.toContain(a.key);
    await revokeApiKey(database.db, a.id, CLI_ACTOR);
    await revokeApiKey(database.db, b.key, CLI_ACTOR);
    expect(await findActiveKey(database.db, a.key)).toBeNull();
    expect(await findActiveKey(database.db, b.key)).toBeNull();
    const list = await listApiKeys(database.db, CLI_ACTOR);
    expect(list.map((k) => [k.name, k.scope, k.revokedAt !== null])).toEqual([
      ['ingest', 'write', true],
      ['read key', 'read', true],
    ]);
    await expect(revokeApiKey(database.db, 'vxt_unknown', CLI_ACTOR)).rejects.toThrow(
      /no API key has that id or value/,
    );
  });

  it('orders scopes read ⊂ write ⊂ admin', () => {
    expect(scopeAllows('admin', 'write')).toBe(true);
    expect(scopeAllows('write', 'read')).toBe(true);
    expect(scopeAllows('write', 'admin')).toBe(false);
    expect(scopeAllows('read', 'write')).toBe(false);
  });
});

describe(`./voxtrace keys on ${engine}`, () => {
  it('create prints only the key; ls lists it (--json too); revoke takes id or key', async () => {
    const target = await createCliTarget();
    try {
      const created = await runCli(['keys', 'create', '--scope', 'read', '--name', 'analyst'], target.env);
      expect(created.code).toBe(0);
      expect(created.stdout).toMatch(/^vxt_[A-Za-z0-9_-]{32}\n$/);
      const key = created.stdout.trim();
      const listed = await runCli(['keys', 'ls', '--json'], target.env);
      const list = JSON.parse(listed.stdout);
      expect(list).toHaveLength(1);
      expect(Object.keys(list[0]).sort()).toEqual(['createdAt', 'id', 'name', 'revokedAt', 'scope']);
      expect(list[0]).toMatchObject({ name: 'analyst', scope: 'read', revokedAt: null });
      expect((await runCli(['keys', 'ls'], target.env)).stdout).toMatch(new RegExp(`${list[0].id}\\s+read\\s+active`));
      const revoked = await runCli(['keys', 'revoke', key], target.env);
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toContain(list[0].id);
      const again = JSON.parse((await runCli(['keys', 'ls', '--json'], target.env)).stdout);
      expect(again[0].revokedAt).not.toBeNull();
      const missing = await runCli(['keys', 'revoke', 'vxt_nope'], target.env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toBe('voxtrace keys revoke: no API key has that id or value\n');
      const badScope = await runCli(['keys', 'create', '--scope', 'root'], target.env);
      expect(badScope.code).not.toBe(0);
      expect(badScope.stderr).toMatch(/argument 'root' is invalid. Allowed choices are read, write, admin/);
    } finally {
      await target.cleanup();
    }
  });
});

describe(`first admin key on ${engine}`, () => {
  it('is created once, written with mode 600', async () => {
    const target = await createCliTarget();
    try {
      await target.inspect(async (db) => {
        const { migrateDatabase } = await import('../src/db/migrate.ts');
        await migrateDatabase(db);
        const key = await ensureFirstAdminKey(db.db, target.dataDir);
        expect(key).toMatch(/^vxt_/);
        const file = path.join(target.dataDir, 'admin-key');
        expect(fs.readFileSync(file, 'utf8').trim()).toBe(key);
        expect(fs.statSync(file).mode & 0o777).toBe(0o600);
        expect(await ensureFirstAdminKey(db.db, target.dataDir)).toBeNull();
        expect(await findActiveKey(db.db, key as string)).toMatchObject({ scope: 'admin' });
      });
    } finally {
      await target.cleanup();
    }
  });

  it('writes no key file when its transaction fails: the file never holds a key the database lacks', async () => {
    const target = await createCliTarget();
    try {
      await target.inspect(async (db) => {
        const { migrateDatabase } = await import('../src/db/migrate.ts');
        await migrateDatabase(db);
        // the key's audit entry cannot be written, so its transaction rolls back
        await db.db.execute(sql`alter table audit_events rename to audit_events_away`);
        await expect(ensureFirstAdminKey(db.db, target.dataDir)).rejects.toThrow();
        expect(fs.existsSync(path.join(target.dataDir, 'admin-key'))).toBe(false);
        expect(await listApiKeys(db.db, CLI_ACTOR).catch(() => null)).toBeNull();
        await db.db.execute(sql`alter table audit_events_away rename to audit_events`);
        expect(await listApiKeys(db.db, CLI_ACTOR)).toEqual([]);
        const key = await ensureFirstAdminKey(db.db, target.dataDir);
        expect(fs.readFileSync(path.join(target.dataDir, 'admin-key'), 'utf8').trim()).toBe(key);
      });
    } finally {
      await target.cleanup();
    }
  });
});
