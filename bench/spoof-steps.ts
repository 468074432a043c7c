/**
 * Spoof steps benchmark: what the two spoof analysis steps (`spoofs.clusters`, `spoofs.verdict`)
 * add to the analysis of each stored recording, on the shared demo calls (about one in ten a
 * cloned caller from a campaign: spoofed speech from a few generator families). N calls are
 * stored and analysed one at a time (bench/support/store-and-analyse.ts), first with no step (the
 * runner's own claim, step records and done mark), then into a second fresh database with the two
 * spoof steps; the difference of the mean analysis times is what the steps cost. Also counted:
 * spoofed utterances, clusters formed, near misses and the verdicts, and the placements scored
 * against the stand-in's truth (which utterances a generator family made).
 *
 *   node bench/spoof-steps.ts [--calls N]
 *
 * Default: 3,000 calls on native PostgreSQL. This is the small-scale step cost; the same
 * `spoofs.clusters` step against 1,000,000 loaded spoofed utterances is bench/spoofs-knn.ts's `assign`.
 */
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { DEFAULT_SPOOF_SETTINGS } from '../src/config.ts';
import { queryRows } from '../src/db/client.ts';
import { spoofClusterStep } from '../src/spoofs/clusters/step.ts';
import { spoofVerdictStep } from '../src/spoofs/step.ts';
import { syntheticCalls } from '../test/support/synthetic-documents.ts';
import { withBenchDatabase } from './support/database.ts';
import { describeMachine } from './support/machine.ts';
import { recordResult } from './support/results.ts';
import { storeAndAnalyse } from './support/store-and-analyse.ts';

const SEED = 21;

/** Each utterance's generator family (null: genuine speech), by upstream pid and utterance id, as the stand-in made them. */
function truthOf(count: number): Map<string, string | null> {
  const truth = new Map<string, string | null>();
  for (const [k, { manifest }] of syntheticCalls({ count, seed: SEED, firstPid: 1 }).entries()) {
    for (const u of manifest.utterances) truth.set(`${1 + k}/${u.id}`, u.spoofFamily);
  }
  return truth;
}

/**
 * The placements against the truth: of the clustered utterances, the share that are spoofs and
 * the share in a cluster whose majority is their family; of the spoofs the upstream labelled
 * spoofed, the share clustered; of the false alarms, the share clustered; of the spoofs it labelled
 * bonafide (misses), the share flagged near misses, and the near misses that are spoofs.
 */
function scoreAgainstTruth(
  placed: { pid: number; utterance: string; label: string; cluster: string | null; nearMiss: string | null }[],
  truth: Map<string, string | null>,
) {
  const familyOf = (p: (typeof placed)[number]) => truth.get(`${p.pid}/${p.utterance}`) ?? null;
  const majority = new Map<string, Map<string | null, number>>();
  for (const p of placed) {
    if (!p.cluster) continue;
    const counts = majority.get(p.cluster) ?? new Map<string | null, number>();
    counts.set(familyOf(p), (counts.get(familyOf(p)) ?? 0) + 1);
    majority.set(p.cluster, counts);
  }
  const majorityOf = (cluster: string) =>
    [...(majority.get(cluster) ?? [])].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  const share = (n: number, of: number) => (of ? Math.round((n / of) * 1e4) / 1e4 : null);
  const clustered = placed.filter((p) => p.cluster);
  const spoofedSpoofs = placed.filter((p) => p.label === 'spoofed' && familyOf(p));
  const falseAlarms = placed.filter((p) => p.label === 'spoofed' && !familyOf(p));
  const misses = placed.filter((p) => p.label === 'bonafide' && familyOf(p));
  const nearMisses = placed.filter((p) => p.nearMiss);
  return {
    families: new Set(placed.map(familyOf).filter(Boolean)).size,
    spoofsLabelledSpoofed: spoofedSpoofs.length,
    falseAlarms: falseAlarms.length,
    missedSpoofs: misses.length,
    clusteredThatAreSpoofs: share(clustered.filter((p) => familyOf(p)).length, clustered.length),
    clusteredInTheirFamilysCluster: share(
      clustered.filter((p) => familyOf(p) === majorityOf(p.cluster as string)).length,
      clustered.length,
    ),
    spoofsClustered: share(spoofedSpoofs.filter((p) => p.cluster).length, spoofedSpoofs.length),
    falseAlarmsClustered: share(falseAlarms.filter((p) => p.cluster).length, falseAlarms.length),
    nearMissRecall: share(misses.filter((p) => p.nearMiss).length, misses.length),
    nearMissPrecision: share(nearMisses.filter((p) => familyOf(p)).length, nearMisses.length),
  };
}

