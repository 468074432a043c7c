import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { generateSpoofCorpus } from '../src/eval/spoofs/corpus.ts';
import { adjustedRandIndex, binaryScores, familyScores, scoreFlags } from '../src/eval/spoofs/metrics.ts';
import { runCli } from './support/cli.ts';
import { engine } from './support/db.ts';

describe('the spoofs eval scoring', () => {
  it('scores precision as the share of predictions that are true, recall as the share of truths predicted', () => {
    // 4 predicted, 3 of them true; 6 true, 3 of them predicted
    const items = [
      ...Array(3).fill({ truth: true, predicted: true }),
      { truth: false, predicted: true },
      ...Array(3).fill({ truth: true, predicted: false }),
      ...Array(5).fill({ truth: false, predicted: false }),
    ];
    expect(scoreFlags(items)).toMatchObject({
      truePositives: 3,
      falsePositives: 1,
      falseNegatives: 3,
      precision: 0.75,
      recall: 0.5,
      f1: 0.6,
    });
    expect(binaryScores({ truePositives: 0, falsePositives: 0, falseNegatives: 2 })).toMatchObject({
      precision: 1,
      recall: 0,
    });
  });

  it('scores family clustering pairwise and by ARI', () => {
    // family a split over two clusters: every predicted pair is right (precision 1), a third of a's pairs found
    const split = [
      { truth: 'a', predicted: 'x' },
      { truth: 'a', predicted: 'x' },
      { truth: 'a', predicted: 'y' },
      { truth: 'a', predicted: 'y' },
      { truth: 'b', predicted: 'z' },
      { truth: 'b', predicted: 'z' },
    ];
    const s = familyScores(split);
    expect(s.pairwise.precision).toBe(1);
    expect(s.pairwise.recall).toBeCloseTo(3 / 7, 4);
    // two families merged into one cluster: all pairs found (recall 1), 2 of 6 predicted pairs right
    const merged = familyScores([
      { truth: 'a', predicted: 'x' },
      { truth: 'a', predicted: 'x' },
      { truth: 'b', predicted: 'x' },
      { truth: 'b', predicted: 'x' },
    ]);
    expect(merged.pairwise).toMatchObject({ recall: 1 });
    expect(merged.pairwise.precision).toBeCloseTo(1 / 3, 4);
    // a false alarm (a true group of its own) put in a cluster costs precision
    const withFalseAlarm = familyScores([
      { truth: 'a', predicted: 'x' },
      { truth: 'a', predicted: 'x' },
      { truth: 'genuine:1', predicted: 'x' },
    ]);
    expect(withFalseAlarm.pairwise.precision).toBeCloseTo(1 / 3, 4);
    expect(adjustedRandIndex(split.map((i) => ({ truth: i.truth, predicted: i.truth })))).toBe(1);
    expect(adjustedRandIndex(split)).toBeGreaterThan(0);
    expect(adjustedRandIndex(split)).toBeLessThan(1);
  });

  it('generates the same corpus for a seed, with the labels and families it promises', () => {
    const a = generateSpoofCorpus({ seed: 3, spoofed: 2000, bonafide: 8000, families: 32 });
    const b = generateSpoofCorpus({ seed: 3, spoofed: 2000, bonafide: 8000, families: 32 });
    expect(JSON.stringify(a.calls.slice(0, 50))).toBe(JSON.stringify(b.calls.slice(0, 50)));
    const all = a.calls.flatMap((c) => c.utterances);
    const spoofs = all.filter((u) => u.family >= 0);
    const genuine = all.filter((u) => u.family < 0);
    expect(spoofs.length).toBe(2000);
    expect(genuine.length).toBe(8000);
    const miss = spoofs.filter((u) => u.label === 'bonafide').length / spoofs.length;
    expect(miss).toBeGreaterThan(0.06);
    expect(miss).toBeLessThan(0.15);
    const falseAlarms = genuine.filter((u) => u.label === 'spoofed').length / genuine.length;
    expect(falseAlarms).toBeGreaterThan(0.005);
    expect(falseAlarms).toBeLessThan(0.03);
    for (const u of all) expect(u.label === 'spoofed' ? u.pSpoofed >= 0.5 : u.pSpoofed < 0.5).toBe(true);
    for (const f of a.families.filter((f) => f.heldBack)) expect(f.from).toBeGreaterThan(a.cutoff);
    expect(a.calls.every((c, i) => i === 0 || (a.calls[i - 1] as (typeof a.calls)[number]).callAt <= c.callAt)).toBe(
      true,
    );
  });
});

