import { DAY_MS } from '../../time.ts';
import { dot } from '../../vectors.ts';
import type { CorpusCall, Role, WatchlistPath } from './corpus.ts';
import { unitOf } from './metrics.ts';
import type { AlertRow, ProposalRow } from './queries.ts';
import type { LoadedVoiceprint } from './replay.ts';

/**
 * The scoring of the fraud features against the corpus' truth — the watchlist, voice reuse and
 * staff proposals — and what the simulated analyst knows when deciding a proposal. Pure functions:
 * the database's answers come in as rows.
 */

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

type Assignments = Map<string, { identityId: string | null; kind: string | null }>;

/** Who an identity's voiceprints mostly are: the speaker holding more than half of them, or null. */
export type Majority = { role: Role; speakerId: string; share: number; size: number };

/** Who more than half of these voiceprints are (one role and speaker), or null when nobody is. */
export function majority(voiceprints: readonly LoadedVoiceprint[]): Majority | null {
  const counts = new Map<string, { role: Role; speakerId: string; n: number }>();
  for (const vp of voiceprints) {
    const key = `${vp.role}/${vp.speakerId}`;
    const c = counts.get(key) ?? { role: vp.role, speakerId: vp.speakerId, n: 0 };
    c.n++;
    counts.set(key, c);
  }
  const top = [...counts.values()].sort((a, b) => b.n - a.n)[0];
  if (!top || top.n * 2 <= voiceprints.length) return null;
  return {
    role: top.role,
    speakerId: top.speakerId,
    share: round(top.n / voiceprints.length),
    size: voiceprints.length,
  };
}

/**
 * The truth about identities: their members by identity (`assignments` of the loaded voiceprints),
 * with merged identities followed to the one they went into.
 */
export function identityTruth(
  loaded: readonly LoadedVoiceprint[],
  assignments: Assignments,
  merged: Map<string, string>,
) {
  const members = new Map<string, LoadedVoiceprint[]>();
  const kinds = new Map<string, string | null>();
  for (const vp of loaded) {
    const identityId = assignments.get(vp.id)?.identityId;
    if (!identityId) continue;
    kinds.set(identityId, assignments.get(vp.id)?.kind ?? null);
    const list = members.get(identityId) ?? [];
    list.push(vp);
    members.set(identityId, list);
  }
  const resolve = (identityId: string) => {
    let id = identityId;
    for (let hops = 0; hops < 100 && merged.has(id); hops++) id = merged.get(id) as string;
    return id;
  };
  const membersOf = (identityId: string) => members.get(resolve(identityId)) ?? [];
  const majorityOf = (identityId: string): Majority | null => majority(membersOf(identityId));
  /** who an identity's voiceprints are, largest share first (at most `top`) */
  const compositionOf = (identityId: string, top = 4) => {
    const counts = new Map<string, number>();
    for (const vp of membersOf(identityId))
      counts.set(`${vp.role}:${vp.speakerId}`, (counts.get(`${vp.role}:${vp.speakerId}`) ?? 0) + 1);
    return [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([who, n]) => ({ who, n }));
  };
  /** the analyst's judgement of a staff proposal: more than half its voiceprints are staff (any agent) */
  const mostlyStaff = (identityId: string) => {
    const list = membersOf(identityId);
    return list.length > 0 && list.filter((vp) => vp.role === 'staff').length * 2 > list.length;
  };
  /** the identity holding most of a speaker's voiceprints (of this role), with its kind and that count */
  const mainIdentityOf = (role: Role, speakerId: string) => {
    const counts = new Map<string, number>();
    for (const [identityId, list] of members) {
      const n = list.filter((vp) => vp.role === role && vp.speakerId === speakerId).length;
      if (n > 0) counts.set(identityId, n);
    }
    const [identityId, theirs] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [null, 0];
    if (!identityId) return null;
    return { identityId, kind: kinds.get(identityId) ?? null, theirs, size: members.get(identityId)?.length ?? 0 };
  };
  return { membersOf, majorityOf, mostlyStaff, resolve, mainIdentityOf, compositionOf };
}
export type IdentityTruth = ReturnType<typeof identityTruth>;

/** What the majority of an identity is, as a word (for the breakdowns of false alerts and proposals). */
const whatIs = (m: Majority | null) => (m ? m.role : 'mixed');

