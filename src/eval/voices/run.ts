import { analysisSteps } from '../../analysis/steps.ts';
import { CLI_ACTOR } from '../../audit/audit.ts';
import type { VoiceSettings } from '../../config.ts';
import type { Database } from '../../db/client.ts';
import type { Logger } from '../../log.ts';
import { randomStream } from '../../standin/voices.ts';
import { dot } from '../../vectors.ts';
import { currentCalibration, refreshCalibration } from '../../voices/calibration.ts';
import { reclusterVoices } from '../../voices/identities/recluster.ts';
import * as thresholds from '../../voices/identities/thresholds.ts';
import { searchVoices } from '../../voices/search.ts';
import * as staffRule from '../../voices/staff/rule.ts';
import { decideStaffProposals, listVoiceprint } from './analyst.ts';
import { generateCorpus } from './corpus.ts';
import {
  identityTruth,
  type Listing,
  staffProposalScores,
  voiceReuseScores,
  watchlistComparisons,
  watchlistScores,
} from './fraud-metrics.ts';
import { clusteringScores, unitOf, verificationFigures } from './metrics.ts';
import {
  alertsOfType,
  identityAssignments,
  mergedIdentities,
  recordingCount,
  staffProposalRows,
  watchlistEntryRows,
} from './queries.ts';
import { type LoadedVoiceprint, replayCorpus } from './replay.ts';

export type VoicesEvalOptions = {
  seed: number;
  /** the seed the thresholds were tuned on (recorded; a run on it is not a held-out figure) */
  tuneSeed: number;
  speakers: number;
  settings: VoiceSettings;
  log: Logger;
  /** calls stored before the analysis catches up (see replayCorpus) */
  batch?: number;
  /** voiceprints searched for the top-1 identification figure */
  identificationQueries?: number;
  progress?: (line: string) => void;
};

/** The targets of the identity clustering (docs/voices.md, "Identities"). */
export const TARGETS = {
  f1: 0.95,
  bcubedPrecision: 0.98,
  /** online F1 within this of batch F1 */
  onlineGap: 0.02,
  /** realised FAR at most this many times the nominal */
  farRatio: 2,
  /** of the listed fraudsters' other calls, the share with a watchlist hit */
  watchlistHitRate: 0.95,
  /**
   * false watchlist matches per comparison: a listed voiceprint against a stored voiceprint of
   * another recording, the unit VOXTRACE_WATCHLIST_FAR is defined on (CONVENTIONS "Voices API")
   */
  watchlistFalseMatchesPerComparison: 0.001,
  voiceReusePrecision: 0.95,
  voiceReuseRecall: 0.9,
  staffProposalRecall: 0.9,
} as const;

/**
 * The voices eval: a corpus with known truth (corpus.ts) replayed through the product in arrival
 * order (online: the analysis steps; the analyst lists half the fraudsters on the watchlist right
 * after their first call), then the analyst's work after the replay (staff proposals confirmed or
 * rejected, the other fraudsters listed from one call: the look-back), then `recluster voices`
 * (batch), then scored. The product's paths never see the truth; only this module's scoring and the
 * simulated analyst's knowledge (analyst.ts, fraud-metrics.ts) do.
 * @example const figures = await runVoicesEval(database, { seed: 2, tuneSeed: 1, speakers: 2000, settings, log });
 */
