import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';
import type { IdentityKind } from '../../db/schema.ts';
import { LIST_LIMIT_DEFAULT } from '../../http/limits.ts';
import { encodeListCursor, type ListPosition, type Page } from '../../recordings/queries.ts';
import { newestCalibrationId } from '../calibration.ts';
import { relistIdentities } from './listed.ts';

/**
 * The SQL of the watchlist: its entries, the look-back over history when one is added, and the
 * check of each newly stored recording against every listed voice.
 */

/**
 * The advisory lock between adding or removing an entry (exclusive) and the analysis step's check
 * (shared): a recording whose check ran before an entry committed is in the look-back's history
 * (its voiceprints were committed before its step ran), and one stored later sees the entry.
 */
export const WATCHLIST_LOCK = 0x766f_776c; // 'vowl'

export async function lockWatchlist(tx: Db, mode: 'shared' | 'exclusive'): Promise<void> {
  if (mode === 'shared') await tx.execute(sql`select pg_advisory_xact_lock_shared(${WATCHLIST_LOCK})`);
  else await tx.execute(sql`select pg_advisory_xact_lock(${WATCHLIST_LOCK})`);
}

export type WatchlistEntry = {
  id: string;
  identityId: string;
  name: string | null;
  kind: IdentityKind;
  reason: string;
  voiceprintId: string | null;
  seedRecordingId: string | null;
  lookBack: { checked: number; hits: number };
  createdAt: string;
  keyId: string | null;
};

type EntryRow = Omit<WatchlistEntry, 'lookBack' | 'createdAt'> & {
  lookBackChecked: number;
  lookBackHits: number;
  createdAt: Date | string;
  createdAtMicros: string;
};

const entryColumns = sql`e.id, e.identity_id as "identityId", i.name, i.kind, e.reason, e.voiceprint_id as "voiceprintId",
  e.seed_recording_id as "seedRecordingId", e.look_back_checked as "lookBackChecked", e.look_back_hits as "lookBackHits",
  e.created_at as "createdAt", e.key_id as "keyId",
  (extract(epoch from e.created_at) * 1000000)::bigint::text as "createdAtMicros"`;

function toEntry({ lookBackChecked, lookBackHits, createdAtMicros: _, ...row }: EntryRow): WatchlistEntry {
  return {
    ...row,
    lookBack: { checked: lookBackChecked, hits: lookBackHits },
    createdAt: new Date(row.createdAt).toISOString(),
  };
}

/** The live entry of an identity, or null. */
export async function liveEntryOf(db: Db, identityId: string): Promise<WatchlistEntry | null> {
  const [row] = await queryRows<EntryRow>(
    db,
    sql`select ${entryColumns} from watchlist_entries e join identities i on i.id = e.identity_id
        where e.identity_id = ${identityId} and e.removed_at is null`,
  );
  return row ? toEntry(row) : null;
}

/** Live entries, newest first, one page at a time (`watchlist_entries_created_idx`). */
export async function listEntries(
  db: Db,
  page: { limit?: number; after?: ListPosition },
): Promise<Page<WatchlistEntry>> {
  const limit = page.limit ?? LIST_LIMIT_DEFAULT;
  const after = page.after
    ? sql`and (e.created_at, e.id) < (timestamptz 'epoch' + ${page.after.createdAtMicros}::bigint * interval '1 microsecond', ${page.after.id}::uuid)`
    : sql``;
  const rows = await queryRows<EntryRow>(
    db,
    sql`select ${entryColumns} from watchlist_entries e join identities i on i.id = e.identity_id
        where e.removed_at is null ${after}
        order by e.created_at desc, e.id desc
        limit ${limit + 1}`,
  );
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(toEntry),
    nextCursor:
      rows.length > limit && last ? encodeListCursor({ createdAtMicros: last.createdAtMicros, id: last.id }) : null,
  };
}

export async function insertEntry(
  tx: Db,
  entry: {
    identityId: string;
    reason: string;
    voiceprintId: string | null;
    seedRecordingId: string | null;
    checked: number;
    hits: number;
    actor: { source: string; keyId: string | null; requestId: string | null };
  },
): Promise<void> {
  await tx.execute(
    sql`insert into watchlist_entries
          (identity_id, reason, voiceprint_id, seed_recording_id, look_back_checked, look_back_hits, source, key_id, request_id)
        values (${entry.identityId}, ${entry.reason}, ${entry.voiceprintId}, ${entry.seedRecordingId}, ${entry.checked},
                ${entry.hits}, ${entry.actor.source}, ${entry.actor.keyId}, ${entry.actor.requestId})`,
  );
  await relistIdentities(tx, [entry.identityId]);
}