/** One voice the analyst put on the watchlist (or tried to). */
export type Listing = {
  speakerId: string;
  path: WatchlistPath;
  voiceprintId: string;
  recordingId: string;
  /** the listed identity; null when the product refused the entry */
  identityId: string | null;
  refused: string | null;
  /** the product's first refusal, when the analyst had to take the voiceprint out of a customer's or agent's identity first */
  movedOut: string | null;
  lookBack: { checked: number; hits: number } | null;
};

/**
 * The watchlist's figures. Hits: of each listed fraudster's other calls (every recording it speaks
 * in but the one it was listed from), the share with a `watchlist_hit` of its listed identity; a
 * fraudster the product refused to list counts all its other calls as missed. False hits:
 * `watchlist_hit` alerts on a recording the listed fraudster does not speak in. Recording checks:
 * every recording the listed voice was checked against that is not the fraudster's own — by the
 * look-back (the recordings stored when it was listed) or the analysis step (those stored after) —
 * so (recordings − the fraudster's own recordings) per listed voice. The false matches per
 * comparison, the unit of VOXTRACE_WATCHLIST_FAR, are `watchlistComparisons`'.
 */
export function watchlistScores(input: {
  listings: readonly Listing[];
  alerts: readonly AlertRow[];
  entries: readonly { identityId: string; voiceprintId: string | null }[];
  truth: IdentityTruth;
  loaded: readonly LoadedVoiceprint[];
  recordings: number;
  /** fraudsters in the corpus, and those with no call long enough to list */
  fraudsters: number;
}) {
  const ownRecordings = new Map<string, Set<string>>();
  const byRecording = new Map<string, LoadedVoiceprint[]>();
  const byId = new Map(input.loaded.map((vp) => [vp.id, vp]));
  for (const vp of input.loaded) {
    const list = byRecording.get(vp.recordingId) ?? [];
    list.push(vp);
    byRecording.set(vp.recordingId, list);
    if (vp.role !== 'fraudster') continue;
    const own = ownRecordings.get(vp.speakerId) ?? new Set<string>();
    own.add(vp.recordingId);
    ownRecordings.set(vp.speakerId, own);
  }
  // which listing an alert's identity is: the identity listed, or the one its entry moved to on a merge
  const listingOf = new Map<string, Listing>();
  const bySeed = new Map(input.listings.map((l) => [l.voiceprintId, l]));
  for (const l of input.listings) if (l.identityId) listingOf.set(l.identityId, l);
  for (const e of input.entries) {
    const l = e.voiceprintId ? bySeed.get(e.voiceprintId) : undefined;
    if (l) listingOf.set(e.identityId, l);
  }
  const find = (identityId: string | null) =>
    identityId ? (listingOf.get(identityId) ?? listingOf.get(input.truth.resolve(identityId))) : undefined;

  const hitRecordings = new Map<Listing, Set<string>>();
  const falseOf = new Map<Listing | undefined, number>();
  let falseHits = 0;
  let falseAsMember = 0;
  const falseByRole: Record<string, number> = {};
  for (const alert of input.alerts) {
    const listing = find(alert.identityId);
    const recordingId = alert.recordingIds[0] as string;
    const own = listing ? ownRecordings.get(listing.speakerId) : undefined;
    if (listing && own?.has(recordingId)) {
      const set = hitRecordings.get(listing) ?? new Set<string>();
      set.add(recordingId);
      hitRecordings.set(listing, set);
      continue;
    }
    falseHits++;
    falseOf.set(listing, (falseOf.get(listing) ?? 0) + 1);
    const hit = alert.evidence.map((e) => (e.voiceprintId ? byId.get(e.voiceprintId) : undefined)).find(Boolean);
    const role = hit ? (hit.role === 'fraudster' ? 'otherFraudster' : hit.role) : 'unknown';
    falseByRole[role] = (falseByRole[role] ?? 0) + 1;
    if (alert.evidence.some((e) => !e.matchedVoiceprintId)) falseAsMember++;
  }

  const perPath = (path: WatchlistPath | null) => {
    const listings = input.listings.filter((l) => path === null || l.path === path);
    let otherCalls = 0;
    let hits = 0;
    let recordingChecks = 0;
    for (const l of listings) {
      const own = ownRecordings.get(l.speakerId) ?? new Set<string>();
      otherCalls += [...own].filter((r) => r !== l.recordingId).length;
      if (!l.identityId) continue;
      hits += [...(hitRecordings.get(l) ?? [])].filter((r) => r !== l.recordingId).length;
      recordingChecks += input.recordings - own.size;
    }
    const lookBacks = listings.flatMap((l) => (l.lookBack ? [l.lookBack] : []));
    const falseHere = listings.reduce((n, l) => n + (falseOf.get(l) ?? 0), 0);
    return {
      fraudsters: listings.length,
      refused: listings.filter((l) => !l.identityId).length,
      otherCalls,
      hits,
      hitRate: round(otherCalls ? hits / otherCalls : 0),
      recordingChecks,
      falseHits: falseHere,
      falseHitsPerRecordingCheck: round(recordingChecks ? falseHere / recordingChecks : 0, 7),
      lookBackVoiceprintsChecked: lookBacks.reduce((s, b) => s + b.checked, 0),
      lookBackHits: lookBacks.reduce((s, b) => s + b.hits, 0),
    };
  };
  const all = perPath(null);
  return {
    fraudsters: input.fraudsters,
    listed: input.listings.filter((l) => l.identityId).length,
    /** fraudsters with no call of enough speech to list */
    unlistable: input.fraudsters - input.listings.length,
    refusals: input.listings.flatMap((l) => (l.refused ? [{ path: l.path, reason: l.refused }] : [])),
    /** listings the product first refused (the voiceprint was in a customer's or agent's identity): taken out, then listed */
    movedOut: input.listings.flatMap((l) => (l.movedOut ? [{ path: l.path, refusal: l.movedOut }] : [])),
    otherCalls: all.otherCalls,
    hits: all.hits,
    hitRate: all.hitRate,
    /** a recording checked against one listed voice: recordings − the listed fraudster's own, per listed voice */
    recordingChecks: all.recordingChecks,
    falseHits,
    /**
     * false hits per recording and listed voice: about (listed voiceprints × the FAR per comparison)
     * plus the recordings of a customer whose voiceprint sits in the listed identity
     */
    falseHitsPerRecordingCheck: round(all.recordingChecks ? falseHits / all.recordingChecks : 0, 7),
    /** false hits on a recording whose voiceprint had joined the listed identity (a member, whatever its similarity) */
    falseHitsAsMember: falseAsMember,
    /** whose voiceprint the false hits were on */
    falseHitsByRole: falseByRole,
    online: perPath('online'),
    lookBack: perPath('look-back'),
    /** each listing: its other calls and how many of them were hit */
    byFraudster: input.listings.map((l) => ({
      fraudster: l.speakerId,
      path: l.path,
      listed: l.identityId !== null,
      movedOut: l.movedOut !== null,
      otherCalls: [...(ownRecordings.get(l.speakerId) ?? [])].filter((r) => r !== l.recordingId).length,
      hits: [...(hitRecordings.get(l) ?? [])].filter((r) => r !== l.recordingId).length,
      falseHits: falseOf.get(l) ?? 0,
      listedVoiceprints: l.identityId ? input.truth.membersOf(l.identityId).length : 0,
    })),
  };
}

