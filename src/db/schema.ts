import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigint,
  boolean,
  check,
  doublePrecision,
  halfvec,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  vector,
} from 'drizzle-orm/pg-core';

export const SPEAKER_DIMENSIONS = 192;
export const DEEPFAKE_DIMENSIONS = 768;

export const recordingStatuses = ['queued', 'submitting', 'submitted', 'complete', 'failed', 'dead'] as const;
export type RecordingStatus = (typeof recordingStatuses)[number];
export const upstreamApis = ['deepfake', 'behavioral'] as const;
export type UpstreamApi = (typeof upstreamApis)[number];
export const apiKeyScopes = ['read', 'write', 'admin'] as const;
export type ApiKeyScope = (typeof apiKeyScopes)[number];

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

/** One submitted audio file or imported results document; the row is also the ingestion job. */
export const recordings = pgTable(
  'recordings',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    // sha256 of the audio bytes (intake); null for an imported document, which has no audio
    sha256: text('sha256'),
    // sha256 of an imported document's bytes: identifies documents that carry no pid
    documentSha256: text('document_sha256'),
    source: text('source', { enum: ['upload', 'import'] }).notNull(),
    accountRef: text('account_ref'),
    channel: text('channel'),
    callAt: timestamp('call_at', { withTimezone: true }),
    meta: jsonb('meta').$type<Record<string, unknown>>().notNull().default({}),
    // intake's enrolCustomer: after analysis, the call's non-staff speaker enrols as the account's customer
    enrolCustomer: boolean('enrol_customer').notNull().default(false),
    status: text('status', { enum: recordingStatuses }).notNull().default('queued'),
    upstreamApi: text('upstream_api', { enum: upstreamApis }),
    upstreamCid: bigint('upstream_cid', { mode: 'number' }),
    upstreamPid: bigint('upstream_pid', { mode: 'number' }),
    rawDocument: jsonb('raw_document'),
    rawBody: text('raw_body'),
    error: text('error'),
    // the uploaded audio while it waits in the spool (intake); null once stored and deleted
    fileName: text('file_name'),
    audioFormat: text('audio_format', { enum: ['wav', 'mp3'] }),
    audioBytes: bigint('audio_bytes', { mode: 'number' }),
    durationS: doublePrecision('duration_s'),
    spoolFile: text('spool_file'),
    // the job: attempts made, who holds the lease until when, when to look at it next
    attempts: integer('attempts').notNull().default(0),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    submittedAt: timestamp('submitted_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [
    check(
      'recordings_status_check',
      sql`${t.status} in ('queued', 'submitting', 'submitted', 'complete', 'failed', 'dead')`,
    ),
    check('recordings_upstream_api_check', sql`${t.upstreamApi} in ('deepfake', 'behavioral')`),
    uniqueIndex('recordings_sha256_key').on(t.sha256),
    uniqueIndex('recordings_upstream_process_key')
      .on(t.upstreamApi, t.upstreamCid, t.upstreamPid)
      .where(sql`${t.upstreamPid} is not null`),
    uniqueIndex('recordings_document_sha256_key').on(t.documentSha256).where(sql`${t.upstreamPid} is null`),
    index('recordings_status_idx').on(t.status),
    index('recordings_account_call_idx').on(t.accountRef, t.callAt),
    // search filters on channel and on the call's time (src/search/knn.ts estimates them)
    index('recordings_channel_call_idx').on(t.channel, t.callAt),
    index('recordings_call_at_idx').on(t.callAt),
    // the worker's claim query: due, unfinished jobs only
    index('recordings_claim_idx').on(t.nextAttemptAt).where(sql`${t.status} in ('queued', 'submitting', 'submitted')`),
    index('recordings_created_idx').on(t.createdAt, t.id),
    // when a recording happened (its call, else its storing): the spoof growth window and cluster figures
    index('recordings_seen_at_idx').on(sql`coalesce(${t.callAt}, ${t.createdAt})`),
  ],
);

export const analysisEventStatuses = ['pending', 'done', 'dead'] as const;
export type AnalysisEventStatus = (typeof analysisEventStatuses)[number];

