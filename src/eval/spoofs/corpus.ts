import { createHash } from 'node:crypto';
import { addScaled, isotropic, posterior, type RandomStream, randomStream } from '../../standin/voices.ts';
import { DAY_MS } from '../../time.ts';

/**
 * The spoofs eval's synthetic corpus, at the vector level, with its truth (docs/spoofs.md,
 * "Evaluation"): spoof generator families in deepfake space, some of them near relatives of
 * another, of varied tightness, some held back to start late (unseen when they arrive); genuine
 * speech far from every family and spread out; calls of several utterances on accounts and
 * channels over weeks, in call-time order; and the upstream's labels with its misses (spoofs
 * labelled bonafide) and false alarms (genuine speech labelled spoofed). Deterministic in its
 * options: every value is drawn from a stream of its own (randomStream), keyed by what it is for,
 * so a call's utterances and vectors do not depend on the calls generated before it.
 *
 * Embeddings follow the stand-in's picture of the deepfake model (src/standin/voices.ts), as
 * energies before normalising: spoofed speech = shared + family + call + utterance × spread;
 * genuine speech = shared + speaker + call + utterance × r. The constants are the eval's own, so
 * that it can make harder cases than the stand-in does (looser families, relatives nearer).
 */

export const DEEPFAKE_DIMENSIONS = 768;

export type SpoofCorpusOptions = {
  seed: number;
  /** spoofed utterances (whatever their label) */
  spoofed: number;
  /** genuine utterances (whatever their label) */
  bonafide: number;
  /** generator families; every 4th (index % 4 = 3) is a relative of the one before it */
  families?: number;
  /** days between the first and the last call */
  days?: number;
};

export type SpoofFamily = {
  index: number;
  name: string;
  /** the family this one is a near relative (fine-tuned variant) of */
  parent: number | null;
  /** cosine of its direction to the parent's (0 without a parent) */
  rho: number;
  /** the energy of one utterance's own variation: 0.05 (tight) to 0.45 (loose) */
  spread: number;
  /** starts after the cutoff: unseen when it arrives */
  heldBack: boolean;
  /** share of its utterances the upstream labels bonafide on a clean line */
  missRate: number;
  /** its campaign's window (epoch ms) */
  from: number;
  to: number;
};

export type CorpusUtterance = {
  upstreamId: string;
  speakerLabel: string;
  start: number;
  end: number;
  /** truth: the generator family's index, -1 for genuine speech */
  family: number;
  label: 'spoofed' | 'bonafide';
  pSpoofed: number;
};

export type CorpusCall = {
  key: string;
  accountRef: string;
  channel: string;
  callAt: Date;
  /** a noisy line: the upstream errs more often on it */
  noisy: boolean;
  /** genuine speaker of the caller's side (a customer), or null when the caller is synthetic */
  customerId: string | null;
  agentId: string | null;
  utterances: CorpusUtterance[];
};

export type SpoofCorpus = {
  options: Required<SpoofCorpusOptions>;
  families: SpoofFamily[];
  /** calls at or after this time are scored for unseen-family detection; held-back families start after it */
  cutoff: number;
  /** arrival order (call time, then key) */
  calls: CorpusCall[];
};

const START = Date.UTC(2026, 2, 2);
/** the unseen-family cutoff, as a share of the corpus' time span */
const CUTOFF_SHARE = 0.6;

/** Energies of the embedding model (see the module comment). */
const MODEL = {
  shared: 0.05,
  family: 0.85,
  spoofCall: 0.05,
  /** tight families' spread range, and loose ones' (LOOSE_SHARE of families) */
  tightSpread: [0.05, 0.25],
  looseSpread: [0.25, 0.45],
  looseShare: 0.3,
  /** a relative's direction: rho × the parent's + √(1 − rho²) × its own; its members score ≈ 0.45–0.6 with the parent's */
  rho: [0.5, 0.66],
  bonafideSpeaker: 0.3,
  bonafideCall: 0.5,
  /** the genuine utterance's own energy, log-uniform */
  bonafideUtterance: [0.05, 2],
  norm: { mean: 6.8, sd: 0.3, min: 5.8, max: 7.8 },
} as const;

