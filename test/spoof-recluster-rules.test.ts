import { describe, expect, it } from 'vitest';
import { deriveSpoofClusters } from '../src/spoofs/clusters/recluster.ts';
import type { PoolPoint, SpoofEdge } from '../src/spoofs/clusters/recluster-queries.ts';

/** The batch rules of recluster spoofs on hand-made kNN graphs (no database). */

const point = (id: string, recordingId: string): PoolPoint => ({ id, recordingId, clusterId: null });
/** Both directions of an edge between two pool points, as the kNN graph holds them. */
const edge = (a: PoolPoint, b: PoolPoint, similarity = 0.9): SpoofEdge[] => [
  { from: a.id, to: b.id, toRecordingId: b.recordingId, toClusterId: null, similarity },
  { from: b.id, to: a.id, toRecordingId: a.recordingId, toClusterId: null, similarity },
];
const clique = (points: PoolPoint[]) => points.flatMap((a, i) => points.slice(i + 1).flatMap((b) => edge(a, b)));
const family = (name: string, n: number) =>
  Array.from({ length: n }, (_, i) => point(`${name}-${i}`, `rec-${name}-${i}`));

describe('deriveSpoofClusters', () => {
  it('makes one cluster of each dense family and leaves lone points as noise', () => {
    const a = family('a', 6);
    const b = family('b', 5);
    const lone = [point('x-0', 'rec-x'), point('y-0', 'rec-y')];
    const { clusters } = deriveSpoofClusters([...a, ...b, ...lone], [...clique(a), ...clique(b)]);
    expect(clusters).toEqual([a.map((p) => p.id).sort(), b.map((p) => p.id).sort()]);
  });

  it('keeps one call’s utterances from making a cluster, however alike', () => {
    // four utterances of one recording, and one of another: core needs neighbours from other recordings
    const call = Array.from({ length: 4 }, (_, i) => point(`c-${i}`, 'rec-c'));
    const other = point('d-0', 'rec-d');
    const edges = [...call.flatMap((p) => edge(p, other))];
    expect(deriveSpoofClusters([...call, other], edges).clusters).toEqual([]);
  });

  it('never lets a bridge point merge two families, and needs MIN_POINTS members of MIN_RECORDINGS recordings', () => {
    const a = family('a', 5);
    const b = family('b', 5);
    const bridge = point('bridge', 'rec-bridge');
    const edges = [...clique(a), ...clique(b), ...edge(bridge, a[0] as PoolPoint), ...edge(bridge, b[0] as PoolPoint)];
    const { clusters } = deriveSpoofClusters([...a, ...b, bridge], edges);
    expect(clusters).toHaveLength(2);
    expect(clusters.flat()).not.toContain('bridge');
    // a core point alone (its neighbours share none of theirs with it) is no cluster of one
    const hub = point('hub', 'rec-hub');
    const spokes = family('s', 3);
    expect(
      deriveSpoofClusters(
        [hub, ...spokes],
        spokes.flatMap((s) => edge(hub, s)),
      ).clusters,
    ).toEqual([]);
  });

  it('adds to a pinned cluster the points that vote for it, and takes nothing from it', () => {
    const pinned = 'pinned-cluster';
    const newcomer = family('n', 2);
    const edges: SpoofEdge[] = newcomer.flatMap((p) =>
      [0, 1, 2].map((k) => ({
        from: p.id,
        to: `member-${k}`,
        toRecordingId: `rec-m-${k}`,
        toClusterId: pinned,
        similarity: 0.9,
      })),
    );
    const { clusters, pinnedJoins } = deriveSpoofClusters(newcomer, edges);
    expect(clusters).toEqual([]);
    expect(pinnedJoins.get(pinned)).toEqual(['n-0', 'n-1']);
  });
});
