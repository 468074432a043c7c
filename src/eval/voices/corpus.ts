import { createVoiceModel, type RandomStream, randomStream } from '../../standin/voices.ts';
import { DAY_MS } from '../../time.ts';

/**
 * The eval's synthetic corpus, at the vector level, with its truth: customers calling their own
 * account 3–30 times over a year, members of staff answering many of those calls (the second
 * speaker), hard calls (a noisy line or a few seconds of speech), voice clones of some customers
 * calling the victim's account with mostly spoofed speech, and fraudsters working through
 * victims' accounts in campaigns of a few weeks. Each call has a channel: the contact centre when
 * an agent speaks in it, else the IVR or the app. Deterministic in its options; the fraudsters and
 * the channels draw from streams of their own, so the other calls are the same with or without them.
 */

export type CorpusOptions = {
  seed: number;
  /** customers (each a speaker of their own) */
  speakers: number;
  /** members of staff; default max(5, speakers / 50) */
  staff?: number;
  /** share of voiceprints that are hard cases (noisy: true) */
  hardShare?: number;
  /** share of customer calls a member of staff speaks in */
  staffShare?: number;
  /** share of customers whose voice is cloned (1–3 clone calls each) */
  cloneVictimShare?: number;
  /** share of customers and of staff that an analyst enrols at their first long-enough call */
  enrolShare?: number;
  /** fraudsters (genuine voices of their own), each calling 3–8 customers' accounts; default max(2, speakers / 100) */
  fraudsters?: number;
  /** a fraud campaign's typical length: each lasts 0.5–1.5 times this many days */
  campaignDays?: number;
};

export type Role = 'customer' | 'staff' | 'clone' | 'fraudster';

/** How the analyst lists a fraudster: right after the analysis of its call (online), or after the replay (look-back). */
export type WatchlistPath = 'online' | 'look-back';

export const CHANNELS = { agent: 'contact-centre', selfService: ['ivr', 'app'] } as const;

export type CorpusVoiceprint = {
  speakerLabel: string;
  /** truth: whose voice (a clone's is its victim's id) */
  speakerId: string;
  role: Role;
  noisy: boolean;
  /** the upstream's raw vector */
  vector: number[];
  speechSeconds: number;
  utteranceCount: number;
  meanPSpoofed: number;
  /** an analyst enrols this voiceprint as its speaker's identity when its call arrives */
  enrol: 'customer' | 'staff' | null;
  /** an analyst puts this (fraudster's) voiceprint on the watchlist, by this path */
  watchlist: WatchlistPath | null;
};

export type CorpusCall = {
  key: string;
  accountRef: string;
  callAt: Date;
  /** the recording's channel: 'contact-centre' when an agent speaks in the call, else 'ivr' or 'app' */
  channel: string;
  voiceprints: CorpusVoiceprint[];
};

export type Corpus = { options: Required<CorpusOptions>; calls: CorpusCall[] };

const YEAR_MS = 365 * DAY_MS;
const START = Date.UTC(2026, 0, 1);

/**
 * The calls of the corpus, in arrival (`callAt`) order.
 * @example const { calls } = generateCorpus({ seed: 2, speakers: 2000 });
 */
