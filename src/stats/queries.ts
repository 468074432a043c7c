import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client.ts';
import {
  type AlertType,
  alertTypes,
  type IdentityKind,
  identities,
  identityKinds,
  type RecordingStatus,
  recordingStatuses,
  recordings,
  utterances,
  voiceprints,
} from '../db/schema.ts';

/**
 * The counts behind `GET /v1/stats`. Each reads an index rather than the rows: recordings per
 * status from `recordings_status_idx`, live identities per kind from `identities_kind_idx` (its
 * predicate, `retired_at is null`, repeated verbatim), unassigned voiceprints from
 * `voiceprints_identity_idx` (a btree keeps the nulls); table totals are index-only scans.
 */

/** Recordings in each status, every status present (0 when none). */
export async function countRecordingsByStatus(db: Db): Promise<Record<RecordingStatus, number>> {
  const rows = await queryRows<{ status: RecordingStatus; n: string | number }>(
    db,
    sql`select ${recordings.status} as status, count(*) as n from ${recordings} group by 1`,
  );
  const counts = Object.fromEntries(recordingStatuses.map((s) => [s, 0])) as Record<RecordingStatus, number>;
  for (const row of rows) counts[row.status] = Number(row.n);
  return counts;
}

/** Identities in use (neither retired nor merged into another) of each kind, 0 included. */
export async function countLiveIdentitiesByKind(db: Db): Promise<Record<IdentityKind, number>> {
  const rows = await queryRows<{ kind: IdentityKind; n: string | number }>(
    db,
    sql`select ${identities.kind} as kind, count(*) as n from ${identities}
        where ${identities.retiredAt} is null and ${identities.mergedInto} is null
        group by 1`,
  );
  const counts = Object.fromEntries(identityKinds.map((k) => [k, 0])) as Record<IdentityKind, number>;
  for (const row of rows) counts[row.kind] = Number(row.n);
  return counts;
}

export type StoredCounts = { utterances: number; voiceprints: number; unassignedVoiceprints: number };

/** How much is stored: utterances, voiceprints, and the voiceprints in no identity. */
export async function countStoredRows(db: Db): Promise<StoredCounts> {
  const [row] = await queryRows<Record<string, string | number>>(
    db,
    sql`select
          (select count(*) from ${utterances}) as utterances,
          (select count(*) from ${voiceprints}) as voiceprints,
          (select count(*) from ${voiceprints} where ${voiceprints.identityId} is null) as unassigned`,
  );
  return {
    utterances: Number(row?.utterances ?? 0),
    voiceprints: Number(row?.voiceprints ?? 0),
    unassignedVoiceprints: Number(row?.unassigned ?? 0),
  };
}

/**
 * Open alerts of each type (0 included), from `alerts_status_created_idx`; the live watchlist entries
 * and the pending staff proposals, from their partial indexes.
 */
export async function countOpenWork(
  db: Db,
): Promise<{ openAlerts: Record<AlertType, number>; watchlisted: number; staffProposals: number }> {
  const rows = await queryRows<{ type: AlertType; n: string | number }>(
    db,
    sql`select type, count(*) as n from alerts where status = 'open' group by 1`,
  );
  const openAlerts = Object.fromEntries(alertTypes.map((t) => [t, 0])) as Record<AlertType, number>;
  for (const row of rows) openAlerts[row.type] = Number(row.n);
  const [row] = await queryRows<Record<string, string | number>>(
    db,
    sql`select (select count(*) from watchlist_entries where removed_at is null) as watchlisted,
               (select count(*) from staff_proposals where status = 'proposed') as proposals`,
  );
  return { openAlerts, watchlisted: Number(row?.watchlisted ?? 0), staffProposals: Number(row?.proposals ?? 0) };
}
