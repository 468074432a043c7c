import { type Actor, recordAudit } from '../../audit/audit.ts';
import type { Db } from '../../db/client.ts';
import { NotFoundError } from '../../errors.ts';
import { isUuid } from '../../ids.ts';
import type { ListPosition } from '../../recordings/queries.ts';
import { proposalsOf, type StaffProposal } from '../staff/queries.ts';
import {
  findIdentitySummary,
  type IdentityHistoryEntry,
  type IdentityListFilters,
  type IdentitySummary,
  type IdentityVoiceprint,
  identityExists,
  listIdentities,
  listIdentityHistory,
  listIdentityVoiceprints,
  type NearIdentity,
  nearestIdentities,
  type Page,
} from './queries.ts';

/**
 * What an analyst sees of identities: lists, one identity with its nearest neighbours, its
 * voiceprints, its history. An identity says whose voice a recording holds, so every one of these
 * reads is biometric data and leaves an audit entry before it is answered.
 */

export type IdentityView = IdentitySummary & { nearest: NearIdentity[] };

/**
 * One identity with the live identities nearest it, without an audit entry: what a change answers
 * (the change itself is audited). Merged and retired identities are answered too (with
 * `mergedInto` / `retiredAt`), without neighbours. Throws NotFoundError for an unknown id.
 */
export async function identityView(db: Db, id: string): Promise<IdentityView> {
  const summary = isUuid(id) ? await findIdentitySummary(db, id) : null;
  if (!summary) throw new NotFoundError(`no identity ${id}`);
  const live = summary.mergedInto === null && summary.retiredAt === null;
  return { ...summary, nearest: live ? await nearestIdentities(db, id) : [] };
}

/**
 * @example const view = await viewIdentity(db, actor, id); view.nearest[0]?.similarity;
 */
export async function viewIdentity(db: Db, actor: Actor, id: string): Promise<IdentityView> {
  const view = await identityView(db, id);
  await recordAudit(db, actor, {
    action: 'identity.view',
    targetIds: [view.id, ...view.nearest.map((n) => n.identityId)],
    params: { id },
    resultCount: 1,
  });
  return view;
}

/**
 * @example const page = await viewIdentityList(db, actor, { kind: 'customer', accountRef: 'acc-1' });
 */
export async function viewIdentityList(
  db: Db,
  actor: Actor,
  filters: IdentityListFilters,
): Promise<Page<IdentitySummary & { staffProposal?: StaffProposal }>> {
  const listed = await listIdentities(db, filters);
  // a proposal list says why each voice is proposed
  const proposals = filters.proposedStaff
    ? await proposalsOf(
        db,
        listed.items.map((i) => i.id),
      )
    : new Map();
  const page = {
    ...listed,
    items: listed.items.map((i) => (proposals.has(i.id) ? { ...i, staffProposal: proposals.get(i.id) } : i)),
  };
  await recordAudit(db, actor, {
    action: 'identity.list',
    targetIds: page.items.map((i) => i.id),
    params: filters,
    resultCount: page.items.length,
  });
  return page;
}

/**
 * An identity's voiceprints (merged and retired identities have none). Throws NotFoundError for an
 * unknown id.
 */
export async function viewIdentityVoiceprints(
  db: Db,
  actor: Actor,
  id: string,
  page: { limit?: number; after?: ListPosition },
): Promise<Page<IdentityVoiceprint>> {
  await requireIdentity(db, id);
  const result = await listIdentityVoiceprints(db, id, page);
  await recordAudit(db, actor, {
    action: 'identity.voiceprints',
    targetIds: [id, ...result.items.map((v) => v.voiceprintId)],
    params: { id, ...page },
    resultCount: result.items.length,
  });
  return result;
}

/** An identity's history, newest first. Throws NotFoundError for an unknown id. */
export async function viewIdentityHistory(
  db: Db,
  actor: Actor,
  id: string,
  page: { limit?: number; after?: ListPosition },
): Promise<Page<IdentityHistoryEntry>> {
  await requireIdentity(db, id);
  const result = await listIdentityHistory(db, id, page);
  await recordAudit(db, actor, {
    action: 'identity.history',
    targetIds: [id],
    params: { id, ...page },
    resultCount: result.items.length,
  });
  return result;
}

async function requireIdentity(db: Db, id: string): Promise<void> {
  if (!isUuid(id) || !(await identityExists(db, id))) throw new NotFoundError(`no identity ${id}`);
}