/** The upstream's labels: misses and false alarms (on a noisy line more of both). */
const LABELS = {
  missRate: [0.06, 0.12],
  relativeMissBonus: 0.03,
  noisyMissBonus: 0.05,
  falseAlarm: 0.012,
  noisyFalseAlarm: 0.04,
  noisyShare: 0.1,
} as const;

/**
 * The corpus' families and calls, in arrival order. Vectors are made on demand (embeddingsOf).
 * @example const corpus = generateSpoofCorpus({ seed: 2, spoofed: 50_000, bonafide: 200_000 });
 */
export function generateSpoofCorpus(input: SpoofCorpusOptions): SpoofCorpus {
  const options: Required<SpoofCorpusOptions> = { families: 40, days: 56, ...input };
  const span = options.days * DAY_MS;
  const cutoff = START + CUTOFF_SHARE * span;
  const families = Array.from({ length: options.families }, (_, f) => familyOf(options.seed, f, span));
  const accounts = Math.max(20, Math.round(options.bonafide / 20));
  const agents = Math.max(4, Math.round(options.bonafide / 2500));
  const accountRef = (a: number) => `acc-${String(a).padStart(5, '0')}`;
  const agentId = (r: RandomStream) => `agent-${String(Math.floor(r.uniform() * agents)).padStart(3, '0')}`;
  const calls: CorpusCall[] = [];

  // spoofed calls: each family's share of the spoofed utterances, in calls within its campaign
  const weights = families.map(
    (f) => 0.4 * (2.5 / 0.4) ** randomStream(options.seed, 'spoofs-eval-weight', f.name).uniform(),
  );
  const total = weights.reduce((a, b) => a + b, 0);
  let agentUtterances = 0;
  let assigned = 0;
  for (const family of families) {
    // the last family takes what rounding left over: exactly `spoofed` in all
    const share = Math.round((options.spoofed * (weights[family.index] as number)) / total);
    let quota = family.index === families.length - 1 ? options.spoofed - assigned : share;
    assigned += quota;
    for (let c = 0; quota > 0; c++) {
      const key = `${family.name}/call-${c}`;
      const r = randomStream(options.seed, 'spoofs-eval-call', key);
      const spoofs = Math.min(quota, 3 + Math.floor(7 * r.uniform()));
      quota -= spoofs;
      const agent = r.uniform() < 0.4 ? agentId(r) : null;
      const agentTurns = agent ? 2 + Math.floor(4 * r.uniform()) : 0;
      agentUtterances += agentTurns;
      calls.push(
        layOut(options.seed, {
          key,
          accountRef: accountRef(Math.floor(r.uniform() * accounts)),
          callAt: family.from + (family.to - family.from) * r.uniform(),
          noisy: r.uniform() < LABELS.noisyShare,
          customerId: null,
          agentId: agent,
          callerTurns: spoofs,
          agentTurns,
          family,
        }),
      );
    }
  }
  // genuine calls: a customer on their own account, an agent in half of them
  let remaining = options.bonafide - agentUtterances;
  for (let c = 0; remaining > 0; c++) {
    const key = `genuine/call-${c}`;
    const r = randomStream(options.seed, 'spoofs-eval-call', key);
    const account = Math.floor(r.uniform() * accounts);
    const customerTurns = Math.min(remaining, 3 + Math.floor(6 * r.uniform()));
    const agent = r.uniform() < 0.5 ? agentId(r) : null;
    const agentTurns = agent ? Math.min(remaining - customerTurns, 2 + Math.floor(4 * r.uniform())) : 0;
    remaining -= customerTurns + agentTurns;
    calls.push(
      layOut(options.seed, {
        key,
        accountRef: accountRef(account),
        callAt: START + span * r.uniform(),
        noisy: r.uniform() < LABELS.noisyShare,
        customerId: `customer-${String(account).padStart(5, '0')}`,
        agentId: agentTurns > 0 ? agent : null,
        callerTurns: customerTurns,
        agentTurns,
        family: null,
      }),
    );
  }
  calls.sort((a, b) => a.callAt.getTime() - b.callAt.getTime() || (a.key < b.key ? -1 : 1));
  return { options, families, cutoff, calls };
}

