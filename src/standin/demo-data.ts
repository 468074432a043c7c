import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { VoxtraceError } from '../errors.ts';
import { DAY_MS } from '../time.ts';
import { layOutUtterances } from './audio.ts';
import { type CallManifest, type ManifestSpeaker, type SpeakerRole, speakerLabel } from './manifest.ts';
import { between, integerBetween, pickOne, seededRandom, seedFrom } from './random.ts';
import { familyName } from './voices.ts';
import { encodeCallWav } from './wav.ts';

/**
 * Synthetic contact-centre calls for demos, tests and benchmarks: customers calling about their
 * own accounts, a small staff of agents whose voices recur across many accounts, fraudsters who
 * call several victims' accounts (sometimes with a clone of the victim's voice made by one of the
 * campaigns' generators), and some noisy calls. Each call becomes a short WAV whose manifest
 * tells the stand-in who speaks when; truth.jsonl says the same for evaluation.
 */

export type DemoDataOptions = {
  calls: number;
  speakers: number;
  fraudsters: number;
  campaigns: number;
  seed: number;
  /** Calls fall in the 90 days before this day (UTC); default today. */
  now?: Date;
};

export type TruthLine = {
  file: string;
  callId: string;
  accountRef: string;
  channel: string;
  callAt: string;
  speakers: { label: string; speakerId: string; role: SpeakerRole }[];
  utterances: { id: string; start: number; end: number; speakerLabel: string; spoofFamily: string | null }[];
  fraudster: string | null;
};

export type DemoCall = { manifest: CallManifest; truth: TruthLine };

const CHANNELS = ['phone', 'phone', 'phone', 'phone', 'app', 'app', 'web'] as const;
const AGENT_SHARE = 0.85;
const NOISY_SHARE = 0.08;
/** Calls on an account made by someone other than its customer (a spouse, a carer). */
const GUEST_SHARE = 0.03;
const CLONE_SHARE = 0.6;
/** The most calls that fraudsters make, as a share of all calls. */
const FRAUD_SHARE = 0.1;

const count = (flag: string, min: number) =>
  z.coerce
    .number({ error: `${flag} must be a whole number` })
    .refine(Number.isFinite, `${flag} must be a whole number`)
    .int(`${flag} must be a whole number`)
    .min(min, min === 0 ? `${flag} must be 0 or more` : `${flag} must be a positive integer`);

const optionsSchema = z
  .object({
    calls: count('--calls', 1).max(10_000_000, '--calls must be at most 10000000'),
    speakers: count('--speakers', 1).max(1_000_000, '--speakers must be at most 1000000'),
    fraudsters: count('--fraudsters', 0),
    campaigns: count('--campaigns', 0).max(100, '--campaigns must be at most 100'),
    seed: count('--seed', 0).max(0xffffffff, '--seed must fit in 32 bits').default(1),
  })
  .superRefine((value, ctx) => {
    if (value.fraudsters > value.speakers) {
      ctx.addIssue({
        code: 'custom',
        path: ['fraudsters'],
        message: `--fraudsters (${value.fraudsters}) must not exceed --speakers (${value.speakers}): each fraudster needs accounts to attack`,
      });
    }
  });

export class DemoDataOptionsError extends VoxtraceError {}

/**
 * Validates demo-data flags (strings from the command line or numbers); throws
 * DemoDataOptionsError with one line per problem.
 * @example const options = parseDemoDataOptions({ calls: '100', speakers: '20', fraudsters: '2', campaigns: '2' });
 */
export function parseDemoDataOptions(raw: Record<string, unknown>): DemoDataOptions {
  const present = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v !== ''));
  for (const flag of ['calls', 'speakers', 'fraudsters', 'campaigns']) {
    if (!(flag in present)) throw new DemoDataOptionsError(`--${flag} is required`);
  }
  const parsed = optionsSchema.safeParse(present);
  if (!parsed.success) {
    throw new DemoDataOptionsError(parsed.error.issues.map((issue) => issue.message).join('\n'));
  }
  return parsed.data;
}

type Customer = { speakerId: string; accountRef: string };
type Fraudster = { speakerId: string; family: string | null; victims: Customer[]; visits: number };

/**
 * The calls of a demo data set, one at a time, in callAt order; the same options always give
 * the same calls.
 * @example for (const { manifest, truth } of generateDemoCalls({ calls: 10, speakers: 5, fraudsters: 1, campaigns: 1, seed: 1 })) console.log(truth.callId);
 */
