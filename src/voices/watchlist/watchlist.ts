import { sql } from 'drizzle-orm';
import { dismissOpenAlertsOf } from '../../alerts/alerts.ts';
import { alertSubject, raiseAlerts } from '../../alerts/raise.ts';
import { type Actor, recordAudit } from '../../audit/audit.ts';
import type { VoiceSettings } from '../../config.ts';
import { type Db, queryRows } from '../../db/client.ts';
import type { AlertEvidence } from '../../db/schema.ts';
import { withTransaction } from '../../db/transaction.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../../errors.ts';
import { isUuid } from '../../ids.ts';
import type { ListPosition, Page } from '../../recordings/queries.ts';
import { type Calibration, currentCalibration, scoreOf } from '../calibration.ts';
import { lockIdentityAssignment } from '../identities/clustering-queries.ts';
import { createIdentity, setIdentityKind } from '../identities/membership.ts';
import { lockIdentities, lockVoiceprints } from '../identities/queries.ts';
import {
  endEntry,
  insertEntry,
  listEntries,
  liveEntryOf,
  lockWatchlist,
  membersOf,
  type WatchlistEntry,
  withinReachOfIdentity,
} from './queries.ts';

/**
 * The fraudster watchlist (CONVENTIONS "Voices API", `POST/GET/DELETE /v1/watchlist`). Adding a
 * voice makes its identity a `fraudster` and looks back over every stored recording before it
 * answers: each recording holding a voiceprint of that identity, or one matching any of its
 * voiceprints at a false-accept rate ≤ VOXTRACE_WATCHLIST_FAR, gets a `watchlist_hit` alert — but
 * not the recording the entry was made from. Recordings stored later are checked by the analysis
 * step (step.ts). Removing an entry returns the identity to `unknown` and dismisses its open hits.
 */

export type WatchlistAdd = { voiceprintId?: string; identityId?: string; reason: string; name?: string | null };
export type WatchlistAnswer = WatchlistEntry & { created: boolean };

/** The kinds that are never watchlisted: a customer's or an agent's identity is someone known. */
const PROTECTED_KINDS = ['customer', 'staff'];

/**
 * Lists a voice (a voiceprint or an identity) and runs the look-back.
 * @example const { identityId, lookBack } = await addToWatchlist(db, settings, { voiceprintId, reason: 'confirmed fraud, case 118' }, actor);
 */
export async function addToWatchlist(
  db: Db,
  settings: VoiceSettings,
  input: WatchlistAdd,
  actor: Actor,
): Promise<WatchlistAnswer> {
  const reason = (input.reason ?? '').trim();
  if (!reason) throw invalid('reason', 'say why this voice is listed (it is kept with the entry)');
  if ((input.voiceprintId === undefined) === (input.identityId === undefined)) {
    throw invalid('voiceprintId', 'name exactly one of voiceprintId and identityId');
  }
  return withTransaction(db, async (tx) => {
    // membership's lock first, as every writer of membership takes it; then the watchlist's
    await lockIdentityAssignment(tx);
    await lockWatchlist(tx, 'exclusive');
    const target = input.voiceprintId
      ? await fromVoiceprint(tx, settings, input.voiceprintId, actor, reason)
      : await fromIdentity(tx, settings, input.identityId as string);
    const listed = await liveEntryOf(tx, target.identityId);
    if (listed) {
      await recordAudit(tx, actor, {
        action: 'watchlist.add',
        targetIds: [target.identityId],
        params: input,
        resultCount: 0,
      });
      return { ...listed, created: false };
    }
    await setIdentityKind(tx, target.identityId, 'fraudster', {
      action: 'watchlisted',
      actor,
      reason,
      name: input.name ?? null,
    });
    const calibration = await currentCalibration(tx);
    const lookBack = await runLookBack(tx, calibration, settings, target.identityId, target.seedRecordingId, actor);
    await insertEntry(tx, {
      identityId: target.identityId,
      reason,
      voiceprintId: input.voiceprintId ?? null,
      seedRecordingId: target.seedRecordingId,
      checked: lookBack.checked,
      hits: lookBack.hits,
      actor,
    });
    await recordAudit(tx, actor, {
      action: 'watchlist.add',
      targetIds: [target.identityId, ...(input.voiceprintId ? [input.voiceprintId] : [])],
      params: input,
      resultCount: lookBack.hits,
    });
    return { ...((await liveEntryOf(tx, target.identityId)) as WatchlistEntry), created: true };
  });
}

