import { sql } from 'drizzle-orm';
import type { Actor } from '../../audit/audit.ts';
import { type Db, queryRows } from '../../db/client.ts';
import { type AssignmentSource, type IdentityKind, type IdentityOrigin, identities } from '../../db/schema.ts';
import { ConflictError } from '../../errors.ts';
import { relistVoiceprints } from '../watchlist/listed.ts';

/**
 * The one place identity membership changes: every writer (online assignment, reclustering, an
 * analyst's create / merge / split / move) goes through these functions, so that a voiceprint is in
 * at most one identity, every identity's centroid and member count match its members, and every
 * change leaves a row in `identity_events`. They run inside the caller's transaction (`tx`).
 */

export type IdentityChange = {
  actor: Actor;
  /** what the history shows as the change's reason */
  reason?: string | null;
};

export type NewIdentity = IdentityChange & {
  kind: IdentityKind;
  origin: IdentityOrigin;
  name?: string | null;
  accountRef?: string | null;
  /** voiceprints that start in it (taken from any identity they were in) */
  voiceprintIds: readonly string[];
  assignedBy: AssignmentSource;
  /** the history's first action (`created`, `split`, `seeded`, …) */
  action: string;
  /** other identities the creation involved (the identity a split came from) */
  relatedIdentityIds?: readonly string[];
};

/**
 * Inserts an identity holding `voiceprintIds` and returns its id.
 * @example const id = await createIdentity(tx, { kind: 'unknown', origin: 'online', voiceprintIds: [a, b], assignedBy: 'online', action: 'seeded', actor: SYSTEM_ACTOR });
 */
export async function createIdentity(tx: Db, identity: NewIdentity): Promise<string> {
  const [row] = await tx
    .insert(identities)
    .values({
      kind: identity.kind,
      origin: identity.origin,
      name: identity.name ?? null,
      accountRef: identity.accountRef ?? null,
      analystEditedAt: identity.origin === 'analyst' ? sql`now()` : null,
    })
    .returning({ id: identities.id });
  if (!row) throw new Error('inserting an identity returned no row');
  const id = row.id;
  await recordIdentityEvent(tx, {
    identityId: id,
    action: identity.action,
    voiceprintIds: identity.voiceprintIds,
    relatedIdentityIds: identity.relatedIdentityIds ?? [],
    actor: identity.actor,
    reason: identity.reason,
  });
  if (identity.voiceprintIds.length > 0) {
    await moveVoiceprints(tx, id, identity.voiceprintIds, {
      assignedBy: identity.assignedBy,
      actor: identity.actor,
      reason: identity.reason,
      action: null,
    });
  } else {
    await refreshCentroid(tx, id);
  }
  return id;
}

export type Move = IdentityChange & {
  assignedBy: AssignmentSource;
  /** the target's history action (`joined`, `moved_in`, `merged`, …); null records none (the caller did) */
  action: string | null;
};

/**
 * Puts `voiceprintIds` into `identityId`, out of whatever identity held them. The identities they
 * leave get a `moved_out` event and a fresh centroid; one left with no member is retired.
 * @example await moveVoiceprints(tx, identityId, [voiceprintId], { assignedBy: 'online', action: 'joined', actor: SYSTEM_ACTOR });
 */
export async function moveVoiceprints(
  tx: Db,
  identityId: string,
  voiceprintIds: readonly string[],
  move: Move,
): Promise<void> {
  if (voiceprintIds.length === 0) return;
  await lockLiveTarget(tx, identityId);
  const previous = await identitiesHolding(tx, voiceprintIds, identityId);
  await tx.execute(
    sql`update voiceprints
        set identity_id = ${identityId}, assigned_by = ${move.assignedBy}, assigned_at = now()
        where id = any(${sql.param([...voiceprintIds])}::uuid[])`,
  );
  if (move.action) {
    await recordIdentityEvent(tx, {
      identityId,
      action: move.action,
      voiceprintIds,
      relatedIdentityIds: previous.map((p) => p.identityId),
      actor: move.actor,
      reason: move.reason,
    });
  }
  await refreshCentroid(tx, identityId);
  for (const left of previous) {
    await recordIdentityEvent(tx, {
      identityId: left.identityId,
      action: 'moved_out',
      voiceprintIds: left.voiceprintIds,
      relatedIdentityIds: [identityId],
      actor: move.actor,
      reason: move.reason,
    });
    await refreshCentroid(tx, left.identityId);
  }
  await relistVoiceprints(tx, voiceprintIds);
}

/**
 * Takes `voiceprintIds` out of their identities (they become unassigned).
 * @example await unassignVoiceprints(tx, [voiceprintId], { actor, reason: 'recluster', action: 'unassigned' });
 */
export async function unassignVoiceprints(
  tx: Db,
  voiceprintIds: readonly string[],
  change: IdentityChange & { action: string },
): Promise<void> {
  if (voiceprintIds.length === 0) return;
  const previous = await identitiesHolding(tx, voiceprintIds, null);
  await tx.execute(
    sql`update voiceprints set identity_id = null, assigned_by = null, assigned_at = null
        where id = any(${sql.param([...voiceprintIds])}::uuid[])`,
  );
  for (const left of previous) {
    await recordIdentityEvent(tx, {
      identityId: left.identityId,
      action: change.action,
      voiceprintIds: left.voiceprintIds,
      relatedIdentityIds: [],
      actor: change.actor,
      reason: change.reason,
    });
    await refreshCentroid(tx, left.identityId);
  }
  await relistVoiceprints(tx, voiceprintIds);
}

