import { type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';

/**
 * `listed_voiceprints`: every voiceprint of every listed identity with its embedding, what the check of
 * each new recording compares against (queries.ts, `watchlistMatchesQuery`). It is derived from
 * `voiceprints.identity_id` and the live `watchlist_entries`, so each writer of either brings it up
 * to date in its own transaction: membership (membership.ts) for the voiceprints it moves, the
 * watchlist (watchlist.ts, carryEntriesOnMerge) for the identities whose entry it adds, ends or
 * carries. Every one of them holds the identity-assignment lock, so no two of them interleave.
 */

/** Brings the listing of `voiceprintIds` up to date with the identity each is in now. */
export async function relistVoiceprints(tx: Db, voiceprintIds: readonly string[]): Promise<void> {
  if (voiceprintIds.length === 0) return;
  const ids = sql.param([...voiceprintIds]);
  await relist(tx, { listed: sql`voiceprint_id = any(${ids}::uuid[])`, voiceprints: sql`v.id = any(${ids}::uuid[])` });
}

/** Brings the listing of every voiceprint of `identityIds` up to date with their entries now. */
export async function relistIdentities(tx: Db, identityIds: readonly string[]): Promise<void> {
  if (identityIds.length === 0) return;
  const ids = sql.param([...identityIds]);
  await relist(tx, {
    listed: sql`identity_id = any(${ids}::uuid[])`,
    voiceprints: sql`v.identity_id = any(${ids}::uuid[])`,
  });
}

/**
 * Drops the listed rows `which.listed` selects, and lists again the voiceprints `which.voiceprints`
 * selects (the same ones, over `voiceprints v`) that are in an identity with a live entry.
 */
async function relist(tx: Db, which: { listed: SQL; voiceprints: SQL }): Promise<void> {
  await tx.execute(sql`delete from listed_voiceprints where ${which.listed}`);
  await tx.execute(
    sql`insert into listed_voiceprints (voiceprint_id, identity_id, recording_id, embedding)
        select v.id, v.identity_id, v.recording_id, v.embedding
        from voiceprints v
        join watchlist_entries e on e.identity_id = v.identity_id and e.removed_at is null
        where ${which.voiceprints}`,
  );
}
