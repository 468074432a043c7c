import { describe, expect, it } from 'vitest';
import { joinsCentroid, mayJoin } from '../src/voices/identities/assign.ts';
import { BATCH_MARGIN_JOIN, JOIN_SIMILARITY, ONLINE_MARGIN_JOIN } from '../src/voices/identities/thresholds.ts';

const rule = ONLINE_MARGIN_JOIN;
const { similarity: MARGIN_JOIN_SIMILARITY, margin: JOIN_MARGIN } = rule;

describe('identity rules: joining a centroid', () => {
  const below = (JOIN_SIMILARITY + MARGIN_JOIN_SIMILARITY) / 2;

  it('joins at JOIN_SIMILARITY whatever the runner-up and the kind', () => {
    for (const kind of ['unknown', 'customer', 'fraudster', 'staff'] as const) {
      expect(joinsCentroid({ similarity: JOIN_SIMILARITY, kind }, JOIN_SIMILARITY - 0.001, rule)).toBe(true);
      expect(joinsCentroid({ similarity: JOIN_SIMILARITY, kind }, null, rule)).toBe(true);
    }
  });

  it('joins below JOIN_SIMILARITY only with a lead of JOIN_MARGIN over the runner-up', () => {
    expect(joinsCentroid({ similarity: below, kind: 'unknown' }, below - JOIN_MARGIN - 0.001, rule)).toBe(true);
    expect(joinsCentroid({ similarity: below, kind: 'customer' }, below - JOIN_MARGIN + 0.01, rule)).toBe(false);
    // alone, a weak match has nothing it is known to beat
    expect(joinsCentroid({ similarity: below, kind: 'unknown' }, null, rule)).toBe(false);
  });

  it('never joins below MARGIN_JOIN_SIMILARITY, however far ahead', () => {
    expect(joinsCentroid({ similarity: MARGIN_JOIN_SIMILARITY - 0.001, kind: 'unknown' }, -1, rule)).toBe(false);
  });

  it('is looser in the batch pass than online, never looser than JOIN_SIMILARITY', () => {
    expect(BATCH_MARGIN_JOIN.similarity).toBeLessThanOrEqual(ONLINE_MARGIN_JOIN.similarity);
    expect(BATCH_MARGIN_JOIN.margin).toBeLessThanOrEqual(ONLINE_MARGIN_JOIN.margin);
    expect(ONLINE_MARGIN_JOIN.similarity).toBeLessThan(JOIN_SIMILARITY);
    const between = (BATCH_MARGIN_JOIN.similarity + ONLINE_MARGIN_JOIN.similarity) / 2;
    const lead = ONLINE_MARGIN_JOIN.margin;
    expect(joinsCentroid({ similarity: between, kind: 'unknown' }, between - lead, BATCH_MARGIN_JOIN)).toBe(true);
    expect(joinsCentroid({ similarity: between, kind: 'unknown' }, between - lead, ONLINE_MARGIN_JOIN)).toBe(false);
  });

  it('takes agents (staff) and fraudsters only at JOIN_SIMILARITY', () => {
    expect(joinsCentroid({ similarity: below, kind: 'staff' }, 0, rule)).toBe(false);
    expect(joinsCentroid({ similarity: below, kind: 'fraudster' }, 0, rule)).toBe(false);
    expect(joinsCentroid({ similarity: below, kind: 'customer' }, 0, rule)).toBe(true);
  });
});

describe('identity rules: the spoofed-speech rule', () => {
  it('keeps mostly spoofed voiceprints out of customer and staff identities and bonafide ones out of spoofed clusters', () => {
    expect(mayJoin(true, { kind: 'customer', spoofed: false })).toBe(false);
    expect(mayJoin(true, { kind: 'staff', spoofed: false })).toBe(false);
    expect(mayJoin(true, { kind: 'fraudster', spoofed: false })).toBe(true);
    expect(mayJoin(true, { kind: 'unknown', spoofed: true })).toBe(true);
    expect(mayJoin(true, { kind: 'unknown', spoofed: false })).toBe(false);
    expect(mayJoin(false, { kind: 'customer', spoofed: false })).toBe(true);
    expect(mayJoin(false, { kind: 'unknown', spoofed: true })).toBe(false);
  });
});
