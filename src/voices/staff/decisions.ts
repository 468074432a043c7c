import { dismissOpenAlertsOf } from '../../alerts/alerts.ts';
import { type Actor, recordAudit } from '../../audit/audit.ts';
import type { Db } from '../../db/client.ts';
import { withTransaction } from '../../db/transaction.ts';
import { ConflictError, NotFoundError } from '../../errors.ts';
import { isUuid } from '../../ids.ts';
import { lockIdentityAssignment } from '../identities/clustering-queries.ts';
import { setIdentityKind } from '../identities/membership.ts';
import { lockIdentities } from '../identities/queries.ts';
import { type IdentityView, identityView } from '../identities/views.ts';
import { decideProposal, PROPOSABLE_KINDS, proposalOf } from './queries.ts';

/**
 * An analyst's answer to a staff proposal. Confirming makes the identity `staff`: it leaves voice
 * search (unless asked for), the impostor cohort and voice-reuse alerts, and its open `voice_reuse`
 * alerts are dismissed. Rejecting keeps it as it is and is final: it is never proposed again. Only a
 * pending proposal can be decided (409 otherwise).
 */

/** @example const view = await confirmStaff(db, identityId, { note: 'agent 0042, team B' }, actor); */
export async function confirmStaff(
  db: Db,
  identityId: string,
  input: { note?: string | null },
  actor: Actor,
): Promise<IdentityView & { dismissedAlerts: number }> {
  return decide(db, identityId, 'confirmed', input.note ?? null, actor);
}

/** @example await rejectStaff(db, identityId, { note: 'a fraudster working the contact centre' }, actor); */
export async function rejectStaff(
  db: Db,
  identityId: string,
  input: { note?: string | null },
  actor: Actor,
): Promise<IdentityView & { dismissedAlerts: number }> {
  return decide(db, identityId, 'rejected', input.note ?? null, actor);
}

async function decide(
  db: Db,
  identityId: string,
  status: 'confirmed' | 'rejected',
  note: string | null,
  actor: Actor,
): Promise<IdentityView & { dismissedAlerts: number }> {
  if (!isUuid(identityId)) throw new NotFoundError(`no identity ${identityId}`);
  return withTransaction(db, async (tx) => {
    await lockIdentityAssignment(tx);
    const [identity] = await lockIdentities(tx, [identityId]);
    if (!identity) throw new NotFoundError(`no identity ${identityId}`);
    const proposal = await proposalOf(tx, identityId, true);
    if (proposal?.status !== 'proposed') {
      throw new ConflictError(
        proposal
          ? `identity ${identityId} was already ${proposal.status} as staff (${proposal.decidedAt})`
          : `identity ${identityId} is not proposed as staff (GET /v1/identities?proposed=staff lists those that are)`,
      );
    }
    if (identity.mergedInto || identity.retiredAt || !PROPOSABLE_KINDS.includes(identity.kind)) {
      throw new ConflictError(
        `identity ${identityId} is ${identity.mergedInto ? `merged into ${identity.mergedInto}` : identity.retiredAt ? 'retired' : `a ${identity.kind}`}: ` +
          'only a live unknown or customer voice can be decided as staff',
      );
    }
    await decideProposal(tx, identityId, status, { note, actor });
    let dismissedAlerts = 0;
    if (status === 'confirmed') {
      await setIdentityKind(tx, identityId, 'staff', { action: 'confirmed_staff', actor, reason: note });
      dismissedAlerts = await dismissOpenAlertsOf(tx, 'voice_reuse', identityId, note ?? 'confirmed as staff', actor);
    }
    await recordAudit(tx, actor, {
      action: status === 'confirmed' ? 'staff.confirm' : 'staff.reject',
      targetIds: [identityId],
      params: { identityId, note },
      resultCount: 1,
    });
    return { ...(await identityView(tx, identityId)), dismissedAlerts };
  });
}
