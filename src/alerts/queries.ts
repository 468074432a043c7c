import { type SQL, sql } from 'drizzle-orm';
import type { Actor } from '../audit/audit.ts';
import { type Db, queryRows } from '../db/client.ts';
import type { AlertEvidence, AlertStatus, AlertType } from '../db/schema.ts';
import { LIST_LIMIT_DEFAULT } from '../http/limits.ts';
import { encodeListCursor, type ListPosition, type Page } from '../recordings/queries.ts';

/**
 * The SQL of alerts: their history, the list (newest first, keyset on (created_at, id), with the
 * recordings list's cursor format), one alert, and status changes.
 */

export type AlertView = {
  id: string;
  type: AlertType;
  status: AlertStatus;
  createdAt: string;
  updatedAt: string;
  statusChangedAt: string | null;
  identityId: string | null;
  clusterId: string | null;
  recordingIds: string[];
  accountRefs: string[];
  evidence: AlertEvidence[];
};

export type AlertHistoryEntry = {
  id: string;
  action: 'raised' | 'evidence_added' | 'acknowledged' | 'dismissed';
  status: AlertStatus;
  note: string | null;
  evidenceAdded: number;
  source: 'api' | 'cli' | 'system';
  keyId: string | null;
  requestId: string | null;
  createdAt: string;
};

type AlertRow = Omit<AlertView, 'createdAt' | 'updatedAt' | 'statusChangedAt'> & {
  createdAt: Date | string;
  updatedAt: Date | string;
  statusChangedAt: Date | string | null;
  createdAtMicros: string;
};

const iso = (value: Date | string) => new Date(value).toISOString();

const alertColumns = sql`a.id, a.type, a.status, a.created_at as "createdAt", a.updated_at as "updatedAt",
  a.status_changed_at as "statusChangedAt", a.identity_id as "identityId", a.cluster_id as "clusterId",
  a.recording_ids::text[] as "recordingIds", a.account_refs as "accountRefs", a.evidence,
  (extract(epoch from a.created_at) * 1000000)::bigint::text as "createdAtMicros"`;

function toView({ createdAtMicros: _, ...row }: AlertRow): AlertView {
  return {
    ...row,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    statusChangedAt: row.statusChangedAt === null ? null : iso(row.statusChangedAt),
  };
}

/** Appends one row to an alert's history. */
export async function recordAlertEvent(
  tx: Db,
  event: {
    alertId: string;
    action: AlertHistoryEntry['action'];
    status: AlertStatus;
    note?: string | null;
    evidenceAdded?: number;
    actor: Actor;
  },
): Promise<void> {
  await tx.execute(
    sql`insert into alert_events (alert_id, action, status, note, evidence_added, source, key_id, request_id)
        values (${event.alertId}, ${event.action}, ${event.status}, ${event.note ?? null}, ${event.evidenceAdded ?? 0},
                ${event.actor.source}, ${event.actor.keyId}, ${event.actor.requestId})`,
  );
}

export type AlertFilters = {
  type?: AlertType;
  status?: AlertStatus;
  accountRef?: string;
  clusterId?: string;
  identityId?: string;
  recordingId?: string;
  /** on `created_at`, inclusive */
  from?: Date;
  to?: Date;
  limit?: number;
  after?: ListPosition;
};

/**
 * Alerts newest first, one page at a time. Each filter has an index behind it (the type and status
 * ones lead the sort; account and recording use the GIN indexes on the arrays).
 * @example const page = await listAlerts(db, { type: 'watchlist_hit', status: 'open' });
 */
export async function listAlerts(db: Db, filters: AlertFilters): Promise<Page<AlertView>> {
  const limit = filters.limit ?? LIST_LIMIT_DEFAULT;
  const rows = await queryRows<AlertRow>(db, alertListQuery(filters, limit + 1));
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(toView),
    nextCursor:
      rows.length > limit && last ? encodeListCursor({ createdAtMicros: last.createdAtMicros, id: last.id }) : null,
  };
}

/** The statement of one page of the alerts list (tests read its plan). */
export function alertListQuery(filters: AlertFilters, rows: number): SQL {
  return sql`select ${alertColumns} from alerts a
        where ${sql.join(alertConditions(filters), sql` and `)}
        order by a.created_at desc, a.id desc
        limit ${rows}`;
}

function alertConditions(filters: AlertFilters): SQL[] {
  const conditions: SQL[] = [sql`true`];
  if (filters.type) conditions.push(sql`a.type = ${filters.type}`);
  if (filters.status) conditions.push(sql`a.status = ${filters.status}`);
  if (filters.accountRef !== undefined) conditions.push(sql`a.account_refs @> array[${filters.accountRef}]::text[]`);
  if (filters.recordingId) conditions.push(sql`a.recording_ids @> array[${filters.recordingId}]::uuid[]`);
  if (filters.clusterId) conditions.push(sql`a.cluster_id = ${filters.clusterId}`);
  if (filters.identityId) conditions.push(sql`a.identity_id = ${filters.identityId}`);
  if (filters.from) conditions.push(sql`a.created_at >= ${filters.from.toISOString()}::timestamptz`);
  if (filters.to) conditions.push(sql`a.created_at <= ${filters.to.toISOString()}::timestamptz`);
  if (filters.after) {
    conditions.push(
      sql`(a.created_at, a.id) < (timestamptz 'epoch' + ${filters.after.createdAtMicros}::bigint * interval '1 microsecond', ${filters.after.id}::uuid)`,
    );
  }
  return conditions;
}

/** One alert; `lock` takes its row lock (a status change). Null when there is none. */
export async function findAlert(db: Db, id: string, lock = false): Promise<AlertView | null> {
  const [row] = await queryRows<AlertRow>(
    db,
    sql`select ${alertColumns} from alerts a where a.id = ${id} ${lock ? sql`for update` : sql``}`,
  );
  return row ? toView(row) : null;
}

/** An alert's history, oldest first (it is short: raised, evidence, a decision). */
export async function alertHistory(db: Db, alertId: string): Promise<AlertHistoryEntry[]> {
  const rows = await queryRows<Omit<AlertHistoryEntry, 'createdAt'> & { createdAt: Date | string }>(
    db,
    sql`select id, action, status, note, evidence_added as "evidenceAdded", source, key_id as "keyId",
               request_id as "requestId", created_at as "createdAt"
        from alert_events where alert_id = ${alertId}
        order by created_at, id`,
  );
  return rows.map((r) => ({ ...r, createdAt: iso(r.createdAt) }));
}

/** Sets an alert's status (the caller checked the change is allowed and records its history). */
export async function setAlertStatus(tx: Db, id: string, status: AlertStatus): Promise<void> {
  await tx.execute(
    sql`update alerts set status = ${status}, status_changed_at = now(), updated_at = now() where id = ${id}`,
  );
}

/** The ids of the open alerts of `type` about `identityId`, locked (a bulk dismissal). */
export async function lockOpenAlertsOf(tx: Db, type: AlertType, identityId: string): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`select id from alerts where type = ${type} and identity_id = ${identityId} and status = 'open'
        order by id for update`,
  );
  return rows.map((r) => r.id);
}
