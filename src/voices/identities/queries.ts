import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';
import type { AssignmentSource, IdentityKind, IdentityOrigin } from '../../db/schema.ts';
import { LIST_LIMIT_DEFAULT } from '../../http/limits.ts';
import { isUuid } from '../../ids.ts';
import { encodeListCursor, type ListPosition, type Page } from '../../recordings/queries.ts';
import { PROPOSABLE_KINDS } from '../staff/queries.ts';

/**
 * The SQL of the identity views and of the checks an analyst's change makes before it goes
 * through membership.ts (the only writer of membership). Lists page by keyset on (a time in
 * microseconds, id), newest first, with the cursor format of the recordings list.
 */

/** How many nearest identities a view shows. */
export const NEAREST_IDENTITIES = 5;

export type IdentitySummary = {
  id: string;
  kind: IdentityKind;
  name: string | null;
  accountRef: string | null;
  /** its recordings' distinct account refs plus its own, sorted */
  accountRefs: string[];
  recordingCount: number;
  voiceprintCount: number;
  firstSeenAt: string;
  lastSeenAt: string;
  /** it has a live watchlist entry */
  watchlisted: boolean;
  origin: IdentityOrigin;
  analystEditedAt: string | null;
  mergedInto: string | null;
  retiredAt: string | null;
  createdAt: string;
  updatedAt: string;
};

type SummaryRow = {
  id: string;
  kind: IdentityKind;
  name: string | null;
  accountRef: string | null;
  accountRefs: string[] | null;
  recordingCount: number | string;
  voiceprintCount: number | string;
  firstSeenAt: Date | string;
  lastSeenAt: Date | string;
  origin: IdentityOrigin;
  analystEditedAt: Date | string | null;
  mergedInto: string | null;
  retiredAt: Date | string | null;
  createdAt: Date | string;
  updatedAt: Date | string;
  createdAtMicros: string;
  watchlisted: boolean;
};

const iso = (value: Date | string) => new Date(value).toISOString();
const isoOrNull = (value: Date | string | null) => (value === null ? null : iso(value));

