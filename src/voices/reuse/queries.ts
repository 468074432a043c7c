import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../../db/client.ts';
import type { IdentityKind } from '../../db/schema.ts';
import type { VoiceCall } from './windows.ts';

/** The SQL of voice reuse: a recording's identities, and an identity's calls in a time range. */

export type RecordingIdentity = { identityId: string; kind: IdentityKind; at: number };

/** The identities the voiceprints of a recording are in, with the call's time. */
export async function identitiesOfRecording(tx: Db, recordingId: string): Promise<RecordingIdentity[]> {
  const rows = await queryRows<{ identityId: string; kind: IdentityKind; at: Date | string }>(
    tx,
    sql`select distinct v.identity_id as "identityId", i.kind, coalesce(r.call_at, r.created_at) as at
        from voiceprints v join identities i on i.id = v.identity_id join recordings r on r.id = v.recording_id
        where v.recording_id = ${recordingId}`,
  );
  return rows.map((r) => ({ ...r, at: new Date(r.at).getTime() }));
}

/**
 * An identity's calls on an account, between `from` and `to` (ms; the whole history when absent),
 * over `voiceprints_identity_idx`, each with its voiceprint's similarity to the identity's centroid
 * and the voiceprints of the others (of other recordings) at a similarity of at least
 * `sameVoiceSimilarity` to it: the same voice, call to call, not only through the identity. With
 * `comparedRecordingId`, only that recording's calls are compared with the others (the rest get
 * none): a new call's step compares n pairs, not n².
 */
export async function callsOfIdentity(
  tx: Db,
  identityId: string,
  sameVoiceSimilarity: number,
  options: { range?: { from: number; to: number } | undefined; comparedRecordingId?: string | undefined } = {},
): Promise<VoiceCall[]> {
  const { range, comparedRecordingId } = options;
  const at = sql`coalesce(r.call_at, r.created_at)`;
  const within = range
    ? sql`and ${at} between ${new Date(range.from).toISOString()}::timestamptz and ${new Date(range.to).toISOString()}::timestamptz`
    : sql``;
  const rows = await queryRows<{
    voiceprintId: string;
    recordingId: string;
    accountRef: string;
    at: Date | string;
    similarity: number | string | null;
    sameVoice: string[];
  }>(
    tx,
    // embeddings are stored at unit length: the inner product is the cosine
    sql`with calls as materialized (
          select v.id, v.recording_id, r.account_ref, ${at} as at, v.embedding,
                 1 - (v.embedding <=> i.centroid) as similarity
          from voiceprints v join recordings r on r.id = v.recording_id join identities i on i.id = v.identity_id
          where v.identity_id = ${identityId} and r.account_ref is not null ${within}
        )
        select c.id as "voiceprintId", c.recording_id as "recordingId", c.account_ref as "accountRef", c.at,
               c.similarity,
               case when ${comparedRecordingId ?? null}::uuid is null or c.recording_id = ${comparedRecordingId ?? null}::uuid
                    then array(select d.id::text from calls d
                               where d.recording_id <> c.recording_id
                                 and (d.embedding <#> c.embedding) <= ${-sameVoiceSimilarity})
                    else '{}'::text[] end as "sameVoice"
        from calls c`,
  );
  return rows.map((r) => ({ ...r, at: new Date(r.at).getTime(), similarity: Number(r.similarity ?? 1) }));
}

/** Those of `identityIds` that are live and of one of `kinds`, in id order. */
export async function identitiesOfKinds(
  tx: Db,
  identityIds: readonly string[],
  kinds: readonly IdentityKind[],
): Promise<string[]> {
  if (identityIds.length === 0) return [];
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`select id from identities
        where id = any(${sql.param([...identityIds])}::uuid[]) and kind = any(${sql.param([...kinds])}::text[])
          and retired_at is null and merged_into is null
        order by id`,
  );
  return rows.map((r) => r.id);
}