export async function runVoicesEval(database: Database, options: VoicesEvalOptions) {
  const progress = options.progress ?? (() => {});
  const { db } = database;
  const corpus = generateCorpus({ seed: options.seed, speakers: options.speakers });
  const all = corpus.calls.flatMap((c) => c.voiceprints);
  progress(
    `corpus: ${corpus.calls.length} calls, ${all.length} voiceprints (${corpus.options.speakers} customers, ` +
      `${corpus.options.staff} staff, ${all.filter((v) => v.role === 'clone').length} clones, ` +
      `${all.filter((v) => v.noisy).length} hard, ${corpus.options.fraudsters} fraudsters with ` +
      `${all.filter((v) => v.role === 'fraudster').length} voiceprints)`,
  );

  const onlineStarted = performance.now();
  let lastReport = 0;
  const listings: Listing[] = [];
  const loaded = await replayCorpus(db, corpus, {
    steps: analysisSteps(options.settings),
    settings: options.settings,
    log: options.log,
    batch: options.batch ?? 16,
    onProgress(done, total) {
      if (performance.now() - lastReport < 10_000 && done < total) return;
      lastReport = performance.now();
      const rate = done / ((performance.now() - onlineStarted) / 1000);
      progress(`online: ${done}/${total} calls stored and analysed (${rate.toFixed(0)} calls/s)`);
    },
    async onAnalysed(voiceprints) {
      for (const vp of voiceprints) {
        if (vp.watchlist === 'online') listings.push(await listVoiceprint(db, options.settings, vp));
      }
    },
  });
  const onlineSeconds = (performance.now() - onlineStarted) / 1000;
  const online = await identityAssignments(db);

  // the analyst after the replay: staff proposals decided (scored as proposed, on the identities of
  // the replay's end), then the look-back listings; voice reuse and the watchlist scored after both
  progress('analyst: staff proposals decided, look-back listings');
  const analystStarted = performance.now();
  const proposals = await staffProposalRows(db);
  const onlineTruth = identityTruth(loaded, online, await mergedIdentities(db));
  const staffProposals = staffProposalScores({ proposals, truth: onlineTruth, loaded });
  const decisions = await decideStaffProposals(db, proposals, onlineTruth.mostlyStaff);
  for (const vp of loaded) {
    if (vp.watchlist === 'look-back') listings.push(await listVoiceprint(db, options.settings, vp));
  }
  const analystSeconds = (performance.now() - analystStarted) / 1000;
  const truthNow = identityTruth(loaded, await identityAssignments(db), await mergedIdentities(db));
  const watchlist = watchlistScores({
    listings,
    alerts: await alertsOfType(db, 'watchlist_hit'),
    entries: await watchlistEntryRows(db),
    truth: truthNow,
    loaded,
    recordings: await recordingCount(db),
    fraudsters: corpus.options.fraudsters,
  });
  // at the threshold the check compares at the replay's end (the calibration the product holds then)
  const comparisons = watchlistComparisons({
    listings,
    truth: truthNow,
    loaded,
    minSimilarity: (await currentCalibration(db)).similarityAtFar(options.settings.watchlistFar),
  });
  const voiceReuse = voiceReuseScores({
    alerts: await alertsOfType(db, 'voice_reuse'),
    truth: truthNow,
    calls: corpus.calls,
    loaded,
    rule: { accounts: options.settings.voiceReuseAccounts, days: options.settings.voiceReuseDays },
  });
  progress(
    `analyst: watchlist hits ${watchlist.hits}/${watchlist.otherCalls}, ${watchlist.falseHits} false; ` +
      `voice reuse ${voiceReuse.truePositives}/${voiceReuse.alerts} right, ${voiceReuse.found}/${voiceReuse.reusingFraudsters} found; ` +
      `staff proposals ${staffProposals.truePositives}/${staffProposals.proposals} right, ` +
      `${staffProposals.found}/${staffProposals.unenrolledStaff} found`,
  );

  progress('batch: recluster voices');
  const recluster = await reclusterVoices(db, options.settings, CLI_ACTOR);
  const batch = await identityAssignments(db);
  progress(
    `batch: ${recluster.clusters} clusters, ${recluster.created.length} created, ${recluster.grown.length} grown, ` +
      `${recluster.shrunk.length} shrunk, ${recluster.retired.length} retired (${(recluster.ms / 1000).toFixed(1)} s)`,
  );

  const scored = loaded.filter((v) => v.role === 'customer');
  const callsOf = new Map<string, number>();
  for (const v of scored) callsOf.set(v.speakerId, (callsOf.get(v.speakerId) ?? 0) + 1);
  const clustering = (assignments: typeof online) => ({
    ...clusteringScores(
      scored.map((v) => ({ truth: v.speakerId, predicted: assignments.get(v.id)?.identityId ?? null })),
    ),
    unassignedWhy: unassignedBreakdown(scored, assignments, callsOf, options.settings.enrolMinSpeechS),
    staff: staffFigures(loaded, assignments),
    clones: cloneFigures(loaded, assignments),
  });
  const onlineFigures = clustering(online);
  const batchFigures = clustering(batch);

  progress('scores: calibration, verification pairs, top-1 identification');
  const calibration = await refreshCalibration(db);
  const verification = verificationScores(loaded, options.seed);
  const operatingPoints = [
    { verdict: 'same', nominalFar: 0.001 },
    { verdict: 'likely', nominalFar: 0.01 },
  ].map((point) => {
    const threshold = calibration.similarityAtFar(point.nominalFar);
    const realised = verification.realised(threshold);
    return {
      ...point,
      threshold: round(threshold),
      realisedFar: round(realised.far, 6),
      ratio: round(realised.far / point.nominalFar, 3),
      tmr: round(realised.tmr),
    };
  });
  const identification = await topOneIdentification(
    database,
    loaded,
    options.identificationQueries ?? 500,
    options.seed,
  );

  const onlineGap = round(batchFigures.pairwise.f1 - onlineFigures.pairwise.f1);
  const targets = [
    target('batch pairwise F1 ≥ 0.95', batchFigures.pairwise.f1, batchFigures.pairwise.f1 >= TARGETS.f1),
    target('online pairwise F1 ≥ 0.95', onlineFigures.pairwise.f1, onlineFigures.pairwise.f1 >= TARGETS.f1),
    target(
      'batch B³ precision ≥ 0.98',
      batchFigures.bcubed.precision,
      batchFigures.bcubed.precision >= TARGETS.bcubedPrecision,
    ),
    target(
      'online B³ precision ≥ 0.98',
      onlineFigures.bcubed.precision,
      onlineFigures.bcubed.precision >= TARGETS.bcubedPrecision,
    ),
    target('online F1 within 0.02 of batch', onlineGap, Math.abs(onlineGap) <= TARGETS.onlineGap),
    ...operatingPoints.map((p) =>
      target(`realised FAR at '${p.verdict}' ≤ 2 × ${p.nominalFar}`, p.realisedFar, p.ratio <= TARGETS.farRatio),
    ),
    target(
      'no clone in its victim’s customer identity',
      batchFigures.clones.inVictimCustomerIdentity + onlineFigures.clones.inVictimCustomerIdentity,
      batchFigures.clones.inVictimCustomerIdentity + onlineFigures.clones.inVictimCustomerIdentity === 0,
    ),
    target(
      'watchlist hits ≥ 95 % of the listed fraudsters’ other calls',
      watchlist.hitRate,
      watchlist.hitRate >= TARGETS.watchlistHitRate,
    ),
    target(
      'watchlist false matches ≤ 0.1 % per comparison (a listed voiceprint against a stored one)',
      comparisons.falseMatchesPerComparison,
      comparisons.falseMatchesPerComparison <= TARGETS.watchlistFalseMatchesPerComparison,
    ),
    target(
      'voice-reuse precision ≥ 0.95 (staff confirmed)',
      voiceReuse.precision,
      voiceReuse.precision >= TARGETS.voiceReusePrecision,
    ),
    target('voice-reuse recall ≥ 0.9', voiceReuse.recall, voiceReuse.recall >= TARGETS.voiceReuseRecall),
    target('staff proposal recall ≥ 0.9', staffProposals.recall, staffProposals.recall >= TARGETS.staffProposalRecall),
  ];

  return {
    seed: options.seed,
    tuneSeed: options.tuneSeed,
    heldOut: options.seed !== options.tuneSeed,
    corpus: {
      customers: corpus.options.speakers,
      staff: corpus.options.staff,
      calls: corpus.calls.length,
      voiceprints: all.length,
      hardVoiceprints: all.filter((v) => v.noisy).length,
      hardShare: round(all.filter((v) => v.noisy).length / all.length),
      clones: all.filter((v) => v.role === 'clone').length,
      staffVoiceprints: all.filter((v) => v.role === 'staff').length,
      enrolledCustomers: all.filter((v) => v.enrol === 'customer').length,
      enrolledStaff: all.filter((v) => v.enrol === 'staff').length,
      enrolMinSpeechS: options.settings.enrolMinSpeechS,
      fraudsters: corpus.options.fraudsters,
      fraudsterCalls: corpus.calls.filter((c) => c.voiceprints.some((v) => v.role === 'fraudster')).length,
      fraudsterVoiceprints: all.filter((v) => v.role === 'fraudster').length,
      campaignDays: corpus.options.campaignDays,
      callsByChannel: countBy(corpus.calls.map((c) => c.channel)),
    },
    thresholds: { ...thresholds },
    verification: {
      genuinePairs: verification.genuinePairs,
      impostorPairs: verification.impostorPairs,
      eer: verification.eer,
      eerThreshold: verification.eerThreshold,
      tmrAtFar: verification.atFar,
      calibration: { method: calibration.method, cohortSize: calibration.cohortSize, pairCount: calibration.pairCount },
      operatingPoints,
    },
    identification,
    clustering: { online: onlineFigures, batch: batchFigures, onlineGap },
    watchlist: { far: options.settings.watchlistFar, ...watchlist, comparisons },
    voiceReuse,
    staffProposals: {
      rule: {
        windowDays: staffRule.STAFF_WINDOW_DAYS,
        minAccounts: staffRule.STAFF_MIN_ACCOUNTS,
        twoSpeakerShare: staffRule.STAFF_TWO_SPEAKER_SHARE,
        channelShare: staffRule.STAFF_CHANNEL_SHARE,
      },
      ...staffProposals,
      decisions,
    },
    recluster: {
      voiceprints: recluster.voiceprints,
      clusters: recluster.clusters,
      created: recluster.created.length,
      grown: recluster.grown.length,
      shrunk: recluster.shrunk.length,
      retired: recluster.retired.length,
      unchanged: recluster.unchanged,
      moved: recluster.moved,
      unassigned: recluster.unassigned,
      seconds: round(recluster.ms / 1000, 1),
    },
    timing: {
      onlineSeconds: round(onlineSeconds, 1),
      callsPerSecond: round(corpus.calls.length / onlineSeconds, 1),
      analystSeconds: round(analystSeconds, 1),
    },
    targets,
    missed: targets.filter((t) => !t.met).map((t) => t.name),
  };
}
export type VoicesEvalFigures = Awaited<ReturnType<typeof runVoicesEval>>;

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;
const target = (name: string, value: number, met: boolean) => ({ name, value, met });
const countBy = (values: readonly string[]) => {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
};

