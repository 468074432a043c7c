import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analysisSteps } from '../src/analysis/steps.ts';
import { queryRows } from '../src/db/client.ts';
import {
  compareVersions,
  MINIMUM_PGVECTOR,
  migrateDatabase,
  migrationsFolder,
  pendingMigrations,
  warnIfOldPgvector,
} from '../src/db/migrate.ts';
import { createLogger } from '../src/log.ts';
import { SPOOF_VERDICT_STEP } from '../src/spoofs/step.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';
import { analyseAll } from './support/identity-calls.ts';
import { migrateUpTo } from './support/migrations.ts';

const journalEntries = JSON.parse(fs.readFileSync(path.join(migrationsFolder, 'meta/_journal.json'), 'utf8')).entries
  .length;
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.close();
});

describe(`migrations on ${engine}`, () => {
  it('create the tables, the pgvector extension and the HNSW cosine indexes', async () => {
    const tables = await queryRows<{ table_name: string }>(
      database.db,
      sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`,
    );
    expect(tables.map((t) => t.table_name)).toEqual([
      'alert_events',
      'alerts',
      'api_keys',
      'audit_events',
      'identities',
      'identity_events',
      'listed_voiceprints',
      'recording_events',
      'recording_spoof_verdicts',
      'recordings',
      'spoof_cluster_events',
      'spoof_clusters',
      'spoofed_utterances',
      'staff_proposals',
      'utterances',
      'voice_calibrations',
      'voiceprints',
      'watchlist_entries',
    ]);
    const indexes = await queryRows<{ indexname: string; indexdef: string }>(
      database.db,
      sql`select indexname, indexdef from pg_indexes where indexdef ilike '%using hnsw%' order by 1`,
    );
    expect(indexes.map((i) => i.indexname)).toEqual([
      'identities_centroid_hnsw',
      'spoofed_utterances_embedding_hnsw',
      'voiceprints_embedding_hnsw',
    ]);
    expect(indexes[0]?.indexdef).toMatch(/identities USING hnsw \(centroid vector_cosine_ops\)/);
    // spoofed utterances only (what spoof-cluster search looks among), in a table clustering never updates
    // … as the denser graph that reaches recall@10 0.95 at 1,000,000 rows (migration 0015)
    expect(indexes[1]?.indexdef).toMatch(
      /spoofed_utterances USING hnsw \(embedding halfvec_cosine_ops\) WITH \(m='32', ef_construction='128'\)/,
    );
    expect(indexes[2]?.indexdef).toMatch(/voiceprints USING hnsw \(embedding vector_cosine_ops\)/);
    const columns = await queryRows<{ column_name: string; type: string }>(
      database.db,
      sql`select a.attname as column_name, format_type(a.atttypid, a.atttypmod) as type
          from pg_attribute a where a.attrelid in ('voiceprints'::regclass, 'utterances'::regclass)
          and a.attname in ('embedding', 'deepfake_embedding') order by 1`,
    );
    expect(columns).toEqual([
      { column_name: 'deepfake_embedding', type: 'halfvec(768)' },
      { column_name: 'embedding', type: 'vector(192)' },
    ]);
  });

  it('compress raw documents with lz4 where the server has it (PostgreSQL), and keep pglz where not (PGlite)', async () => {
    const columns = await queryRows<{ attname: string; attcompression: string }>(
      database.db,
      sql`select attname, attcompression::text from pg_attribute
          where attrelid = 'recordings'::regclass and attname in ('raw_document', 'raw_body') order by 1`,
    );
    const expected = engine === 'postgres' ? 'l' : '';
    expect(columns).toEqual([
      { attname: 'raw_body', attcompression: expected },
      { attname: 'raw_document', attcompression: expected },
    ]);
  });

  it('record every committed migration and are idempotent', async () => {
    const again = await migrateDatabase(database);
    expect(compareVersions(again.pgvector, MINIMUM_PGVECTOR)).toBeGreaterThanOrEqual(0);
    const applied = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
    );
    expect(applied[0]?.n).toBe(journalEntries);
  });

  it('run concurrently without conflict (serialised by the advisory lock)', async () => {
    await Promise.all([migrateDatabase(database), migrateDatabase(database), migrateDatabase(database)]);
    const applied = await queryRows<{ n: number }>(
      database.db,
      sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
    );
    expect(applied[0]?.n).toBe(journalEntries);
  });

  it('enforce the status values of CONVENTIONS.md', async () => {
    await expect(
      database.db.execute(sql`insert into recordings (source, status) values ('import', 'bogus')`),
    ).rejects.toThrow();
  });
});

describe(`upgrading a database of the previous release on ${engine}`, () => {
  it('counts what is pending, and gives every stored recording its outbox event (imports had none)', async () => {
    const old = await createTestDatabase({ migrated: false });
    try {
      expect(await pendingMigrations(old)).toBe(journalEntries);
      await migrateUpTo(old, '0004_spoofed_hnsw');
      expect(await pendingMigrations(old)).toBe(journalEntries - 5);
      // as the previous release left them: an upload stored with its event, an import without one
      const [upload, imported, failed] = await queryRows<{ id: string }>(
        old.db,
        sql`insert into recordings (source, status) values ('upload', 'complete'), ('import', 'complete'), ('upload', 'failed')
            returning id`,
      );
      await old.db.execute(sql`insert into recording_events (recording_id, kind) values (${upload?.id}, 'stored')`);
      await migrateDatabase(old);
      expect(await pendingMigrations(old)).toBe(0);
      const events = await queryRows<{ recording_id: string; status: string; steps_done: string[] }>(
        old.db,
        sql`select recording_id, status, steps_done from recording_events order by recording_id`,
      );
      expect(events.map((e) => e.recording_id).sort()).toEqual([upload?.id, imported?.id].sort());
      expect(events.every((e) => e.status === 'pending' && e.steps_done.length === 0)).toBe(true);
      expect(events.map((e) => e.recording_id)).not.toContain(failed?.id);
    } finally {
      await old.close();
    }
  });
});

describe(`upgrading to the voices release on ${engine}`, () => {
  it('reopens the events already analysed, so that identity assignment covers history', async () => {
    const old = await createTestDatabase({ migrated: false });
    try {
      await migrateUpTo(old, '0005_house_in_order');
      const [stored] = await queryRows<{ id: string }>(
        old.db,
        sql`insert into recordings (source, status) values ('import', 'complete') returning id`,
      );
      await old.db.execute(
        sql`insert into recording_events (recording_id, kind, status, steps_done, completed_at)
            values (${stored?.id}, 'stored', 'done', '{earlier.step}', now())`,
      );
      await migrateDatabase(old);
      const events = await queryRows<{ status: string; steps_done: string[]; completed_at: unknown }>(
        old.db,
        sql`select status, steps_done, completed_at from recording_events where recording_id = ${stored?.id}`,
      );
      expect(events).toEqual([{ status: 'pending', steps_done: ['earlier.step'], completed_at: null }]);
    } finally {
      await old.close();
    }
  });
});

describe(`upgrading to the alerts release on ${engine}`, () => {
  it('reopens analysed events for the new steps only, and adds enrol_customer as false', async () => {
    const old = await createTestDatabase({ migrated: false });
    try {
      await migrateUpTo(old, '0006_voices');
      const [stored] = await queryRows<{ id: string }>(
        old.db,
        sql`insert into recordings (source, status) values ('import', 'complete') returning id`,
      );
      await old.db.execute(
        sql`insert into recording_events (recording_id, kind, status, steps_done, completed_at)
            values (${stored?.id}, 'stored', 'done', '{voices.identity,voices.calibration}', now())`,
      );
      await migrateDatabase(old);
      const events = await queryRows<{ status: string; steps_done: string[] }>(
        old.db,
        sql`select status, steps_done from recording_events where recording_id = ${stored?.id}`,
      );
      expect(events).toEqual([{ status: 'pending', steps_done: ['voices.identity', 'voices.calibration'] }]);
      const [recording] = await queryRows<{ enrol_customer: boolean }>(
        old.db,
        sql`select enrol_customer from recordings where id = ${stored?.id}`,
      );
      expect(recording?.enrol_customer).toBe(false);
    } finally {
      await old.close();
    }
  });
});

describe(`upgrading to the spoof-verdict release on ${engine}`, () => {
  it('reopens analysed events so that only the new step runs on history, and it decides their verdicts', async () => {
    const old = await createTestDatabase({ migrated: false });
    try {
      await migrateUpTo(old, '0008_listed_voiceprints');
      const [stored] = await queryRows<{ id: string }>(
        old.db,
        sql`insert into recordings (source, status) values ('import', 'complete') returning id`,
      );
      await old.db.execute(
        sql`insert into utterances (recording_id, upstream_id, start_s, end_s, deepfake_label, p_spoofed)
            values (${stored?.id}, '0', 0, 6, 'spoofed', 0.9999), (${stored?.id}, '1', 6, 10, 'bonafide', 0.0001)`,
      );
      const earlier = analysisSteps()
        .map((s) => s.name)
        .filter((name) => name !== SPOOF_VERDICT_STEP);
      await old.db.execute(
        sql`insert into recording_events (recording_id, kind, status, steps_done, completed_at)
            values (${stored?.id}, 'stored', 'done', ${sql.param(earlier)}::text[], now())`,
      );
      await migrateDatabase(old);
      await analyseAll(old.db);
      const events = await queryRows<{ status: string; steps_done: string[] }>(
        old.db,
        sql`select status, steps_done from recording_events where recording_id = ${stored?.id}`,
      );
      expect(events).toEqual([{ status: 'done', steps_done: [...earlier, SPOOF_VERDICT_STEP] }]);
      const verdicts = await queryRows<{ verdict: string }>(
        old.db,
        sql`select verdict from recording_spoof_verdicts where recording_id = ${stored?.id}`,
      );
      expect(verdicts).toEqual([{ verdict: 'spoofed' }]);
    } finally {
      await old.close();
    }
  });
});

describe('pgvector version check', () => {
  it('warns below 0.8.4 only', () => {
    const lines: string[] = [];
    const log = createLogger('warn');
    log.warn = ((_obj: unknown, msg: string) => {
      lines.push(msg);
    }) as never;
    expect(warnIfOldPgvector(log, '0.8.0')).toBe(true);
    expect(warnIfOldPgvector(log, '0.8.4')).toBe(false);
    expect(warnIfOldPgvector(log, '0.10.0')).toBe(false);
    expect(lines).toEqual([expect.stringMatching(/pgvector 0.8.0 is older than 0.8.4/)]);
  });
});

describe(`upgrading to the listed-voiceprints release on ${engine}`, () => {
  it('lists the voiceprints of the identities on the watchlist, and of no other', async () => {
    const old = await createTestDatabase({ migrated: false });
    try {
      await migrateUpTo(old, '0007_voices_alerts');
      const unit = `[${Array.from({ length: 192 }, (_, i) => (i === 0 ? 1 : 0)).join(',')}]`;
      const [listed, other] = await queryRows<{ id: string }>(
        old.db,
        sql`insert into identities (kind, origin) values ('fraudster', 'analyst'), ('unknown', 'online') returning id`,
      );
      const voiceprintsOf = async (identityId: string | undefined, label: string) => {
        const [recording] = await queryRows<{ id: string }>(
          old.db,
          sql`insert into recordings (source, status) values ('import', 'complete') returning id`,
        );
        const rows = await queryRows<{ id: string }>(
          old.db,
          sql`insert into voiceprints (recording_id, speaker_label, embedding, raw_norm, speech_seconds, utterance_count, identity_id)
              values (${recording?.id}, ${label}, ${unit}::vector, 1, 10, 1, ${identityId}) returning id`,
        );
        return rows.map((r) => r.id);
      };
      const listedVoiceprints = [...(await voiceprintsOf(listed?.id, 'a')), ...(await voiceprintsOf(listed?.id, 'b'))];
      await voiceprintsOf(other?.id, 'c');
      await old.db.execute(
        sql`insert into watchlist_entries (identity_id, reason, source) values (${listed?.id}, 'case 1', 'api')`,
      );
      await migrateDatabase(old);
      const rows = await queryRows<{ voiceprint_id: string; identity_id: string }>(
        old.db,
        sql`select voiceprint_id, identity_id from listed_voiceprints order by voiceprint_id`,
      );
      expect(rows).toEqual(listedVoiceprints.sort().map((id) => ({ voiceprint_id: id, identity_id: listed?.id })));
    } finally {
      await old.close();
    }
  });
});

describe(`upgrading to the spoofed-utterances release on ${engine}`, () => {
  it('copies the stored spoofed utterances with an embedding into spoofed_utterances, and the trigger copies new ones', async () => {
    const old = await createTestDatabase({ migrated: false });
    try {
      await migrateUpTo(old, '0012_spoof_cluster_history');
      const vector = (hot: number) => `[${Array.from({ length: 768 }, (_, i) => (i === hot ? 1 : 0)).join(',')}]`;
      const [recording] = await queryRows<{ id: string }>(
        old.db,
        sql`insert into recordings (source, status) values ('import', 'complete') returning id`,
      );
      const stored = await queryRows<{ id: string; label: string }>(
        old.db,
        sql`insert into utterances (recording_id, upstream_id, deepfake_label, p_spoofed, deepfake_embedding)
            values (${recording?.id}, '0', 'spoofed', 0.99, ${vector(0)}::halfvec),
                   (${recording?.id}, '1', 'bonafide', 0.01, ${vector(1)}::halfvec),
                   (${recording?.id}, '2', 'spoofed', 0.99, null)
            returning id, deepfake_label as label`,
      );
      await migrateDatabase(old);
      const copied = () =>
        queryRows<{ id: string }>(old.db, sql`select id from spoofed_utterances order by id`).then((r) =>
          r.map((x) => x.id),
        );
      expect(await copied()).toEqual([stored[0]?.id]);
      const [later] = await queryRows<{ id: string }>(
        old.db,
        sql`insert into utterances (recording_id, upstream_id, deepfake_label, p_spoofed, deepfake_embedding)
            values (${recording?.id}, '3', 'spoofed', 0.99, ${vector(2)}::halfvec) returning id`,
      );
      expect(await copied()).toEqual([stored[0]?.id, later?.id].sort());
      await old.db.execute(sql`delete from recordings where id = ${recording?.id}`);
      expect(await copied()).toEqual([]);
    } finally {
      await old.close();
    }
  });
});
