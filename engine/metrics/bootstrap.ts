// Bootstrap confidence intervals for evaluation metrics (Efron & Tibshirani, "An Introduction to
// the Bootstrap", 1993, ch. 13: the percentile interval). The test set is resampled with
// replacement `replicates` times, the statistic is recomputed on each resample, and the interval
// is the (alpha/2, 1 - alpha/2) quantiles of those values (numpy's default linear quantile).
// Resampling is stratified by class when strata are given (each resample keeps the class counts,
// as pROC's `ci.auc(boot.stratified = TRUE)` does), so a binary AUC is defined on every resample.
// Paired differences resample the same frames for both models, which is what "is A better than
// B on this test set" asks; two marginal intervals that overlap do not by themselves say no.
// Seeded (engine/data/random.ts), so a report's intervals are reproducible.
import { Rng } from '../data/random.ts';
import { rocAuc, balancedAccuracy } from './classification.ts';

export interface Interval {
  /** The statistic on the full sample. */
  estimate: number;
  lo: number;
  hi: number;
  /** Resamples whose statistic was finite (the others are left out of the quantiles). */
  replicates: number;
}

export interface BootstrapOptions {
  replicates?: number;
  /** 1 - coverage (0.05: a 95% interval). */
  alpha?: number;
  seed?: number;
  /** A stratum per sample (e.g. the label): each resample draws within each stratum. */
  strata?: ArrayLike<number>;
}

/** numpy.quantile(xs, q) with the default 'linear' method; xs sorted ascending. */
export function quantileSorted(xs: ArrayLike<number>, q: number): number {
  if (xs.length === 0) return NaN;
  const pos = q * (xs.length - 1),
    i = Math.floor(pos),
    f = pos - i;
  return i + 1 < xs.length ? xs[i] + f * (xs[i + 1] - xs[i]) : xs[i];
}

/**
 * Percentile bootstrap of `statistic`, which receives the indices of a resample (length n, with
 * repeats) and returns a number. The indices of one replicate are the same for every call made
 * with the same seed, n and strata.
 */
export function bootstrapCi(n: number, statistic: (idx: Int32Array) => number, o: BootstrapOptions = {}): Interval {
  const B = o.replicates ?? 2000,
    alpha = o.alpha ?? 0.05;
  if (!(n >= 1)) throw new Error(`bootstrapCi: needs at least one sample, got ${n}`);
  if (!(Number.isInteger(B) && B >= 1)) throw new Error(`bootstrapCi: replicates = ${B}, expected a positive integer`);
  if (!(alpha > 0 && alpha < 1)) throw new Error(`bootstrapCi: alpha = ${alpha}, expected 0 < alpha < 1`);
  if (o.strata && o.strata.length !== n) throw new Error(`bootstrapCi: ${o.strata.length} strata for ${n} samples`);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const s = o.strata ? o.strata[i] : 0;
    const g = groups.get(s) ?? [];
    g.push(i);
    groups.set(s, g);
  }
  const members = [...groups.keys()].sort((a, b) => a - b).map((k) => groups.get(k)!);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const estimate = statistic(all);
  const rng = new Rng(o.seed ?? 0),
    idx = new Int32Array(n),
    values: number[] = [];
  for (let b = 0; b < B; b++) {
    let k = 0;
    for (const g of members) for (let j = 0; j < g.length; j++) idx[k++] = g[Math.floor(rng.random() * g.length)];
    const v = statistic(idx);
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  return {
    estimate,
    lo: quantileSorted(values, alpha / 2),
    hi: quantileSorted(values, 1 - alpha / 2),
    replicates: values.length,
  };
}

const pick = (xs: ArrayLike<number>, idx: Int32Array) => Float64Array.from(idx, (i) => xs[i]);
const predsAt = (scores: ArrayLike<number>, threshold: number) =>
  Int32Array.from({ length: scores.length }, (_, i) => (scores[i] >= threshold ? 1 : 0));

/** Binary AUC of scores against labels {0, 1}, with a class-stratified bootstrap interval. */
export function aucCi(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  o: Omit<BootstrapOptions, 'strata'> = {},
): Interval {
  return bootstrapCi(labels.length, (idx) => rocAuc(pick(labels, idx), pick(scores, idx)), { ...o, strata: labels });
}

/** Balanced accuracy of (score >= threshold) against labels {0, 1}, with a stratified bootstrap interval. */
export function balancedAccuracyCi(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  threshold = 0.5,
  o: Omit<BootstrapOptions, 'strata'> = {},
): Interval {
  const preds = predsAt(scores, threshold);
  return bootstrapCi(labels.length, (idx) => balancedAccuracy(pick(labels, idx), pick(preds, idx), 2), {
    ...o,
    strata: labels,
  });
}

/**
 * The difference metric(A) - metric(B) of two models scored on the same samples, with a paired
 * interval (both models see the same resampled frames).
 */
export function pairedDiffCi(
  labels: ArrayLike<number>,
  scoresA: ArrayLike<number>,
  scoresB: ArrayLike<number>,
  metric: 'auc' | 'balancedAccuracy',
  o: Omit<BootstrapOptions, 'strata'> & { threshold?: number } = {},
): Interval {
  const t = o.threshold ?? 0.5,
    pa = predsAt(scoresA, t),
    pb = predsAt(scoresB, t);
  const stat =
    metric === 'auc'
      ? (idx: Int32Array) => {
          const y = pick(labels, idx);
          return rocAuc(y, pick(scoresA, idx)) - rocAuc(y, pick(scoresB, idx));
        }
      : (idx: Int32Array) => {
          const y = pick(labels, idx);
          return balancedAccuracy(y, pick(pa, idx), 2) - balancedAccuracy(y, pick(pb, idx), 2);
        };
  return bootstrapCi(labels.length, stat, { ...o, strata: labels });
}

/** True when the two closed intervals share a point. */
export function intervalsOverlap(a: Interval, b: Interval): boolean {
  return a.lo <= b.hi && b.lo <= a.hi;
}
