import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli } from './support/cli.ts';
import { engine } from './support/db.ts';

/**
 * `voxtrace eval voices` on a tiny corpus: it runs the product end to end (the analysis steps,
 * watchlist listings and look-backs, staff decisions, recluster, calibration, search) and writes its
 * results file, with figures in a plausible range.
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
        expect(c.voiceprints).toBe(
          f.corpus.voiceprints - f.corpus.staffVoiceprints - f.corpus.clones - f.corpus.fraudsterVoiceprints,
        );
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
      // the fraud features: fraudsters on victims' accounts, channels per call, and the three sections
      expect(f.corpus.fraudsters).toBe(2);
      expect(f.corpus.fraudsterCalls).toBeGreaterThanOrEqual(2 * 3);
      expect(f.corpus.fraudsterVoiceprints).toBe(f.corpus.fraudsterCalls);
      expect(Object.keys(f.corpus.callsByChannel).sort()).toEqual(['app', 'contact-centre', 'ivr']);
      expect(Object.values(f.corpus.callsByChannel).reduce((a: number, b) => a + (b as number), 0)).toBe(
        f.corpus.calls,
      );
      const w = f.watchlist;
      expect(w.listed + w.refusals.length + w.unlistable).toBe(2);
      expect(w.online.fraudsters + w.lookBack.fraudsters).toBe(w.listed + w.refusals.length);
      expect(w.movedOut.length).toBeLessThanOrEqual(w.listed);
      expect(w.online.hits + w.lookBack.hits).toBe(w.hits);
      expect(w.online.falseHits + w.lookBack.falseHits).toBeLessThanOrEqual(w.falseHits);
      expect(w.otherCalls).toBeGreaterThan(0);
      expect(w.hits).toBeLessThanOrEqual(w.otherCalls);
      expect(w.hitRate).toBeGreaterThan(0.3);
      expect(w.recordingChecks).toBeGreaterThan(w.listed * (f.corpus.calls - f.corpus.fraudsterCalls) - 1);
      expect(w.falseHitsPerRecordingCheck).toBeLessThan(0.02);
      const c = w.comparisons;
      expect(c.comparisons).toBeGreaterThanOrEqual(
        w.listed > 0 ? f.corpus.voiceprints - f.corpus.fraudsterVoiceprints : 0,
      );
      expect(c.falseMatches).toBe(c.otherVoice + c.memberOwnVoice);
      expect(c.falseMatchesPerComparison).toBeLessThan(0.01);
      expect(c.minSimilarity).toBeGreaterThan(0.3);
      const r = f.voiceReuse;
      expect(r).toMatchObject({ rule: { accounts: 3, days: 30 }, fraudsters: 2 });
      expect(r.alerts).toBe(r.raised - r.dismissed);
      expect(r.truePositives).toBeLessThanOrEqual(r.alerts);
      expect(r.found).toBeLessThanOrEqual(r.reusingFraudsters);
      for (const x of [r.precision, r.recall, f.staffProposals.precision, f.staffProposals.recall]) {
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(1);
      }
      const s = f.staffProposals;
      expect(s.rule.minAccounts).toBeGreaterThan(0);
      expect(s).toMatchObject({ staff: 5 });
      expect(s.unenrolledStaff).toBe(s.staff - s.enrolledStaff);
      expect(s.decisions.confirmed + s.decisions.rejected + s.decisions.refused).toBe(s.proposals);
      const names = f.targets.map((t: { name: string }) => t.name);
      for (const name of [
        'batch pairwise F1 ≥ 0.95',
        'watchlist hits ≥ 95 % of the listed fraudsters’ other calls',
        'watchlist false matches ≤ 0.1 % per comparison (a listed voiceprint against a stored one)',
        'voice-reuse precision ≥ 0.95 (staff confirmed)',
        'voice-reuse recall ≥ 0.9',
        'staff proposal recall ≥ 0.9',
      ]) {
        expect(names).toContain(name);
      }
      expect(f.missed).toEqual(f.targets.filter((t: { met: boolean }) => !t.met).map((t: { name: string }) => t.name));
      expect(fs.readFileSync(path.join(benchDir, 'README.md'), 'utf8')).toMatch(
        /^- voices-eval: \d{4}-\d\d-\d\d — seed 2: EER .*; watchlist hits [\d.]+ % at [\d.e-]+ false matches per comparison \([\d.e-]+ false hits per recording and listed voice\), voice reuse precision /m,
      );
    } finally {
      fs.rmSync(benchDir, { recursive: true, force: true });
    }
  }, 300_000);
});