/**
 * Locks the identity voiceprints are about to join, and refuses one that was merged: a writer that
 * chose it before a concurrent merge committed (online assignment reads candidates unlocked) waits
 * here for that merge, and then fails (its step is retried) instead of bringing the merged identity
 * back to life.
 */
async function lockLiveTarget(tx: Db, identityId: string): Promise<void> {
  const [target] = await queryRows<{ mergedInto: string | null }>(
    tx,
    sql`select merged_into as "mergedInto" from identities where id = ${identityId} for update`,
  );
  if (target?.mergedInto) {
    throw new ConflictError(`identity ${identityId} was merged into ${target.mergedInto}: it takes no voiceprints`);
  }
}

/** The identities holding some of `voiceprintIds` (other than `except`), with those voiceprints. */
async function identitiesHolding(tx: Db, voiceprintIds: readonly string[], except: string | null) {
  return queryRows<{ identityId: string; voiceprintIds: string[] }>(
    tx,
    sql`select identity_id as "identityId", array_agg(id order by id) as "voiceprintIds"
        from voiceprints
        where id = any(${sql.param([...voiceprintIds])}::uuid[])
          and identity_id is not null ${except ? sql`and identity_id <> ${except}` : sql``}
        group by identity_id
        order by identity_id`,
  );
}

/**
 * Recomputes an identity's centroid (the normalised mean of its members) and member count; an
 * identity left with no member is retired (its row and history stay).
 * @example await refreshCentroid(tx, identityId);
 */
export async function refreshCentroid(tx: Db, identityId: string): Promise<void> {
  await tx.execute(
    sql`update identities i
        set centroid = m.centroid, member_count = m.members, updated_at = now(),
            retired_at = case when m.members = 0 then coalesce(i.retired_at, now()) else null end
        from (select case when count(*) = 0 then null else l2_normalize(avg(embedding)) end as centroid,
                     count(*)::int as members
              from voiceprints where identity_id = ${identityId}) m
        where i.id = ${identityId}`,
  );
}

/** Marks an identity as an analyst's: reclustering leaves it (and its members) alone from now on. */
export async function markAnalystEdited(tx: Db, identityId: string): Promise<void> {
  await tx.execute(sql`update identities set analyst_edited_at = now(), updated_at = now() where id = ${identityId}`);
}

export type IdentityEvent = IdentityChange & {
  identityId: string;
  action: string;
  voiceprintIds: readonly string[];
  relatedIdentityIds: readonly string[];
};

/** Appends one row to an identity's history. */
export async function recordIdentityEvent(tx: Db, event: IdentityEvent): Promise<void> {
  await tx.execute(
    sql`insert into identity_events
          (identity_id, action, voiceprint_ids, related_identity_ids, reason, source, key_id, request_id)
        values (${event.identityId}, ${event.action}, ${sql.param([...event.voiceprintIds])}::uuid[],
                ${sql.param([...event.relatedIdentityIds])}::uuid[], ${event.reason ?? null},
                ${event.actor.source}, ${event.actor.keyId}, ${event.actor.requestId})`,
  );
}

/**
 * Records that `fromId` was merged into `intoId` (after its members moved there): it keeps its row
 * and history and is retired, and it — like any identity merged into it before — points at the
 * survivor, so that every id handed out resolves in one step.
 * @example await markMerged(tx, fromId, intoId, { actor, reason: 'same caller' });
 */
export async function markMerged(tx: Db, fromId: string, intoId: string, change: IdentityChange): Promise<void> {
  await tx.execute(
    sql`update identities
        set merged_into = ${intoId}, retired_at = coalesce(retired_at, now()), updated_at = now()
        where id = ${fromId} or merged_into = ${fromId}`,
  );
  await recordIdentityEvent(tx, {
    identityId: fromId,
    action: 'merged_into',
    voiceprintIds: [],
    relatedIdentityIds: [intoId],
    ...change,
  });
}

/**
 * Changes what an identity is (a voice watchlisted becomes a `fraudster`, one taken off returns to
 * `unknown`, a confirmed agent becomes `staff`), and its name when one is given, with a history row
 * (`action`); marks it as an analyst's. A customer keeps its account only while it stays a customer.
 * @example await setIdentityKind(tx, id, 'fraudster', { action: 'watchlisted', actor, reason });
 */
export async function setIdentityKind(
  tx: Db,
  identityId: string,
  kind: IdentityKind,
  change: IdentityChange & { action: string; name?: string | null; accountRef?: string | null },
): Promise<void> {
  await tx.execute(
    sql`update identities
        set kind = ${kind}, name = coalesce(${change.name ?? null}, name),
            account_ref = case when ${kind} = 'customer' then coalesce(${change.accountRef ?? null}, account_ref) else null end,
            analyst_edited_at = now(), updated_at = now()
        where id = ${identityId}`,
  );
  await recordIdentityEvent(tx, {
    identityId,
    action: change.action,
    voiceprintIds: [],
    relatedIdentityIds: [],
    actor: change.actor,
    reason: change.reason,
  });
}
