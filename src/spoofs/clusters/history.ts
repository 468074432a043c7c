import { sql } from 'drizzle-orm';
import type { Actor } from '../../audit/audit.ts';
import type { Db } from '../../db/client.ts';

/**
 * A spoof cluster's history (`spoof_cluster_events`): what changed its membership or status, by
 * whom and why. Online joins are not recorded one by one (the members' own rows say where they
 * are); a cluster's creation, merges, splits, labels, reclusters and retirement are.
 */
export type ClusterEventAction =
  | 'created'
  | 'merged'
  | 'merged_into'
  | 'split'
  | 'split_from'
  | 'labelled'
  | 'reclustered'
  | 'retired';

export type ClusterEvent = {
  clusterId: string;
  action: ClusterEventAction;
  utteranceIds?: readonly string[];
  relatedClusterIds?: readonly string[];
  reason: string | null;
  actor: Actor;
};

export async function recordClusterEvent(tx: Db, event: ClusterEvent): Promise<void> {
  await tx.execute(
    sql`insert into spoof_cluster_events
          (cluster_id, action, utterance_ids, related_cluster_ids, reason, source, key_id, request_id)
        values (${event.clusterId}, ${event.action}, ${sql.param([...(event.utteranceIds ?? [])])}::uuid[],
                ${sql.param([...(event.relatedClusterIds ?? [])])}::uuid[], ${event.reason},
                ${event.actor.source}, ${event.actor.keyId}, ${event.actor.requestId})`,
  );
}