type Assignments = Map<string, { identityId: string | null; kind: string | null }>;

/**
 * What the unassigned customer voiceprints are (each counted once, in this order): hard calls,
 * calls with less speech than a core point needs, calls of speakers with at most 4 calls, others.
 */
function unassignedBreakdown(
  scored: LoadedVoiceprint[],
  assignments: Assignments,
  callsOf: Map<string, number>,
  minSpeech: number,
) {
  const counts = { hard: 0, shortSpeech: 0, speakerWithFewCalls: 0, other: 0 };
  for (const v of scored) {
    if (assignments.get(v.id)?.identityId) continue;
    if (v.noisy) counts.hard++;
    else if (v.speechSeconds < minSpeech) counts.shortSpeech++;
    else if ((callsOf.get(v.speakerId) ?? 0) <= 4) counts.speakerWithFewCalls++;
    else counts.other++;
  }
  return counts;
}

/** Each member of staff's main identity (the one holding most of their calls): its purity and coverage. */
function staffFigures(loaded: LoadedVoiceprint[], assignments: Assignments) {
  const members = new Map<string, LoadedVoiceprint[]>();
  for (const vp of loaded) {
    const identityId = assignments.get(vp.id)?.identityId;
    if (!identityId) continue;
    const list = members.get(identityId) ?? [];
    list.push(vp);
    members.set(identityId, list);
  }
  const staff = new Map<string, LoadedVoiceprint[]>();
  for (const vp of loaded.filter((v) => v.role === 'staff')) {
    const list = staff.get(vp.speakerId) ?? [];
    list.push(vp);
    staff.set(vp.speakerId, list);
  }
  let pure = 0;
  let size = 0;
  let covered = 0;
  let total = 0;
  let othersInStaffIdentities = 0;
  for (const [speakerId, own] of staff) {
    total += own.length;
    const counts = new Map<string, number>();
    for (const vp of own) {
      const identityId = assignments.get(vp.id)?.identityId;
      if (identityId) counts.set(identityId, (counts.get(identityId) ?? 0) + 1);
    }
    const main = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
    if (!main) continue;
    const identityMembers = members.get(main[0]) ?? [];
    const theirs = identityMembers.filter((v) => v.speakerId === speakerId && v.role === 'staff').length;
    pure += theirs;
    size += identityMembers.length;
    covered += main[1];
    othersInStaffIdentities += identityMembers.length - theirs;
  }
  return {
    members: staff.size,
    voiceprints: total,
    /** share of their main identities' members that are that member of staff */
    purity: round(size ? pure / size : 1),
    /** share of their voiceprints in their main identity */
    coverage: round(total ? covered / total : 0),
    /** voiceprints of anyone else (customers, clones) in those identities */
    othersInStaffIdentities,
  };
}