const benchDir = import.meta.dirname;
const { values } = parseArgs({ args: process.argv.slice(2), options: { calls: { type: 'string', default: '3000' } } });
const calls = Number(values.calls);
if (!Number.isInteger(calls) || calls < 500) {
  process.stderr.write(`bench/spoof-steps: --calls must be a whole number ≥ 500 (got ${values.calls})\n`);
  process.exit(1);
}

const baseline = await withBenchDatabase('postgres', 'voxtrace_bench_spoof_steps', (database) =>
  storeAndAnalyse(database.db, { count: calls, seed: SEED, firstPid: 1, steps: [] }),
);
const { withSteps, counts, machine } = await withBenchDatabase(
  'postgres',
  'voxtrace_bench_spoof_steps',
  async (database) => {
    const steps = [spoofClusterStep(DEFAULT_SPOOF_SETTINGS), spoofVerdictStep(DEFAULT_SPOOF_SETTINGS)];
    const withSteps = await storeAndAnalyse(database.db, { count: calls, seed: SEED, firstPid: 1, steps });
    const [counts] = await queryRows<{
      spoofedUtterances: number;
      clustered: number;
      nearMisses: number;
      clusters: number;
      campaignAlerts: number;
    }>(
      database.db,
      sql`select (select count(*)::int from utterances where deepfake_label = 'spoofed' and deepfake_embedding is not null) as "spoofedUtterances",
               (select count(*)::int from utterances where spoof_cluster_id is not null) as "clustered",
               (select count(*)::int from utterances where near_miss_cluster_id is not null) as "nearMisses",
               (select count(*)::int from spoof_clusters) as clusters,
               (select count(*)::int from alerts where type = 'new_spoof_campaign') as "campaignAlerts"`,
    );
    const truth = truthOf(calls);
    const placed = await queryRows<{
      pid: number;
      utterance: string;
      label: string;
      cluster: string | null;
      nearMiss: string | null;
    }>(
      database.db,
      sql`select r.upstream_pid as pid, u.upstream_id as utterance, u.deepfake_label as label,
               u.spoof_cluster_id as cluster, u.near_miss_cluster_id as "nearMiss"
        from utterances u join recordings r on r.id = u.recording_id
        where u.deepfake_embedding is not null`,
    );
    const verdicts = await queryRows<{ verdict: string; n: number }>(
      database.db,
      sql`select verdict, count(*)::int as n from recording_spoof_verdicts group by 1 order by 1`,
    );
    return {
      withSteps,
      counts: {
        ...counts,
        verdicts: Object.fromEntries(verdicts.map((v) => [v.verdict, v.n])),
        againstTruth: scoreAgainstTruth(placed, truth),
      },
      machine: await describeMachine(database),
    };
  },
);
const stepsMs = Math.round((withSteps.analyseMeanMs - baseline.analyseMeanMs) * 1000) / 1000;
const figures = { calls, baseline, withSteps, stepsMeanMsPerRecording: stepsMs, ...counts };
recordResult(benchDir, {
  name: 'spoof-steps',
  command: `node bench/spoof-steps.ts --calls ${calls}`,
  machine,
  figures,
  summary:
    `${calls} demo calls: the two spoof steps add ${stepsMs} ms a recording ` +
    `(analysis ${baseline.analyseMeanMs} → ${withSteps.analyseMeanMs} ms); ${counts?.spoofedUtterances} spoofed utterances, ` +
    `${counts?.clusters} clusters, ${counts?.nearMisses} near misses`,
});
console.log(JSON.stringify(figures, null, 1));