/** Ends the live entry of an identity; false when it has none. */
export async function endEntry(
  tx: Db,
  identityId: string,
  removal: { reason: string; keyId: string | null },
): Promise<boolean> {
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`update watchlist_entries set removed_at = now(), removed_reason = ${removal.reason}, removed_key_id = ${removal.keyId}
        where identity_id = ${identityId} and removed_at is null
        returning id`,
  );
  await relistIdentities(tx, [identityId]);
  return rows.length > 0;
}

/**
 * Carries the live entries of identities merged into `intoId` over to it (one live entry per
 * identity: the oldest moves when it has none, the others end), so that a merge never takes a voice
 * off the watchlist.
 */
export async function carryEntriesOnMerge(tx: Db, fromIds: readonly string[], intoId: string): Promise<void> {
  if (fromIds.length === 0) return;
  const from = sql.param([...fromIds]);
  const listed = await liveEntryOf(tx, intoId);
  if (!listed) {
    await tx.execute(
      sql`update watchlist_entries set identity_id = ${intoId}
          where id = (select id from watchlist_entries
                      where identity_id = any(${from}::uuid[]) and removed_at is null
                      order by created_at, id limit 1)`,
    );
  }
  await tx.execute(
    sql`update watchlist_entries set removed_at = now(), removed_reason = ${`merged into identity ${intoId}, which is listed`}
        where identity_id = any(${from}::uuid[]) and removed_at is null`,
  );
  await relistIdentities(tx, [...fromIds, intoId]);
}

/** A voiceprint of the new recording that matches a listed identity, with its best match. */
export type WatchlistMatch = {
  identityId: string;
  voiceprintId: string;
  recordingId: string;
  accountRef: string | null;
  /** the listed voiceprint it is closest to; null for a member with no listed voiceprint within reach */
  matchedVoiceprintId: string | null;
  similarity: number;
};

type MatchRow = Omit<WatchlistMatch, 'similarity'> & { similarity: number | string };

/**
 * The listed identities a recording's voiceprints match: as members, or at a similarity of at
 * least `minSimilarity` to any of their voiceprints (of other recordings). Every voiceprint of every
 * listed identity is compared — exact, never an index walk: the watchlist is small next to the
 * voiceprints, and a hit missed by an approximate search is a fraudster let through. The listed
 * voiceprints are read from `listed_voiceprints` (listed.ts); a recording an entry was made from is
 * never its hit. One row per (identity, voiceprint), its closest match.
 */
export async function recordingMatches(
  tx: Db,
  recordingId: string,
  minSimilarity: number,
): Promise<{ matches: WatchlistMatch[]; calibrationId: string | null }> {
  // one statement, one round trip (the analysis step runs this for every stored recording): the
  // matches, and the newest calibration's id, to tell whether `minSimilarity` came from it
  const rows = await queryRows<Partial<MatchRow> & { calibrationId: string | null }>(
    tx,
    sql`select ${newestCalibrationId} as "calibrationId", m.*
        from (values (1)) as one (x) left join (${watchlistMatchesQuery(recordingId, minSimilarity)}) m on true`,
  );
  const matches = rows
    .filter((r) => r.identityId)
    .map(({ calibrationId: _, ...r }) => ({ ...(r as MatchRow), similarity: Number(r.similarity) }));
  return { matches, calibrationId: rows[0]?.calibrationId ?? null };
}

/**
 * A recording's matches in one sequential pass over `listed_voiceprints` (tests read its plan): a
 * listed voiceprint of another recording within reach, or the voiceprint itself when it is a member
 * of a listed identity (a hit whatever its similarity: its identity may have no other recording
 * yet; its similarity then is to the identity's centroid). The closest listed voiceprint per
 * identity and voiceprint of the recording; an identity listed from this very recording is left out.
 */
export function watchlistMatchesQuery(recordingId: string, minSimilarity: number): SQL {
  // embeddings are stored at unit length, so the inner product is the cosine, and cheaper; the
  // identities listed from this recording are read once, not probed per row
  return sql`select distinct on (l.identity_id, f.id)
                    l.identity_id as "identityId", f.id as "voiceprintId", f.recording_id as "recordingId",
                    r.account_ref as "accountRef",
                    case when l.voiceprint_id = f.id then null else l.voiceprint_id end as "matchedVoiceprintId",
                    case when l.voiceprint_id = f.id
                         then coalesce((select 1 - (f.embedding <=> i.centroid) from identities i where i.id = l.identity_id), 1)
                         else -(l.embedding <#> f.embedding) end as similarity
             from voiceprints f
             join recordings r on r.id = f.recording_id
             join listed_voiceprints l
               on l.voiceprint_id = f.id
                  or (l.recording_id <> f.recording_id and (l.embedding <#> f.embedding) <= ${-minSimilarity})
             where f.recording_id = ${recordingId}
               and l.identity_id not in (select e.identity_id from watchlist_entries e
                                         where e.removed_at is null and e.seed_recording_id = ${recordingId})
             order by l.identity_id, f.id, l.voiceprint_id = f.id, l.embedding <#> f.embedding`;
}