/**
 * `voxtrace eval spoofs` on a tiny corpus: COPY loading, the two spoof steps in arrival order,
 * recluster, the scoring and the results file, end to end. The corpus is small and easy (8
 * families, a few hundred spoofs), so the clustering should be nearly perfect.
 */
describe(`voxtrace eval spoofs on ${engine}`, () => {
  it('writes bench/results/spoofs-eval.json and its README line, with sane figures', async () => {
    const benchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-eval-spoofs-'));
    try {
      const env: Record<string, string> =
        engine === 'postgres' ? { TEST_DATABASE_URL: inject('postgresUrl'), VOXTRACE_LOG_LEVEL: 'warn' } : {};
      const args = [
        'eval',
        'spoofs',
        '--spoofed',
        // more spoofs than one kNN-graph batch (200): recluster walks the graph on two connections
        '300',
        '--bonafide',
        '600',
        '--families',
        '8',
        '--bench-dir',
        benchDir,
      ];
      const run = await runCli(engine === 'pglite' ? [...args, '--pglite'] : args, env, { timeoutMs: 120_000 });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(
        /eval spoofs: corpus: \d+ calls, 900 utterances \(300 spoofed, 600 bonafide\), 8 families \(2 held back\)/,
      );
      expect(run.stdout).toMatch(/^wrote .*spoofs-eval\.json$/m);
      const result = JSON.parse(fs.readFileSync(path.join(benchDir, 'results', 'spoofs-eval.json'), 'utf8'));
      expect(result.command).toBe(
        `./voxtrace eval spoofs --seed 2 --tune-seed 1 --spoofed 300 --bonafide 600 --families 8${engine === 'pglite' ? ' --pglite' : ''}`,
      );
      const f = result.figures;
      expect(f).toMatchObject({
        seed: 2,
        tuneSeed: 1,
        heldOut: true,
        corpus: { spoofs: 300, bonafide: 600, families: 8 },
      });
      const spoofedLabelled = f.corpus.spoofs - f.corpus.spoofsLabelledBonafide + f.corpus.bonafideLabelledSpoofed;
      for (const mode of [f.online, f.batch]) {
        expect(mode.family.utterances).toBe(spoofedLabelled);
        expect(mode.family.pairwise.f1).toBeGreaterThan(0.9);
        expect(mode.family.ari).toBeGreaterThan(0.85);
        expect(mode.falseAlarms).toMatchObject({ labelledSpoofed: f.corpus.bonafideLabelledSpoofed, clustered: 0 });
        expect(mode.nearMisses.truePositives + mode.nearMisses.falseNegatives).toBeLessThanOrEqual(
          f.corpus.spoofsLabelledBonafide,
        );
        expect(mode.nearMisses.precision).toBeGreaterThan(0.9);
        expect(mode.nearMisses.recall).toBeGreaterThan(0.5);
      }
      expect(f.online.unseen.utterances).toBeGreaterThan(0);
      expect(f.online.unseen.truePositives).toBeGreaterThan(0);
      expect(f.online.unseen.f1).toBeGreaterThan(0.5);
      expect(f.alerts.new_spoof_campaign).toBeGreaterThanOrEqual(2);
      expect(f.timing.msPerRecording).toBeGreaterThan(0);
      expect(f.missed).toEqual(f.targets.filter((t: { met: boolean }) => !t.met).map((t: { name: string }) => t.name));
      expect(fs.readFileSync(path.join(benchDir, 'README.md'), 'utf8')).toMatch(
        /^- spoofs-eval: \d{4}-\d\d-\d\d — seed 2: family F1 online [\d.]+ \/ batch [\d.]+ .* ms a recording/m,
      );
    } finally {
      fs.rmSync(benchDir, { recursive: true, force: true });
    }
  }, 150_000);
});

describe('voxtrace eval spoofs, bad options', () => {
  it('names the option and the value it refused, and writes nothing', async () => {
    const benchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-eval-spoofs-bad-'));
    try {
      for (const [args, message] of [
        [['--spoofed', '50'], /--spoofed must be a whole number ≥ 100, got 50/],
        [['--bonafide', 'many'], /--bonafide must be a whole number ≥ 100, got many/],
        [['--families', '7'], /--families must be a whole number ≥ 8, got 7/],
        [['--seed', '1.5'], /--seed must be a whole number ≥ 0, got 1.5/],
      ] as const) {
        const run = await runCli(['eval', 'spoofs', ...args, '--pglite', '--bench-dir', benchDir], {});
        expect(run.code, run.stderr).toBe(1);
        expect(run.stderr).toMatch(message);
      }
      expect(fs.readdirSync(benchDir)).toEqual([]);
    } finally {
      fs.rmSync(benchDir, { recursive: true, force: true });
    }
  });
});
