import { randomFillSync } from 'node:crypto';
import { SPEAKER_DIMENSIONS } from '../../src/db/schema.ts';
import { createVoiceModel, randomStream } from '../../src/standin/voices.ts';

/** Channels of the recordings and their shares; `branch` is the 1 % filter. */
export const CHANNELS = [
  { name: 'phone', share: 0.7 },
  { name: 'app', share: 0.2 },
  { name: 'web', share: 0.09 },
  { name: 'branch', share: 0.01 },
] as const;
export const ONE_PERCENT_CHANNEL = 'branch';
const BRANCH = CHANNELS.findIndex((c) => c.name === ONE_PERCENT_CHANNEL);

export const STAFF_SPEAKERS = 20;
/** Share of all voiceprints that are staff (agents heard on other people's calls). */
const STAFF_SHARE = 0.04;
const FRAUDSTER_SHARE = 0.005;
const CUSTOMER_IDENTITY_SHARE = 0.3;
const MAX_CALLS_PER_SPEAKER = 30;
const NOISY_SHARE = 0.1;
const CALLS_FROM = Date.UTC(2025, 0, 1);
const CALLS_TO = Date.UTC(2026, 11, 1);

export type IdentityKind = 'customer' | 'fraudster' | 'staff';

/**
 * The benchmark's voices, held in typed arrays (a million voiceprints are ~0.8 GB of float32):
 * customers with 1–30 calls each (log-uniform: most have a few, some many), a few fraudsters who
 * call on other people's accounts, and `STAFF_SPEAKERS` agents heard on 4 % of the recordings as a
 * second voiceprint. Every embedding is the project's synthetic voice model's
 * (`speakerEmbedding(speaker, call)`), normalised to unit length as voxtrace stores it. Held-out
 * queries are new calls of existing speakers, never loaded.
 */
export type Population = {
  dimensions: number;
  count: number;
  /** count × dimensions, unit length, in a SharedArrayBuffer (the exact search's threads read it). */
  vectors: Float32Array;
  voiceprintIds: Uint8Array;
  voiceprintRecording: Int32Array;
  /** 0: the caller (`customer` label), 1: the agent (`agent` label). */
  voiceprintAgent: Uint8Array;
  voiceprintIdentity: Int32Array;
  voiceprintStaff: Uint8Array;
  /** the voice model's speaker of each voiceprint: `speaker-<n>` for n ≥ 0, `staff-<s>` for −1 − s */
  voiceprintSpeaker: Int32Array;
  rawNorm: Float32Array;
  speechSeconds: Float32Array;
  recordings: number;
  recordingIds: Uint8Array;
  /** the account's number: `acct-<n>` */
  recordingAccount: Int32Array;
  recordingChannel: Uint8Array;
  recordingCallAt: Float64Array;
  identityIds: Uint8Array;
  identityKind: IdentityKind[];
  identityAccount: (number | null)[];
  /** the speaker of each identity, as `voiceprintSpeaker` numbers them */
  identitySpeaker: number[];
  speakers: number;
  /** the 0.1 % filter: accounts whose recordings make up ≈ 0.1 % of all recordings */
  filterAccounts: number[];
  /** held-out calls of customers (never loaded), and one of each staff member */
  queries: Float32Array;
  queryCount: number;
  staffQueries: Float32Array;
  staffQueryCount: number;
};

export const accountRef = (account: number) => `acct-${account}`;

/** Unit-length copy of `values` into `target` at `offset`; returns the raw norm. */
function normaliseInto(values: number[], target: Float32Array, offset: number): number {
  let sum = 0;
  for (const x of values) sum += x * x;
  const norm = Math.sqrt(sum);
  for (let d = 0; d < values.length; d++) target[offset + d] = (values[d] as number) / norm;
  return norm;
}

