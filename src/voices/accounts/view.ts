import { type Actor, recordAudit } from '../../audit/audit.ts';
import type { Db } from '../../db/client.ts';
import type { ListPosition, Page } from '../../recordings/queries.ts';
import { type AccountVoice, accountVoices } from './queries.ts';

/**
 * "Whose voices are on this account?" (`GET /v1/accounts/{ref}/voices`): each voice heard on it,
 * flagged with the other accounts it was heard on — the view behind "this account's voice changed"
 * and "this voice calls for many customers". A read of biometric links: audited. An account with
 * no recordings has no voices (an empty page, not an error: accounts are the bank's, not voxtrace's).
 * @example const page = await viewAccountVoices(db, actor, 'acc-1042', { limit: 50 });
 */
export async function viewAccountVoices(
  db: Db,
  actor: Actor,
  accountRef: string,
  page: { limit?: number; after?: ListPosition },
): Promise<Page<AccountVoice>> {
  const result = await accountVoices(db, accountRef, page);
  await recordAudit(db, actor, {
    action: 'account.voices',
    targetIds: result.items.flatMap((v) => (v.identityId ? [v.identityId] : v.voiceprintIds)),
    params: { accountRef, ...page },
    resultCount: result.items.length,
  });
  return result;
}
