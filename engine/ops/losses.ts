// Losses with PyTorch's semantics (torch.nn.functional, checked against PyTorch 1.13):
// - crossEntropy: fused with log-softmax, one kernel forward per row and one backward per logit
//   (cross-entropy*.wgsl), class-index or class-probability targets, ignoreIndex, label
//   smoothing and class weights. 'mean' over index targets divides by the summed weights of the
//   rows not ignored (all rows ignored gives NaN, as PyTorch); over probability targets by the
//   number of rows. Source: aten/src/ATen/native/LossNLL.cpp (cross_entropy_loss_label_smoothing,
//   cross_entropy_loss_prob_target).
//   Out-of-range targets: PyTorch raises ("Target t is out of bounds"); raising here would need a
//   readback, so the kernels write NaN into that row's loss and gradient instead (a 'mean'/'sum'
//   then turns NaN). Data loaders and tests call `validateIndices` (a readback) to get an error.
// - binaryCrossEntropyWithLogits: (1 - y) x + (1 + (posWeight - 1) y) softplus(-x), stable for
//   any |x| (aten Loss.cpp binary_cross_entropy_with_logits).
// - binaryCrossEntropy on probabilities: logs clamped at -100 as PyTorch; its gradient is
//   w (p - y) / max(p (1 - p), 1e-12) (aten Loss.cpp binary_cross_entropy_backward). Inputs
//   outside [0, 1] give NaN (PyTorch raises; that check would need a readback).
// - mseLoss, l1Loss: composites; shapes must match (PyTorch only warns on broadcasting, a
//   classic silent bug, so it is an error here).
// - cosineSimilarity: PyTorch 1.13 (aten Distance.cpp) normalises each input first with its norm
//   clamped at eps, sum((x1 / max(|x1|, eps)) * (x2 / max(|x2|, eps))), which differs from the
//   documented x1.x2 / max(|x1| |x2|, eps) when a norm is below eps; its gradient uses the
//   clamped norms, dx1 = g (u2 - y u1) / max(|x1|, eps), reproduced here.
import { Tensor, fmt, numel, noGrad } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';
import { add, sub, mul, div, neg, log, abs, clamp, softplus, sqrt } from './math.ts';
import { sum, mean } from './reduce.ts';
import { reshape, expand } from './movement.ts';
import { broadcastShapes, normAxes, sameShape } from '../shape.ts';
import { logSoftmax } from './softmax.ts';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(op: string, loss: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return sum(loss);
  if (reduction === 'mean') return mean(loss);
  throw new Error(`${op}: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
}

function expectF32(op: string, what: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new Error(`${op}: ${what} ${fmt(t.shape)} has dtype ${t.dtype}, expected f32`);
}

function expectSameShape(op: string, a: Tensor, b: Tensor, an: string, bn: string): void {
  if (!sameShape(a.shape, b.shape))
    throw new Error(`${op}: ${an} ${fmt(a.shape)} and ${bn} ${fmt(b.shape)} must have the same shape`);
}

// ---- cross-entropy ----------------------------------------------------------------------------

export interface CrossEntropyOptions {
  /** Target value whose rows are skipped (loss 0, excluded from the mean). Default -100. */
  ignoreIndex?: number;
  /** Mixes the target with the uniform distribution over classes. Default 0. */
  labelSmoothing?: number;
  reduction?: Reduction;
  /** Per-class weights, shape [C]. */
  weight?: Tensor;
}

/**
 * Cross-entropy between `logits` [N, C] or [N, C, d1, ...] (or [C]) and `target`: i32 class
 * indices [N] / [N, d1, ...] (or []), or f32 class probabilities of the logits' shape.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const { ignoreIndex = -100, labelSmoothing = 0, reduction = 'mean', weight } = opts;
  expectF32(op, 'logits', logits);
  if (logits.ndim < 1) throw new Error(`${op}: logits must have a class dim, got shape ${fmt(logits.shape)}`);
  const classDim = logits.ndim === 1 ? 0 : 1;
  const C = logits.shape[classDim];
  const inner = numel(logits.shape.slice(classDim + 1));
  const rowShape = logits.shape.filter((_, i) => i !== classDim);
  const rows = numel(rowShape);
  if (C === 0) throw new Error(`${op}: logits ${fmt(logits.shape)} have no classes`);
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
    throw new Error(`${op}: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  if (!['mean', 'sum', 'none'].includes(reduction))
    throw new Error(`${op}: reduction must be 'mean', 'sum' or 'none', got '${String(reduction)}'`);
  if (weight) {
    expectF32(op, 'weight', weight);
    if (!sameShape(weight.shape, [C]))
      throw new Error(
        `${op}: weight has shape ${fmt(weight.shape)}, expected [${C}] (one per class of logits ${fmt(logits.shape)})`,
      );
  }
  const probs = target.dtype === 'f32';
  if (probs ? !sameShape(target.shape, logits.shape) : target.dtype !== 'i32') {
    throw new Error(
      `${op}: target ${fmt(target.shape)} (${target.dtype}) does not fit logits ${fmt(logits.shape)}: ` +
        `expected i32 class indices of shape ${fmt(rowShape)} or f32 probabilities of shape ${fmt(logits.shape)}`,
    );
  }
  if (!probs && !sameShape(target.shape, rowShape)) {
    throw new Error(
      `${op}: target ${fmt(target.shape)} (i32 class indices) must have shape ${fmt(rowShape)} ` +
        `for logits ${fmt(logits.shape)}`,
    );
  }
  const hasWeight = weight ? 1 : 0;
  const w = weight ?? logits; // stand-in binding, not read when hasWeight is 0
  const loss = Tensor.empty([rows], 'f32', op);
  const stats = Tensor.empty([rows, 2], 'f32', op);
  const rowWeight = probs ? null : Tensor.empty([rows], 'f32', op);
  if (rows > 0) {
    launch(
      probs
        ? {
            op,
            shader: 'cross-entropy-probs',
            inputs: [logits, target, w],
            outputs: [loss, stats],
            uniforms: new Params().u32({ rows, len: C, inner, hasWeight }).f32({ smoothing: labelSmoothing }),
            workgroups: grid(rows, 1),
          }
        : {
            op,
            shader: 'cross-entropy',
            inputs: [logits, target, w],
            outputs: [loss, rowWeight!, stats],
            uniforms: new Params()
              .u32({ rows, len: C, inner, hasWeight })
              .i32({ ignoreIndex })
              .f32({ smoothing: labelSmoothing }),
            workgroups: grid(rows, 1),
          },
    );
  }
  record(loss, op, probs ? [logits, target] : [logits], (dl) => {
    const dx = Tensor.empty(logits.shape, 'f32', `${op}-backward`);
    if (rows > 0) {
      launch(
        probs
          ? {
              op: `${op}-backward`,
              shader: 'cross-entropy-probs-backward',
              inputs: [logits, target, w, stats, dl],
              outputs: [dx],
              uniforms: new Params()
                .u32({ n: logits.size, len: C, inner, hasWeight })
                .f32({ smoothing: labelSmoothing }),
              workgroups: grid(logits.size),
            }
          : {
              op: `${op}-backward`,
              shader: 'cross-entropy-backward',
              inputs: [logits, target, w, stats, dl],
              outputs: [dx],
              uniforms: new Params()
                .u32({ n: logits.size, len: C, inner, hasWeight })
                .i32({ ignoreIndex })
                .f32({ smoothing: labelSmoothing }),
              workgroups: grid(logits.size),
            },
      );
    }
    if (!probs || !target.requiresGrad) return [dx, null];
    // d loss / d target[c] = -(1 - ls) w[c] logSoftmax(x)[c], per row.
    const classShape = logits.shape.map((d, i) => (i === classDim ? d : 1));
    const g = reshape(
      dl,
      logits.shape.map((d, i) => (i === classDim ? 1 : d)),
    ); // [N * d1 * ...] -> [N, 1, d1, ...]
    const scaled = mul(mul(logSoftmax(logits, classDim), g), -(1 - labelSmoothing));
    return [dx, weight ? mul(scaled, reshape(weight, classShape)) : scaled];
  });
  if (!loss.requiresGrad) stats.dispose();
  const perRow = reshape(loss, rowShape); // [N * d1 * ...] -> [N, d1, ...]
  if (reduction === 'none' || reduction === 'sum') {
    rowWeight?.dispose();
    return reduction === 'none' ? perRow : sum(perRow);
  }
  // 'mean': index targets divide by the summed target weights of the rows kept.
  return rowWeight ? div(sum(perRow), sum(rowWeight)) : mean(perRow);
}

/**
 * Host-side check of class indices (reads them back: for tests and data loaders, never inside an
 * op). Throws naming the op, the first bad index, its position and the shape.
 */
export async function validateIndices(
  target: Tensor,
  numClasses: number,
  ignoreIndex = -100,
  op = 'crossEntropy',
): Promise<void> {
  if (target.dtype !== 'i32')
    throw new Error(`${op}: target ${fmt(target.shape)} has dtype ${target.dtype}, expected i32 class indices`);
  const data = await target.data();
  for (let i = 0; i < data.length; i++) {
    const t = data[i];
    if (t !== ignoreIndex && (t < 0 || t >= numClasses)) {
      throw new Error(
        `${op}: target index ${t} at flat position ${i} of target ${fmt(target.shape)} ` +
          `is out of bounds for ${numClasses} classes ` +
          `(expected 0 <= t < ${numClasses}, or ignoreIndex ${ignoreIndex})`,
      );
    }
  }
}

// ---- binary cross-entropy -----------------------------------------------------------------------

export interface BceWithLogitsOptions {
  posWeight?: Tensor;
  weight?: Tensor;
  reduction?: Reduction;
}

/** Binary cross-entropy on logits x against targets y in [0, 1], numerically stable. */
export function binaryCrossEntropyWithLogits(x: Tensor, y: Tensor, opts: BceWithLogitsOptions = {}): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  const { posWeight, weight, reduction = 'mean' } = opts;
  expectF32(op, 'input', x);
  expectF32(op, 'target', y);
  expectSameShape(op, x, y, 'input', 'target');
  for (const [name, t] of [
    ['posWeight', posWeight],
    ['weight', weight],
  ] as const) {
    if (!t) continue;
    expectF32(op, name, t);
    if (!sameShape(broadcastShapes(op, x.shape, t.shape), x.shape))
      throw new Error(`${op}: ${name} ${fmt(t.shape)} does not broadcast to input ${fmt(x.shape)}`);
  }
  // log(1 + e^-x) weighted by 1 + (posWeight - 1) y on the positive term.
  const sp = softplus(neg(x));
  const pos = posWeight ? mul(add(mul(sub(posWeight, 1), y), 1), sp) : sp;
  let loss = add(mul(sub(1, y), x), pos);
  if (weight) loss = mul(loss, weight);
  return reduce(op, loss, reduction);
}