/** Where the voice clones went: their victim's identity (customer or unknown), another, or none. */
function cloneFigures(loaded: LoadedVoiceprint[], assignments: Assignments) {
  const victimIdentity = new Map<string, { identityId: string; kind: string | null }>();
  const counts = new Map<string, Map<string, number>>();
  for (const vp of loaded.filter((v) => v.role === 'customer')) {
    const a = assignments.get(vp.id);
    if (!a?.identityId) continue;
    const map = counts.get(vp.speakerId) ?? new Map<string, number>();
    map.set(a.identityId, (map.get(a.identityId) ?? 0) + 1);
    counts.set(vp.speakerId, map);
  }
  for (const [speakerId, map] of counts) {
    const [identityId] = [...map.entries()].sort((a, b) => b[1] - a[1])[0] as [string, number];
    const kind = [...assignments.values()].find((a) => a.identityId === identityId)?.kind ?? null;
    victimIdentity.set(speakerId, { identityId, kind });
  }
  const clones = loaded.filter((v) => v.role === 'clone');
  let inVictimCustomer = 0;
  let inVictimUnknown = 0;
  let inOther = 0;
  for (const clone of clones) {
    const identityId = assignments.get(clone.id)?.identityId;
    if (!identityId) continue;
    const victim = victimIdentity.get(clone.speakerId);
    if (victim?.identityId === identityId) {
      if (victim.kind === 'customer') inVictimCustomer++;
      else inVictimUnknown++;
    } else inOther++;
  }
  return {
    clones: clones.length,
    inVictimCustomerIdentity: inVictimCustomer,
    inVictimUnknownIdentity: inVictimUnknown,
    inOtherIdentity: inOther,
    unassigned: clones.length - inVictimCustomer - inVictimUnknown - inOther,
    /** share that joined their victim's identity, whatever its kind */
    withVictim: round(clones.length ? (inVictimCustomer + inVictimUnknown) / clones.length : 0),
  };
}