/**
 * The watchlist's false matches per comparison, in the unit VOXTRACE_WATCHLIST_FAR is defined on
 * (CONVENTIONS: a recording is a hit when one of its voiceprints matches *any* voiceprint of the
 * listed identity): each voiceprint of each listed identity, as it stands at the end, against each
 * stored voiceprint of another recording outside that identity, at the product's threshold
 * `minSimilarity`. A comparison matches falsely when the stored voiceprint is not the listed
 * fraudster's voice; the false matches are split by cause: a voice other than the listed member's
 * (what the threshold's FAR bounds) or the very voice of a customer or agent whose voiceprint sits
 * in the listed identity (what identity purity bounds). Exact, every pair.
 */
export function watchlistComparisons(input: {
  listings: readonly Listing[];
  truth: IdentityTruth;
  loaded: readonly LoadedVoiceprint[];
  minSimilarity: number;
}) {
  const units = new Map(input.loaded.map((vp) => [vp.id, unitOf(vp.vector)]));
  const seen = new Set<string>();
  let comparisons = 0;
  let otherVoice = 0;
  let memberOwnVoice = 0;
  for (const l of input.listings) {
    if (!l.identityId) continue;
    const identityId = input.truth.resolve(l.identityId);
    if (seen.has(identityId)) continue;
    seen.add(identityId);
    const members = input.truth.membersOf(identityId);
    const memberIds = new Set(members.map((m) => m.id));
    for (const m of members) {
      const mu = units.get(m.id) as Float32Array;
      for (const v of input.loaded) {
        if (memberIds.has(v.id) || v.recordingId === m.recordingId) continue;
        comparisons++;
        if (v.role === 'fraudster' && v.speakerId === l.speakerId) continue;
        if (dot(mu, units.get(v.id) as Float32Array) < input.minSimilarity) continue;
        if (v.speakerId === m.speakerId && v.role !== 'clone' && m.role !== 'clone') memberOwnVoice++;
        else otherVoice++;
      }
    }
  }
  const rate = (n: number) => round(comparisons ? n / comparisons : 0, 8);
  return {
    minSimilarity: round(input.minSimilarity),
    comparisons,
    falseMatches: otherVoice + memberOwnVoice,
    falseMatchesPerComparison: rate(otherVoice + memberOwnVoice),
    /** a different voice than the listed voiceprint's above the threshold: the realised FAR */
    otherVoice,
    otherVoicePerComparison: rate(otherVoice),
    /** a customer's or agent's own voice, matched through their voiceprint inside the listed identity */
    memberOwnVoice,
    memberOwnVoicePerComparison: rate(memberOwnVoice),
  };
}

