import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';
import type { IdentityKind } from '../../db/schema.ts';
import { LIST_LIMIT_DEFAULT } from '../../http/limits.ts';
import { encodeListCursor, type ListPosition, type Page } from '../../recordings/queries.ts';

/** The SQL of the account views. */

export type AccountVoice = {
  /** null: a voiceprint in no identity (then `voiceprintIds` is that one) */
  identityId: string | null;
  kind: IdentityKind | null;
  name: string | null;
  watchlisted: boolean;
  /** its voiceprints on this account, earliest call first */
  voiceprintIds: string[];
  recordingCount: number;
  firstSeenAt: string;
  lastSeenAt: string;
  /** the other accounts its voice was heard on, sorted (empty for an unassigned voiceprint) */
  otherAccountRefs: string[];
};

type Row = Omit<AccountVoice, 'firstSeenAt' | 'lastSeenAt' | 'otherAccountRefs'> & {
  groupId: string;
  firstSeenAt: Date | string;
  lastSeenAt: Date | string;
  otherAccountRefs: string[] | null;
  lastSeenMicros: string;
};

/**
 * Every voice heard on an account — one item per identity, one per unassigned voiceprint — most
 * recently heard first, one page at a time (keyset on (last heard, identity or voiceprint id)). The
 * account's recordings come from `recordings_account_call_idx`, their voiceprints by recording, and
 * each identity's other accounts from `voiceprints_identity_idx`.
 * @example const page = await accountVoices(db, 'acc-1042', { limit: 50 });
 */
export async function accountVoices(
  db: Db,
  accountRef: string,
  page: { limit?: number; after?: ListPosition },
): Promise<Page<AccountVoice>> {
  const limit = page.limit ?? LIST_LIMIT_DEFAULT;
  const after = page.after
    ? sql`where (g.last_seen, g.group_id) < (timestamptz 'epoch' + ${page.after.createdAtMicros}::bigint * interval '1 microsecond', ${page.after.id}::uuid)`
    : sql``;
  const rows = await queryRows<Row>(
    db,
    sql`with heard as (
          select v.id, v.identity_id, v.recording_id, coalesce(r.call_at, r.created_at) as at
          from recordings r join voiceprints v on v.recording_id = r.id
          where r.account_ref = ${accountRef}
        ), groups as (
          select coalesce(identity_id, id) as group_id, identity_id, array_agg(id order by at, id)::text[] as voiceprint_ids,
                 count(distinct recording_id)::int as recordings, min(at) as first_seen, max(at) as last_seen
          from heard group by coalesce(identity_id, id), identity_id
        )
        select g.group_id as "groupId", g.identity_id as "identityId", i.kind, i.name,
               exists (select 1 from watchlist_entries w where w.identity_id = g.identity_id and w.removed_at is null) as watchlisted,
               g.voiceprint_ids as "voiceprintIds", g.recordings as "recordingCount",
               g.first_seen as "firstSeenAt", g.last_seen as "lastSeenAt",
               (extract(epoch from g.last_seen) * 1000000)::bigint::text as "lastSeenMicros",
               (select array_agg(distinct r2.account_ref order by r2.account_ref)
                from voiceprints v2 join recordings r2 on r2.id = v2.recording_id
                where g.identity_id is not null and v2.identity_id = g.identity_id
                  and r2.account_ref is distinct from ${accountRef} and r2.account_ref is not null) as "otherAccountRefs"
        from groups g left join identities i on i.id = g.identity_id
        ${after}
        order by g.last_seen desc, g.group_id desc
        limit ${limit + 1}`,
  );
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(({ groupId: _, lastSeenMicros: __, ...r }) => ({
      ...r,
      watchlisted: Boolean(r.watchlisted),
      firstSeenAt: new Date(r.firstSeenAt).toISOString(),
      lastSeenAt: new Date(r.lastSeenAt).toISOString(),
      otherAccountRefs: r.otherAccountRefs ?? [],
    })),
    nextCursor:
      rows.length > limit && last ? encodeListCursor({ createdAtMicros: last.lastSeenMicros, id: last.groupId }) : null,
  };
}
