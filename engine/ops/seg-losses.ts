// The papers' losses that are not plain (B)CE, as composites of engine ops (recipes/SPEC.md §1.2, §2.3,
// §2.5): soft Dice, Polyp-PVT's structure loss (weighted BCE + weighted IoU), multilabel soft
// margin (ToCo's classification loss) and the negative cosine similarity of EVA-02's MIM.
import { Tensor, fmt, noGrad } from '../tensor.ts';
import { add, sub, mul, div, abs, sigmoid, softplus, safeSqrt, clamp, neg } from './math.ts';
import { sum, mean } from './reduce.ts';
import { avgPool2d } from './pool.ts';

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.ndim !== b.ndim || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: input ${fmt(a.shape)} and target ${fmt(b.shape)} must have the same shape`);
  }
}

/** Element-wise binary cross-entropy with logits, softplus(x) - x*y (stable for any x). */
function bceWithLogits(x: Tensor, y: Tensor): Tensor {
  return sub(softplus(x), mul(x, y));
}

/**
 * Soft Dice loss on probabilities: 1 - mean((2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth)),
 * the sums over `dims` (default: every dim but the batch dim 0, i.e. one Dice per sample) and
 * the mean over what remains. smooth = 1 as Polyp-PVT's test Dice (Train.py::test).
 */
export function softDiceLoss(probs: Tensor, target: Tensor, smooth = 1, dims?: readonly number[]): Tensor {
  sameShape('soft_dice_loss', probs, target);
  const axes = dims ? [...dims] : probs.ndim > 1 ? probs.shape.slice(1).map((_, i) => i + 1) : [0];
  const inter = sum(mul(probs, target), axes);
  const denom = add(sum(probs, axes), sum(target, axes));
  const dice = div(add(mul(inter, 2), smooth), add(denom, smooth));
  return sub(1, mean(dice));
}

/**
 * Polyp-PVT's structure_loss (EndoKED_SEG/Train.py): pred logits [B, C, H, W], mask in [0, 1].
 *   weit = 1 + 5 |avg_pool2d(mask, 31, 1, 15) - mask|   (count_include_pad, as PyTorch's default)
 *   wiou = 1 - (sum(weit sigmoid(pred) mask) + 1) / (sum(weit (sigmoid(pred) + mask)) - inter + 1)
 * The released code calls binary_cross_entropy_with_logits(..., reduce='none'); PyTorch reads
 * that legacy flag as reduce=True, so its "weighted" BCE is the plain mean BCE over all pixels
 * and the weights cancel. `faithfulBce` (default true) reproduces that; false gives the intended
 * per-image sum(weit * bce) / sum(weit). Returns mean over (B, C) of wbce + wiou.
 */
export function structureLoss(pred: Tensor, mask: Tensor, opts: { faithfulBce?: boolean } = {}): Tensor {
  const op = 'structure_loss';
  sameShape(op, pred, mask);
  if (pred.ndim !== 4) throw new Error(`${op}: pred must be [B, C, H, W] logits, got ${fmt(pred.shape)}`);
  const faithful = opts.faithfulBce ?? true;
  const hw = [2, 3];
  const weit = noGrad(() => add(mul(abs(sub(avgPool2d(mask, 31, 1, 15), mask)), 5), 1)); // [B, C, H, W]
  const bce = bceWithLogits(pred, mask);
  const p = sigmoid(pred);
  const inter = sum(mul(mul(p, mask), weit), hw); // [B, C]
  const union = sum(mul(add(p, mask), weit), hw);
  const wiou = sub(1, div(add(inter, 1), add(sub(union, inter), 1)));
  if (faithful) return add(mean(bce), mean(wiou));
  const wbce = div(sum(mul(weit, bce), hw), sum(weit, hw));
  return mean(add(wbce, wiou));
}

/**
 * torch.nn.functional.multilabel_soft_margin_loss (reduction 'mean'): x [N, C] logits, y in
 * {0, 1}: mean over classes then samples of -(y log sigmoid(x) + (1 - y) log sigmoid(-x)),
 * which is mean(softplus(x) - x y).
 */
export function multilabelSoftMarginLoss(x: Tensor, y: Tensor): Tensor {
  sameShape('multilabel_soft_margin_loss', x, y);
  return mean(bceWithLogits(x, y));
}

/**
 * EVA-02 MIM loss: -mean over rows of cos(pred, target) along the last dim, with each norm
 * clamped at eps as torch.nn.functional.cosine_similarity (PyTorch 2.x) does.
 */
export function negCosineLoss(pred: Tensor, target: Tensor, eps = 1e-8): Tensor {
  sameShape('neg_cosine_loss', pred, target);
  const norm = (t: Tensor) => clamp(safeSqrt(sum(mul(t, t), -1)), eps); // a zero row: gradient 0, not NaN
  const cos = div(sum(mul(pred, target), -1), mul(norm(pred), norm(target)));
  return neg(mean(cos));
}
