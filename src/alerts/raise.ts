import { sql } from 'drizzle-orm';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit.ts';
import { type Db, queryRows } from '../db/client.ts';
import type { AlertEvidence, AlertStatus, AlertType } from '../db/schema.ts';
import { recordAlertEvent } from './queries.ts';

/**
 * Raising an alert: the one writer of new alerts and of their evidence, for every type (watchlist
 * hits, voice reuse, and the spoof and risk types after them). It runs inside the caller's
 * transaction — an analysis step's, so that a replayed event raises nothing twice (the step's writes
 * commit once, with the record that it ran), or a watchlist look-back's.
 *
 * One live (open or acknowledged) alert per type and subject (`alerts_live_subject_key`): raising
 * again on a subject that has one adds the new evidence to it (and its recordings and accounts),
 * and changes nothing when there is nothing new. A dismissed alert is closed: new evidence on its
 * subject raises a new one.
 */

export type AlertRaise = {
  type: AlertType;
  /** what the alert is about, as a key: see `alertSubject` */
  subject: string;
  identityId?: string | null;
  clusterId?: string | null;
  recordingIds: readonly string[];
  accountRefs: readonly string[];
  evidence: readonly AlertEvidence[];
};

export type RaiseOutcome = { alertId: string; outcome: 'raised' | 'updated' | 'unchanged'; status: AlertStatus };

/** The subject keys of the alert types (CONVENTIONS "Voices API": types and their subjects). */
export const alertSubject = {
  watchlistHit: (identityId: string, recordingId: string) => `${identityId}/${recordingId}`,
  voiceReuse: (identityId: string) => identityId,
  cluster: (clusterId: string) => clusterId,
  recording: (recordingId: string) => recordingId,
};

/**
 * Raises `raise`, or adds its evidence to the live alert of the same type and subject.
 * @example await raiseAlert(tx, { type: 'voice_reuse', subject: alertSubject.voiceReuse(id), identityId: id, recordingIds, accountRefs, evidence });
 */
export async function raiseAlert(tx: Db, raise: AlertRaise, actor: Actor = SYSTEM_ACTOR): Promise<RaiseOutcome> {
  // a live alert dismissed between the insert and the lock frees the subject: try once more
  for (let attempt = 0; attempt < 3; attempt++) {
    const [inserted] = await queryRows<{ id: string }>(
      tx,
      sql`insert into alerts (type, subject, identity_id, cluster_id, recording_ids, account_refs, evidence)
          values (${raise.type}, ${raise.subject}, ${raise.identityId ?? null}, ${raise.clusterId ?? null},
                  ${sql.param(unique(raise.recordingIds))}::uuid[], ${sql.param(unique(raise.accountRefs).sort())}::text[],
                  ${JSON.stringify(mergeEvidence([], raise.evidence).merged)}::jsonb)
          on conflict (type, subject) where status in ('open', 'acknowledged') do nothing
          returning id`,
    );
    if (inserted) {
      await recordAlertEvent(tx, {
        alertId: inserted.id,
        action: 'raised',
        status: 'open',
        evidenceAdded: raise.evidence.length,
        actor,
      });
      return { alertId: inserted.id, outcome: 'raised', status: 'open' };
    }
    const [live] = await queryRows<{
      id: string;
      status: AlertStatus;
      recordingIds: string[];
      accountRefs: string[];
      evidence: AlertEvidence[];
    }>(
      tx,
      sql`select id, status, recording_ids::text[] as "recordingIds", account_refs as "accountRefs", evidence
          from alerts
          where type = ${raise.type} and subject = ${raise.subject} and status in ('open', 'acknowledged')
          for update`,
    );
    if (!live) continue;
    const { merged, added } = mergeEvidence(live.evidence, raise.evidence);
    const recordingIds = unique([...live.recordingIds, ...raise.recordingIds]);
    const accountRefs = unique([...live.accountRefs, ...raise.accountRefs]).sort();
    const grew =
      added > 0 || recordingIds.length > live.recordingIds.length || accountRefs.length > live.accountRefs.length;
    if (!grew) return { alertId: live.id, outcome: 'unchanged', status: live.status };
    await tx.execute(
      sql`update alerts
          set evidence = ${JSON.stringify(merged)}::jsonb, recording_ids = ${sql.param(recordingIds)}::uuid[],
              account_refs = ${sql.param(accountRefs)}::text[], updated_at = now()
          where id = ${live.id}`,
    );
    await recordAlertEvent(tx, {
      alertId: live.id,
      action: 'evidence_added',
      status: live.status,
      evidenceAdded: added,
      actor,
    });
    return { alertId: live.id, outcome: 'updated', status: live.status };
  }
  throw new Error(`alert ${raise.type} ${raise.subject}: its live alert kept changing while evidence was added`);
}

