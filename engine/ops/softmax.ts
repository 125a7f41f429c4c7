// softmax and logSoftmax along any axis, as torch.softmax / torch.log_softmax, each one fused
// kernel forward (softmax.wgsl, two expressions apart) and one backward (softmax-backward.wgsl,
// likewise) that reads the saved output instead of recomputing it:
//   softmax:      dx = y * (dy - sum(dy * y))
//   log-softmax:  dx = dy - exp(y) * sum(dy)
// Stability: the maximum of the row is subtracted before exp, kept online with the running sum
// (Milakov & Gimelshein 2018, arXiv:1805.02867), so the row is read once for its statistics.
//
// Decomposition: on GPUs, and for few rows, one workgroup (64 lanes) per row with a tree reduction
// in workgroup memory (a long row is not serialised on one lane); on CPU drivers with many rows,
// one invocation per row (softmax-rows.wgsl: no barriers, which cost a CPU driver more than the
// arithmetic; see rowKernel). A non-last axis is read through a stride (`inner`) instead of a
// transpose.
import { Tensor, device, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';
import { rowLayout, type RowLayout } from '../shape.ts';

function rowParams(l: RowLayout): Params {
  return new Params().u32({ rows: l.rows, len: l.len, inner: l.inner });
}

type Kind = 'softmax' | 'log-softmax';

export type SoftmaxKernel = 'rows' | 'workgroup';
let forced: SoftmaxKernel | null = null;

/** Forces the per-row or the per-workgroup kernels (tests compare them); null restores the choice. */
export function useSoftmaxKernel(k: SoftmaxKernel | null): void {
  forced = k;
}

/**
 * One invocation per row (softmax-rows.wgsl) where a CPU driver has enough rows to stay busy and
 * each is short enough for one lane; otherwise a 64-lane workgroup per row (GPUs; few long rows,
 * such as a small batch of 1000-class logits). On lavapipe the per-row kernels ran attention
 * scores (rows of 49-257) several times faster.
 */
function rowKernel(l: RowLayout): boolean {
  if (forced) return forced === 'rows';
  return device().isCpuAdapter && l.rows >= 64 && l.len <= 4096;
}

// The two ops share one forward and one backward kernel; only these expressions differ.
const FORWARD: Record<Kind, Record<string, string>> = {
  softmax: { FINISH: '1.0 / ps[0]', Y: 'exp(x[i] - mx) * k' },
  'log-softmax': { FINISH: 'log(ps[0])', Y: '(x[i] - mx) - k' },
};
const BACKWARD: Record<Kind, Record<string, string>> = {
  softmax: { TERM: 'dy[i] * y[i]', DX: 'y[i] * (dy[i] - total)' },
  'log-softmax': { TERM: 'dy[i]', DX: 'dy[i] - exp(y[i]) * total' },
};

function forward(kind: Kind, x: Tensor, l: RowLayout): Tensor {
  const y = Tensor.empty(x.shape, 'f32', kind);
  if (y.size === 0) return y;
  const perRow = rowKernel(l);
  launch({
    op: kind,
    shader: perRow ? 'softmax-rows' : 'softmax',
    params: FORWARD[kind],
    inputs: [x],
    outputs: [y],
    uniforms: rowParams(l),
    workgroups: perRow ? grid(l.rows) : grid(l.rows, 1),
  });
  return y;
}

function backwardKernel(kind: Kind, y: Tensor, dy: Tensor, l: RowLayout): Tensor {
  const op = `${kind}-backward`;
  if (dy.shape.length !== y.shape.length || dy.shape.some((d, i) => d !== y.shape[i])) {
    throw new Error(`${op}: gradient ${fmt(dy.shape)} does not match output ${fmt(y.shape)}`);
  }
  const dx = Tensor.empty(y.shape, 'f32', op);
  if (dx.size === 0) return dx;
  launch({
    op,
    shader: rowKernel(l) ? 'softmax-backward-rows' : 'softmax-backward',
    params: BACKWARD[kind],
    inputs: [y, dy],
    outputs: [dx],
    uniforms: rowParams(l),
    workgroups: rowKernel(l) ? grid(l.rows) : grid(l.rows, 1),
  });
  return dx;
}

function softmaxLike(kind: Kind, name: string, x: Tensor, dim: number): Tensor {
  if (x.dtype !== 'f32') throw new Error(`${name}: input ${fmt(x.shape)} has dtype ${x.dtype}, expected f32`);
  const l = rowLayout(name, x.shape, dim);
  const y = forward(kind, x, l);
  return record(y, name, [x], (dy) => [backwardKernel(kind, y, dy, l)]);
}

/** softmax(x)_i = exp(x_i) / sum_j exp(x_j) along `dim` (torch.softmax). */
export function softmax(x: Tensor, dim = -1): Tensor {
  return softmaxLike('softmax', 'softmax', x, dim);
}

/** The gradient of softmax from its output y and dy, y * (dy - sum(dy * y)), without a graph. */
export function softmaxBackward(y: Tensor, dy: Tensor, dim = -1): Tensor {
  return backwardKernel('softmax', y, dy, rowLayout('softmax', y.shape, dim));
}

/** log(softmax(x)) along `dim`, computed directly (torch.log_softmax). */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return softmaxLike('log-softmax', 'logSoftmax', x, dim);
}
