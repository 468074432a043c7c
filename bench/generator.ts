/**
 * Generator benchmark: measures the statistics of the synthetic voice generator
 * (src/standin/voices.ts) that the stand-in, the tests, the demo and the other benchmarks share —
 * same/different-speaker cosine distributions and histograms, the EER of a cosine threshold on
 * normal and on hard (noisy) calls, voice clones against their victims, spoof family tightness
 * against relatives, unrelated families and bonafide speech, and verdict miss / false-alarm rates.
 *
 *   node bench/generator.ts [--seed K] [--speakers N] [--calls-per-speaker M]
 *
 * Defaults: seed 1, 1,000 speakers × 3 calls, the population test/voices.test.ts pins against
 * the result. No database. Writes bench/results/generator.json and the generator line of
 * bench/README.md; run it after a deliberate retuning of the generator, then review the diff.
 */
import { parseArgs } from 'node:util';
import { type GeneratorFigures, measureVoiceModel } from '../src/standin/voice-stats.ts';
import { describeHost } from './support/machine.ts';
import { recordResult } from './support/results.ts';

// fewer and the EER (1–2 %) rests on a handful of genuine pairs below the threshold
const MINIMUM_SPEAKERS = 1_000;
const MINIMUM_CALLS_PER_SPEAKER = 3;
const benchDir = import.meta.dirname;

function parseOptions(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      seed: { type: 'string', default: '1' },
      speakers: { type: 'string', default: String(MINIMUM_SPEAKERS) },
      'calls-per-speaker': { type: 'string', default: String(MINIMUM_CALLS_PER_SPEAKER) },
    },
  });
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed)) fail(`--seed must be a whole number, got "${values.seed}"`);
  const speakers = positiveInteger('--speakers', values.speakers);
  const callsPerSpeaker = positiveInteger('--calls-per-speaker', values['calls-per-speaker']);
  if (speakers < MINIMUM_SPEAKERS || callsPerSpeaker < MINIMUM_CALLS_PER_SPEAKER) {
    fail(
      `${speakers} speakers × ${callsPerSpeaker} calls: the statistics need at least ` +
        `${MINIMUM_SPEAKERS.toLocaleString('en')} speakers × ${MINIMUM_CALLS_PER_SPEAKER} calls`,
    );
  }
  return { seed, speakers, callsPerSpeaker };
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) fail(`${flag} must be a positive integer, got "${text}"`);
  return value;
}

function fail(message: string): never {
  console.error(`bench/generator: ${message}`);
  process.exit(1);
}

function commandLine(args: string[]): string {
  const quoted = args.map((arg) => (/^[\w.,=/-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`));
  return `node bench/generator.ts${quoted.map((arg) => ` ${arg}`).join('')}`;
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(2)} %`;

function printSummary(figures: GeneratorFigures, seconds: number) {
  const { speaker, deepfake, verdicts } = figures;
  const range = (s: { mean: number; p05: number; p95: number }) =>
    `mean ${s.mean.toFixed(3)}, 5–95 % ${s.p05.toFixed(3)}–${s.p95.toFixed(3)}`;
  const lines = [
    `seed ${figures.seed}, ${figures.speakers} speakers × ${figures.callsPerSpeaker} calls (${seconds.toFixed(1)} s)`,
    `speaker, same speaker:        ${range(speaker.normal.genuine)}`,
    `speaker, different speakers:  ${range(speaker.normal.impostor)}`,
    `speaker, EER normal:          ${percent(speaker.normal.eer)} at cosine ${speaker.normal.threshold}`,
    `speaker, EER hard (noisy):    ${percent(speaker.hard.eer)} at cosine ${speaker.hard.threshold}`,
    `speaker, clone to victim:     ${range(speaker.clones.toVictim)}; accepted at the normal threshold ${percent(speaker.clones.acceptedAtNormalThreshold)}`,
    `deepfake, within a family:    ${range(deepfake.withinFamily)} (family means ${deepfake.withinFamilyMeans.min}–${deepfake.withinFamilyMeans.max})`,
    `deepfake, relative families:  ${range(deepfake.relatives)}`,
    `deepfake, unrelated families: ${range(deepfake.unrelated)}`,
    `deepfake, bonafide same call: ${range(deepfake.bonafideSameCall)}`,
    `deepfake, bonafide speakers:  ${range(deepfake.bonafideDifferentSpeakers)}`,
    `verdicts: miss ${percent(verdicts.missRate)} (noisy ${percent(verdicts.missRateNoisy)}), false alarm ${percent(verdicts.falseAlarmRate)} (noisy ${percent(verdicts.falseAlarmRateNoisy)})`,
  ];
  for (const line of lines) console.log(line);
}

function main() {
  const args = process.argv.slice(2);
  const options = parseOptions(args);
  const started = performance.now();
  const figures = measureVoiceModel(options);
  const seconds = (performance.now() - started) / 1000;

  const { speaker, deepfake, verdicts } = figures;
  recordResult(benchDir, {
    name: 'generator',
    command: commandLine(args),
    // no database: the host alone, with null postgres/pgvector
    machine: describeHost(),
    figures,
    summary:
      `speaker EER ${percent(speaker.normal.eer)} (hard ${percent(speaker.hard.eer)}), ` +
      `cosine same speaker ${speaker.normal.genuine.mean.toFixed(2)}, different ${speaker.normal.impostor.mean.toFixed(2)}; ` +
      `spoof family ${deepfake.withinFamily.mean.toFixed(2)}, relatives ${deepfake.relatives.mean.toFixed(2)}, ` +
      `unrelated ${deepfake.unrelated.mean.toFixed(2)}; verdict miss ${percent(verdicts.missRate)}, ` +
      `false alarm ${percent(verdicts.falseAlarmRate)} (seed ${figures.seed}, ${figures.speakers} speakers × ` +
      `${figures.callsPerSpeaker} calls)`,
  });
  printSummary(figures, seconds);
}

main();