export function generateCorpus(input: CorpusOptions): Corpus {
  const options: Required<CorpusOptions> = {
    staff: Math.max(5, Math.round(input.speakers / 50)),
    hardShare: 0.08,
    staffShare: 0.35,
    cloneVictimShare: 0.05,
    enrolShare: 0.2,
    fraudsters: Math.max(2, Math.round(input.speakers / 100)),
    campaignDays: 28,
    ...input,
  };
  const model = createVoiceModel(options.seed);
  const random = randomStream(options.seed, 'voices-eval-corpus');
  const calls: CorpusCall[] = [];
  const staffIds = Array.from({ length: options.staff }, (_, i) => `staff-${String(i).padStart(3, '0')}`);

  const voiceprint = (
    speakerId: string,
    role: Role,
    callKey: string,
    label: string,
    r: RandomStream,
  ): CorpusVoiceprint => {
    const noisy = role !== 'clone' && r.uniform() < options.hardShare;
    const speechSeconds = noisy
      ? 3 + 12 * r.uniform()
      : role === 'staff'
        ? 10 + 50 * r.uniform()
        : 12 + 100 * r.uniform();
    const meanPSpoofed = role === 'clone' ? 0.55 + 0.44 * r.uniform() : 0.02 * r.uniform() ** 3;
    return {
      speakerLabel: label,
      speakerId,
      role,
      noisy,
      vector: model.speakerEmbedding(speakerId, callKey, { noisy, cloned: role === 'clone' }),
      speechSeconds: Math.round(speechSeconds * 100) / 100,
      utteranceCount: Math.max(1, Math.round(speechSeconds / 6)),
      meanPSpoofed,
      enrol: null,
      watchlist: null,
    };
  };
  const withStaff = (call: CorpusCall, r: RandomStream) => {
    if (r.uniform() >= options.staffShare) return;
    const agent = staffIds[Math.floor(r.uniform() * staffIds.length)] as string;
    call.voiceprints.push(voiceprint(agent, 'staff', call.key, 'speaker_1', r));
  };

  for (let s = 0; s < options.speakers; s++) {
    const speakerId = `customer-${String(s).padStart(5, '0')}`;
    const accountRef = `acc-${String(s).padStart(5, '0')}`;
    const count = 3 + Math.floor(28 * random.uniform() ** 3);
    const times = Array.from({ length: count }, () => START + random.uniform() * YEAR_MS).sort((a, b) => a - b);
    for (const [c, at] of times.entries()) {
      const key = `${speakerId}/call-${c}`;
      const r = randomStream(options.seed, 'voices-eval-call', key);
      const call: CorpusCall = { key, accountRef, callAt: new Date(at), channel: '', voiceprints: [] };
      call.voiceprints.push(voiceprint(speakerId, 'customer', key, 'speaker_0', r));
      withStaff(call, r);
      calls.push(call);
    }
    if (random.uniform() < options.cloneVictimShare) {
      const clones = 1 + Math.floor(3 * random.uniform());
      const first = times[0] as number;
      for (let c = 0; c < clones; c++) {
        const key = `${speakerId}/clone-${c}`;
        const r = randomStream(options.seed, 'voices-eval-call', key);
        const at = first + (START + YEAR_MS - first) * r.uniform();
        const call: CorpusCall = { key, accountRef, callAt: new Date(at), channel: '', voiceprints: [] };
        call.voiceprints.push(voiceprint(speakerId, 'clone', key, 'speaker_0', r));
        withStaff(call, r);
        calls.push(call);
      }
    }
  }
  calls.push(...fraudCalls(options, voiceprint, withStaff));
  calls.sort((a, b) => a.callAt.getTime() - b.callAt.getTime() || a.key.localeCompare(b.key));
  for (const call of calls) call.channel = channelOf(call, options.seed);
  markEnrolments(calls, options, random);
  markWatchlist(calls, options);
  return { options, calls };
}

/** the least speech a voiceprint needs to be enrolled or listed (VOXTRACE_ENROL_MIN_SPEECH_S's default) */
const LISTABLE_SPEECH_S = 8;

/**
 * The fraudsters' calls (stream 'voices-eval-fraud', and one per call): each fraudster picks 3–8
 * distinct customers' accounts and calls each 1–3 times, every call within one campaign of
 * 0.5–1.5 × `campaignDays` days somewhere in the year; an agent answers as often as on customers' calls.
 */
