import { type Actor, recordAudit } from '../../audit/audit.ts';
import type { VoiceSettings } from '../../config.ts';
import type { Db } from '../../db/client.ts';
import type { IdentityKind } from '../../db/schema.ts';
import { withTransaction } from '../../db/transaction.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../../errors.ts';
import { isUuid } from '../../ids.ts';
import { carryEntriesOnMerge } from '../watchlist/queries.ts';
import { lockIdentityAssignment } from './clustering-queries.ts';
import { createIdentity, markAnalystEdited, markMerged, moveVoiceprints, recordIdentityEvent } from './membership.ts';
import {
  type LockedIdentity,
  type LockedVoiceprint,
  lockIdentities,
  lockMembers,
  lockVoiceprints,
  memberCounts,
} from './queries.ts';
import { type IdentityView, identityView } from './views.ts';

/**
 * An analyst's changes to identities: enrol one, merge, split, move voiceprints. Each runs in one
 * transaction: it locks what it reads, checks everything before it writes (a refused change
 * changes nothing), changes membership through membership.ts only, marks every identity it touches
 * as analyst-edited (reclustering never undoes an analyst), and writes its audit entry with its
 * writes. Every one answers the identity as it is afterwards.
 *
 * Rules where CONVENTIONS.md is silent:
 * - A merge keeps the target's kind, name and account. Unknown identities merge into anything; a
 *   confirmed identity (customer, fraudster, staff) merges only into one of its own kind — never into
 *   an unknown one (merge the other way round), and a customer only into the same account's
 *   customer. Moving voiceprints is the way to correct a confirmed identity that is wrong.
 * - Enrolling takes voiceprints from wherever they are; an identity it empties is recorded as
 *   merged into the new one (its id keeps resolving). A move never empties its source (merge it).
 * - A split is a correction, not an enrolment: the minimum of speech does not apply to it; the
 *   spoof rule does, as to every change.
 */

/** A voiceprint whose mean pSpoofed is at least this is mostly spoofed speech. */
export const SPOOFED_SPEECH = 0.5;
/** The kinds that are never given mostly spoofed speech: a genuine person's voice. */
const GENUINE_KINDS: readonly IdentityKind[] = ['customer', 'staff'];

export type EnrolKind = 'customer' | 'fraudster' | 'staff';
export type EnrolInput = {
  kind: EnrolKind;
  name?: string | null;
  accountRef?: string | null;
  voiceprintIds: readonly string[];
  reason?: string | null;
};

/**
 * Creates an identity of a confirmed kind from voiceprints holding at least
 * `settings.enrolMinSpeechS` seconds of speech together.
 * @example const view = await enrolIdentity(db, DEFAULT_VOICE_SETTINGS, { kind: 'customer', accountRef: 'acc-1', voiceprintIds }, actor);
 */
export async function enrolIdentity(
  db: Db,
  settings: VoiceSettings,
  input: EnrolInput,
  actor: Actor,
): Promise<IdentityView> {
  if (input.kind === 'customer' && !input.accountRef) {
    const message = 'a customer identity needs the account it is enrolled for';
    throw new InvalidInputError(`json.accountRef: ${message}`, [{ path: 'json.accountRef', message }]);
  }
  const ids = distinctIds(input.voiceprintIds, 'voiceprintIds');
  return withTransaction(db, async (tx) => {
    // the analysis step's lock first, as every writer of membership takes it: no deadlock between them
    await lockIdentityAssignment(tx);
    const voiceprints = await requireVoiceprints(tx, ids);
    const speech = voiceprints.reduce((sum, v) => sum + v.speechSeconds, 0);
    if (speech < settings.enrolMinSpeechS) {
      const message =
        `these voiceprints hold ${speech.toFixed(1)} s of speech; enrolling needs at least ` +
        `${settings.enrolMinSpeechS} s (VOXTRACE_ENROL_MIN_SPEECH_S)`;
      throw new InvalidInputError(`json.voiceprintIds: ${message}`, [{ path: 'json.voiceprintIds', message }]);
    }
    refuseSpoofed(input.kind, voiceprints);
    const sources = await lockIdentities(tx, holders(voiceprints));
    const change = { actor, reason: input.reason ?? null };
    const id = await createIdentity(tx, {
      ...change,
      kind: input.kind,
      origin: 'analyst',
      name: input.name ?? null,
      accountRef: input.accountRef ?? null,
      voiceprintIds: ids,
      assignedBy: 'analyst',
      action: 'created',
      relatedIdentityIds: sources.map((s) => s.id),
    });
    const left = await memberCounts(
      tx,
      sources.map((s) => s.id),
    );
    for (const source of sources) {
      await markAnalystEdited(tx, source.id);
      if (!left.get(source.id)) await markMerged(tx, source.id, id, change);
    }
    await recordAudit(tx, actor, {
      action: 'identity.create',
      targetIds: [id, ...ids, ...sources.map((s) => s.id)],
      params: input,
      resultCount: 1,
    });
    return identityView(tx, id);
  });
}

