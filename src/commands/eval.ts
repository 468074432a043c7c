import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { err, out, UsageError } from './support.ts';

/** `eval voices` and `eval spoofs` (later evals join them): measured figures written to bench/results/. */
export function registerEval(program: Command) {
  const evaluate = program.command('eval').description('evaluate a feature on a synthetic corpus with known truth');
  evaluate
    .command('voices')
    .description(
      'speaker verification, identification, identity clustering (online and batch), the watchlist, voice reuse and staff proposals on a synthetic corpus; writes bench/results/voices-eval.json',
    )
    .option('--seed <n>', 'the corpus seed (figures are reported on a seed other than the tuning one)', '2')
    .option('--tune-seed <n>', 'the seed the thresholds were tuned on', '1')
    .option('--speakers <n>', 'customers in the corpus (≥ 2,000 for the reported figures)', '2000')
    .option(
      '--pglite',
      'run on embedded PGlite (default: a fresh database on TEST_DATABASE_URL or DATABASE_URL, else PGlite)',
    )
    .option('--bench-dir <dir>', 'where results/voices-eval.json and README.md are written', 'bench')
    .action(async (opts: { seed: string; tuneSeed: string; speakers: string; pglite?: boolean; benchDir: string }) => {
      const seed = whole('--seed', opts.seed, 0);
      const tuneSeed = whole('--tune-seed', opts.tuneSeed, 0);
      const speakers = whole('--speakers', opts.speakers, 5);
      const config = loadConfig();
      const serverUrl = evalServerUrl(opts.pglite, config.databaseUrl);
      // loaded here: only this command needs the eval, the bench helpers and the voice search
      const [{ runVoicesEval }, { withFreshDatabase, recordResult, describeMachine }] = await Promise.all([
        import('../eval/voices/run.ts'),
        evalSupport(),
      ]);
      const started = performance.now();
      const { figures, machine } = await withFreshDatabase(serverUrl, async (database) => {
        err(`eval voices: seed ${seed} (thresholds tuned on seed ${tuneSeed}), ${database.description}`);
        const figures = await runVoicesEval(database, {
          seed,
          tuneSeed,
          speakers,
          settings: config.voices,
          log: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel),
          progress: (line) => err(`eval voices: ${line}`),
        });
        return { figures, machine: await describeMachine(database) };
      });
      // `--pglite` whenever it ran there: with no server configured the default is PGlite too
      const command = `./voxtrace eval voices --seed ${seed} --tune-seed ${tuneSeed} --speakers ${speakers}${serverUrl ? '' : ' --pglite'}`;
      const { batch, online } = figures.clustering;
      const { file } = recordResult(path.resolve(opts.benchDir), {
        name: 'voices-eval',
        command,
        machine,
        figures: { ...figures, seconds: Math.round((performance.now() - started) / 100) / 10 },
        summary:
          `seed ${seed}: EER ${(figures.verification.eer * 100).toFixed(2)} %, F1 batch ${batch.pairwise.f1} / online ${online.pairwise.f1}, ` +
          `B³ precision ${batch.bcubed.precision} / ${online.bcubed.precision}; ` +
          `watchlist hits ${(figures.watchlist.hitRate * 100).toFixed(1)} % at ${figures.watchlist.comparisons.falseMatchesPerComparison} false matches per comparison (${figures.watchlist.falseHitsPerRecordingCheck} false hits per recording and listed voice), ` +
          `voice reuse precision ${figures.voiceReuse.precision} / recall ${figures.voiceReuse.recall}, ` +
          `staff proposals precision ${figures.staffProposals.precision} / recall ${figures.staffProposals.recall}` +
          (figures.missed.length ? `; missed: ${figures.missed.join('; ')}` : '; all targets met'),
      });
      out(`wrote ${file}`);
      for (const t of figures.targets) out(`${t.met ? 'met   ' : 'MISSED'} ${t.name}: ${t.value}`);
    });
  evaluate
    .command('spoofs')
    .description(
      'spoof clustering (online and batch), unseen-family detection, near misses and false alarms on a synthetic corpus; writes bench/results/spoofs-eval.json',
    )
    .option('--seed <n>', 'the corpus seed (figures are reported on a seed other than the tuning one)', '2')
    .option('--tune-seed <n>', 'the seed the clustering constants were tuned on', '1')
    .option('--spoofed <n>', 'spoofed utterances in the corpus (≥ 50,000 for the reported figures)', '50000')
    .option('--bonafide <n>', 'genuine utterances in the corpus (≥ 200,000 for the reported figures)', '200000')
    .option('--families <n>', 'spoof generator families (≥ 30 for the reported figures)', '40')
    .option(
      '--pglite',
      'run on embedded PGlite (default: a fresh database on TEST_DATABASE_URL or DATABASE_URL, else PGlite)',
    )
    .option('--bench-dir <dir>', 'where results/spoofs-eval.json and README.md are written', 'bench')
    .action(
      async (opts: {
        seed: string;
        tuneSeed: string;
        spoofed: string;
        bonafide: string;
        families: string;
        pglite?: boolean;
        benchDir: string;
      }) => {
        const seed = whole('--seed', opts.seed, 0);
        const tuneSeed = whole('--tune-seed', opts.tuneSeed, 0);
        const spoofed = whole('--spoofed', opts.spoofed, 100);
        const bonafide = whole('--bonafide', opts.bonafide, 100);
        const families = whole('--families', opts.families, 8);
        const config = loadConfig();
        const serverUrl = evalServerUrl(opts.pglite, config.databaseUrl);
        const [{ runSpoofsEval }, { withFreshDatabase, recordResult, describeMachine }] = await Promise.all([
          import('../eval/spoofs/run.ts'),
          evalSupport(),
        ]);
        const started = performance.now();
        const { figures, machine } = await withFreshDatabase(serverUrl, async (database) => {
          err(`eval spoofs: seed ${seed} (constants tuned on seed ${tuneSeed}), ${database.description}`);
          const figures = await runSpoofsEval(database, {
            seed,
            tuneSeed,
            spoofed,
            bonafide,
            families,
            settings: config.spoofs,
            log: createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel),
            progress: (line) => err(`eval spoofs: ${line}`),
          });
          return { figures, machine: await describeMachine(database) };
        });
        const command =
          `./voxtrace eval spoofs --seed ${seed} --tune-seed ${tuneSeed} --spoofed ${spoofed} --bonafide ${bonafide}` +
          `${families === 40 ? '' : ` --families ${families}`}${serverUrl ? '' : ' --pglite'}`;
        const { online, batch } = figures;
        const { file } = recordResult(path.resolve(opts.benchDir), {
          name: 'spoofs-eval',
          command,
          machine,
          figures: { ...figures, seconds: Math.round((performance.now() - started) / 100) / 10 },
          summary:
            `seed ${seed}: family F1 online ${online.family.pairwise.f1} / batch ${batch.family.pairwise.f1} (ARI ${online.family.ari} / ${batch.family.ari}), ` +
            `unseen F1 ${online.unseen.f1}, near misses recall ${online.nearMisses.recall} at precision ${online.nearMisses.precision}, ` +
            `false alarms clustered ${online.falseAlarms.clustered}/${online.falseAlarms.labelledSpoofed}; ` +
            `${figures.timing.msPerRecording} ms a recording` +
            (figures.missed.length ? `; missed: ${figures.missed.join('; ')}` : '; all targets met'),
        });
        out(`wrote ${file}`);
        for (const t of figures.targets) out(`${t.met ? 'met   ' : 'MISSED'} ${t.name}: ${t.value}`);
      },
    );
}

function whole(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be a whole number ≥ ${min}, got ${value}`);
  return n;
}

/** Where an eval makes its fresh database: a server when one is configured and `--pglite` not given (null: PGlite). */
function evalServerUrl(pglite: boolean | undefined, databaseUrl: string | undefined): string | null {
  return pglite ? null : process.env.TEST_DATABASE_URL || databaseUrl || null;
}

/** What every eval needs besides its own run: the fresh database, the results file, the machine's description. */
async function evalSupport() {
  const [{ withFreshDatabase }, { recordResult }, { describeMachine }] = await Promise.all([
    import('../eval/voices/database.ts'),
    import('../../bench/support/results.ts'),
    import('../../bench/support/machine.ts'),
  ]);
  return { withFreshDatabase, recordResult, describeMachine };
}