function toSummary(row: SummaryRow): IdentitySummary {
  const refs = new Set((row.accountRefs ?? []).filter((r): r is string => r !== null));
  if (row.accountRef !== null) refs.add(row.accountRef);
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    accountRef: row.accountRef,
    accountRefs: [...refs].sort(),
    recordingCount: Number(row.recordingCount),
    voiceprintCount: Number(row.voiceprintCount),
    firstSeenAt: iso(row.firstSeenAt),
    lastSeenAt: iso(row.lastSeenAt),
    watchlisted: Boolean(row.watchlisted),
    origin: row.origin,
    analystEditedAt: isoOrNull(row.analystEditedAt),
    mergedInto: row.mergedInto,
    retiredAt: isoOrNull(row.retiredAt),
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

/**
 * The summary columns of `identities i`, with what its members' recordings say (one lateral
 * aggregate over `voiceprints_identity_idx`). Seen times are the calls' `call_at` (a recording
 * without one counts from when it was stored), and the identity's own creation when it has none.
 */
const summarySelect = sql`
  select i.id, i.kind, i.name, i.account_ref as "accountRef", i.origin,
         i.analyst_edited_at as "analystEditedAt", i.merged_into as "mergedInto", i.retired_at as "retiredAt",
         i.created_at as "createdAt", i.updated_at as "updatedAt",
         (extract(epoch from i.created_at) * 1000000)::bigint::text as "createdAtMicros",
         coalesce(s.recordings, 0) as "recordingCount", coalesce(s.voiceprints, 0) as "voiceprintCount",
         coalesce(s.first_seen, i.created_at) as "firstSeenAt", coalesce(s.last_seen, i.created_at) as "lastSeenAt",
         s.account_refs::text[] as "accountRefs",
         exists (select 1 from watchlist_entries w where w.identity_id = i.id and w.removed_at is null) as watchlisted
  from identities i
  left join lateral (
    select count(distinct v.recording_id)::int as recordings, count(*)::int as voiceprints,
           min(coalesce(r.call_at, r.created_at)) as first_seen, max(coalesce(r.call_at, r.created_at)) as last_seen,
           array_agg(distinct r.account_ref) filter (where r.account_ref is not null) as account_refs
    from voiceprints v join recordings r on r.id = v.recording_id
    where v.identity_id = i.id
  ) s on true`;

/** One identity's summary, merged and retired ones included; null when there is none. */
export async function findIdentitySummary(db: Db, id: string): Promise<IdentitySummary | null> {
  const [row] = await queryRows<SummaryRow>(db, sql`${summarySelect} where i.id = ${id}`);
  return row ? toSummary(row) : null;
}

export type IdentityListFilters = {
  kind?: IdentityKind;
  /** identities heard on this account or enrolled for it */
  accountRef?: string;
  /** merged and retired identities too (left out by default) */
  includeRetired?: boolean;
  /** only identities voxtrace proposes as staff and nobody has decided on yet */
  proposedStaff?: boolean;
  limit?: number;
  after?: ListPosition;
};

export type { Page };

/**
 * Identities newest first, one page at a time. `accountRef` matches the identity's own account and
 * the accounts of its members' recordings (what `accountRefs` shows).
 * @example const page = await listIdentities(db, { kind: 'fraudster', limit: 100 });
 */
export async function listIdentities(db: Db, filters: IdentityListFilters): Promise<Page<IdentitySummary>> {
  const limit = filters.limit ?? LIST_LIMIT_DEFAULT;
  const conditions: SQL[] = [sql`true`];
  if (!filters.includeRetired) conditions.push(sql`i.retired_at is null and i.merged_into is null`);
  if (filters.kind) conditions.push(sql`i.kind = ${filters.kind}`);
  if (filters.proposedStaff) {
    conditions.push(
      sql`i.kind = any(${sql.param([...PROPOSABLE_KINDS])}::text[])
          and i.id in (select identity_id from staff_proposals where status = 'proposed')`,
    );
  }
  if (filters.accountRef !== undefined) {
    // from the account's side (identities_account_idx; its recordings by recordings_account_call_idx,
    // their voiceprints by recording), not a probe per identity
    conditions.push(sql`i.id in (
      select id from identities where account_ref = ${filters.accountRef}
      union
      select v.identity_id from recordings r join voiceprints v on v.recording_id = r.id
      where r.account_ref = ${filters.accountRef} and v.identity_id is not null)`);
  }
  if (filters.after) {
    conditions.push(
      sql`(i.created_at, i.id) < (timestamptz 'epoch' + ${filters.after.createdAtMicros}::bigint * interval '1 microsecond', ${filters.after.id}::uuid)`,
    );
  }
  const rows = await queryRows<SummaryRow>(
    db,
    sql`${summarySelect} where ${sql.join(conditions, sql` and `)}
        order by i.created_at desc, i.id desc
        limit ${limit + 1}`,
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toSummary),
    nextCursor:
      rows.length > limit && last ? encodeListCursor({ createdAtMicros: last.createdAtMicros, id: last.id }) : null,
  };
}

export type NearIdentity = { identityId: string; similarity: number };

/**
 * The live identities whose centroids are nearest this one's, most similar first, itself left out.
 * Ordered by `<=>` against the centroid alone, with a LIMIT and no other filter, so that the HNSW
 * index `identities_centroid_hnsw` answers it: retired and merged identities have no centroid
 * (membership.ts clears it with the last member), so the index holds live identities only; the
 * outer filter only keeps that promise should a row ever break it. An identity without a centroid
 * has no neighbours.
 */
export async function nearestIdentities(db: Db, id: string, k = NEAREST_IDENTITIES): Promise<NearIdentity[]> {
  const rows = await queryRows<{ identityId: string; similarity: number | string | null }>(
    db,
    nearestIdentitiesQuery(id, k),
  );
  return rows.flatMap((r) =>
    r.similarity === null ? [] : [{ identityId: r.identityId, similarity: Number(r.similarity) }],
  );
}

/** The SQL of `nearestIdentities` (tests read its plan). */
export function nearestIdentitiesQuery(id: string, k: number): SQL {
  const centroid = sql`(select centroid from identities where id = ${id})`;
  return sql`select near.id as "identityId", 1 - near.distance as similarity
      from (select n.id, n.retired_at, n.merged_into, n.centroid <=> ${centroid} as distance
            from identities n
            where n.id <> ${id}
            order by n.centroid <=> ${centroid}
            limit ${k}) near
      where near.retired_at is null and near.merged_into is null
      order by near.distance`;
}