/**
 * Same-speaker and different-speaker similarities of the corpus' customers' and staff's voiceprints
 * (clones and fraudsters left out): every same-speaker pair up to 400,000 (a sample beyond), and
 * 2,000,000 random different-speaker pairs.
 */
function verificationScores(loaded: LoadedVoiceprint[], seed: number) {
  const genuine = loaded.filter((v) => v.role === 'customer' || v.role === 'staff');
  const units = genuine.map((v) => unitOf(v.vector));
  const bySpeaker = new Map<string, number[]>();
  genuine.forEach((v, i) => {
    const list = bySpeaker.get(v.speakerId) ?? [];
    list.push(i);
    bySpeaker.set(v.speakerId, list);
  });
  const random = randomStream(seed, 'voices-eval-pairs');
  let genuinePairs = 0;
  for (const list of bySpeaker.values()) genuinePairs += (list.length * (list.length - 1)) / 2;
  const keep = Math.min(1, 400_000 / Math.max(1, genuinePairs));
  const same: number[] = [];
  for (const list of bySpeaker.values()) {
    for (let a = 0; a < list.length; a++) {
      for (let b = a + 1; b < list.length; b++) {
        if (keep < 1 && random.uniform() >= keep) continue;
        same.push(dot(units[list[a] as number] as Float32Array, units[list[b] as number] as Float32Array));
      }
    }
  }
  const impostor = new Float32Array(2_000_000);
  for (let n = 0; n < impostor.length; ) {
    const a = Math.floor(random.uniform() * genuine.length);
    const b = Math.floor(random.uniform() * genuine.length);
    if ((genuine[a] as LoadedVoiceprint).speakerId === (genuine[b] as LoadedVoiceprint).speakerId) continue;
    impostor[n++] = dot(units[a] as Float32Array, units[b] as Float32Array);
  }
  return verificationFigures(Float32Array.from(same), impostor);
}

/**
 * The product's voice search (`searchVoices`, k = 1, staff left out as by default) for a sample of
 * customer voiceprints that have another genuine call: how often the nearest is the same speaker.
 */
async function topOneIdentification(database: Database, loaded: LoadedVoiceprint[], queries: number, seed: number) {
  const calls = new Map<string, number>();
  for (const vp of loaded) if (vp.role === 'customer') calls.set(vp.speakerId, (calls.get(vp.speakerId) ?? 0) + 1);
  const candidates = loaded.filter((v) => v.role === 'customer' && (calls.get(v.speakerId) ?? 0) >= 2);
  const random = randomStream(seed, 'voices-eval-identification');
  const byId = new Map(loaded.map((v) => [v.id, v]));
  let hits = 0;
  let asked = 0;
  for (let i = 0; i < Math.min(queries, candidates.length); i++) {
    const query = candidates[Math.floor(random.uniform() * candidates.length)] as LoadedVoiceprint;
    const { items } = await searchVoices(database.db, { query: { voiceprintId: query.id }, k: 1 }, CLI_ACTOR);
    const nearest = items[0] ? byId.get(items[0].voiceprintId) : undefined;
    asked++;
    if (nearest && nearest.role === 'customer' && nearest.speakerId === query.speakerId) hits++;
  }
  return { queries: asked, top1: round(asked ? hits / asked : 0) };
}
