import { round3 } from './latency.ts';

type Point = { queries: number; p50Ms: number; p99Ms: number; recallAt10: number; complete: string };
type Sweep = Record<string, Point>;

export const TARGET = { p50Ms: 3, p99Ms: 15, recall: 0.97, lanceRatio: 1.5, filteredRecall: 0.95, httpRatio: 2 };

/** p50 at `recall` on a sweep, interpolated linearly between the two points around it (null if never reached). */
export function p50AtRecall(sweep: Sweep, recall: number): number | null {
  const points = Object.values(sweep).sort((a, b) => a.recallAt10 - b.recallAt10);
  const above = points.findIndex((pt) => pt.recallAt10 >= recall);
  if (above < 0) return null;
  const hi = points[above] as Point;
  const lo = points[above - 1];
  if (!lo || hi.recallAt10 === lo.recallAt10) return hi.p50Ms;
  const t = (recall - lo.recallAt10) / (hi.recallAt10 - lo.recallAt10);
  return round3(lo.p50Ms + t * (hi.p50Ms - lo.p50Ms));
}

/**
 * The targets judged on a voices-knn result's figures: each with the value it was judged
 * on and whether it is met. The LanceDB comparison is made at every recall both sweeps reach (the
 * target's own point is recall 0.97; when neither gets there, the points below say how they compare).
 */
export function evaluateTargets(figures: Record<string, unknown>, defaultEfSearch: number) {
  const m16 = figures.hnswM16 as {
    searchVoices: Sweep;
    rawSql: Sweep;
    filtered: Record<string, { searchVoices: Point }>;
    http?: { oneClient: Point; sixteenClients: { errors: number } };
  };
  const sweep = m16.searchVoices;
  const entries = Object.entries(sweep);
  const best = fastestAtTargetRecall(entries);
  const highest = entries.sort((a, b) => b[1].recallAt10 - a[1].recallAt10 || a[1].p50Ms - b[1].p50Ms)[0];
  const lance = figures.lancedb as { sweep: Sweep } | undefined;
  const onePercent = Object.entries(m16.filtered).find(([label]) => label.startsWith('1%'))?.[1].searchVoices;
  const defaultPoint = sweep[`default (${defaultEfSearch})`];
  const lanceP50 = best && lance ? p50AtRecall(lance.sweep, best[1].recallAt10) : null;
  const atEqualRecall = lance
    ? Object.fromEntries(
        (['searchVoices', 'rawSql'] as const).flatMap((kind) =>
          Object.entries(m16[kind]).map(([ef, point]) => {
            const lanceP50 = p50AtRecall(lance.sweep, point.recallAt10);
            return [
              `${kind} ef_search ${ef}`,
              {
                recallAt10: point.recallAt10,
                p50Ms: point.p50Ms,
                lanceP50Ms: lanceP50,
                ratio: lanceP50 === null ? null : round3(point.p50Ms / lanceP50),
              },
            ];
          }),
        ),
      )
    : null;
  return {
    searchVoicesAtRecall097: judgeAtRecall(best),
    largerIndexes: largerIndexes(figures, lance),
    bestSearchVoices: {
      efSearch: highest?.[0] ?? null,
      recallAt10: highest?.[1].recallAt10 ?? null,
      p50Ms: highest?.[1].p50Ms ?? null,
      p99Ms: highest?.[1].p99Ms ?? null,
    },
    lanceP50AtEqualRecall: lanceP50,
    lanceRatio: best && lanceP50 ? round3(best[1].p50Ms / lanceP50) : null,
    lanceRatioMet: best && lanceP50 ? best[1].p50Ms <= TARGET.lanceRatio * lanceP50 : null,
    lanceAtEqualRecall: atEqualRecall,
    filteredOnePercent: onePercent
      ? {
          recallAt10: onePercent.recallAt10,
          complete: onePercent.complete,
          met:
            onePercent.recallAt10 >= TARGET.filteredRecall &&
            onePercent.complete.split('/')[0] === String(onePercent.queries),
        }
      : null,
    http:
      m16.http && defaultPoint
        ? {
            oneClientP50Ms: m16.http.oneClient.p50Ms,
            queryP50Ms: defaultPoint.p50Ms,
            ratio: round3(m16.http.oneClient.p50Ms / defaultPoint.p50Ms),
            met: m16.http.oneClient.p50Ms <= TARGET.httpRatio * defaultPoint.p50Ms,
            sixteenClientErrors: m16.http.sixteenClients.errors,
          }
        : null,
  };
}

/** The sweep's fastest point (by p50) among those reaching the target recall. */
function fastestAtTargetRecall(entries: [string, Point][]): [string, Point] | undefined {
  return entries.filter(([, m]) => m.recallAt10 >= TARGET.recall).sort((a, b) => a[1].p50Ms - b[1].p50Ms)[0];
}

function judgeAtRecall(best: [string, Point] | undefined) {
  return best
    ? {
        efSearch: best[0],
        p50Ms: best[1].p50Ms,
        p99Ms: best[1].p99Ms,
        recallAt10: best[1].recallAt10,
        p50Met: best[1].p50Ms <= TARGET.p50Ms,
        p99Met: best[1].p99Ms <= TARGET.p99Ms,
      }
    : { met: false, note: 'no ef_search of the sweep reached recall@10 0.97' };
}

/** The same judgment on every other HNSW build of the run (`hnswM<m>` besides m=16). */
function largerIndexes(figures: Record<string, unknown>, lance: { sweep: Sweep } | undefined) {
  return Object.fromEntries(
    Object.entries(figures)
      .filter(([key]) => /^hnswM\d+$/.test(key) && key !== 'hnswM16')
      .map(([key, value]) => {
        const build = value as { index: { m: number; efConstruction: number }; searchVoices?: Sweep };
        // the default-ef point repeats one of the sweep's own
        const sweep = Object.fromEntries(
          Object.entries(build.searchVoices ?? {}).filter(([ef]) => !ef.startsWith('default')),
        );
        const best = fastestAtTargetRecall(Object.entries(sweep));
        const lanceP50 = best && lance ? p50AtRecall(lance.sweep, best[1].recallAt10) : null;
        return [
          key,
          {
            index: `m=${build.index.m}, ef_construction=${build.index.efConstruction}`,
            searchVoicesAtRecall097: judgeAtRecall(best),
            p50AtRecall097Interpolated: p50AtRecall(sweep, TARGET.recall),
            lanceP50AtEqualRecall: lanceP50,
            lanceRatio: best && lanceP50 ? round3(best[1].p50Ms / lanceP50) : null,
          },
        ];
      }),
  );
}
