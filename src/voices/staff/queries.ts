import { sql } from 'drizzle-orm';
import type { Actor } from '../../audit/audit.ts';
import { type Db, queryRows } from '../../db/client.ts';
import type { IdentityKind, StaffProposalStatus } from '../../db/schema.ts';
import type { StaffCall, StaffEvidence } from './rule.ts';

/** The SQL of staff proposals: a voice's recent calls, and the proposals themselves. */

/** A voice's calls between `from` and `to` (ms), each with its channel and how many speakers it has. */
export async function recentCallsOf(tx: Db, identityId: string, from: number, to: number): Promise<StaffCall[]> {
  const at = sql`coalesce(r.call_at, r.created_at)`;
  const rows = await queryRows<{
    recordingId: string;
    accountRef: string | null;
    channel: string | null;
    speakers: number;
  }>(
    tx,
    sql`select distinct r.id as "recordingId", r.account_ref as "accountRef", r.channel,
               (select count(*)::int from voiceprints o where o.recording_id = r.id) as speakers
        from voiceprints v join recordings r on r.id = v.recording_id
        where v.identity_id = ${identityId}
          and ${at} between ${new Date(from).toISOString()}::timestamptz and ${new Date(to).toISOString()}::timestamptz`,
  );
  return rows.map((r) => ({ ...r, speakers: Number(r.speakers) }));
}

/** The kinds of identity staff proposals consider, and decisions take. */
export const PROPOSABLE_KINDS: readonly IdentityKind[] = ['unknown', 'customer'];

/**
 * The identities of a recording that may be an agent's and were never proposed, with the call's
 * time: unknown voices, and customers' (an agent's calls that joined a customer's identity make it a
 * voice on dozens of accounts, which only confirming it as staff takes out of voice reuse).
 */
export async function unproposedIdentitiesOf(
  tx: Db,
  recordingId: string,
): Promise<{ identityId: string; at: number }[]> {
  const rows = await queryRows<{ identityId: string; at: Date | string }>(
    tx,
    sql`select distinct v.identity_id as "identityId", coalesce(r.call_at, r.created_at) as at
        from voiceprints v join identities i on i.id = v.identity_id join recordings r on r.id = v.recording_id
        where v.recording_id = ${recordingId} and i.kind = any(${sql.param([...PROPOSABLE_KINDS])}::text[])
          and not exists (select 1 from staff_proposals p where p.identity_id = v.identity_id)`,
  );
  return rows.map((r) => ({ identityId: r.identityId, at: new Date(r.at).getTime() }));
}

export async function insertProposal(tx: Db, identityId: string, evidence: StaffEvidence): Promise<void> {
  await tx.execute(
    sql`insert into staff_proposals (identity_id, evidence) values (${identityId}, ${JSON.stringify(evidence)}::jsonb)
        on conflict (identity_id) do nothing`,
  );
}

export type StaffProposal = {
  identityId: string;
  status: StaffProposalStatus;
  evidence: StaffEvidence;
  proposedAt: string;
  decidedAt: string | null;
  note: string | null;
};

/** The proposal of an identity, locked when `lock`; null when it was never proposed. */
export async function proposalOf(tx: Db, identityId: string, lock = false): Promise<StaffProposal | null> {
  const [row] = await queryRows<
    Omit<StaffProposal, 'proposedAt' | 'decidedAt'> & { proposedAt: Date | string; decidedAt: Date | string | null }
  >(
    tx,
    sql`select identity_id as "identityId", status, evidence, proposed_at as "proposedAt", decided_at as "decidedAt", note
        from staff_proposals where identity_id = ${identityId} ${lock ? sql`for update` : sql``}`,
  );
  return row ? toProposal(row) : null;
}

/** The proposals of these identities, by identity. */
export async function proposalsOf(db: Db, identityIds: readonly string[]): Promise<Map<string, StaffProposal>> {
  if (identityIds.length === 0) return new Map();
  const rows = await queryRows<
    Omit<StaffProposal, 'proposedAt' | 'decidedAt'> & { proposedAt: Date | string; decidedAt: Date | string | null }
  >(
    db,
    sql`select identity_id as "identityId", status, evidence, proposed_at as "proposedAt", decided_at as "decidedAt", note
        from staff_proposals where identity_id = any(${sql.param([...identityIds])}::uuid[])`,
  );
  return new Map(rows.map((r) => [r.identityId, toProposal(r)]));
}

function toProposal(
  row: Omit<StaffProposal, 'proposedAt' | 'decidedAt'> & { proposedAt: Date | string; decidedAt: Date | string | null },
): StaffProposal {
  return {
    ...row,
    proposedAt: new Date(row.proposedAt).toISOString(),
    decidedAt: row.decidedAt === null ? null : new Date(row.decidedAt).toISOString(),
  };
}

export async function decideProposal(
  tx: Db,
  identityId: string,
  status: 'confirmed' | 'rejected',
  decision: { note: string | null; actor: Actor },
): Promise<void> {
  await tx.execute(
    sql`update staff_proposals
        set status = ${status}, decided_at = now(), note = ${decision.note}, source = ${decision.actor.source},
            key_id = ${decision.actor.keyId}, request_id = ${decision.actor.requestId}
        where identity_id = ${identityId}`,
  );
}