/**
 * Moves every voiceprint of the `from` identities into `targetId`; they are retired with
 * `merged_into` = the target.
 * @example const view = await mergeIdentities(db, targetId, { from: [otherId], reason: 'same caller' }, actor);
 */
export async function mergeIdentities(
  db: Db,
  targetId: string,
  input: { from: readonly string[]; reason: string },
  actor: Actor,
): Promise<IdentityView> {
  requireIdentityId(targetId);
  const from = distinctIds(input.from, 'from', 'identity');
  if (from.includes(targetId)) {
    const message = `identity ${targetId} cannot be merged into itself`;
    throw new InvalidInputError(`json.from: ${message}`, [{ path: 'json.from', message }]);
  }
  const reason = requireReason(input.reason);
  return withTransaction(db, async (tx) => {
    // the analysis step's lock first, as every writer of membership takes it: no deadlock between them
    await lockIdentityAssignment(tx);
    const locked = await lockIdentities(tx, [targetId, ...from]);
    const target = requireLive(locked, targetId);
    const missing = from.filter((id) => !locked.some((l) => l.id === id));
    if (missing.length > 0) throw new NotFoundError(`no identity ${missing.join(', ')} (from)`);
    const sources = from.map((id) => locked.find((l) => l.id === id) as LockedIdentity);
    for (const source of sources) refuseMerge(target, source);
    const members = await lockMembers(tx, from);
    refuseSpoofed(target.kind, members);
    const change = { actor, reason };
    const memberIds = members.map((m) => m.id);
    await recordIdentityEvent(tx, {
      ...change,
      identityId: targetId,
      action: 'merged',
      voiceprintIds: memberIds,
      relatedIdentityIds: from,
    });
    await moveVoiceprints(tx, targetId, memberIds, { ...change, assignedBy: 'analyst', action: null });
    for (const source of from) {
      await markMerged(tx, source, targetId, change);
      await markAnalystEdited(tx, source);
    }
    await carryEntriesOnMerge(tx, from, targetId);
    await markAnalystEdited(tx, targetId);
    await recordAudit(tx, actor, {
      action: 'identity.merge',
      targetIds: [targetId, ...from],
      params: { id: targetId, ...input },
      resultCount: 1,
    });
    return identityView(tx, targetId);
  });
}

/**
 * Takes `voiceprintIds` out of `sourceId` into a new identity of the same kind (and account).
 * @example const created = await splitIdentity(db, id, { voiceprintIds: [a], reason: 'two voices' }, actor);
 */
