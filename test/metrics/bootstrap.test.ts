// Bootstrap intervals against cases whose answer is known: a resampling distribution that can be
// enumerated by hand, DeLong's variance of the AUC (DeLong, DeLong & Clarke-Pearson, Biometrics
// 1988) and the binomial variance of balanced accuracy; point estimates are the sklearn-checked
// metrics; seeds reproduce.
import { describe, it, expect } from 'vitest';
import {
  aucCi,
  balancedAccuracyCi,
  bootstrapCi,
  pairedDiffCi,
  intervalsOverlap,
  quantileSorted,
  rocAuc,
} from '../../engine/metrics/index.ts';
import { Rng } from '../../engine/data/random.ts';

/** DeLong's variance of the empirical AUC (ties count 1/2). */
function delongVar(labels: number[], scores: number[]): number {
  const pos = scores.filter((_, i) => labels[i] === 1),
    neg = scores.filter((_, i) => labels[i] === 0);
  const psi = (x: number, y: number) => (x > y ? 1 : x === y ? 0.5 : 0);
  const v10 = pos.map((x) => neg.reduce((s, y) => s + psi(x, y), 0) / neg.length);
  const v01 = neg.map((y) => pos.reduce((s, x) => s + psi(x, y), 0) / pos.length);
  const variance = (v: number[]) => {
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    return v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1);
  };
  return variance(v10) / pos.length + variance(v01) / neg.length;
}

function binormal(n: number, shift: number, seed: number): { labels: number[]; scores: number[] } {
  const r = new Rng(seed),
    labels: number[] = [],
    scores: number[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(i % 2);
    scores.push(r.normal(i % 2 ? shift : 0, 1));
  }
  return { labels, scores };
}

describe('bootstrap confidence intervals', () => {
  it('quantiles match numpy linear interpolation', () => {
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBeCloseTo(2.5, 12);
    expect(quantileSorted([1, 2, 3, 4], 0.025)).toBeCloseTo(1.075, 12);
    expect(quantileSorted([0, 10], 1)).toBe(10);
  });

  it('reproduces a resampling distribution enumerated by hand', () => {
    // One positive (0.5) and two negatives (0.4, 0.6), stratified: the positive stays, the two
    // negatives are drawn from {0.4, 0.6}: AUC 1, 0.5, 0.5, 0 with probability 1/4 each.
    const seen: number[] = [];
    const ci = bootstrapCi(
      3,
      (idx) => {
        const v = rocAuc(
          Array.from(idx, (i) => [1, 0, 0][i]),
          Array.from(idx, (i) => [0.5, 0.4, 0.6][i]),
        );
        seen.push(v);
        return v;
      },
      { strata: [1, 0, 0], replicates: 4000, seed: 3 },
    );
    expect(ci.estimate).toBe(0.5);
    const boot = seen.slice(1); // the first call is the full-sample estimate
    const frac = (v: number) => boot.filter((x) => x === v).length / boot.length;
    expect(frac(1)).toBeCloseTo(0.25, 1);
    expect(frac(0.5)).toBeCloseTo(0.5, 1);
    expect(frac(0)).toBeCloseTo(0.25, 1);
    expect([ci.lo, ci.hi]).toEqual([0, 1]);
  });

  it('AUC interval: the sklearn-consistent estimate, a width matching DeLong, seeded', () => {
    const { labels, scores } = binormal(300, 1.2, 7);
    const ci = aucCi(labels, scores, { replicates: 3000, seed: 1 });
    expect(ci.estimate).toBe(rocAuc(labels, scores));
    expect(ci.lo).toBeLessThan(ci.estimate);
    expect(ci.hi).toBeGreaterThan(ci.estimate);
    const delongWidth = 2 * 1.959964 * Math.sqrt(delongVar(labels, scores));
    expect(Math.abs((ci.hi - ci.lo) / delongWidth - 1)).toBeLessThan(0.12);
    expect(aucCi(labels, scores, { replicates: 3000, seed: 1 })).toEqual(ci);
    expect(aucCi(labels, scores, { replicates: 3000, seed: 2 }).lo).not.toBe(ci.lo);
  });

  it('balanced-accuracy interval matches the binomial variance of the two recalls', () => {
    const { labels, scores } = binormal(400, 1.5, 11);
    const ci = balancedAccuracyCi(labels, scores, 0.75, { replicates: 3000, seed: 5 });
    const recall = (c: number) => {
      const idx = labels.map((y, i) => (y === c ? i : -1)).filter((i) => i >= 0);
      return idx.filter((i) => (scores[i] >= 0.75 ? 1 : 0) === c).length / idx.length;
    };
    const r0 = recall(0),
      r1 = recall(1);
    expect(ci.estimate).toBeCloseTo((r0 + r1) / 2, 12);
    const se = Math.sqrt((r0 * (1 - r0)) / 200 + (r1 * (1 - r1)) / 200) / 2;
    expect(Math.abs((ci.hi - ci.lo) / (2 * 1.959964 * se) - 1)).toBeLessThan(0.12);
  });

  it('perfect separation gives [1, 1]; identical models give a zero paired difference', () => {
    const labels = [0, 0, 0, 1, 1, 1],
      scores = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];
    const ci = aucCi(labels, scores, { replicates: 200 });
    expect([ci.estimate, ci.lo, ci.hi]).toEqual([1, 1, 1]);
    const d = pairedDiffCi(labels, scores, scores, 'auc', { replicates: 200 });
    expect([d.estimate, d.lo, d.hi]).toEqual([0, 0, 0]);
    expect(
      intervalsOverlap(
        { estimate: 0.5, lo: 0.4, hi: 0.6, replicates: 1 },
        { estimate: 0.7, lo: 0.6, hi: 0.8, replicates: 1 },
      ),
    ).toBe(true);
    expect(
      intervalsOverlap(
        { estimate: 0.5, lo: 0.4, hi: 0.59, replicates: 1 },
        { estimate: 0.7, lo: 0.6, hi: 0.8, replicates: 1 },
      ),
    ).toBe(false);
  });

  it('a paired difference resolves a gap the marginal intervals blur', () => {
    // B is A plus noise: strongly correlated, so the paired interval is much narrower.
    const { labels, scores } = binormal(200, 1.0, 21);
    const r = new Rng(4),
      worse = scores.map((s) => s + r.normal(0, 0.6));
    const a = aucCi(labels, scores, { replicates: 1500 }),
      b = aucCi(labels, worse, { replicates: 1500 });
    const d = pairedDiffCi(labels, scores, worse, 'auc', { replicates: 1500 });
    expect(d.estimate).toBeCloseTo(a.estimate - b.estimate, 12);
    expect(d.hi - d.lo).toBeLessThan(Math.min(a.hi - a.lo, b.hi - b.lo));
  });

  it('rejects bad arguments with the reason', () => {
    expect(() => bootstrapCi(0, () => 0)).toThrow(/at least one sample/);
    expect(() => bootstrapCi(3, () => 0, { alpha: 1 })).toThrow(/alpha/);
    expect(() => bootstrapCi(3, () => 0, { strata: [0, 1] })).toThrow(/2 strata for 3 samples/);
  });
});