export type IdentityVoiceprint = {
  voiceprintId: string;
  recordingId: string;
  speakerLabel: string;
  accountRef: string | null;
  channel: string | null;
  callAt: string | null;
  speechSeconds: number;
  meanPSpoofed: number | null;
  assignedBy: AssignmentSource | null;
  assignedAt: string | null;
};

/**
 * An identity's voiceprints, latest call first (a recording without `call_at` by when it was
 * stored), one page at a time.
 */
export async function listIdentityVoiceprints(
  db: Db,
  identityId: string,
  page: { limit?: number; after?: ListPosition },
): Promise<Page<IdentityVoiceprint>> {
  const limit = page.limit ?? LIST_LIMIT_DEFAULT;
  const seen = sql`coalesce(r.call_at, r.created_at)`;
  const after = page.after
    ? sql`and (${seen}, v.id) < (timestamptz 'epoch' + ${page.after.createdAtMicros}::bigint * interval '1 microsecond', ${page.after.id}::uuid)`
    : sql``;
  const rows = await queryRows<{
    voiceprintId: string;
    recordingId: string;
    speakerLabel: string;
    accountRef: string | null;
    channel: string | null;
    callAt: Date | string | null;
    speechSeconds: number | string;
    meanPSpoofed: number | string | null;
    assignedBy: AssignmentSource | null;
    assignedAt: Date | string | null;
    seenMicros: string;
  }>(
    db,
    sql`select v.id as "voiceprintId", v.recording_id as "recordingId", v.speaker_label as "speakerLabel",
               r.account_ref as "accountRef", r.channel, r.call_at as "callAt", v.speech_seconds as "speechSeconds",
               v.mean_p_spoofed as "meanPSpoofed", v.assigned_by as "assignedBy", v.assigned_at as "assignedAt",
               (extract(epoch from ${seen}) * 1000000)::bigint::text as "seenMicros"
        from voiceprints v join recordings r on r.id = v.recording_id
        where v.identity_id = ${identityId} ${after}
        order by ${seen} desc, v.id desc
        limit ${limit + 1}`,
  );
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(({ seenMicros: _, ...v }) => ({
      ...v,
      callAt: isoOrNull(v.callAt),
      speechSeconds: Number(v.speechSeconds),
      meanPSpoofed: v.meanPSpoofed === null ? null : Number(v.meanPSpoofed),
      assignedAt: isoOrNull(v.assignedAt),
    })),
    nextCursor:
      rows.length > limit && last
        ? encodeListCursor({ createdAtMicros: last.seenMicros, id: last.voiceprintId })
        : null,
  };
}

export type IdentityHistoryEntry = {
  id: string;
  action: string;
  voiceprintIds: string[];
  relatedIdentityIds: string[];
  reason: string | null;
  source: 'api' | 'cli' | 'system';
  keyId: string | null;
  requestId: string | null;
  createdAt: string;
};

/** An identity's history, newest first, one page at a time (`identity_events_identity_idx`). */
export async function listIdentityHistory(
  db: Db,
  identityId: string,
  page: { limit?: number; after?: ListPosition },
): Promise<Page<IdentityHistoryEntry>> {
  const limit = page.limit ?? LIST_LIMIT_DEFAULT;
  const after = page.after
    ? sql`and (e.created_at, e.id) < (timestamptz 'epoch' + ${page.after.createdAtMicros}::bigint * interval '1 microsecond', ${page.after.id}::uuid)`
    : sql``;
  const rows = await queryRows<{
    id: string;
    action: string;
    voiceprintIds: string[];
    relatedIdentityIds: string[];
    reason: string | null;
    source: 'api' | 'cli' | 'system';
    keyId: string | null;
    requestId: string | null;
    createdAt: Date | string;
    createdAtMicros: string;
  }>(
    db,
    sql`select e.id, e.action, e.voiceprint_ids::text[] as "voiceprintIds",
               e.related_identity_ids::text[] as "relatedIdentityIds", e.reason, e.source, e.key_id as "keyId",
               e.request_id as "requestId", e.created_at as "createdAt",
               (extract(epoch from e.created_at) * 1000000)::bigint::text as "createdAtMicros"
        from identity_events e
        where e.identity_id = ${identityId} ${after}
        order by e.created_at desc, e.id desc
        limit ${limit + 1}`,
  );
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(({ createdAtMicros: _, ...e }) => ({ ...e, createdAt: iso(e.createdAt) })),
    nextCursor:
      rows.length > limit && last ? encodeListCursor({ createdAtMicros: last.createdAtMicros, id: last.id }) : null,
  };
}

