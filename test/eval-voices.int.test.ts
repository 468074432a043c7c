import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli } from './support/cli.ts';
import { engine } from './support/db.ts';

/**
 * `voxtrace eval voices` on a tiny corpus: it runs the product end to end (online step, recluster,
 * calibration, search) and writes its results file, with figures in a plausible range.
 */
describe(`voxtrace eval voices on ${engine}`, () => {
  it('writes bench/results/voices-eval.json and its README line, with plausible figures', async () => {
    const benchDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxtrace-eval-'));
    try {
      const env: Record<string, string> =
        engine === 'postgres' ? { TEST_DATABASE_URL: inject('postgresUrl'), VOXTRACE_LOG_LEVEL: 'warn' } : {};
      const args = ['eval', 'voices', '--speakers', '30', '--seed', '2', '--bench-dir', benchDir];
      const run = await runCli(engine === 'pglite' ? [...args, '--pglite'] : args, env, { timeoutMs: 280_000 });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/eval voices: corpus: \d+ calls, \d+ voiceprints \(30 customers, 5 staff/);
      expect(run.stdout).toMatch(/^wrote .*voices-eval\.json$/m);
      const result = JSON.parse(fs.readFileSync(path.join(benchDir, 'results', 'voices-eval.json'), 'utf8'));
      expect(result).toMatchObject({ name: 'voices-eval', machine: { cpus: expect.any(Number) } });
      expect(result.command).toBe(
        `./voxtrace eval voices --seed 2 --tune-seed 1 --speakers 30${engine === 'pglite' ? ' --pglite' : ''}`,
      );
      const f = result.figures;
      expect(f).toMatchObject({ seed: 2, tuneSeed: 1, heldOut: true, corpus: { customers: 30, staff: 5 } });
      expect(f.corpus.hardShare).toBeGreaterThan(0.02);
      expect(f.verification.eer).toBeGreaterThan(0.001);
      expect(f.verification.eer).toBeLessThan(0.15);
      expect(f.verification.tmrAtFar[0].tmr).toBeGreaterThan(0.7);
      expect(f.identification.top1).toBeGreaterThan(0.8);
      for (const mode of ['online', 'batch']) {
        const c = f.clustering[mode];
        expect(c.voiceprints).toBe(f.corpus.voiceprints - f.corpus.staffVoiceprints - f.corpus.clones);
        expect(c.pairwise.precision).toBeGreaterThan(0.9);
        expect(c.bcubed.precision).toBeGreaterThan(0.9);
        expect(c.pairwise.f1).toBeGreaterThan(0.5);
        expect(c.pairwise.f1).toBeLessThanOrEqual(1);
        expect(c.clones.inVictimCustomerIdentity).toBe(0);
        expect(c.staff.purity).toBeGreaterThan(0.9);
      }
      for (const point of f.verification.operatingPoints) {
        expect(point.threshold).toBeGreaterThan(0.2);
        expect(point.threshold).toBeLessThan(0.9);
      }
      expect(f.targets.map((t: { name: string }) => t.name)).toContain('batch pairwise F1 ≥ 0.95');
      expect(f.missed).toEqual(f.targets.filter((t: { met: boolean }) => !t.met).map((t: { name: string }) => t.name));
      expect(fs.readFileSync(path.join(benchDir, 'README.md'), 'utf8')).toMatch(
        /^- voices-eval: \d{4}-\d\d-\d\d — seed 2: EER /m,
      );
    } finally {
      fs.rmSync(benchDir, { recursive: true, force: true });
    }
  }, 300_000);
});
