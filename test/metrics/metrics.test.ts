// Metrics against scikit-learn (test/golden/gen_metrics.py) to 1e-6.
import { describe, it, expect } from 'vitest';
import { readFixture } from '../golden/read-fixture.ts';
import {
  rocCurve,
  rocAuc,
  averagePrecision,
  rocAucOvr,
  averagePrecisionOvr,
  argmax,
  confusionMatrix,
  accuracy,
  balancedAccuracy,
  macroF1,
  f1PerClass,
  classificationReport,
  diceIou,
  segmentationScores,
  bagAuc,
} from '../../engine/metrics/index.ts';

type Num = number | null;
interface Roc {
  fpr: Num[];
  tpr: Num[];
  thresholds: number[];
}
interface BinaryCase {
  name: string;
  labels: number[];
  scores: number[];
  auc: Num;
  ap: Num;
  roc_drop: Roc;
  roc_full: Roc;
}
interface MultiCase {
  name: string;
  numClasses: number;
  classNames: string[];
  labels: number[];
  probs: number[];
  preds: number[];
  auc: Num[];
  macroAuc: number;
  weightedAuc: number;
  ap: Num[];
  mAP: number;
  accuracy: number;
  balancedAccuracy: number;
  f1: number[];
  macroF1: number;
  precision: number[];
  recall: Num[];
  support: number[];
  confusion: number[][];
}
interface SegCase {
  name: string;
  numImages: number;
  threshold: number;
  probs: number[];
  targets: number[];
  dice: number[];
  iou: number[];
  meanDice: number;
  meanIou: number;
}
const fx = readFixture<{
  binary: BinaryCase[];
  multiclass: MultiCase[];
  segmentation: SegCase[];
  bag: { labels: number[]; scores: number[]; auc: number };
}>('metrics');

const TOL = 1e-6;
/** null in the fixture (undefined in sklearn) must be NaN here; numbers must agree to TOL. */
function close(actual: ArrayLike<number>, expected: Num[], what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i],
      a = actual[i];
    if (e === null) expect(Number.isNaN(a), `${what}[${i}] = ${a}, expected NaN`).toBe(true);
    else expect(Math.abs(a - e), `${what}[${i}] = ${a}, expected ${e}`).toBeLessThanOrEqual(TOL);
  }
}
const one = (a: number, e: Num, what: string) => close([a], [e], what);

describe('binary ROC / AP (sklearn roc_curve, roc_auc_score, average_precision_score)', () => {
  it.each(fx.binary.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const scores = Float32Array.from(c.scores);
    one(rocAuc(c.labels, scores), c.auc, 'auc');
    one(averagePrecision(c.labels, scores), c.ap, 'ap');
    for (const [drop, ref] of [
      [true, c.roc_drop],
      [false, c.roc_full],
    ] as const) {
      const r = rocCurve(c.labels, scores, drop);
      close(r.fpr, ref.fpr, `fpr (drop ${drop})`);
      close(r.tpr, ref.tpr, `tpr (drop ${drop})`);
      expect(r.thresholds[0]).toBe(Infinity);
      close(r.thresholds.subarray(1), ref.thresholds, `thresholds (drop ${drop})`);
    }
  });

  it('rejects malformed input', () => {
    expect(() => rocAuc([0, 1], [0.5])).toThrow(/rocAuc: 2 labels but 1 scores/);
    expect(() => rocAuc([0, 2], [0.5, 0.1])).toThrow(/labels must be 0 or 1, got 2 at 1/);
    expect(() => averagePrecision([0, 1], [NaN, 0.1])).toThrow(/score 0 is NaN/);
  });
});