/**
 * Outbox: one row per stored recording, written in the transaction that stores it (the worker's
 * and import's `recordStored`). It is also the job of the analysis steps that follow storing
 * (src/analysis/): `steps_done` lists the steps that have committed for it, in order, and the lease
 * columns are the same as the recordings queue's. `done` once every step has run; `dead` when a
 * step kept failing (its error kept).
 */
export const recordingEvents = pgTable(
  'recording_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    recordingId: uuid('recording_id')
      .notNull()
      .references(() => recordings.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['stored'] }).notNull(),
    status: text('status', { enum: analysisEventStatuses }).notNull().default('pending'),
    stepsDone: text('steps_done').array().notNull().default(sql`'{}'::text[]`),
    attempts: integer('attempts').notNull().default(0),
    error: text('error'),
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [
    check('recording_events_status_check', sql`${t.status} in ('pending', 'done', 'dead')`),
    // a recording is stored once: a second `stored` event would run its analysis twice
    uniqueIndex('recording_events_stored_key').on(t.recordingId).where(sql`${t.kind} = 'stored'`),
    // the analysis claim query: due, pending events only (also what counts the backlog)
    index('recording_events_claim_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index('recording_events_dead_idx').on(t.createdAt).where(sql`${t.status} = 'dead'`),
  ],
);

/** One upstream utterance: the items of a results document that share an `id`. */
export const utterances = pgTable(
  'utterances',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    recordingId: uuid('recording_id')
      .notNull()
      .references(() => recordings.id, { onDelete: 'cascade' }),
    upstreamId: text('upstream_id').notNull(),
    startS: doublePrecision('start_s'),
    endS: doublePrecision('end_s'),
    speakerLabel: text('speaker_label'),
    transcript: text('transcript'),
    language: text('language'),
    deepfakeLabel: text('deepfake_label'),
    pSpoofed: doublePrecision('p_spoofed'),
    // L2-normalised `features` vector of the Deepfake API (absent under ~2 s and on the Behavioral API)
    deepfakeEmbedding: halfvec('deepfake_embedding', { dimensions: DEEPFAKE_DIMENSIONS }),
    deepfakeRawNorm: doublePrecision('deepfake_raw_norm'),
    // the spoof cluster this spoofed utterance belongs to (src/spoofs/clusters/, the one writer)
    spoofClusterId: uuid('spoof_cluster_id').references((): AnyPgColumn => spoofClusters.id, { onDelete: 'set null' }),
    // a near miss: bonafide-labelled speech inside this spoof cluster (src/spoofs/clusters/near-misses.ts)
    nearMissClusterId: uuid('near_miss_cluster_id').references((): AnyPgColumn => spoofClusters.id, {
      onDelete: 'set null',
    }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('utterances_recording_upstream_key').on(t.recordingId, t.upstreamId),
    index('utterances_spoof_cluster_idx')
      .on(t.spoofClusterId, t.recordingId)
      .where(sql`${t.spoofClusterId} is not null`),
    index('utterances_near_miss_cluster_idx')
      .on(t.nearMissClusterId, t.recordingId)
      .where(sql`${t.nearMissClusterId} is not null`),
  ],
);

/**
 * The deepfake embeddings of spoofed utterances, with the HNSW index that spoof search and the
 * spoof clusters walk. Written only by the trigger `utterances_spoofed_copy` (migration 0013) when
 * an utterance labelled spoofed with an embedding is stored, by any writer (the store, COPY loads),
 * and deleted with it: never updated, so the index is never rewritten. It lives apart from
 * `utterances` because clustering updates `utterances.spoof_cluster_id`: an update of an indexed
 * column writes a new row version into every index of its table, and re-inserting a 768-d vector
 * into an HNSW graph cost more than the rest of a join (bench/spoofs-batch.ts). Bonafide speech
 * (~98 % of utterances) is not here: it has no campaign to find, and indexing it made the index ~40×
 * larger and HNSW upkeep most of the cost of storing a recording (bench/README.md).
 */
