import { sql } from 'drizzle-orm';
import type { AnalysisStep } from '../../analysis/runner.ts';
import { SYSTEM_ACTOR } from '../../audit/audit.ts';
import type { VoiceSettings } from '../../config.ts';
import { type Db, queryRows } from '../../db/client.ts';
import type { IdentityKind } from '../../db/schema.ts';
import { lockIdentityAssignment } from './clustering-queries.ts';
import { createIdentity, markMerged, moveVoiceprints, setIdentityKind } from './membership.ts';
import { SPOOFED_MEAN_P } from './thresholds.ts';

/** The step's name in `steps_done`: stable, a renamed step runs again on every event. */
export const ENROL_CUSTOMER_STEP = 'voices.enrol-customer';

/**
 * Intake's `enrolCustomer=true`: a call the bank authenticated by other means. After identity
 * assignment, the call's one speaker who is not staff (confirmed or proposed) becomes — or joins —
 * the account's `customer` identity:
 * - the account has a customer identity: the speaker joins it; when the speaker's unknown identity
 *   was heard on this account only, that whole identity is merged into it (the same caller's
 *   earlier calls);
 * - it has none: the speaker's unknown identity, heard on this account only, becomes the customer;
 *   otherwise a new customer identity holds the speaker's voiceprint alone (the rule of enrolling:
 *   at least VOXTRACE_ENROL_MIN_SPEECH_S of speech).
 * Nothing is enrolled — a warning says why — when the call has no such speaker or more than one,
 * when the speaker's voice is mostly spoofed, or when it already is a fraudster, staff, or another
 * account's customer: what the bank authenticated is then in doubt, which is for an analyst.
 * @example const steps = [identityStep(settings), enrolCustomerStep(settings)];
 */
export function enrolCustomerStep(settings: VoiceSettings): AnalysisStep {
  return {
    name: ENROL_CUSTOMER_STEP,
    async run({ tx, event, log }) {
      const [recording] = await queryRows<{ enrol: boolean; accountRef: string | null }>(
        tx,
        sql`select enrol_customer as enrol, account_ref as "accountRef" from recordings where id = ${event.recordingId}`,
      );
      if (!recording?.enrol || !recording.accountRef) return;
      const accountRef = recording.accountRef;
      await lockIdentityAssignment(tx);
      const speakers = await speakersOf(tx, event.recordingId);
      const callers = speakers.filter((s) => s.kind !== 'staff' && !s.proposedStaff);
      const skip = (why: string) => log.warn({ accountRef, recordingId: event.recordingId }, `not enrolled: ${why}`);
      if (callers.length !== 1) {
        return skip(`the call has ${callers.length} speakers who are not staff; enrolment needs exactly one`);
      }
      const caller = callers[0] as Speaker;
      if (caller.spoofed) return skip('the caller’s speech is mostly spoofed');
      const customer = await customerOf(tx, accountRef);
      if (caller.identityId && caller.identityId === customer) return;
      if (caller.kind && caller.kind !== 'unknown') {
        return skip(
          `the caller's voice is already ${caller.kind === 'customer' ? 'another account’s customer' : `a ${caller.kind}`}`,
        );
      }
      const change = { actor: SYSTEM_ACTOR, reason: `enrolCustomer at intake (recording ${event.recordingId})` };
      const wholeIdentity = caller.identityId !== null && (await onlyOnAccount(tx, caller.identityId, accountRef));
      if (customer) {
        if (wholeIdentity && caller.identityId) {
          const members = await membersOf(tx, caller.identityId);
          await moveVoiceprints(tx, customer, members, { ...change, assignedBy: 'analyst', action: 'merged' });
          await markMerged(tx, caller.identityId, customer, change);
        } else {
          await moveVoiceprints(tx, customer, [caller.voiceprintId], {
            ...change,
            assignedBy: 'analyst',
            action: 'enrolled',
          });
        }
        log.info({ accountRef, identityId: customer }, 'caller joined the account’s customer identity');
        return;
      }
      if (caller.speechSeconds < settings.enrolMinSpeechS && !wholeIdentity) {
        return skip(
          `the caller has ${caller.speechSeconds.toFixed(1)} s of speech; enrolling needs ${settings.enrolMinSpeechS} s`,
        );
      }
      if (wholeIdentity && caller.identityId) {
        await setIdentityKind(tx, caller.identityId, 'customer', { ...change, action: 'enrolled', accountRef });
        log.info({ accountRef, identityId: caller.identityId }, 'caller’s voice became the account’s customer');
        return;
      }
      const id = await createIdentity(tx, {
        ...change,
        kind: 'customer',
        origin: 'analyst',
        accountRef,
        voiceprintIds: [caller.voiceprintId],
        assignedBy: 'analyst',
        action: 'enrolled',
      });
      log.info({ accountRef, identityId: id }, 'caller enrolled as the account’s customer');
    },
  };
}

type Speaker = {
  voiceprintId: string;
  identityId: string | null;
  kind: IdentityKind | null;
  proposedStaff: boolean;
  spoofed: boolean;
  speechSeconds: number;
};

async function speakersOf(tx: Db, recordingId: string): Promise<Speaker[]> {
  const rows = await queryRows<Omit<Speaker, 'speechSeconds'> & { speechSeconds: number | string }>(
    tx,
    sql`select v.id as "voiceprintId", v.identity_id as "identityId", i.kind,
               exists (select 1 from staff_proposals p where p.identity_id = v.identity_id and p.status = 'proposed') as "proposedStaff",
               coalesce(v.mean_p_spoofed, 0) >= ${SPOOFED_MEAN_P} as spoofed, v.speech_seconds as "speechSeconds"
        from voiceprints v left join identities i on i.id = v.identity_id
        where v.recording_id = ${recordingId}
        order by v.speaker_label`,
  );
  return rows.map((r) => ({ ...r, speechSeconds: Number(r.speechSeconds) }));
}

/** The account's live customer identity (the oldest, should there be two), locked. */
async function customerOf(tx: Db, accountRef: string): Promise<string | null> {
  const [row] = await queryRows<{ id: string }>(
    tx,
    sql`select id from identities
        where kind = 'customer' and account_ref = ${accountRef} and retired_at is null and merged_into is null
        order by created_at, id limit 1 for update`,
  );
  return row?.id ?? null;
}

/** Whether every voiceprint of the identity was heard on this account. */
async function onlyOnAccount(tx: Db, identityId: string, accountRef: string): Promise<boolean> {
  const [row] = await queryRows<{ elsewhere: boolean }>(
    tx,
    sql`select exists (select 1 from voiceprints v join recordings r on r.id = v.recording_id
                       where v.identity_id = ${identityId} and r.account_ref is distinct from ${accountRef}) as elsewhere`,
  );
  return !row?.elsewhere;
}

async function membersOf(tx: Db, identityId: string): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`select id from voiceprints where identity_id = ${identityId} order by id for update`,
  );
  return rows.map((r) => r.id);
}