/**
 * Takes an identity off the watchlist: it returns to `unknown`, and its open `watchlist_hit`
 * alerts are dismissed with the reason. NotFoundError when it is not listed.
 * @example await removeFromWatchlist(db, identityId, { reason: 'cleared by the fraud team' }, actor);
 */
export async function removeFromWatchlist(
  db: Db,
  identityId: string,
  input: { reason?: string | null },
  actor: Actor,
): Promise<{ dismissed: number }> {
  if (!isUuid(identityId)) throw new NotFoundError(`no identity ${identityId} on the watchlist`);
  const reason = input.reason?.trim() || 'removed from the watchlist';
  return withTransaction(db, async (tx) => {
    await lockIdentityAssignment(tx);
    await lockWatchlist(tx, 'exclusive');
    if (!(await endEntry(tx, identityId, { reason, keyId: actor.keyId }))) {
      throw new NotFoundError(`identity ${identityId} is not on the watchlist`);
    }
    await setIdentityKind(tx, identityId, 'unknown', { action: 'unwatchlisted', actor, reason });
    const dismissed = await dismissOpenAlertsOf(tx, 'watchlist_hit', identityId, reason, actor);
    await recordAudit(tx, actor, {
      action: 'watchlist.remove',
      targetIds: [identityId],
      params: { identityId, reason },
      resultCount: dismissed,
    });
    return { dismissed };
  });
}

/** @example const page = await viewWatchlist(db, actor, { limit: 100 }); */
export async function viewWatchlist(
  db: Db,
  actor: Actor,
  page: { limit?: number; after?: ListPosition },
): Promise<Page<WatchlistEntry>> {
  const result = await listEntries(db, page);
  await recordAudit(db, actor, {
    action: 'watchlist.list',
    targetIds: result.items.map((e) => e.identityId),
    params: page,
    resultCount: result.items.length,
  });
  return result;
}

/**
 * The look-back: every recording of the identity's members (but the seed's), and every recording
 * holding a voiceprint within reach of any member, each one `watchlist_hit`. Returns the voiceprints
 * compared and the recordings alerted.
 */
export async function runLookBack(
  tx: Db,
  calibration: Calibration,
  settings: VoiceSettings,
  identityId: string,
  seedRecordingId: string | null,
  actor: Actor,
): Promise<{ checked: number; hits: number }> {
  const minSimilarity = calibration.similarityAtFar(settings.watchlistFar);
  const members = await membersOf(tx, identityId);
  const hits = new Map<string, { accountRef: string | null; evidence: AlertEvidence[] }>();
  const add = (recordingId: string, accountRef: string | null, evidence: AlertEvidence) => {
    if (recordingId === seedRecordingId) return;
    const hit = hits.get(recordingId) ?? { accountRef, evidence: [] };
    hit.evidence.push(evidence);
    hits.set(recordingId, hit);
  };
  for (const m of members) {
    add(m.recordingId, m.accountRef, hitEvidence(calibration, m.id, m.recordingId, m.similarityToCentroid));
  }
  const { near, compared } = await withinReachOfIdentity(tx, identityId, minSimilarity);
  for (const n of near) {
    add(
      n.recordingId,
      n.accountRef,
      hitEvidence(calibration, n.id, n.recordingId, n.similarity, n.matchedVoiceprintId),
    );
  }
  await raiseAlerts(
    tx,
    [...hits].map(([recordingId, hit]) => ({
      type: 'watchlist_hit' as const,
      subject: alertSubject.watchlistHit(identityId, recordingId),
      identityId,
      recordingIds: [recordingId],
      accountRefs: hit.accountRef ? [hit.accountRef] : [],
      evidence: bestPerVoiceprint(hit.evidence),
    })),
    actor,
  );
  return { checked: compared, hits: hits.size };
}

/**
 * A watchlist hit's evidence for one voiceprint: its similarity (to the listed voiceprint it is
 * closest to, named when there is one, else to the identity's centroid) and the score of its FAR.
 */
export function hitEvidence(
  calibration: Calibration,
  voiceprintId: string,
  recordingId: string,
  similarity: number,
  matchedVoiceprintId?: string | null,
): AlertEvidence {
  return {
    voiceprintId,
    recordingId,
    similarity: round(similarity),
    score: scoreOf(calibration.far(similarity)),
    ...(matchedVoiceprintId ? { matchedVoiceprintId } : {}),
  };
}