function familyOf(seed: number, index: number, span: number): SpoofFamily {
  const name = `family-${String(index).padStart(2, '0')}`;
  const r = randomStream(seed, 'spoofs-eval-family', name);
  const parent = index % 4 === 3 ? index - 1 : null;
  const between = ([low, high]: readonly [number, number]) => low + (high - low) * r.uniform();
  const rho = between(MODEL.rho);
  const spread = r.uniform() < MODEL.looseShare ? between(MODEL.looseSpread) : between(MODEL.tightSpread);
  // the held-back ones: half of them relatives whose parent is seen, the hardest unseen case
  const heldBack = index % 8 === 1 || index % 8 === 7;
  const missRate = between(LABELS.missRate) + (parent === null ? 0 : LABELS.relativeMissBonus);
  let from: number;
  let to: number;
  if (heldBack) {
    from = START + (CUTOFF_SHARE + 0.02 + 0.22 * r.uniform()) * span;
    to = START + span;
  } else {
    from = START + 0.45 * r.uniform() * span;
    to = Math.min(START + span, from + (0.3 + 0.7 * r.uniform()) * span);
  }
  return { index, name, parent, rho: parent === null ? 0 : rho, spread, heldBack, missRate, from, to };
}

/** One call's utterances in time order, with the upstream's labels. */
function layOut(
  seed: number,
  input: {
    key: string;
    accountRef: string;
    callAt: number;
    noisy: boolean;
    customerId: string | null;
    agentId: string | null;
    callerTurns: number;
    agentTurns: number;
    family: SpoofFamily | null;
  },
): CorpusCall {
  const r = randomStream(seed, 'spoofs-eval-layout', input.key);
  const turns: ('caller' | 'agent')[] = [
    ...Array<'caller'>(input.callerTurns).fill('caller'),
    ...Array<'agent'>(input.agentTurns).fill('agent'),
  ];
  // the agent opens when there is one; the rest of the turns in a random order
  for (let i = turns.length - 1; i > 0; i--) {
    const j = Math.floor(r.uniform() * (i + 1));
    [turns[i], turns[j]] = [turns[j] as 'caller' | 'agent', turns[i] as 'caller' | 'agent'];
  }
  if (input.agentTurns > 0) {
    const first = turns.indexOf('agent');
    [turns[0], turns[first]] = [turns[first] as 'agent', turns[0] as 'caller' | 'agent'];
  }
  let at = 0.3 + r.uniform();
  const utterances: CorpusUtterance[] = turns.map((turn, i) => {
    // 3 % of utterances are shorter than the 2 s the verdict judges
    const seconds = r.uniform() < 0.03 ? 1 + r.uniform() : 2 + 8 * r.uniform() ** 1.5;
    const start = round(at);
    at += seconds;
    const end = round(at);
    at += 0.2 + 1.3 * r.uniform();
    const family = turn === 'caller' && input.family ? input.family : null;
    const l = randomStream(seed, 'spoofs-eval-label', input.key, String(i));
    const errorRate = family
      ? family.missRate + (input.noisy ? LABELS.noisyMissBonus : 0)
      : input.noisy
        ? LABELS.noisyFalseAlarm
        : LABELS.falseAlarm;
    const wrong = l.uniform() < errorRate;
    const saysSpoofed = (family !== null) !== wrong;
    return {
      upstreamId: String(i),
      speakerLabel: turn === 'agent' ? 'speaker_1' : 'speaker_0',
      start,
      end,
      family: family ? family.index : -1,
      label: saysSpoofed ? 'spoofed' : 'bonafide',
      pSpoofed: posterior(l, saysSpoofed, !wrong),
    };
  });
  return {
    key: input.key,
    accountRef: input.accountRef,
    channel: input.agentTurns > 0 ? 'contact-centre' : r.uniform() < 0.6 ? 'ivr' : 'app',
    callAt: new Date(Math.round(input.callAt)),
    noisy: input.noisy,
    customerId: input.customerId,
    agentId: input.agentId,
    utterances,
  };
}