export function generatePopulation(options: {
  voiceprints: number;
  queries: number;
  seed: number;
  log?: (line: string) => void;
}): Population {
  const dims = SPEAKER_DIMENSIONS;
  const model = createVoiceModel(options.seed);
  const random = randomStream(options.seed, 'bench-voices-knn');
  const count = options.voiceprints;
  const staffCallsEach = Math.max(1, Math.round((count * STAFF_SHARE) / STAFF_SPEAKERS));
  const staffTotal = staffCallsEach * STAFF_SPEAKERS;
  const customerTotal = count - staffTotal;
  const recordingsCount = customerTotal;

  const vectors = new Float32Array(new SharedArrayBuffer(count * dims * 4));
  const voiceprintIds = randomFillSync(new Uint8Array(count * 16));
  const voiceprintRecording = new Int32Array(count);
  const voiceprintAgent = new Uint8Array(count);
  const voiceprintIdentity = new Int32Array(count).fill(-1);
  const voiceprintStaff = new Uint8Array(new SharedArrayBuffer(count));
  const voiceprintSpeaker = new Int32Array(count);
  const rawNorm = new Float32Array(count);
  const speechSeconds = new Float32Array(count);
  const recordingIds = randomFillSync(new Uint8Array(recordingsCount * 16));
  const recordingAccount = new Int32Array(recordingsCount);
  const recordingChannel = new Uint8Array(recordingsCount);
  const recordingCallAt = new Float64Array(recordingsCount);
  const identityKind: IdentityKind[] = [];
  const identityAccount: (number | null)[] = [];
  const identitySpeaker: number[] = [];

  const channelOf = () => {
    let u = random.uniform();
    for (const [i, c] of CHANNELS.entries()) {
      if (u < c.share) return i;
      u -= c.share;
    }
    return 0;
  };

  // customers and fraudsters: one recording (and one voiceprint) per call
  let v = 0;
  let speaker = 0;
  const speakerFirst: number[] = [];
  const speakerCalls: number[] = [];
  const fraudsters = new Set<number>();
  const started = performance.now();
  while (v < customerTotal) {
    const calls = Math.min(
      customerTotal - v,
      Math.min(MAX_CALLS_PER_SPEAKER, Math.floor(Math.exp(random.uniform() * Math.log(MAX_CALLS_PER_SPEAKER + 1)))),
    );
    const isFraudster = random.uniform() < FRAUDSTER_SHARE;
    if (isFraudster) fraudsters.add(speaker);
    let identity = -1;
    if (isFraudster || random.uniform() < CUSTOMER_IDENTITY_SHARE) {
      identity = identityKind.length;
      identityKind.push(isFraudster ? 'fraudster' : 'customer');
      identityAccount.push(isFraudster ? null : speaker);
      identitySpeaker.push(speaker);
    }
    speakerFirst.push(v);
    speakerCalls.push(calls);
    for (let c = 0; c < calls; c++, v++) {
      const r = v; // customer voiceprint v sits on recording v
      // a fraudster calls on other people's accounts (the lower speaker numbers exist already)
      recordingAccount[r] = isFraudster && speaker > 0 ? Math.floor(random.uniform() * speaker) : speaker;
      recordingChannel[r] = channelOf();
      recordingCallAt[r] = CALLS_FROM + random.uniform() * (CALLS_TO - CALLS_FROM);
      voiceprintRecording[v] = r;
      voiceprintIdentity[v] = identity;
      voiceprintSpeaker[v] = speaker;
      const embedding = model.speakerEmbedding(`speaker-${speaker}`, `call-${c}`, {
        noisy: random.uniform() < NOISY_SHARE,
      });
      rawNorm[v] = normaliseInto(embedding, vectors, v * dims);
      speechSeconds[v] = 5 + 115 * random.uniform();
    }
    speaker++;
    if (options.log && speaker % 20_000 === 0) {
      options.log(
        `  generated ${v.toLocaleString('en')} voiceprints (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
  }

  // staff: an agent voiceprint on distinct, randomly chosen recordings
  const chosen = new Int32Array(recordingsCount);
  for (let i = 0; i < recordingsCount; i++) chosen[i] = i;
  for (let i = 0; i < staffTotal; i++) {
    const j = i + Math.floor(random.uniform() * (recordingsCount - i));
    const t = chosen[i] as number;
    chosen[i] = chosen[j] as number;
    chosen[j] = t;
  }
  for (let s = 0; s < STAFF_SPEAKERS; s++) {
    const identity = identityKind.length;
    identityKind.push('staff');
    identityAccount.push(null);
    identitySpeaker.push(-1 - s);
    for (let c = 0; c < staffCallsEach; c++, v++) {
      voiceprintRecording[v] = chosen[s * staffCallsEach + c] as number;
      voiceprintAgent[v] = 1;
      voiceprintStaff[v] = 1;
      voiceprintSpeaker[v] = -1 - s;
      voiceprintIdentity[v] = identity;
      rawNorm[v] = normaliseInto(model.speakerEmbedding(`staff-${s}`, `call-${c}`), vectors, v * dims);
      speechSeconds[v] = 30 + 200 * random.uniform();
    }
  }

  // the 0.1 % filter: whole accounts of customers, until they hold 0.1 % of the recordings
  const perAccount = new Int32Array(speaker);
  for (let r = 0; r < recordingsCount; r++) {
    const account = recordingAccount[r] as number;
    perAccount[account] = (perAccount[account] as number) + 1;
  }
  const filterAccounts: number[] = [];
  const inFilter = new Set<number>();
  let filtered = 0;
  while (filtered < recordingsCount * 0.001) {
    const account = Math.floor(random.uniform() * speaker);
    if (inFilter.has(account) || fraudsters.has(account)) continue;
    inFilter.add(account);
    filterAccounts.push(account);
    filtered += perAccount[account] as number;
  }

  // held-out queries: new calls of distinct customers (not fraudsters), and of each staff member
  const queryCount = Math.min(options.queries, speaker - fraudsters.size);
  const queries = new Float32Array(queryCount * dims);
  const picked = new Set<number>();
  for (let q = 0; q < queryCount; ) {
    const s = Math.floor(random.uniform() * speaker);
    if (picked.has(s) || fraudsters.has(s)) continue;
    picked.add(s);
    normaliseInto(
      model.speakerEmbedding(`speaker-${s}`, 'held-out', { noisy: random.uniform() < NOISY_SHARE }),
      queries,
      q * dims,
    );
    q++;
  }
  const staffQueries = new Float32Array(STAFF_SPEAKERS * dims);
  for (let s = 0; s < STAFF_SPEAKERS; s++) {
    normaliseInto(model.speakerEmbedding(`staff-${s}`, 'held-out'), staffQueries, s * dims);
  }

  return {
    dimensions: dims,
    count,
    vectors,
    voiceprintIds,
    voiceprintRecording,
    voiceprintAgent,
    voiceprintIdentity,
    voiceprintStaff,
    voiceprintSpeaker,
    rawNorm,
    speechSeconds,
    recordings: recordingsCount,
    recordingIds,
    recordingAccount,
    recordingChannel,
    recordingCallAt,
    identityIds: randomFillSync(new Uint8Array(identityKind.length * 16)),
    identityKind,
    identityAccount,
    identitySpeaker,
    speakers: speaker,
    filterAccounts,
    queries,
    queryCount,
    staffQueries,
    staffQueryCount: STAFF_SPEAKERS,
  };
}

/** uuid text of the 16 bytes at `index` of `ids`. */
export function uuidAt(ids: Uint8Array, index: number): string {
  const hex = Buffer.from(ids.buffer, ids.byteOffset + index * 16, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Which of the searches each voiceprint is eligible for, one bit each: 1 every non-staff
 * voiceprint (the default search), 2 also on the 1 % channel, 4 also on the 0.1 % accounts.
 */
export const ELIGIBLE = { all: 1, channel: 2, accounts: 4 } as const;

export function eligibility(population: Population): Uint8Array {
  const flags = new Uint8Array(new SharedArrayBuffer(population.count));
  const accounts = new Set(population.filterAccounts);
  for (let v = 0; v < population.count; v++) {
    if (population.voiceprintStaff[v]) continue;
    const r = population.voiceprintRecording[v] as number;
    let f: number = ELIGIBLE.all;
    if (population.recordingChannel[r] === BRANCH) f |= ELIGIBLE.channel;
    if (accounts.has(population.recordingAccount[r] as number)) f |= ELIGIBLE.accounts;
    flags[v] = f;
  }
  return flags;
}