export async function splitIdentity(
  db: Db,
  sourceId: string,
  input: { voiceprintIds: readonly string[]; reason: string },
  actor: Actor,
): Promise<IdentityView> {
  requireIdentityId(sourceId);
  const ids = distinctIds(input.voiceprintIds, 'voiceprintIds');
  const reason = requireReason(input.reason);
  return withTransaction(db, async (tx) => {
    // the analysis step's lock first, as every writer of membership takes it: no deadlock between them
    await lockIdentityAssignment(tx);
    const voiceprints = await requireVoiceprints(tx, ids);
    const source = requireLive(await lockIdentities(tx, [sourceId]), sourceId);
    const elsewhere = voiceprints.filter((v) => v.identityId !== sourceId).map((v) => v.id);
    if (elsewhere.length > 0) {
      throw new ConflictError(`json.voiceprintIds: ${plural(elsewhere, 'voiceprint')} not in identity ${sourceId}`);
    }
    const members = (await memberCounts(tx, [sourceId])).get(sourceId) ?? 0;
    if (ids.length >= members) {
      throw new ConflictError(
        `json.voiceprintIds: a split of all ${members} voiceprints of identity ${sourceId} would leave it empty; ` +
          'name the voiceprints that belong to someone else',
      );
    }
    refuseSpoofed(source.kind, voiceprints);
    const change = { actor, reason };
    const id = await createIdentity(tx, {
      ...change,
      kind: source.kind,
      origin: 'analyst',
      name: null,
      accountRef: source.accountRef,
      voiceprintIds: ids,
      assignedBy: 'analyst',
      action: 'split',
      relatedIdentityIds: [sourceId],
    });
    await markAnalystEdited(tx, sourceId);
    await recordAudit(tx, actor, {
      action: 'identity.split',
      targetIds: [sourceId, id, ...ids],
      params: { id: sourceId, ...input },
      resultCount: 1,
    });
    return identityView(tx, id);
  });
}

/**
 * Moves voiceprints (assigned elsewhere or to none) into `targetId`.
 * @example const view = await moveIntoIdentity(db, id, { voiceprintIds: [a], reason: 'same voice' }, actor);
 */
export async function moveIntoIdentity(
  db: Db,
  targetId: string,
  input: { voiceprintIds: readonly string[]; reason: string },
  actor: Actor,
): Promise<IdentityView> {
  requireIdentityId(targetId);
  const ids = distinctIds(input.voiceprintIds, 'voiceprintIds');
  const reason = requireReason(input.reason);
  return withTransaction(db, async (tx) => {
    // the analysis step's lock first, as every writer of membership takes it: no deadlock between them
    await lockIdentityAssignment(tx);
    const voiceprints = await requireVoiceprints(tx, ids);
    const sourceIds = holders(voiceprints).filter((id) => id !== targetId);
    const locked = await lockIdentities(tx, [targetId, ...sourceIds]);
    const target = requireLive(locked, targetId);
    const already = voiceprints.filter((v) => v.identityId === targetId).map((v) => v.id);
    if (already.length > 0) {
      throw new ConflictError(`json.voiceprintIds: ${plural(already, 'voiceprint')} already in identity ${targetId}`);
    }
    refuseSpoofed(target.kind, voiceprints);
    const counts = await memberCounts(tx, sourceIds);
    for (const sourceId of sourceIds) {
      const taken = voiceprints.filter((v) => v.identityId === sourceId).length;
      if (taken >= (counts.get(sourceId) ?? 0)) {
        throw new ConflictError(
          `json.voiceprintIds: moving them would leave identity ${sourceId} empty; merge it into ${targetId} instead`,
        );
      }
    }
    const change = { actor, reason };
    await moveVoiceprints(tx, targetId, ids, { ...change, assignedBy: 'analyst', action: 'moved_in' });
    for (const id of [targetId, ...sourceIds]) await markAnalystEdited(tx, id);
    await recordAudit(tx, actor, {
      action: 'identity.move',
      targetIds: [targetId, ...sourceIds, ...ids],
      params: { id: targetId, ...input },
      resultCount: 1,
    });
    return identityView(tx, targetId);
  });
}

function requireIdentityId(id: string) {
  if (!isUuid(id)) throw new NotFoundError(`no identity ${id}`);
}

/** The ids once each, in the order given; at least one (one that is not a uuid is simply not found). */
function distinctIds(ids: readonly string[], field: string, what = 'voiceprint'): string[] {
  const unique = [...new Set(ids)];
  if (unique.length === 0) {
    const message = `name at least one ${what}`;
    throw new InvalidInputError(`json.${field}: ${message}`, [{ path: `json.${field}`, message }]);
  }
  return unique;
}

