// Segmentation and bag-level metrics for Work 2 (EndoKED).
//
// Dice and IoU per image on binarised masks: prediction = prob > threshold (0.5 by default, the
// spec's recommendation; Polyp-PVT's Test.py binarises min-max normalised maps at 0.01 instead,
// [K] EndoKED_SEG), target = value > 0.5. Dice = 2|P and T| / (|P| + |T|), IoU = |P and T| / |P or T|;
// an image where both masks are empty scores 1 for both (sklearn f1_score / jaccard_score with
// zero_division=1, which test/golden/gen_metrics.py uses as the oracle). Means are over images.
//
// Bag AUC (EndoKED-MIL evaluation, [K] train_Endo_BagDistillation_*.py): sklearn's ROC AUC of
// one score per bag (teacher: bag probability; student: max instance probability) against the
// bag labels.
import { rocAuc } from './classification.ts';

export interface SegmentationScores {
  dice: Float64Array;
  iou: Float64Array;
  meanDice: number;
  meanIou: number;
}

/** Dice and IoU of one prediction/target pair of equal length. */
export function diceIou(
  probs: ArrayLike<number>,
  target: ArrayLike<number>,
  threshold = 0.5,
): { dice: number; iou: number } {
  if (probs.length !== target.length)
    throw new Error(`diceIou: prediction has ${probs.length} pixels but target has ${target.length}`);
  let inter = 0,
    p = 0,
    t = 0;
  for (let i = 0; i < probs.length; i++) {
    const a = probs[i] > threshold ? 1 : 0,
      b = target[i] > 0.5 ? 1 : 0;
    inter += a & b;
    p += a;
    t += b;
  }
  if (p + t === 0) return { dice: 1, iou: 1 };
  return { dice: (2 * inter) / (p + t), iou: inter / (p + t - inter) };
}

/**
 * Per-image Dice and IoU of a batch: probs and targets are [numImages, H, W] flattened (any
 * per-image size, as long as both hold numImages equal slices).
 */
export function segmentationScores(
  probs: ArrayLike<number>,
  targets: ArrayLike<number>,
  numImages: number,
  threshold = 0.5,
): SegmentationScores {
  if (probs.length !== targets.length)
    throw new Error(`segmentationScores: probs has ${probs.length} values but targets has ${targets.length}`);
  if (!Number.isInteger(numImages) || numImages < 1 || probs.length % numImages !== 0) {
    throw new Error(`segmentationScores: ${probs.length} values do not split into ${numImages} images`);
  }
  const size = probs.length / numImages;
  const dice = new Float64Array(numImages),
    iou = new Float64Array(numImages);
  const slice = (a: ArrayLike<number>, i: number) =>
    ArrayBuffer.isView(a)
      ? (a as unknown as Float32Array).subarray(i * size, (i + 1) * size)
      : Array.prototype.slice.call(a, i * size, (i + 1) * size);
  for (let i = 0; i < numImages; i++) {
    const s = diceIou(slice(probs, i), slice(targets, i), threshold);
    dice[i] = s.dice;
    iou[i] = s.iou;
  }
  const mean = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / a.length;
  return { dice, iou, meanDice: mean(dice), meanIou: mean(iou) };
}

/** ROC AUC of bag scores against binary bag labels; NaN if only one class is present. */
export function bagAuc(bagScores: ArrayLike<number>, bagLabels: ArrayLike<number>): number {
  return rocAuc(bagLabels, bagScores);
}