export const spoofedUtterances = pgTable(
  'spoofed_utterances',
  {
    id: uuid('id')
      .primaryKey()
      .references(() => utterances.id, { onDelete: 'cascade' }),
    recordingId: uuid('recording_id').notNull(),
    embedding: halfvec('embedding', { dimensions: DEEPFAKE_DIMENSIONS }).notNull(),
  },
  // m 32, ef_construction 128: at 1,000,000 rows pgvector's defaults (16, 64) reach recall@10 0.935
  // at ef_search 800; this graph 0.965 at ef_search 100, 4.0 ms (docs/spoofs.md, "At scale")
  (t) => [
    index('spoofed_utterances_embedding_hnsw')
      .using('hnsw', t.embedding.op('halfvec_cosine_ops'))
      .with({ m: 32, ef_construction: 128 }),
  ],
);

export const callVerdicts = ['bonafide', 'spoofed', 'mixed', 'suspicious', 'unknown'] as const;
export type CallVerdict = (typeof callVerdicts)[number];

/**
 * Each analysed recording's spoof verdict, with the figures it was decided on (the analysis step
 * `spoofs.verdict`, src/spoofs/; the rule: docs/spoofs.md). One row per recording, rewritten when
 * the step runs again; analysts read it beside `recordings`.
 */
export const recordingSpoofVerdicts = pgTable(
  'recording_spoof_verdicts',
  {
    recordingId: uuid('recording_id')
      .primaryKey()
      .references(() => recordings.id, { onDelete: 'cascade' }),
    verdict: text('verdict').$type<CallVerdict>().notNull(),
    // spoofed speech time ÷ judged speech time (utterances of ≥ VOXTRACE_SPOOF_MIN_UTTERANCE_S with a label)
    spoofedShare: doublePrecision('spoofed_share'),
    peakPSpoofed: doublePrecision('peak_p_spoofed'),
    judgedUtterances: integer('judged_utterances').notNull(),
    judgedSeconds: doublePrecision('judged_seconds').notNull(),
    spoofedSeconds: doublePrecision('spoofed_seconds').notNull(),
    nearMisses: integer('near_misses').notNull(),
    decidedAt: timestamp('decided_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check(
      'recording_spoof_verdicts_verdict_check',
      sql`${t.verdict} in ('bonafide', 'spoofed', 'mixed', 'suspicious', 'unknown')`,
    ),
    index('recording_spoof_verdicts_verdict_idx').on(t.verdict),
  ],
);

export const spoofClusterStatuses = ['active', 'merged', 'retired'] as const;
export type SpoofClusterStatus = (typeof spoofClusterStatuses)[number];
export const spoofClusterOrigins = ['online', 'recluster', 'analyst'] as const;
export type SpoofClusterOrigin = (typeof spoofClusterOrigins)[number];

/**
 * A group of spoofed utterances close together in deepfake space: likely one generator or
 * campaign (src/spoofs/clusters/, the one writer; the rules: docs/spoofs.md). `member_sum` is the
 * sum of its members' unit embeddings, `centroid` its direction, so a join updates both without
 * reading the members; the other figures are recomputed from the members when they change.
 * `radius` is the largest cosine distance of a member to the centroid.
 */
export const spoofClusters = pgTable(
  'spoof_clusters',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    label: text('label'),
    notes: text('notes'),
    status: text('status').$type<SpoofClusterStatus>().notNull().default('active'),
    mergedInto: uuid('merged_into'),
    origin: text('origin').$type<SpoofClusterOrigin>().notNull(),
    centroid: halfvec('centroid', { dimensions: DEEPFAKE_DIMENSIONS }).notNull(),
    memberSum: vector('member_sum', { dimensions: DEEPFAKE_DIMENSIONS }).notNull(),
    radius: doublePrecision('radius').notNull().default(0),
    size: integer('size').notNull(),
    recordingCount: integer('recording_count').notNull(),
    accountCount: integer('account_count').notNull(),
    channels: text('channels').array().notNull().default(sql`'{}'::text[]`),
    firstSeenAt: timestamp('first_seen_at', { withTimezone: true }),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    medoidUtteranceId: uuid('medoid_utterance_id'),
    meanPSpoofed: doublePrecision('mean_p_spoofed'),
    // an analyst's merge, split or label pins its membership: recluster never re-derives it
    analystEditedAt: timestamp('analyst_edited_at', { withTimezone: true }),
    // why it is merged or retired (recluster's reason, or the analyst's)
    statusReason: text('status_reason'),
    // its size when bonafide speech was last looked back over for near misses (near-misses.ts)
    lookedBackSize: integer('looked_back_size').notNull().default(0),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('spoof_clusters_status_check', sql`${t.status} in ('active', 'merged', 'retired')`),
    check('spoof_clusters_origin_check', sql`${t.origin} in ('online', 'recluster', 'analyst')`),
    index('spoof_clusters_active_idx').on(t.status),
  ],
);