/**
 * Raises many alerts at once (a look-back's thousands of recordings): one statement inserts every
 * subject without a live alert, with its history row; the subjects that had one get their evidence
 * added one by one (`raiseAlert`). Returns the outcome of each, in order.
 * @example await raiseAlerts(tx, hits.map((h) => ({ type: 'watchlist_hit', subject: …, … })), actor);
 */
export async function raiseAlerts(
  tx: Db,
  raises: readonly AlertRaise[],
  actor: Actor = SYSTEM_ACTOR,
): Promise<RaiseOutcome[]> {
  if (raises.length === 0) return [];
  const rows = raises.map((r) => ({
    type: r.type,
    subject: r.subject,
    identity_id: r.identityId ?? null,
    cluster_id: r.clusterId ?? null,
    recording_ids: unique(r.recordingIds),
    account_refs: unique(r.accountRefs).sort(),
    evidence: mergeEvidence([], r.evidence).merged,
  }));
  const inserted = await queryRows<{ id: string; type: string; subject: string }>(
    tx,
    sql`with input as (
          select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
            as x(type text, subject text, identity_id uuid, cluster_id uuid, recording_ids uuid[],
                 account_refs text[], evidence jsonb)
        ), raised as (
          insert into alerts (type, subject, identity_id, cluster_id, recording_ids, account_refs, evidence)
          select type, subject, identity_id, cluster_id, recording_ids, account_refs, evidence from input
          on conflict (type, subject) where status in ('open', 'acknowledged') do nothing
          returning id, type, subject, jsonb_array_length(evidence) as added
        ), history as (
          insert into alert_events (alert_id, action, status, evidence_added, source, key_id, request_id)
          select id, 'raised', 'open', added, ${actor.source}, ${actor.keyId}, ${actor.requestId} from raised
        )
        select id, type, subject from raised`,
  );
  const byKey = new Map(inserted.map((r) => [`${r.type}|${r.subject}`, r.id]));
  const outcomes: RaiseOutcome[] = [];
  for (const raise of raises) {
    const key = `${raise.type}|${raise.subject}`;
    const id = byKey.get(key);
    // a subject given twice: the first raised it, the next one adds to it
    byKey.delete(key);
    outcomes.push(id ? { alertId: id, outcome: 'raised', status: 'open' } : await raiseAlert(tx, raise, actor));
  }
  return outcomes;
}

/**
 * Evidence once per (recording, voiceprint, utterance), keeping the closer match of two: what a
 * replay or a second look at the same recording brings adds nothing.
 */
export function mergeEvidence(
  existing: readonly AlertEvidence[],
  incoming: readonly AlertEvidence[],
): { merged: AlertEvidence[]; added: number } {
  const key = (e: AlertEvidence) => `${e.recordingId}|${e.voiceprintId ?? ''}|${e.utteranceId ?? ''}`;
  const merged = new Map(existing.map((e) => [key(e), e]));
  let added = 0;
  for (const item of incoming) {
    const known = merged.get(key(item));
    if (!known) added++;
    if (!known || item.similarity > known.similarity) merged.set(key(item), item);
  }
  return { merged: [...merged.values()], added };
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