/** What an analyst's change checks about one identity, read under a row lock. */
export type LockedIdentity = {
  id: string;
  kind: IdentityKind;
  accountRef: string | null;
  mergedInto: string | null;
  retiredAt: Date | string | null;
};

/**
 * Locks these identities (in id order, so that two changes never wait on each other in a cycle)
 * and returns those that exist.
 */
export async function lockIdentities(tx: Db, candidates: readonly string[]): Promise<LockedIdentity[]> {
  // what is not a uuid names no row (and would make the cast throw)
  const ids = candidates.filter(isUuid);
  if (ids.length === 0) return [];
  return queryRows<LockedIdentity>(
    tx,
    sql`select id, kind, account_ref as "accountRef", merged_into as "mergedInto", retired_at as "retiredAt"
        from identities where id = any(${sql.param([...ids])}::uuid[])
        order by id for update`,
  );
}

/** What an analyst's change checks about one voiceprint, read under a row lock. */
export type LockedVoiceprint = {
  id: string;
  recordingId: string;
  identityId: string | null;
  speechSeconds: number;
  meanPSpoofed: number | null;
};

/** Locks these voiceprints (in id order) and returns those that exist. */
export async function lockVoiceprints(tx: Db, candidates: readonly string[]): Promise<LockedVoiceprint[]> {
  const ids = candidates.filter(isUuid);
  if (ids.length === 0) return [];
  return lockVoiceprintsWhere(tx, sql`id = any(${sql.param([...ids])}::uuid[])`);
}

/** The voiceprints matching `condition`, locked in id order, in one statement. */
async function lockVoiceprintsWhere(tx: Db, condition: SQL): Promise<LockedVoiceprint[]> {
  const rows = await queryRows<{
    id: string;
    recordingId: string;
    identityId: string | null;
    speechSeconds: number | string;
    meanPSpoofed: number | string | null;
  }>(
    tx,
    sql`select id, recording_id as "recordingId", identity_id as "identityId", speech_seconds as "speechSeconds", mean_p_spoofed as "meanPSpoofed"
        from voiceprints where ${condition}
        order by id for update`,
  );
  return rows.map(toLockedVoiceprint);
}

function toLockedVoiceprint(row: {
  id: string;
  recordingId: string;
  identityId: string | null;
  speechSeconds: number | string;
  meanPSpoofed: number | string | null;
}): LockedVoiceprint {
  return {
    ...row,
    speechSeconds: Number(row.speechSeconds),
    meanPSpoofed: row.meanPSpoofed === null ? null : Number(row.meanPSpoofed),
  };
}

/**
 * The voiceprints of these identities, locked (in id order): what a merge moves. One statement, so
 * that a voiceprint another transaction moves away meanwhile is skipped (the lock re-checks the
 * condition), not taken back.
 */
export async function lockMembers(tx: Db, identityIds: readonly string[]): Promise<LockedVoiceprint[]> {
  if (identityIds.length === 0) return [];
  return lockVoiceprintsWhere(tx, sql`identity_id = any(${sql.param([...identityIds])}::uuid[])`);
}

/** How many voiceprints each of these identities holds now. */
export async function memberCounts(tx: Db, identityIds: readonly string[]): Promise<Map<string, number>> {
  if (identityIds.length === 0) return new Map();
  const rows = await queryRows<{ identityId: string; n: number | string }>(
    tx,
    sql`select identity_id as "identityId", count(*)::int as n from voiceprints
        where identity_id = any(${sql.param([...identityIds])}::uuid[]) group by identity_id`,
  );
  return new Map(rows.map((r) => [r.identityId, Number(r.n)]));
}

/** Whether an identity with this id exists (merged and retired ones included). */
export async function identityExists(db: Db, id: string): Promise<boolean> {
  const rows = await queryRows<{ id: string }>(db, sql`select id from identities where id = ${id}`);
  return rows.length > 0;
}