/**
 * The history of a spoof cluster: every change of its membership or status, by whom and why —
 * created, joined (online), merged, merged_into, split, split_from, labelled, reclustered, retired.
 */
export const spoofClusterEvents = pgTable(
  'spoof_cluster_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    clusterId: uuid('cluster_id')
      .notNull()
      .references(() => spoofClusters.id, { onDelete: 'cascade' }),
    action: text('action').notNull(),
    utteranceIds: uuid('utterance_ids').array().notNull().default(sql`'{}'::uuid[]`),
    relatedClusterIds: uuid('related_cluster_ids').array().notNull().default(sql`'{}'::uuid[]`),
    reason: text('reason'),
    source: text('source', { enum: ['api', 'cli', 'system'] }).notNull(),
    keyId: uuid('key_id'),
    requestId: text('request_id'),
    createdAt: createdAt(),
  },
  (t) => [index('spoof_cluster_events_cluster_idx').on(t.clusterId, t.createdAt)],
);

export const identityKinds = ['customer', 'fraudster', 'staff', 'unknown'] as const;
export type IdentityKind = (typeof identityKinds)[number];
export const identityOrigins = ['analyst', 'online', 'recluster'] as const;
export type IdentityOrigin = (typeof identityOrigins)[number];
export const assignmentSources = ['analyst', 'online', 'recluster'] as const;
export type AssignmentSource = (typeof assignmentSources)[number];

/**
 * A person behind one or more voiceprints: a `customer` enrolled for an account, a `fraudster`, a
 * member of `staff`, or an `unknown` voice found by clustering. `centroid` is the L2-normalised mean
 * of its members' embeddings, kept current by every membership change (src/voices/identities/):
 * identities are compared with it. An identity an analyst created or edited has `analyst_edited_at`;
 * reclustering never touches those. A merged identity keeps its row (`merged_into`), as does one
 * that clustering emptied (`retired_at`): ids that were handed out stay resolvable.
 */
export const identities = pgTable(
  'identities',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: text('kind', { enum: identityKinds }).notNull(),
    name: text('name'),
    accountRef: text('account_ref'),
    origin: text('origin', { enum: identityOrigins }).notNull(),
    analystEditedAt: timestamp('analyst_edited_at', { withTimezone: true }),
    centroid: vector('centroid', { dimensions: SPEAKER_DIMENSIONS }),
    memberCount: integer('member_count').notNull().default(0),
    mergedInto: uuid('merged_into'),
    retiredAt: timestamp('retired_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('identities_kind_check', sql`${t.kind} in ('customer', 'fraudster', 'staff', 'unknown')`),
    check('identities_origin_check', sql`${t.origin} in ('analyst', 'online', 'recluster')`),
    check('identities_customer_account_check', sql`${t.kind} <> 'customer' or ${t.accountRef} is not null`),
    index('identities_kind_idx').on(t.kind).where(sql`${t.retiredAt} is null`),
    // the identities list: live ones, newest first
    index('identities_created_idx').on(t.createdAt, t.id).where(sql`${t.retiredAt} is null`),
    index('identities_account_idx').on(t.accountRef).where(sql`${t.accountRef} is not null`),
    // live identities nearest one voice: online assignment compares a new voiceprint with centroids
    index('identities_centroid_hnsw').using('hnsw', t.centroid.op('vector_cosine_ops')),
  ],
);

/**
 * Every change to an identity, append-only: who (`source`, `key_id`, `request_id`), why (`reason`),
 * what (`action`, the voiceprints and the other identities it involved), when.
 */