export function* generateDemoCalls(options: DemoDataOptions): Generator<DemoCall> {
  const random = seededRandom(seedFrom('demo-data', options.seed));
  const width = Math.max(4, String(options.speakers).length);
  const customers: Customer[] = Array.from({ length: options.speakers }, (_, i) => ({
    speakerId: `cust-${String(i + 1).padStart(width, '0')}`,
    accountRef: `acc-${String(i + 1).padStart(width, '0')}`,
  }));
  // a small staff whose voices recur on many accounts
  const agentCount = Math.max(3, Math.floor(options.speakers / 40));
  const agents = Array.from({ length: agentCount }, (_, i) => `agent-${String(i + 1).padStart(3, '0')}`);
  const fraudsters: Fraudster[] = Array.from({ length: options.fraudsters }, (_, i) => ({
    speakerId: `fraud-${String(i + 1).padStart(3, '0')}`,
    family: options.campaigns > 0 ? familyName(i % options.campaigns) : null,
    victims: sample(random, customers, Math.min(customers.length, integerBetween(random, 3, 8))),
    visits: 0,
  }));

  // each victim's account is called about twice, within a tenth of all calls, and every
  // fraudster calls at least three times (so one voice shows up on several accounts)
  const victimVisits = 2 * fraudsters.reduce((sum, f) => sum + f.victims.length, 0);
  const fraudCalls = Math.min(
    Math.floor(options.calls / 2),
    Math.max(3 * fraudsters.length, Math.min(victimVisits, Math.round(options.calls * FRAUD_SHARE))),
  );
  const fraudIndices = new Set(sample(random, range(options.calls), fraudCalls));
  const today = Date.UTC(
    (options.now ?? new Date()).getUTCFullYear(),
    (options.now ?? new Date()).getUTCMonth(),
    (options.now ?? new Date()).getUTCDate(),
  );
  const callTimes = Array.from({ length: options.calls }, () => today - random() * 90 * DAY_MS).sort((a, b) => a - b);
  const idWidth = Math.max(6, String(options.calls).length);

  let fraudCall = 0;
  for (let index = 0; index < options.calls; index++) {
    const callId = `call-${String(index + 1).padStart(idWidth, '0')}`;
    const speakers: ManifestSpeaker[] = [];
    const hasAgent = random() < AGENT_SHARE;
    if (hasAgent) speakers.push({ label: '', speakerId: pickOne(random, agents), role: 'agent' });
    let account: Customer;
    let fraudster: Fraudster | null = null;
    if (fraudIndices.has(index)) {
      // fraud calls go round the fraudsters, and each fraudster round its victims' accounts
      fraudster = fraudsters[fraudCall++ % fraudsters.length] as Fraudster;
      account = fraudster.victims[fraudster.visits++ % fraudster.victims.length] as Customer;
      const clone = fraudster.family !== null && random() < CLONE_SHARE;
      speakers.push({
        label: '',
        speakerId: fraudster.speakerId,
        role: 'fraudster',
        ...(clone ? { cloneOf: account.speakerId } : {}),
      });
    } else {
      account = pickOne(random, customers);
      const guest = random() < GUEST_SHARE;
      speakers.push({ label: '', speakerId: guest ? `guest-${callId.slice(5)}` : account.speakerId, role: 'caller' });
    }
    const caller = speakers[speakers.length - 1] as ManifestSpeaker;
    if (random() < NOISY_SHARE) caller.noisy = true;
    speakers.forEach((speaker, i) => {
      speaker.label = speakerLabel(i);
    });
    const durationS = Math.round(between(random, 30, 120) * 1000) / 1000;
    const cloneFamily = caller.cloneOf ? (fraudster?.family ?? null) : null;
    const utterances = layOutUtterances({
      random,
      durationS,
      speakerLabels: speakers.map((s) => s.label),
      spoofFamilyOf: (label) => (label === caller.label ? cloneFamily : null),
    });
    const manifest: CallManifest = {
      version: 1,
      callId,
      accountRef: account.accountRef,
      channel: pickOne(random, CHANNELS),
      callAt: new Date(Math.round(callTimes[index] as number)).toISOString(),
      durationS,
      speakers,
      utterances,
    };
    yield {
      manifest,
      truth: {
        file: `${account.accountRef}/${callId}.wav`,
        callId,
        accountRef: account.accountRef,
        channel: manifest.channel as string,
        callAt: manifest.callAt as string,
        speakers: speakers.map(({ label, speakerId, role }) => ({ label, speakerId, role })),
        utterances,
        fraudster: fraudster?.speakerId ?? null,
      },
    };
  }
}

export type DemoDataSummary = { calls: number; accounts: number; fraudCalls: number; bytes: number };

/**
 * Writes OUT_DIR/<accountRef>/<callId>.wav for every call and OUT_DIR/truth.jsonl (one line per
 * call); `onProgress` hears about every 1000th call.
 * @example await writeDemoData('demo', { calls: 100, speakers: 20, fraudsters: 2, campaigns: 2, seed: 1 });
 */
export async function writeDemoData(
  outDir: string,
  options: DemoDataOptions,
  hooks: { onProgress?: (written: number, total: number) => void } = {},
): Promise<DemoDataSummary> {
  fs.mkdirSync(outDir, { recursive: true });
  const truthFile = fs.openSync(path.join(outDir, 'truth.jsonl'), 'w');
  const accounts = new Set<string>();
  let calls = 0;
  let fraudCalls = 0;
  let bytes = 0;
  let pending: string[] = [];
  try {
    for (const { manifest, truth } of generateDemoCalls(options)) {
      const accountDir = path.join(outDir, truth.accountRef);
      if (!accounts.has(truth.accountRef)) {
        fs.mkdirSync(accountDir, { recursive: true });
        accounts.add(truth.accountRef);
      }
      const wav = encodeCallWav(manifest, { seed: seedFrom(options.seed, truth.callId) });
      fs.writeFileSync(path.join(outDir, truth.file), wav);
      bytes += wav.length;
      pending.push(JSON.stringify(truth));
      calls++;
      if (truth.fraudster) fraudCalls++;
      if (pending.length >= 500) {
        fs.writeSync(truthFile, `${pending.join('\n')}\n`);
        pending = [];
      }
      if (calls % 1000 === 0) {
        hooks.onProgress?.(calls, options.calls);
        // let signals and other work in the process through on very large runs
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    if (pending.length > 0) fs.writeSync(truthFile, `${pending.join('\n')}\n`);
  } finally {
    fs.closeSync(truthFile);
  }
  return { calls, accounts: accounts.size, fraudCalls, bytes };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** k distinct items, chosen uniformly (a partial Fisher–Yates shuffle of a copy). */
function sample<T>(random: () => number, items: readonly T[], k: number): T[] {
  const copy = items.slice();
  const n = Math.min(k, copy.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, n);
}
