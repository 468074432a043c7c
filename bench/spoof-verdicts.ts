/**
 * Call verdict benchmark: how the call verdict rule (src/spoofs/verdict.ts) sorts calls whose truth
 * is known — genuine calls (one speaker, or a caller and an agent), voice-clone calls (the caller's
 * speech from a spoof family, an agent genuine) and fully synthetic calls — with utterances laid out
 * as the stand-in lays them out and the stand-in's upstream verdicts (misses 4–18 %, false alarms
 * 1.5 %, 4 % on a noisy line; src/standin/voices.ts). No database: the rule is a pure function.
 *
 *   node bench/spoof-verdicts.ts [--seed K] [--calls N]
 *
 * Defaults: seed 1, 20,000 calls of each kind. Writes bench/results/spoof-verdicts.json and its
 * line in bench/README.md; the figures are quoted in docs/spoofs.md ("A call's verdict").
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SPOOF_SETTINGS, type SpoofSettings } from '../src/config.ts';
import type { CallVerdict } from '../src/db/schema.ts';
import { type JudgedUtterance, judgeCall } from '../src/spoofs/verdict.ts';
import { layOutUtterances } from '../src/standin/audio.ts';
import { seededRandom, seedFrom } from '../src/standin/random.ts';
import { createVoiceModel } from '../src/standin/voices.ts';
import { describeHost } from './support/machine.ts';
import { recordResult } from './support/results.ts';

const benchDir = import.meta.dirname;
const KINDS = ['genuine', 'genuineWithAgent', 'cloneWithAgent', 'synthetic'] as const;
type Kind = (typeof KINDS)[number];
const NOISY_SHARE = 0.1;
const FAMILIES = 40;

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { seed: { type: 'string', default: '1' }, calls: { type: 'string', default: '20000' } },
});
const seed = Number(values.seed);
const callsPerKind = Number(values.calls);
if (!Number.isSafeInteger(seed)) fail(`--seed must be a whole number, got "${values.seed}"`);
if (!Number.isInteger(callsPerKind) || callsPerKind < 1000)
  fail(`--calls must be a whole number ≥ 1000, got "${values.calls}"`);

const model = createVoiceModel(seed);

/** One call of `kind`: its utterances with the upstream's verdicts, as the rule reads them. */
function callOf(kind: Kind, c: number): JudgedUtterance[] {
  const callKey = `${kind}-${c}`;
  const random = seededRandom(seedFrom(seed, 'spoof-verdict-call', callKey));
  const durationS = 20 + 280 * random();
  const noisy = random() < NOISY_SHARE;
  const family = `family-${String(Math.floor(random() * FAMILIES)).padStart(2, '0')}`;
  const labels = kind === 'genuine' || kind === 'synthetic' ? ['speaker_0'] : ['speaker_0', 'speaker_1'];
  const spoofFamilyOf = (label: string) =>
    kind === 'synthetic' || (kind === 'cloneWithAgent' && label === 'speaker_0') ? family : null;
  return layOutUtterances({ random, durationS, speakerLabels: labels, spoofFamilyOf }).map((u) => {
    const verdict = model.verdict({ callKey, utteranceId: u.id, spoofFamily: u.spoofFamily, noisy });
    return {
      speakerLabel: u.speakerLabel,
      start: u.start,
      end: u.end,
      label: verdict.label,
      pSpoofed: verdict.pSpoofed,
      nearMiss: false,
    };
  });
}

const started = performance.now();
const calls = Object.fromEntries(
  KINDS.map((k) => [k, Array.from({ length: callsPerKind }, (_, c) => callOf(k, c))]),
) as Record<Kind, JudgedUtterance[][]>;
const generatedMs = performance.now() - started;

/** The share of each kind's calls given each verdict under `rule`. */
function sortCalls(rule: SpoofSettings) {
  const judgedStarted = performance.now();
  const byKind = {} as Record<Kind, Record<CallVerdict, number>>;
  for (const kind of KINDS) {
    const counts: Record<CallVerdict, number> = { bonafide: 0, spoofed: 0, mixed: 0, suspicious: 0, unknown: 0 };
    for (const call of calls[kind]) counts[judgeCall(call, rule).verdict]++;
    byKind[kind] = Object.fromEntries(
      Object.entries(counts).map(([v, n]) => [v, Math.round((n / callsPerKind) * 1e4) / 1e4]),
    ) as Record<CallVerdict, number>;
  }
  const judged = KINDS.length * callsPerKind;
  return { rule, byKind, usPerCall: Math.round(((performance.now() - judgedStarted) * 1000) / judged) / 1000 };
}

const rules = [0.9, 0.99, 0.999].flatMap((confidentP) =>
  [0.3, 0.5].map((spoofedShare) => sortCalls({ ...DEFAULT_SPOOF_SETTINGS, confidentP, spoofedShare })),
);
const chosen = rules.find(
  (r) =>
    r.rule.confidentP === DEFAULT_SPOOF_SETTINGS.confidentP &&
    r.rule.spoofedShare === DEFAULT_SPOOF_SETTINGS.spoofedShare,
) as (typeof rules)[number];
const flagged = (k: Kind) => Math.round((1 - chosen.byKind[k].bonafide - chosen.byKind[k].unknown) * 1e4) / 1e4;
const figures = {
  seed,
  callsPerKind,
  noisyShare: NOISY_SHARE,
  families: FAMILIES,
  generatedSeconds: Math.round(generatedMs / 100) / 10,
  defaults: chosen,
  alternatives: rules.filter((r) => r !== chosen),
};
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const { file } = recordResult(benchDir, {
  name: 'spoof-verdicts',
  command: `node bench/spoof-verdicts.ts --seed ${seed} --calls ${callsPerKind}`,
  machine: describeHost(),
  figures,
  summary:
    `defaults (share ${DEFAULT_SPOOF_SETTINGS.spoofedShare}, confident p ${DEFAULT_SPOOF_SETTINGS.confidentP}): ` +
    `genuine calls flagged ${pct(flagged('genuine'))} (with an agent ${pct(flagged('genuineWithAgent'))}); ` +
    `clone calls spoofed ${pct(chosen.byKind.cloneWithAgent.spoofed)} / mixed ${pct(chosen.byKind.cloneWithAgent.mixed)}; ` +
    `synthetic calls spoofed ${pct(chosen.byKind.synthetic.spoofed)}; ${chosen.usPerCall} µs a call`,
});
console.log(`wrote ${file}`);
console.log(JSON.stringify(chosen.byKind, null, 1));

function fail(message: string): never {
  console.error(`spoof-verdicts: ${message}`);
  process.exit(2);
}