function requireReason(reason: string): string {
  const trimmed = (reason ?? '').trim();
  if (!trimmed) {
    const message = 'say why (it is kept in the history)';
    throw new InvalidInputError(`json.reason: ${message}`, [{ path: 'json.reason', message }]);
  }
  return trimmed;
}

/** The voiceprints, locked; NotFoundError naming those that do not exist. */
async function requireVoiceprints(tx: Db, ids: readonly string[]): Promise<LockedVoiceprint[]> {
  const found = await lockVoiceprints(tx, ids);
  const missing = ids.filter((id) => !found.some((v) => v.id === id));
  if (missing.length > 0) throw new NotFoundError(`no voiceprint ${missing.join(', ')} (voiceprintIds)`);
  return found;
}

/** The identity among `locked`, live; NotFoundError when absent, ConflictError when merged or retired. */
function requireLive(locked: readonly LockedIdentity[], id: string): LockedIdentity {
  const identity = locked.find((l) => l.id === id);
  if (!identity) throw new NotFoundError(`no identity ${id}`);
  if (identity.mergedInto) {
    throw new ConflictError(`identity ${id} was merged into ${identity.mergedInto}: change that one instead`);
  }
  if (identity.retiredAt) throw new ConflictError(`identity ${id} is retired (it has no voiceprints left)`);
  return identity;
}

/** The identities holding some of these voiceprints, in id order. */
function holders(voiceprints: readonly LockedVoiceprint[]): string[] {
  return [...new Set(voiceprints.flatMap((v) => (v.identityId ? [v.identityId] : [])))].sort();
}

/** A customer's or a staff member's identity holds genuine speech only. */
function refuseSpoofed(kind: IdentityKind, voiceprints: readonly LockedVoiceprint[]) {
  if (!GENUINE_KINDS.includes(kind)) return;
  const spoofed = voiceprints.filter((v) => v.meanPSpoofed !== null && v.meanPSpoofed >= SPOOFED_SPEECH);
  if (spoofed.length === 0) return;
  const detail = spoofed.map((v) => `${v.id} (mean pSpoofed ${v.meanPSpoofed?.toFixed(2)})`).join(', ');
  throw new ConflictError(
    `json.voiceprintIds: voiceprint ${detail} is mostly spoofed speech (mean pSpoofed ≥ ${SPOOFED_SPEECH}): ` +
      `it never goes into a ${kind} identity`,
  );
}

/** Whether `source` may be merged into `target` (see the rules above). */
function refuseMerge(target: LockedIdentity, source: LockedIdentity) {
  if (source.mergedInto) {
    throw new ConflictError(`json.from: identity ${source.id} was already merged into ${source.mergedInto}`);
  }
  if (source.retiredAt) throw new ConflictError(`json.from: identity ${source.id} is retired (no voiceprints)`);
  if (source.kind === 'unknown') return;
  if (target.kind === 'unknown') {
    throw new ConflictError(
      `json.from: identity ${source.id} is a ${source.kind} and ${target.id} is unknown: ` +
        `merge ${target.id} into ${source.id} instead, so that the confirmed identity is kept`,
    );
  }
  if (source.kind !== target.kind) {
    throw new ConflictError(
      `json.from: identity ${source.id} is a ${source.kind} and ${target.id} a ${target.kind}: ` +
        'confirmed kinds do not merge; move the voiceprints that belong here instead',
    );
  }
  if (source.kind === 'customer' && source.accountRef !== target.accountRef) {
    throw new ConflictError(
      `json.from: identity ${source.id} is the customer of account ${source.accountRef} and ${target.id} of ` +
        `${target.accountRef}: customers of different accounts do not merge; move the voiceprints instead`,
    );
  }
}

function plural(ids: readonly string[], noun: string): string {
  return ids.length === 1 ? `${noun} ${ids[0]} is` : `${noun}s ${ids.join(', ')} are`;
}
