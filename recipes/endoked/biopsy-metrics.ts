// What the optical-biopsy recipe (07-optical-biopsy.ts) reports beyond the ROC AUC: scores
// aggregated per polyp or patient (the mean of their frames), and sensitivity/specificity at an
// operating point chosen on other data (Youden's J = max(TPR - FPR) over the train split's ROC,
// W. J. Youden, Cancer 3(1), 1950) or fixed. A score at or above the threshold is positive.
import { metrics } from '../../engine/index.ts';

export interface BinaryReport {
  n: number;
  positives: number;
  auc: number;
  /** The operating point used for sensitivity/specificity, and how it was chosen. */
  threshold: number;
  chosenBy: 'youden' | 'fixed';
  sensitivity: number;
  specificity: number;
  /** The same at the fixed threshold, for comparison. */
  fixed: { threshold: number; sensitivity: number; specificity: number };
}

/** Sensitivity (TPR) and specificity (TNR) of `score >= threshold`; NaN for an absent class. */
export function sensSpec(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  threshold: number,
): { sensitivity: number; specificity: number } {
  let tp = 0,
    p = 0,
    tn = 0,
    n = 0;
  for (let i = 0; i < labels.length; i++) {
    const pos = scores[i] >= threshold;
    if (labels[i] === 1) {
      p++;
      if (pos) tp++;
    } else {
      n++;
      if (!pos) tn++;
    }
  }
  return { sensitivity: p ? tp / p : NaN, specificity: n ? tn / n : NaN };
}

/** The threshold with the largest TPR - FPR on (labels, scores); the highest such on ties. */
export function youdenThreshold(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const roc = metrics.rocCurve(labels, scores, false);
  let best = -Infinity,
    t = 0.5;
  for (let i = 1; i < roc.thresholds.length; i++) {
    // i = 0 is +Infinity (nothing positive)
    const j = roc.tpr[i] - roc.fpr[i];
    if (j > best) {
      best = j;
      t = roc.thresholds[i];
    }
  }
  return t;
}

/**
 * AUC and the operating point's sensitivity/specificity on (labels, scores). With 'youden' the
 * threshold comes from `choose` (e.g. the train split), or from these scores when absent.
 */
export function binaryReport(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  op: 'youden' | 'fixed',
  fixed: number,
  choose?: { labels: ArrayLike<number>; scores: ArrayLike<number> },
): BinaryReport {
  const src = choose ?? { labels, scores };
  const threshold = op === 'youden' ? youdenThreshold(src.labels, src.scores) : fixed;
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i];
  return {
    n: labels.length,
    positives,
    auc: metrics.rocAuc(labels, scores),
    threshold,
    chosenBy: op,
    ...sensSpec(labels, scores, threshold),
    fixed: { threshold: fixed, ...sensSpec(labels, scores, fixed) },
  };
}

/** Per group (polyp, patient): the mean of its frames' scores, and label 1 when any frame is 1. */
export function groupScores<R extends { label: number }>(
  records: readonly R[],
  scores: ArrayLike<number>,
  key: (r: R) => string,
): { ids: string[]; labels: number[]; scores: number[] } {
  const acc = new Map<string, { label: number; sum: number; n: number }>();
  records.forEach((r, i) => {
    const g = acc.get(key(r)) ?? { label: 0, sum: 0, n: 0 };
    g.label = Math.max(g.label, r.label);
    g.sum += scores[i];
    g.n++;
    acc.set(key(r), g);
  });
  const ids = [...acc.keys()];
  return { ids, labels: ids.map((k) => acc.get(k)!.label), scores: ids.map((k) => acc.get(k)!.sum / acc.get(k)!.n) };
}

/**
 * An arm's reports: the train split's frame level, and the test split's frame, polyp and patient
 * levels, each level's operating point chosen on the train scores at that level.
 */
export function splitReports<R extends { label: number; polypId: string; patientId: string }>(
  train: readonly R[],
  test: readonly R[],
  ptrain: Float64Array,
  ptest: Float64Array,
  op: 'youden' | 'fixed',
  fixed: number,
): { train: { frame: BinaryReport }; test: { frame: BinaryReport; polyp: BinaryReport; patient: BinaryReport } } {
  const trainLabels = train.map((r) => r.label);
  const level = (key: (r: R) => string) => {
    const g = groupScores(test, ptest, key),
      gt = groupScores(train, ptrain, key);
    return binaryReport(g.labels, g.scores, op, fixed, { labels: gt.labels, scores: gt.scores });
  };
  return {
    train: { frame: binaryReport(trainLabels, ptrain, op, fixed) },
    test: {
      frame: binaryReport(
        test.map((r) => r.label),
        ptest,
        op,
        fixed,
        { labels: trainLabels, scores: Array.from(ptrain) },
      ),
      polyp: level((r) => r.polypId),
      patient: level((r) => r.patientId),
    },
  };
}
