import { describe, expect, it } from 'vitest';
import { describeLeft, drainProgressLines } from '../src/commands/analysis-progress.ts';

const left = (pending: number, held = 0, retrying = 0) => ({ pending, held, retrying, due: pending - held - retrying });

describe('the progress lines of a long drain (analyze, import)', () => {
  it('stays quiet during a short run, then writes a line at most every interval', () => {
    let clock = 0;
    const lines: string[] = [];
    const progress = drainProgressLines('analyze', (line) => lines.push(line), {
      quietMs: 2_000,
      intervalMs: 1_000,
      now: () => clock,
    });
    for (const at of [0, 500, 1_999]) {
      clock = at;
      progress({ done: at, dead: 0, left: left(10) });
    }
    expect(lines).toEqual([]);
    for (const at of [2_000, 2_500, 3_000, 3_999, 4_000]) {
      clock = at;
      progress({ done: 4, dead: 1, left: left(3, 2, 1) });
    }
    expect(lines).toEqual([
      'analyze: 4 events done, 1 dead, 3 left (2 held by another runner, 1 waiting for a retry)',
      'analyze: 4 events done, 1 dead, 3 left (2 held by another runner, 1 waiting for a retry)',
      'analyze: 4 events done, 1 dead, 3 left (2 held by another runner, 1 waiting for a retry)',
    ]);
  });

  it('names only the kinds of events left that there are', () => {
    expect(describeLeft(left(0))).toBe('0 left');
    expect(describeLeft(left(5))).toBe('5 left');
    expect(describeLeft(left(5, 0, 2))).toBe('5 left (2 waiting for a retry)');
  });
});