/**
 * Whether one voice's calls hold `accounts` distinct accounts within `days` of each other: the
 * truth of voice reuse, from the corpus' calls.
 */
export function heardOnAccountsWithin(
  calls: readonly { accountRef: string; at: number }[],
  rule: { accounts: number; days: number },
): boolean {
  const sorted = [...calls].sort((a, b) => a.at - b.at);
  for (let i = 0; i < sorted.length; i++) {
    const accounts = new Set<string>();
    for (
      let j = i;
      j < sorted.length && (sorted[j]?.at as number) - (sorted[i]?.at as number) <= rule.days * DAY_MS;
      j++
    ) {
      accounts.add(sorted[j]?.accountRef as string);
    }
    if (accounts.size >= rule.accounts) return true;
  }
  return false;
}

/**
 * Voice reuse over the alerts not dismissed: an alert is right when its identity's voiceprints are
 * mostly one fraudster's; recall is over the fraudsters that truly are heard on ≥ `rule.accounts`
 * accounts within `rule.days` (a fraudster is found by an alert on an identity mostly theirs).
 */
export function voiceReuseScores(input: {
  alerts: readonly AlertRow[];
  truth: IdentityTruth;
  calls: readonly CorpusCall[];
  loaded: readonly LoadedVoiceprint[];
  rule: { accounts: number; days: number };
}) {
  const fraudCalls = new Map<string, { accountRef: string; at: number }[]>();
  for (const call of input.calls) {
    for (const vp of call.voiceprints) {
      if (vp.role !== 'fraudster') continue;
      const list = fraudCalls.get(vp.speakerId) ?? [];
      list.push({ accountRef: call.accountRef, at: call.callAt.getTime() });
      fraudCalls.set(vp.speakerId, list);
    }
  }
  const reusing = [...fraudCalls].filter(([, calls]) => heardOnAccountsWithin(calls, input.rule)).map(([id]) => id);
  const live = input.alerts.filter((a) => a.status !== 'dismissed');
  const found = new Set<string>();
  let right = 0;
  const wrongBy: Record<string, number> = {};
  const wrong: { accounts: number; recordings: number; composition: { who: string; n: number }[] }[] = [];
  for (const alert of live) {
    const m = alert.identityId ? input.truth.majorityOf(alert.identityId) : null;
    if (m?.role === 'fraudster') {
      right++;
      found.add(m.speakerId);
      continue;
    }
    wrongBy[whatIs(m)] = (wrongBy[whatIs(m)] ?? 0) + 1;
    wrong.push({
      accounts: alert.accountRefs.length,
      recordings: alert.recordingIds.length,
      composition: alert.identityId ? input.truth.compositionOf(alert.identityId) : [],
    });
  }
  const recalled = reusing.filter((id) => found.has(id)).length;
  // the same alerts judged by what they show: the voiceprints of their evidence, mostly one fraudster's
  const byId = new Map(input.loaded.map((vp) => [vp.id, vp]));
  const foundByEvidence = new Set<string>();
  let rightByEvidence = 0;
  for (const alert of live) {
    const shown = alert.evidence.flatMap((e) => {
      const vp = e.voiceprintId ? byId.get(e.voiceprintId) : undefined;
      return vp ? [vp] : [];
    });
    const m = majority(shown);
    if (m?.role !== 'fraudster') continue;
    rightByEvidence++;
    foundByEvidence.add(m.speakerId);
  }
  const missed = reusing
    .filter((id) => !found.has(id))
    .map((id) => {
      const main = input.truth.mainIdentityOf('fraudster', id);
      return {
        fraudster: id,
        calls: fraudCalls.get(id)?.length ?? 0,
        mainIdentity: main
          ? {
              kind: main.kind,
              theirs: main.theirs,
              size: main.size,
              composition: input.truth.compositionOf(main.identityId),
            }
          : null,
      };
    });
  return {
    rule: input.rule,
    raised: input.alerts.length,
    dismissed: input.alerts.length - live.length,
    alerts: live.length,
    truePositives: right,
    /** the live alerts that are not a fraudster's, by who their identity mostly is ('mixed': nobody holds half) */
    falsePositivesBy: wrongBy,
    /** the first 20 of them: accounts and recordings alerted, and who the identity holds */
    falsePositives: wrong.slice(0, 20),
    precision: round(live.length ? right / live.length : 1),
    fraudsters: fraudCalls.size,
    /** fraudsters truly heard on enough accounts within the window */
    reusingFraudsters: reusing.length,
    found: recalled,
    recall: round(reusing.length ? recalled / reusing.length : 0),
    /** the reusing fraudsters no alert found, with the identity holding most of their calls */
    missed,
    /**
     * Not the targets' reading: each alert judged by the voiceprints its evidence shows (right when
     * more than half are one fraudster's), whoever else its identity holds
     */
    byEvidence: {
      truePositives: rightByEvidence,
      precision: round(live.length ? rightByEvidence / live.length : 1),
      found: reusing.filter((id) => foundByEvidence.has(id)).length,
      recall: round(reusing.length ? reusing.filter((id) => foundByEvidence.has(id)).length / reusing.length : 0),
    },
  };
}