describe('multi-class metrics (sklearn)', () => {
  it.each(fx.multiclass.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const probs = Float32Array.from(c.probs),
      labels = Int32Array.from(c.labels),
      C = c.numClasses;
    const rep = classificationReport(probs, labels, c.classNames);
    expect(Array.from(rep.preds)).toEqual(c.preds);
    close(rep.auc, c.auc, 'auc per class');
    one(rep.macroAuc, c.macroAuc, 'macro auc');
    one(rep.weightedAuc, c.weightedAuc, 'weighted auc');
    close(rep.ap, c.ap, 'ap per class');
    one(rep.mAP, c.mAP, 'mAP');
    one(rep.accuracy, c.accuracy, 'accuracy');
    one(rep.balancedAccuracy, c.balancedAccuracy, 'balanced accuracy');
    close(rep.f1, c.f1, 'f1 per class');
    one(rep.macroF1, c.macroF1, 'macro f1');
    close(rep.precision, c.precision, 'precision');
    close(rep.recall, c.recall, 'recall');
    expect(Array.from(rep.support)).toEqual(c.support);
    expect(rep.confusion).toEqual(c.confusion);
    // The stand-alone functions agree with the report.
    const preds = argmax(probs, C);
    expect(confusionMatrix(labels, preds, C)).toEqual(c.confusion);
    one(balancedAccuracy(labels, preds, C), c.balancedAccuracy, 'balancedAccuracy()');
    one(macroF1(labels, preds, C), c.macroF1, 'macroF1()');
    close(f1PerClass(labels, preds, C), c.f1, 'f1PerClass()');
    one(accuracy(labels, preds), c.accuracy, 'accuracy()');
    one(rocAucOvr(probs, labels, C).macro, c.macroAuc, 'rocAucOvr().macro');
    one(averagePrecisionOvr(probs, labels, C).macro, c.mAP, 'averagePrecisionOvr().macro');
    // Undefined classes are named in the warnings, defined ones are not.
    const undefinedClasses = c.auc.flatMap((a, k) => (a === null ? [k] : []));
    for (const k of undefinedClasses)
      expect(rep.warnings.some((w) => w.includes(`class ${k} (${c.classNames[k]}) has no positive`))).toBe(true);
    if (undefinedClasses.length === 0) expect(rep.warnings).toEqual([]);
  });

  it('has a case where a class is absent, so the NaN-and-skip path is exercised', () => {
    expect(fx.multiclass.some((c) => c.auc.includes(null))).toBe(true);
  });

  it('rejects mismatched shapes and labels out of range', () => {
    expect(() => classificationReport(new Float32Array(6), Int32Array.from([0, 1]), ['a', 'b'])).toThrow(
      /probs has 6 values, expected \[n=2, C=2\] = 4/,
    );
    expect(() => classificationReport(new Float32Array(4), Int32Array.from([0, 2]), ['a', 'b'])).toThrow(
      /label 1 is 2, expected an integer in \[0, 2\)/,
    );
  });
});

describe('segmentation and bag metrics', () => {
  it.each(fx.segmentation.map((c) => [c.name, c] as const))(
    '%s: Dice and IoU per image (sklearn f1/jaccard, zero_division=1)',
    (_, c) => {
      const s = segmentationScores(Float32Array.from(c.probs), Uint8Array.from(c.targets), c.numImages, c.threshold);
      close(s.dice, c.dice, 'dice');
      close(s.iou, c.iou, 'iou');
      one(s.meanDice, c.meanDice, 'mean dice');
      one(s.meanIou, c.meanIou, 'mean iou');
    },
  );

  it('empty masks: both empty is 1, one empty is 0; the threshold is strict', () => {
    expect(diceIou([0.1, 0.2], [0, 0])).toEqual({ dice: 1, iou: 1 });
    expect(diceIou([0.1, 0.2], [1, 0])).toEqual({ dice: 0, iou: 0 });
    expect(diceIou([0.9, 0.2], [0, 0])).toEqual({ dice: 0, iou: 0 });
    expect(diceIou([0.5, 0.6], [1, 1])).toEqual({ dice: 2 / 3, iou: 0.5 });
    expect(() => segmentationScores(new Float32Array(10), new Float32Array(10), 3)).toThrow(
      /do not split into 3 images/,
    );
  });

  it('bag AUC equals sklearn roc_auc_score on bag scores (with ties)', () => {
    one(bagAuc(Float32Array.from(fx.bag.scores), fx.bag.labels), fx.bag.auc, 'bag auc');
  });
});