export const identityEvents = pgTable(
  'identity_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    identityId: uuid('identity_id')
      .notNull()
      .references(() => identities.id, { onDelete: 'cascade' }),
    action: text('action').notNull(),
    voiceprintIds: uuid('voiceprint_ids').array().notNull().default(sql`'{}'::uuid[]`),
    relatedIdentityIds: uuid('related_identity_ids').array().notNull().default(sql`'{}'::uuid[]`),
    reason: text('reason'),
    source: text('source', { enum: ['api', 'cli', 'system'] }).notNull(),
    keyId: uuid('key_id'),
    requestId: text('request_id'),
    createdAt: createdAt(),
  },
  (t) => [index('identity_events_identity_idx').on(t.identityId, t.createdAt)],
);

/**
 * The impostor cohort's score distribution: similarities of voiceprint pairs of different
 * identities (src/voices/calibration.ts), from which a similarity's false-accept rate is read. One
 * row per refresh; the newest is used.
 */
export const voiceCalibrations = pgTable(
  'voice_calibrations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    method: text('method', { enum: ['cohort', 'prior'] }).notNull(),
    voiceprintCount: integer('voiceprint_count').notNull(),
    cohortSize: integer('cohort_size').notNull(),
    pairCount: bigint('pair_count', { mode: 'number' }).notNull(),
    // the impostor similarities' upper tail, sorted descending, and what the tail model needs
    model: jsonb('model').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
  },
  // every search reads the newest
  (t) => [index('voice_calibrations_created_idx').on(t.createdAt)],
);