function fraudCalls(
  options: Required<CorpusOptions>,
  voiceprint: (speakerId: string, role: Role, callKey: string, label: string, r: RandomStream) => CorpusVoiceprint,
  withStaff: (call: CorpusCall, r: RandomStream) => void,
): CorpusCall[] {
  const random = randomStream(options.seed, 'voices-eval-fraud');
  const calls: CorpusCall[] = [];
  for (let f = 0; f < options.fraudsters; f++) {
    const speakerId = `fraudster-${String(f).padStart(3, '0')}`;
    const victims = new Set<number>();
    const wanted = Math.min(options.speakers, 3 + Math.floor(6 * random.uniform()));
    while (victims.size < wanted) victims.add(Math.floor(random.uniform() * options.speakers));
    const length = options.campaignDays * (0.5 + random.uniform()) * DAY_MS;
    const start = START + (YEAR_MS - length) * random.uniform();
    let c = 0;
    for (const victim of victims) {
      const accountRef = `acc-${String(victim).padStart(5, '0')}`;
      const count = 1 + Math.floor(3 * random.uniform());
      for (let n = 0; n < count; n++, c++) {
        const key = `${speakerId}/call-${c}`;
        const r = randomStream(options.seed, 'voices-eval-fraud-call', key);
        const call: CorpusCall = {
          key,
          accountRef,
          callAt: new Date(start + length * r.uniform()),
          channel: '',
          voiceprints: [voiceprint(speakerId, 'fraudster', key, 'speaker_0', r)],
        };
        withStaff(call, r);
        calls.push(call);
      }
    }
  }
  return calls;
}

/** An agent's calls are on the contact centre's line; the others on the IVR (60 %) or the app. */
function channelOf(call: CorpusCall, seed: number): string {
  if (call.voiceprints.some((vp) => vp.role === 'staff')) return CHANNELS.agent;
  const u = randomStream(seed, 'voices-eval-channel', call.key).uniform();
  return u < 0.6 ? CHANNELS.selfService[0] : CHANNELS.selfService[1];
}

/**
 * What the analyst lists (stream 'voices-eval-watchlist'): every other fraudster online, from its
 * first call with enough speech to list, right after that call is analysed; the others after the
 * replay, from one of their calls with enough speech, picked at random (the look-back).
 */
function markWatchlist(calls: CorpusCall[], options: Required<CorpusOptions>) {
  const random = randomStream(options.seed, 'voices-eval-watchlist');
  const listable = new Map<string, CorpusVoiceprint[]>();
  for (const call of calls) {
    for (const vp of call.voiceprints) {
      if (vp.role !== 'fraudster' || vp.speechSeconds < LISTABLE_SPEECH_S) continue;
      const list = listable.get(vp.speakerId) ?? [];
      list.push(vp);
      listable.set(vp.speakerId, list);
    }
  }
  for (const [speakerId, list] of [...listable].sort((a, b) => a[0].localeCompare(b[0]))) {
    const online = Number(speakerId.slice('fraudster-'.length)) % 2 === 0;
    const chosen = online ? list[0] : list[Math.floor(random.uniform() * list.length)];
    if (chosen) chosen.watchlist = online ? 'online' : 'look-back';
  }
}

/**
 * The first long-enough genuine voiceprint of each customer and member of staff chosen for
 * enrolment. Fraudsters' calls are left out (agents are enrolled from customers' calls): the
 * enrolments do not depend on the fraudsters.
 */
function markEnrolments(calls: CorpusCall[], options: Required<CorpusOptions>, random: RandomStream) {
  const chosen = new Map<string, boolean>();
  const done = new Set<string>();
  for (const call of calls) {
    if (call.voiceprints.some((vp) => vp.role === 'fraudster')) continue;
    for (const vp of call.voiceprints) {
      if (vp.role === 'clone' || done.has(vp.speakerId) || vp.speechSeconds < LISTABLE_SPEECH_S) continue;
      let enrolled = chosen.get(vp.speakerId);
      if (enrolled === undefined) {
        enrolled = random.uniform() < options.enrolShare;
        chosen.set(vp.speakerId, enrolled);
      }
      if (enrolled) vp.enrol = vp.role === 'staff' ? 'staff' : 'customer';
      done.add(vp.speakerId);
    }
  }
}