export interface BceOptions {
  weight?: Tensor;
  reduction?: Reduction;
}

/** Binary cross-entropy on probabilities p against targets y, logs clamped at -100 (PyTorch). */
export function binaryCrossEntropy(p: Tensor, y: Tensor, opts: BceOptions = {}): Tensor {
  const op = 'binaryCrossEntropy';
  const { weight, reduction = 'mean' } = opts;
  expectF32(op, 'input', p);
  expectF32(op, 'target', y);
  expectSameShape(op, p, y, 'input', 'target');
  if (weight) {
    expectF32(op, 'weight', weight);
    if (!sameShape(broadcastShapes(op, p.shape, weight.shape), p.shape))
      throw new Error(`${op}: weight ${fmt(weight.shape)} does not broadcast to input ${fmt(p.shape)}`);
  }
  const loss = noGrad(() => {
    const l = neg(add(mul(y, clamp(log(p), -100)), mul(sub(1, y), clamp(log(sub(1, p)), -100))));
    return weight ? mul(l, weight) : l;
  });
  record(loss, op, [p, y], (g) => {
    const gw = weight ? mul(g, weight) : g;
    const dp = p.requiresGrad ? div(mul(gw, sub(p, y)), clamp(mul(p, sub(1, p)), 1e-12)) : null;
    // d/dy = -logit(p) = log(1 - p) - log(p)
    const dy = y.requiresGrad ? mul(gw, sub(log(sub(1, p)), log(p))) : null;
    return [dp, dy];
  });
  return reduce(op, loss, reduction);
}