/** One diarized speaker of one recording, carrying that speaker's 192-d vector. */
export const voiceprints = pgTable(
  'voiceprints',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    recordingId: uuid('recording_id')
      .notNull()
      .references(() => recordings.id, { onDelete: 'cascade' }),
    speakerLabel: text('speaker_label').notNull(),
    embedding: vector('embedding', { dimensions: SPEAKER_DIMENSIONS }).notNull(),
    rawNorm: doublePrecision('raw_norm').notNull(),
    speechSeconds: doublePrecision('speech_seconds').notNull(),
    utteranceCount: integer('utterance_count').notNull(),
    meanPSpoofed: doublePrecision('mean_p_spoofed'),
    // the identity it belongs to (at most one), who put it there, and when
    identityId: uuid('identity_id').references(() => identities.id, { onDelete: 'set null' }),
    assignedBy: text('assigned_by', { enum: assignmentSources }),
    assignedAt: timestamp('assigned_at', { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('voiceprints_recording_speaker_key').on(t.recordingId, t.speakerLabel),
    index('voiceprints_identity_idx').on(t.identityId),
    check('voiceprints_assigned_by_check', sql`${t.assignedBy} in ('analyst', 'online', 'recluster')`),
    index('voiceprints_embedding_hnsw').using('hnsw', t.embedding.op('vector_cosine_ops')),
  ],
);

/** API keys: only a sha256 of the secret is stored; the prefix lets people tell keys apart. */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    scope: text('scope', { enum: apiKeyScopes }).notNull(),
    keyHash: text('key_hash').notNull(),
    keyPrefix: text('key_prefix').notNull(),
    createdAt: createdAt(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [
    check('api_keys_scope_check', sql`${t.scope} in ('read', 'write', 'admin')`),
    uniqueIndex('api_keys_key_hash_key').on(t.keyHash),
  ],
);

export const auditSources = ['api', 'cli', 'system'] as const;
export type AuditSource = (typeof auditSources)[number];

/**
 * Append-only trail of reads of biometric data and of key management: who (an API key, the CLI,
 * voxtrace itself), what (an action and the ids it touched), with which parameters (a sha256 of
 * them, so that a query vector is never kept here), how many results. A trigger refuses UPDATE,
 * DELETE and TRUNCATE (migration 0005): the trail cannot be edited, only added to.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    createdAt: createdAt(),
    source: text('source', { enum: auditSources }).notNull(),
    keyId: uuid('key_id'),
    requestId: text('request_id'),
    action: text('action').notNull(),
    targetIds: text('target_ids').array().notNull().default(sql`'{}'::text[]`),
    paramsDigest: text('params_digest').notNull(),
    resultCount: integer('result_count').notNull(),
  },
  (t) => [
    check('audit_events_source_check', sql`${t.source} in ('api', 'cli', 'system')`),
    index('audit_events_created_idx').on(t.createdAt),
  ],
);

export const alertTypes = [
  'watchlist_hit',
  'voice_reuse',
  'new_spoof_campaign',
  'spoof_cluster_growth',
  'voice_clone_suspected',
  'voice_clone_cross_account',
] as const;
export type AlertType = (typeof alertTypes)[number];
export const alertStatuses = ['open', 'acknowledged', 'dismissed'] as const;
export type AlertStatus = (typeof alertStatuses)[number];

/** One piece of an alert's evidence (CONVENTIONS "Voices API"): what matched, where, how closely. */
export type AlertEvidence = {
  voiceprintId?: string;
  utteranceId?: string;
  recordingId: string;
  similarity: number;
  score?: number;
  /** the watchlisted voiceprint a watchlist hit matched */
  matchedVoiceprintId?: string;
};

/**
 * Every alert voxtrace raises, of every type (src/alerts/). `subject` is what the alert is about,
 * as a key (`<identity>/<recording>` for a watchlist hit, the identity for voice reuse, the
 * cluster, the recording): one open or acknowledged alert per type and subject — new evidence on
 * the same subject updates it rather than raising another. Its status changes are in `alert_events`.
 */
export const alerts = pgTable(
  'alerts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    type: text('type', { enum: alertTypes }).notNull(),
    subject: text('subject').notNull(),
    status: text('status', { enum: alertStatuses }).notNull().default('open'),
    identityId: uuid('identity_id').references(() => identities.id, { onDelete: 'set null' }),
    clusterId: uuid('cluster_id').references(() => spoofClusters.id, { onDelete: 'set null' }),
    recordingIds: uuid('recording_ids').array().notNull().default(sql`'{}'::uuid[]`),
    accountRefs: text('account_refs').array().notNull().default(sql`'{}'::text[]`),
    evidence: jsonb('evidence').$type<AlertEvidence[]>().notNull().default([]),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    statusChangedAt: timestamp('status_changed_at', { withTimezone: true }),
  },
  (t) => [
    check(
      'alerts_type_check',
      sql`${t.type} in ('watchlist_hit', 'voice_reuse', 'new_spoof_campaign', 'spoof_cluster_growth', 'voice_clone_suspected', 'voice_clone_cross_account')`,
    ),
    check('alerts_status_check', sql`${t.status} in ('open', 'acknowledged', 'dismissed')`),
    // one live alert per type and subject: raising again adds evidence to it (ON CONFLICT names this predicate)
    uniqueIndex('alerts_live_subject_key').on(t.type, t.subject).where(sql`${t.status} in ('open', 'acknowledged')`),
    // the list, newest first, whole or by type or status
    index('alerts_created_idx').on(t.createdAt, t.id),
    index('alerts_type_created_idx').on(t.type, t.createdAt, t.id),
    index('alerts_status_created_idx').on(t.status, t.createdAt, t.id),
    index('alerts_identity_idx').on(t.identityId).where(sql`${t.identityId} is not null`),
    index('alerts_cluster_idx').on(t.clusterId).where(sql`${t.clusterId} is not null`),
    index('alerts_account_refs_idx').using('gin', t.accountRefs),
    index('alerts_recording_ids_idx').using('gin', t.recordingIds),
  ],
);

/** An alert's history, append-only: raised, evidence added, acknowledged, dismissed — who, when, why. */
export const alertEvents = pgTable(
  'alert_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    alertId: uuid('alert_id')
      .notNull()
      .references(() => alerts.id, { onDelete: 'cascade' }),
    action: text('action', { enum: ['raised', 'evidence_added', 'acknowledged', 'dismissed'] }).notNull(),
    // the status after the change
    status: text('status', { enum: alertStatuses }).notNull(),
    note: text('note'),
    // evidence items the change added (raised, evidence_added)
    evidenceAdded: integer('evidence_added').notNull().default(0),
    source: text('source', { enum: auditSources }).notNull(),
    keyId: uuid('key_id'),
    requestId: text('request_id'),
    createdAt: createdAt(),
  },
  (t) => [
    check('alert_events_action_check', sql`${t.action} in ('raised', 'evidence_added', 'acknowledged', 'dismissed')`),
    check('alert_events_status_check', sql`${t.status} in ('open', 'acknowledged', 'dismissed')`),
    check('alert_events_source_check', sql`${t.source} in ('api', 'cli', 'system')`),
    index('alert_events_alert_idx').on(t.alertId, t.createdAt),
  ],
);