/** A voiceprint of an identity: what a look-back searches from. */
export type MemberVoiceprint = {
  id: string;
  recordingId: string;
  accountRef: string | null;
  similarityToCentroid: number;
};

export async function membersOf(tx: Db, identityId: string): Promise<MemberVoiceprint[]> {
  const rows = await queryRows<Omit<MemberVoiceprint, 'similarityToCentroid'> & { similarity: number | string | null }>(
    tx,
    sql`select v.id, v.recording_id as "recordingId", r.account_ref as "accountRef",
               1 - (v.embedding <=> i.centroid) as similarity
        from voiceprints v join recordings r on r.id = v.recording_id join identities i on i.id = v.identity_id
        where v.identity_id = ${identityId}
        order by v.id`,
  );
  return rows.map(({ similarity, ...r }) => ({ ...r, similarityToCentroid: Number(similarity ?? 1) }));
}

/** A stored voiceprint within reach of a voiceprint of the listed identity: the closest one. */
export type NearVoiceprint = {
  id: string;
  recordingId: string;
  accountRef: string | null;
  identityId: string | null;
  matchedVoiceprintId: string;
  similarity: number;
};

type NearRow = Omit<NearVoiceprint, 'similarity'> & { similarity: number | string };

/**
 * Every voiceprint outside identity `identityId`, and of another recording than the member it is
 * compared with, at a similarity of at least `minSimilarity` to any of the identity's voiceprints,
 * each with its closest member. One exact pass over all voiceprints, each compared with every
 * member: no index walk, since at 1,000,000 voiceprints a voice has hundreds of strangers within
 * reach at FAR 0.001, of which an HNSW walk from each member found 93 %, at ~0.4 s a member
 * (docs/voices.md). Returns them with the voiceprints compared (`compared`).
 */
export async function withinReachOfIdentity(
  tx: Db,
  identityId: string,
  minSimilarity: number,
): Promise<{ near: NearVoiceprint[]; compared: number }> {
  const members = await memberEmbeddings(tx, identityId);
  const [count] = await queryRows<{ n: number }>(
    tx,
    sql`select count(*)::int as n from voiceprints where identity_id is distinct from ${identityId}`,
  );
  if (members.length === 0) return { near: [], compared: count?.n ?? 0 };
  const rows = await queryRows<NearRow>(tx, withinReachOfIdentityQuery(identityId, members, minSimilarity));
  return { near: rows.map(toNear), compared: count?.n ?? 0 };
}

/** The embeddings of an identity's voiceprints, in pgvector's text form: the look-back's constants. */
export async function memberEmbeddings(tx: Db, identityId: string): Promise<string[]> {
  const rows = await queryRows<{ embedding: string }>(
    tx,
    sql`select embedding::text as embedding from voiceprints where identity_id = ${identityId}`,
  );
  return rows.map((r) => r.embedding);
}

/**
 * The look-back's pass (tests read its plan): a sequential scan of voiceprints whose filter compares
 * each with the members' embeddings, given as constants (`memberEmbeddings`, pgvector's text form):
 * an `or` of inner products (embeddings are stored at unit length, so each is the cosine) costs
 * about a third of joining every voiceprint to every member row (docs/voices.md).
 * Only the few that pass are joined to the members, for the closest, and to their recordings.
 */
export function withinReachOfIdentityQuery(
  identityId: string,
  memberEmbeddings: readonly string[],
  minSimilarity: number,
): SQL {
  const reach = -minSimilarity;
  const nearAny = sql.join(
    memberEmbeddings.map((e) => sql`v.embedding <#> ${e}::vector <= ${reach}`),
    sql` or `,
  );
  return sql`select n.id, n.recording_id as "recordingId",
                 (select r.account_ref from recordings r where r.id = n.recording_id) as "accountRef",
                 n.identity_id as "identityId", n.matched_id as "matchedVoiceprintId", n.similarity
          from (select distinct on (v.id) v.id, v.recording_id, v.identity_id, m.id as matched_id,
                       -(v.embedding <#> m.embedding) as similarity
                from voiceprints v
                join voiceprints m on m.identity_id = ${identityId}
                  and (v.embedding <#> m.embedding) <= ${reach} and v.recording_id <> m.recording_id
                where v.identity_id is distinct from ${identityId} and (${nearAny})
                order by v.id, v.embedding <#> m.embedding) n`;
}

const toNear = (r: NearRow): NearVoiceprint => ({ ...r, similarity: Number(r.similarity) });