/**
 * Staff proposals: precision over every proposal (its identity mostly one member of staff's, as the
 * identities stood at the end of the replay); recall over the members of staff the analyst did not
 * enrol, found when at least one proposed identity is mostly theirs.
 */
export function staffProposalScores(input: {
  proposals: readonly ProposalRow[];
  truth: IdentityTruth;
  loaded: readonly LoadedVoiceprint[];
}) {
  const enrolled = new Set(input.loaded.filter((vp) => vp.enrol === 'staff').map((vp) => vp.speakerId));
  const members = [...new Set(input.loaded.filter((vp) => vp.role === 'staff').map((vp) => vp.speakerId))];
  const eligible = members.filter((id) => !enrolled.has(id));
  const found = new Set<string>();
  let right = 0;
  const wrongBy: Record<string, number> = {};
  for (const p of input.proposals) {
    const m = input.truth.majorityOf(p.identityId);
    if (m?.role === 'staff') {
      right++;
      found.add(m.speakerId);
    } else wrongBy[whatIs(m)] = (wrongBy[whatIs(m)] ?? 0) + 1;
  }
  const recalled = eligible.filter((id) => found.has(id)).length;
  const missed = eligible
    .filter((id) => !found.has(id))
    .map((id) => {
      const main = input.truth.mainIdentityOf('staff', id);
      const voiceprints = input.loaded.filter((vp) => vp.role === 'staff' && vp.speakerId === id).length;
      return main
        ? {
            staff: id,
            voiceprints,
            mainIdentity: {
              kind: main.kind,
              theirs: main.theirs,
              size: main.size,
              composition: input.truth.compositionOf(main.identityId),
            },
          }
        : { staff: id, voiceprints, mainIdentity: null };
    });
  return {
    proposals: input.proposals.length,
    truePositives: right,
    falsePositivesBy: wrongBy,
    precision: round(input.proposals.length ? right / input.proposals.length : 1),
    staff: members.length,
    enrolledStaff: enrolled.size,
    /** members of staff not enrolled by the analyst */
    unenrolledStaff: eligible.length,
    found: recalled,
    recall: round(eligible.length ? recalled / eligible.length : 0),
    /** the unenrolled members of staff no proposal found, with the identity holding most of their calls */
    missed,
  };
}