// ---- regression losses --------------------------------------------------------------------------

export function mseLoss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  expectF32('mseLoss', 'input', a);
  expectF32('mseLoss', 'target', b);
  expectSameShape('mseLoss', a, b, 'input', 'target');
  const d = sub(a, b);
  return reduce('mseLoss', mul(d, d), reduction);
}

export function l1Loss(a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor {
  expectF32('l1Loss', 'input', a);
  expectF32('l1Loss', 'target', b);
  expectSameShape('l1Loss', a, b, 'input', 'target');
  return reduce('l1Loss', abs(sub(a, b)), reduction);
}

// ---- cosine similarity --------------------------------------------------------------------------

/** Cosine similarity along `dim` of the broadcast shape of a and b (PyTorch 1.13 semantics). */
export function cosineSimilarity(a: Tensor, b: Tensor, dim = -1, eps = 1e-8): Tensor {
  const op = 'cosineSimilarity';
  expectF32(op, 'x1', a);
  expectF32(op, 'x2', b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const d = normAxes(op, shape, dim)[0];
  const keep = shape.map((s, i) => (i === d ? 1 : s));
  const [u1, u2, n1, n2, y] = noGrad(() => {
    const x1 = expand(a, shape);
    const x2 = expand(b, shape);
    const n1 = clamp(sqrt(sum(mul(x1, x1), d, true)), eps); // [..., 1, ...]
    const n2 = clamp(sqrt(sum(mul(x2, x2), d, true)), eps);
    const u1 = div(x1, n1);
    const u2 = div(x2, n2);
    return [u1, u2, n1, n2, sum(mul(u1, u2), d)]; // [..., D, ...] -> [..., ...]
  });
  return record(y, op, [a, b], (g) => {
    const gk = reshape(g, keep);
    const yk = reshape(y, keep);
    return [
      a.requiresGrad ? div(mul(gk, sub(u2, mul(yk, u1))), n1) : null,
      b.requiresGrad ? div(mul(gk, sub(u1, mul(yk, u2))), n2) : null,
    ];
  });
}
