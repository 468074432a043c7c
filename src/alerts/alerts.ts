import { type Actor, recordAudit } from '../audit/audit.ts';
import type { Db } from '../db/client.ts';
import type { AlertStatus, AlertType } from '../db/schema.ts';
import { withTransaction } from '../db/transaction.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import type { Page } from '../recordings/queries.ts';
import {
  type AlertFilters,
  type AlertHistoryEntry,
  type AlertView,
  alertHistory,
  findAlert,
  listAlerts,
  lockOpenAlertsOf,
  recordAlertEvent,
  setAlertStatus,
} from './queries.ts';

/**
 * What an analyst does with alerts: list them, look at one with its history, acknowledge it
 * (seen, being worked on) or dismiss it (closed) with a note. An alert ties a voice to recordings
 * and accounts: every read is audited. Status only moves forward — open → acknowledged →
 * dismissed, or open → dismissed — and each change is one row of its history.
 */

export type AlertDetail = AlertView & { history: AlertHistoryEntry[] };

/** @example const page = await viewAlertList(db, actor, { type: 'watchlist_hit', status: 'open' }); */
export async function viewAlertList(db: Db, actor: Actor, filters: AlertFilters): Promise<Page<AlertView>> {
  const page = await listAlerts(db, filters);
  await recordAudit(db, actor, {
    action: 'alert.list',
    targetIds: page.items.map((a) => a.id),
    params: filters,
    resultCount: page.items.length,
  });
  return page;
}

/** One alert with its history; NotFoundError for an unknown id. */
export async function viewAlert(db: Db, actor: Actor, id: string): Promise<AlertDetail> {
  const alert = isUuid(id) ? await findAlert(db, id) : null;
  if (!alert) throw new NotFoundError(`no alert ${id}`);
  const history = await alertHistory(db, id);
  await recordAudit(db, actor, { action: 'alert.view', targetIds: [id], params: { id }, resultCount: 1 });
  return { ...alert, history };
}

/**
 * Marks an open alert acknowledged (an acknowledged one is answered as it is); a dismissed alert is
 * closed: ConflictError.
 * @example await acknowledgeAlert(db, id, { note: 'calling the customer back' }, actor);
 */
export async function acknowledgeAlert(
  db: Db,
  id: string,
  input: { note?: string | null },
  actor: Actor,
): Promise<AlertDetail> {
  return changeStatus(db, id, 'acknowledged', input.note ?? null, actor);
}

/**
 * Dismisses an open or acknowledged alert (a dismissed one is answered as it is).
 * @example await dismissAlert(db, id, { note: 'the customer's twin, verified' }, actor);
 */
export async function dismissAlert(
  db: Db,
  id: string,
  input: { note?: string | null },
  actor: Actor,
): Promise<AlertDetail> {
  return changeStatus(db, id, 'dismissed', input.note ?? null, actor);
}

async function changeStatus(
  db: Db,
  id: string,
  status: 'acknowledged' | 'dismissed',
  note: string | null,
  actor: Actor,
): Promise<AlertDetail> {
  return withTransaction(db, async (tx) => {
    const alert = isUuid(id) ? await findAlert(tx, id, true) : null;
    if (!alert) throw new NotFoundError(`no alert ${id}`);
    if (alert.status === 'dismissed' && status === 'acknowledged') {
      throw new ConflictError(`alert ${id} was dismissed: a closed alert cannot be acknowledged`);
    }
    if (alert.status !== status) {
      await setAlertStatus(tx, id, status);
      await recordAlertEvent(tx, { alertId: id, action: status, status, note, actor });
    }
    await recordAudit(tx, actor, {
      action: status === 'acknowledged' ? 'alert.ack' : 'alert.dismiss',
      targetIds: [id],
      params: { id, note },
      resultCount: 1,
    });
    const after = (await findAlert(tx, id)) as AlertView;
    return { ...after, history: await alertHistory(tx, id) };
  });
}

/**
 * Dismisses every open alert of `type` about `identityId`, with `note` (a watchlist entry removed,
 * a voice confirmed as staff); returns how many. Runs in the caller's transaction.
 */
export async function dismissOpenAlertsOf(
  tx: Db,
  type: AlertType,
  identityId: string,
  note: string,
  actor: Actor,
): Promise<number> {
  const ids = await lockOpenAlertsOf(tx, type, identityId);
  const dismissed: AlertStatus = 'dismissed';
  for (const id of ids) {
    await setAlertStatus(tx, id, dismissed);
    await recordAlertEvent(tx, { alertId: id, action: 'dismissed', status: dismissed, note, actor });
  }
  return ids.length;
}