/**
 * The watchlist: fraudster identities whose voice raises `watchlist_hit` on every recording that
 * matches (src/voices/watchlist/). A removed entry keeps its row (`removed_at`, and why): who was
 * listed, when and on what grounds stays answerable; one live entry per identity.
 */
export const watchlistEntries = pgTable(
  'watchlist_entries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    identityId: uuid('identity_id')
      .notNull()
      .references(() => identities.id, { onDelete: 'cascade' }),
    reason: text('reason').notNull(),
    // the voiceprint the entry was made from (null for an identity entry); its recording is not a hit
    voiceprintId: uuid('voiceprint_id').references(() => voiceprints.id, { onDelete: 'set null' }),
    seedRecordingId: uuid('seed_recording_id'),
    // the look-back that ran when it was added
    lookBackChecked: integer('look_back_checked').notNull().default(0),
    lookBackHits: integer('look_back_hits').notNull().default(0),
    source: text('source', { enum: auditSources }).notNull(),
    keyId: uuid('key_id'),
    requestId: text('request_id'),
    createdAt: createdAt(),
    removedAt: timestamp('removed_at', { withTimezone: true }),
    removedReason: text('removed_reason'),
    removedKeyId: uuid('removed_key_id'),
  },
  (t) => [
    check('watchlist_entries_source_check', sql`${t.source} in ('api', 'cli', 'system')`),
    uniqueIndex('watchlist_entries_live_identity_key').on(t.identityId).where(sql`${t.removedAt} is null`),
    index('watchlist_entries_created_idx').on(t.createdAt, t.id).where(sql`${t.removedAt} is null`),
  ],
);

/**
 * Every voiceprint of every listed identity with a copy of its (unit-length) embedding: what the
 * watchlist check of each new recording compares against, packed in a table of its own so that the
 * comparison reads a few hundred pages in a row instead of one heap page of `voiceprints` per listed
 * voiceprint. Derived from `voiceprints.identity_id` and the live `watchlist_entries`; kept by their
 * writers (src/voices/watchlist/listed.ts), which all hold the identity-assignment lock.
 */
export const listedVoiceprints = pgTable(
  'listed_voiceprints',
  {
    voiceprintId: uuid('voiceprint_id')
      .primaryKey()
      .references(() => voiceprints.id, { onDelete: 'cascade' }),
    identityId: uuid('identity_id')
      .notNull()
      .references(() => identities.id, { onDelete: 'cascade' }),
    recordingId: uuid('recording_id').notNull(),
    embedding: vector('embedding', { dimensions: SPEAKER_DIMENSIONS }).notNull(),
  },
  (t) => [index('listed_voiceprints_identity_idx').on(t.identityId)],
);

export const staffProposalStatuses = ['proposed', 'confirmed', 'rejected'] as const;
export type StaffProposalStatus = (typeof staffProposalStatuses)[number];

/**
 * Voices voxtrace proposes as members of staff (src/voices/staff/), and what an analyst decided:
 * `confirmed` (the identity became `staff`) or `rejected` (never proposed again). `evidence` holds
 * the figures that made the proposal.
 */
export const staffProposals = pgTable(
  'staff_proposals',
  {
    identityId: uuid('identity_id')
      .primaryKey()
      .references(() => identities.id, { onDelete: 'cascade' }),
    status: text('status', { enum: staffProposalStatuses }).notNull().default('proposed'),
    evidence: jsonb('evidence').$type<Record<string, unknown>>().notNull(),
    proposedAt: timestamp('proposed_at', { withTimezone: true }).notNull().defaultNow(),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    note: text('note'),
    source: text('source', { enum: auditSources }),
    keyId: uuid('key_id'),
    requestId: text('request_id'),
  },
  (t) => [
    check('staff_proposals_status_check', sql`${t.status} in ('proposed', 'confirmed', 'rejected')`),
    check('staff_proposals_source_check', sql`${t.source} in ('api', 'cli', 'system')`),
    index('staff_proposals_proposed_idx').on(t.proposedAt, t.identityId).where(sql`${t.status} = 'proposed'`),
  ],
);
