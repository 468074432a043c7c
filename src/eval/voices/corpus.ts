import { createVoiceModel, type RandomStream, randomStream } from '../../standin/voices.ts';

/**
 * The eval's synthetic corpus, at the vector level, with its truth: customers calling their own
 * account 3–30 times over a year, members of staff answering many of those calls (the second
 * speaker), hard calls (a noisy line or a few seconds of speech), and voice clones of some
 * customers calling the victim's account with mostly spoofed speech. Deterministic in its options.
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
};

export type Role = 'customer' | 'staff' | 'clone';

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
};

export type CorpusCall = {
  key: string;
  accountRef: string;
  callAt: Date;
  voiceprints: CorpusVoiceprint[];
};

export type Corpus = { options: Required<CorpusOptions>; calls: CorpusCall[] };

const YEAR_MS = 365 * 86_400_000;
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
      const call: CorpusCall = { key, accountRef, callAt: new Date(at), voiceprints: [] };
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
        const call: CorpusCall = { key, accountRef, callAt: new Date(at), voiceprints: [] };
        call.voiceprints.push(voiceprint(speakerId, 'clone', key, 'speaker_0', r));
        withStaff(call, r);
        calls.push(call);
      }
    }
  }
  calls.sort((a, b) => a.callAt.getTime() - b.callAt.getTime() || a.key.localeCompare(b.key));
  markEnrolments(calls, options, random);
  return { options, calls };
}

/** The first long-enough genuine voiceprint of each speaker chosen for enrolment. */
function markEnrolments(calls: CorpusCall[], options: Required<CorpusOptions>, random: RandomStream) {
  const chosen = new Map<string, boolean>();
  const done = new Set<string>();
  for (const call of calls) {
    for (const vp of call.voiceprints) {
      if (vp.role === 'clone' || done.has(vp.speakerId) || vp.speechSeconds < 8) continue;
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