/**
 * The unit deepfake embeddings of a corpus's utterances and their raw norms, made on demand and
 * cached per direction (families, speakers); the same (seed, call, utterance) always gives the same vector.
 * @example const vectors = embedder(corpus); const { units, norms } = vectors(call);
 */
export function embedder(corpus: SpoofCorpus) {
  const seed = corpus.options.seed;
  const D = DEEPFAKE_DIMENSIONS;
  const shared = direction(randomStream(seed, 'spoofs-eval-shared'));
  const familyDirections: Float64Array[] = [];
  for (const family of corpus.families) {
    const own = direction(randomStream(seed, 'spoofs-eval-family-direction', family.name));
    if (family.parent === null) familyDirections.push(own);
    else {
      const parent = familyDirections[family.parent] as Float64Array;
      const mixed = new Float64Array(D);
      addScaled(mixed, parent, family.rho);
      addScaled(mixed, own, Math.sqrt(1 - family.rho * family.rho));
      familyDirections.push(mixed);
    }
  }
  const speakers = new Map<string, Float64Array>();
  const speakerDirection = (id: string) => {
    let d = speakers.get(id);
    if (!d) {
      d = direction(randomStream(seed, 'spoofs-eval-speaker', id));
      speakers.set(id, d);
    }
    return d;
  };
  return (call: CorpusCall): { units: Float32Array; norms: Float64Array } => {
    const n = call.utterances.length;
    const units = new Float32Array(n * D);
    const norms = new Float64Array(n);
    const callDirection = direction(randomStream(seed, 'spoofs-eval-call-direction', call.key));
    const v = new Float64Array(D);
    call.utterances.forEach((u, i) => {
      const r = randomStream(seed, 'spoofs-eval-utterance', call.key, u.upstreamId);
      v.fill(0);
      addScaled(v, shared, Math.sqrt(MODEL.shared));
      if (u.family >= 0) {
        const family = corpus.families[u.family] as SpoofFamily;
        addScaled(v, familyDirections[u.family] as Float64Array, Math.sqrt(MODEL.family));
        addScaled(v, callDirection, Math.sqrt(MODEL.spoofCall));
        addGaussian(v, r, Math.sqrt(family.spread / D));
      } else {
        const [low, high] = MODEL.bonafideUtterance;
        const energy = low * (high / low) ** r.uniform();
        const speaker = u.speakerLabel === 'speaker_1' ? call.agentId : call.customerId;
        addScaled(v, speakerDirection(speaker ?? call.key), Math.sqrt(MODEL.bonafideSpeaker));
        addScaled(v, callDirection, Math.sqrt(MODEL.bonafideCall));
        addGaussian(v, r, Math.sqrt(energy / D));
      }
      let sum = 0;
      for (let d = 0; d < D; d++) sum += (v[d] as number) ** 2;
      const length = Math.sqrt(sum);
      // rounded to halves: what halfvec(768) stores, and what BinaryRows.halfvec writes bit for bit
      for (let d = 0; d < D; d++) units[i * D + d] = Math.f16round((v[d] as number) / length);
      const { mean, sd, min, max } = MODEL.norm;
      norms[i] = Math.min(max, Math.max(min, mean + sd * r.gaussian()));
    });
    return { units, norms };
  };
}

/** A random direction of expected squared length 1. */
function direction(random: RandomStream): Float64Array {
  return isotropic(random, DEEPFAKE_DIMENSIONS);
}

function addGaussian(target: Float64Array, random: RandomStream, scale: number) {
  for (let d = 0; d < target.length; d++) target[d] = (target[d] as number) + scale * random.gaussian();
}

/** A stable uuid for a corpus item: the same seed and key give the same id, so reruns are identical. */
export function stableUuid(seed: number, key: string): string {
  const h = createHash('sha1').update(`spoofs-eval:${seed}:${key}`).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x40;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const round = (x: number) => Math.round(x * 100) / 100;