/** One evidence item per voiceprint of the recording: its closest match. */
export function bestPerVoiceprint(evidence: readonly AlertEvidence[]): AlertEvidence[] {
  const best = new Map<string, AlertEvidence>();
  for (const e of evidence) {
    const key = e.voiceprintId ?? e.recordingId;
    const known = best.get(key);
    if (!known || e.similarity > known.similarity) best.set(key, e);
  }
  return [...best.values()];
}

type Target = { identityId: string; seedRecordingId: string | null };

/** The identity a voiceprint entry lists: the voiceprint's own (unknown or fraudster), or a new one. */
async function fromVoiceprint(
  tx: Db,
  settings: VoiceSettings,
  voiceprintId: string,
  actor: Actor,
  reason: string,
): Promise<Target> {
  const [voiceprint] = isUuid(voiceprintId) ? await lockVoiceprints(tx, [voiceprintId]) : [];
  if (!voiceprint) throw new NotFoundError(`no voiceprint ${voiceprintId} (voiceprintId)`);
  const seedRecordingId = voiceprint.recordingId;
  if (voiceprint.identityId) {
    const [identity] = await lockIdentities(tx, [voiceprint.identityId]);
    if (identity && PROTECTED_KINDS.includes(identity.kind)) {
      throw new ConflictError(
        `json.voiceprintId: voiceprint ${voiceprintId} is in ${identity.kind} identity ${identity.id}` +
          `${identity.accountRef ? ` (account ${identity.accountRef})` : ''}: enrol it as a fraudster first ` +
          `(POST /v1/identities {"kind": "fraudster", "voiceprintIds": ["${voiceprintId}"]}, which takes it out of ` +
          'that identity) and list that identity',
      );
    }
    const listed = await liveEntryOf(tx, voiceprint.identityId);
    if (listed) return { identityId: voiceprint.identityId, seedRecordingId };
  }
  requireSpeech(settings, voiceprint.speechSeconds, 'voiceprintId', `voiceprint ${voiceprintId}`);
  if (voiceprint.identityId) return { identityId: voiceprint.identityId, seedRecordingId };
  const identityId = await createIdentity(tx, {
    kind: 'fraudster',
    origin: 'analyst',
    voiceprintIds: [voiceprintId],
    assignedBy: 'analyst',
    action: 'created',
    actor,
    reason,
  });
  return { identityId, seedRecordingId };
}

/** The identity an identity entry lists: live, not a customer or staff, with enough speech. */
async function fromIdentity(tx: Db, settings: VoiceSettings, identityId: string): Promise<Target> {
  const [identity] = isUuid(identityId) ? await lockIdentities(tx, [identityId]) : [];
  if (!identity) throw new NotFoundError(`no identity ${identityId} (identityId)`);
  if (identity.mergedInto) {
    throw new ConflictError(
      `json.identityId: identity ${identityId} was merged into ${identity.mergedInto}: list that one`,
    );
  }
  if (identity.retiredAt)
    throw new ConflictError(`json.identityId: identity ${identityId} is retired (no voiceprints)`);
  if (PROTECTED_KINDS.includes(identity.kind)) {
    throw new ConflictError(
      `json.identityId: identity ${identityId} is a ${identity.kind}: enrol the voiceprints that are not theirs as ` +
        'a fraudster (POST /v1/identities {"kind": "fraudster", "voiceprintIds": […]}) and list that identity',
    );
  }
  if (!(await liveEntryOf(tx, identityId))) {
    const [speech] = await queryRows<{ seconds: number | string | null }>(
      tx,
      sql`select sum(speech_seconds) as seconds from voiceprints where identity_id = ${identityId}`,
    );
    requireSpeech(settings, Number(speech?.seconds ?? 0), 'identityId', `identity ${identityId}`);
  }
  return { identityId, seedRecordingId: null };
}

function requireSpeech(settings: VoiceSettings, seconds: number, field: string, what: string) {
  if (seconds >= settings.enrolMinSpeechS) return;
  throw invalid(
    field,
    `${what} holds ${seconds.toFixed(1)} s of speech; listing a voice needs at least ${settings.enrolMinSpeechS} s ` +
      '(VOXTRACE_ENROL_MIN_SPEECH_S): too little speech matches strangers',
  );
}

function invalid(field: string, message: string): InvalidInputError {
  return new InvalidInputError(`json.${field}: ${message}`, [{ path: `json.${field}`, message }]);
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
