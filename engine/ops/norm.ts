// Normalisation over [N, C, *] tensors: batch_norm (training and eval, running statistics),
// group_norm and SAM's LayerNorm2d (normalise over C at every pixel), forward and backward.
// PyTorch semantics (torch.nn.functional.batch_norm / group_norm; SAM
// `modeling/common.py::LayerNorm2d`): biased variance for normalising, the running variance
// updated with the unbiased one, eps inside the square root.
//
// The three differ only in which elements share statistics, so they share five kernels
// (shaders/norm-*.wgsl): Welford statistics per (group, chunk) then a merge, an affine apply,
// and a backward made of group reductions and one elementwise pass:
//   dx = rstd * (dy w - (sum(dy w) + xhat sum(dy w xhat)) / count)   (batch statistics)
// (Ioffe & Szegedy 2015, arXiv 1502.03167; Wu & He 2018, arXiv 1803.08494).
import { Tensor, fmt, numel } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';
import { sum } from './reduce.ts';
import { narrow, reshape } from './movement.ts';

/** How x, viewed as [N, C, S], splits into statistics groups. */
interface Layout {
  groups: number;
  count: number;
  // element j of group g: (g / gInner) * gOuterStride + (g % gInner) * gInnerStride
  //   + (j / inner) * outerStride + (j % inner) * innerStride
  gInner: number;
  gOuterStride: number;
  gInnerStride: number;
  inner: number;
  outerStride: number;
  innerStride: number;
  // group of element (n, c, s): n * gN + (c / cpg) * gC + s * gS
  gN: number;
  cpg: number;
  gC: number;
  gS: number;
}
interface Dims {
  n: number;
  c: number;
  s: number;
}

/** Batch norm: one group per channel, over N and S. */
const perChannel = ({ n, c, s }: Dims): Layout => ({
  groups: c,
  count: n * s,
  gInner: c,
  gOuterStride: 0,
  gInnerStride: s,
  inner: s,
  outerStride: c * s,
  innerStride: 1,
  gN: 0,
  cpg: 1,
  gC: 1,
  gS: 0,
});
/** Group norm: G contiguous blocks of C/G channels per sample. */
const perGroup = ({ n, c, s }: Dims, g: number): Layout => ({
  groups: n * g,
  count: (c / g) * s,
  gInner: n * g,
  gOuterStride: 0,
  gInnerStride: (c / g) * s,
  inner: (c / g) * s,
  outerStride: 0,
  innerStride: 1,
  gN: g,
  cpg: c / g,
  gC: 1,
  gS: 0,
});
/** LayerNorm2d: one group per (sample, pixel), over C (stride S). */
const perPixel = ({ n, c, s }: Dims): Layout => ({
  groups: n * s,
  count: c,
  gInner: s,
  gOuterStride: c * s,
  gInnerStride: 1,
  inner: c,
  outerStride: 0,
  innerStride: s,
  gN: s,
  cpg: c,
  gC: 0,
  gS: 1,
});

const W = 1,
  B = 2,
  VAR = 4,
  BATCH_STATS = 8,
  UNWEIGHTED_SUMS = 16;

/** Chunks per group: enough workgroups to fill a GPU when groups are few and large. */
function chunking(l: Layout): { chunks: number; chunkLen: number } {
  const chunks = Math.max(1, Math.min(Math.ceil(256 / l.groups), Math.ceil(l.count / 1024)));
  const chunkLen = Math.ceil(l.count / chunks);
  return { chunks: Math.ceil(l.count / chunkLen), chunkLen };
}

function addressing(p: Params, l: Layout, chunks: number, chunkLen: number): Params {
  const { groups, count, gInner, gOuterStride, gInnerStride, inner, outerStride, innerStride } = l;
  return p.u32({
    groups,
    count,
    chunks,
    chunkLen,
    gInner,
    gOuterStride,
    gInnerStride,
    inner,
    outerStride,
    innerStride,
  });
}

function stats(op: string, x: Tensor, l: Layout, eps: number): { mean: Tensor; rstd: Tensor; bvar: Tensor } {
  const { chunks, chunkLen } = chunking(l);
  const part = Tensor.empty([l.groups * chunks, 3], 'f32', `${op}-stats`);
  launch({
    op: `${op}-stats`,
    shader: 'norm-stats',
    inputs: [x],
    outputs: [part],
    uniforms: addressing(new Params(), l, chunks, chunkLen),
    workgroups: grid(l.groups * chunks, 1),
  });
  const mean = Tensor.empty([l.groups], 'f32', `${op}-mean`);
  const rstd = Tensor.empty([l.groups], 'f32', `${op}-rstd`);
  const bvar = Tensor.empty([l.groups], 'f32', `${op}-var`);
  launch({
    op: `${op}-stats`,
    shader: 'norm-stats-merge',
    inputs: [part],
    outputs: [mean, rstd, bvar],
    uniforms: new Params().u32({ groups: l.groups, chunks }).f32({ eps }),
    workgroups: grid(l.groups),
  });
  part.dispose();
  return { mean, rstd, bvar };
}

/** Runs `fn` with a 1-element stand-in for each absent optional input, then frees them. */
function withDummies<T>(ts: (Tensor | null)[], fn: (ts: Tensor[]) => T): T {
  const dummies: Tensor[] = [];
  const filled = ts.map((t) => t ?? (dummies[dummies.length] = Tensor.fromArray([0], [1], 'f32', 'norm-absent')));
  try {
    return fn(filled);
  } finally {
    for (const d of dummies) d.dispose();
  }
}

function apply(
  op: string,
  x: Tensor,
  d: Dims,
  l: Layout,
  mean: Tensor,
  second: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  flags: number,
  eps: number,
): Tensor {
  const y = Tensor.empty(x.shape, 'f32', op);
  withDummies([weight, bias], ([w, b]) =>
    launch({
      op,
      shader: 'norm-apply',
      inputs: [x, mean, second, w, b],
      outputs: [y],
      uniforms: new Params()
        .u32({ c: d.c, s: d.s, total: x.size, gN: l.gN, cpg: l.cpg, gC: l.gC, gS: l.gS })
        .u32({ flags: flags | (weight ? W : 0) | (bias ? B : 0) })
        .f32({ eps }),
      workgroups: grid(x.size),
    }),
  );
  return y;
}

/** [2, groups of `by`]: sums of dy*w and dy*w*xhat, xhat from the statistics layout `map`. */
function reduceGrad(
  op: string,
  x: Tensor,
  dy: Tensor,
  d: Dims,
  by: Layout,
  map: Layout,
  mean: Tensor,
  second: Tensor,
  weight: Tensor | null,
  flags: number,
  eps: number,
): Tensor {
  const { chunks, chunkLen } = chunking(by);
  const part = Tensor.empty([2, by.groups, chunks], 'f32', `${op}-backward`);
  withDummies([weight], ([w]) =>
    launch({
      op: `${op}-backward`,
      shader: 'norm-backward-reduce',
      inputs: [x, dy, mean, second, w],
      outputs: [part],
      uniforms: addressing(new Params(), by, chunks, chunkLen)
        .u32({ c: d.c, s: d.s, gN: map.gN, cpg: map.cpg, gC: map.gC, gS: map.gS, flags: flags | (weight ? W : 0) })
        .f32({ eps }),
      workgroups: grid(by.groups * chunks, 1),
    }),
  );
  // [2, groups, chunks] -> [2, groups]
  const total = chunks === 1 ? part.view([2, by.groups], `${op}-backward`) : sum(part, 2);
  part.dispose(); // a view keeps the storage alive
  return total;
}

function gradInput(
  op: string,
  x: Tensor,
  dy: Tensor,
  d: Dims,
  map: Layout,
  mean: Tensor,
  second: Tensor,
  weight: Tensor | null,
  sums: Tensor | null,
  flags: number,
  eps: number,
): Tensor {
  const dx = Tensor.empty(x.shape, 'f32', `${op}-backward`);
  withDummies([weight, sums], ([w, s]) =>
    launch({
      op: `${op}-backward`,
      shader: 'norm-backward',
      inputs: [x, dy, mean, second, w, s],
      outputs: [dx],
      uniforms: new Params()
        .u32({ c: d.c, s: d.s, total: x.size, gN: map.gN, cpg: map.cpg, gC: map.gC, gS: map.gS })
        .u32({ flags: flags | (weight ? W : 0), groups: map.groups })
        .f32({ count: map.count, eps }),
      workgroups: grid(x.size),
    }),
  );
  return dx;
}

/** Rows of a [2, C] sums tensor, [sum(dy), sum(dy * xhat)], as bias and weight gradients (frees it). */
function affineGrads(sums: Tensor | null, c: number, weight: Tensor | null, bias: Tensor | null): (Tensor | null)[] {
  const out: (Tensor | null)[] = [];
  if (weight) out.push(sums && weight.requiresGrad ? reshape(narrow(sums, 0, 1, 1), [c]) : null);
  if (bias) out.push(sums && bias.requiresGrad ? reshape(narrow(sums, 0, 0, 1), [c]) : null);
  sums?.dispose();
  return out;
}

function dimsOf(op: string, x: Tensor): Dims {
  if (x.dtype !== 'f32') throw new Error(`${op}: input has dtype ${x.dtype}, expected f32`);
  if (x.ndim < 2) throw new Error(`${op}: input ${fmt(x.shape)} must be [N, C, *]`);
  if (x.size === 0) throw new Error(`${op}: input ${fmt(x.shape)} is empty`);
  return { n: x.shape[0], c: x.shape[1], s: numel(x.shape.slice(2)) };
}

function checkVec(op: string, name: string, t: Tensor | null | undefined, c: number): void {
  if (t && (t.ndim !== 1 || t.shape[0] !== c || t.dtype !== 'f32'))
    throw new Error(`${op}: ${name} must be an f32 [${c}], got ${fmt(t.shape)} ${t.dtype}`);
}

/**
 * torch.nn.functional.batch_norm. x [N, C] or [N, C, *]. Training normalises with the batch's
 * biased variance and, when running stats are given, updates them in place (a kernel writes
 * their buffers; not recorded by autograd) with momentum and the unbiased variance. Eval
 * normalises with the running stats, which must then be given.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight?: Tensor | null,
  bias?: Tensor | null,
  training = false,
  momentum = 0.1,
  eps = 1e-5,
): Tensor {
  const op = 'batch_norm';
  const d = dimsOf(op, x);
  for (const [name, t] of [
    ['running_mean', runningMean],
    ['running_var', runningVar],
    ['weight', weight],
    ['bias', bias],
  ] as const)
    checkVec(op, name, t, d.c);
  const w = weight ?? null,
    b = bias ?? null;
  const l = perChannel(d);
  const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  if (!training) {
    if (!runningMean || !runningVar)
      throw new Error(`${op}: running_mean and running_var are required in eval mode (training = false)`);
    const rm = runningMean,
      rv = runningVar;
    const y = apply(op, x, d, l, rm, rv, w, b, VAR, eps);
    return record(y, op, inputs, (dy) => {
      const dx = x.requiresGrad ? gradInput(op, x, dy, d, l, rm, rv, w, null, VAR, eps) : null;
      const sums = w?.requiresGrad || b?.requiresGrad ? reduceGrad(op, x, dy, d, l, l, rm, rv, null, VAR, eps) : null;
      return [dx, ...affineGrads(sums, d.c, w, b)];
    });
  }
  if (l.count <= 1)
    throw new Error(`${op}: expected more than 1 value per channel when training, got input ${fmt(x.shape)}`);
  const { mean, rstd, bvar } = stats(op, x, l, eps);
  if (runningMean && runningVar) {
    launch({
      op: `${op}-running-stats`,
      shader: 'batch-norm-running-stats',
      inputs: [mean, bvar],
      outputs: [runningMean, runningVar],
      uniforms: new Params().u32({ c: d.c }).f32({ momentum, unbias: l.count / (l.count - 1) }),
      workgroups: grid(d.c),
    });
  }
  bvar.dispose();
  const y = apply(op, x, d, l, mean, rstd, w, b, 0, eps);
  return record(y, op, inputs, (dy) => {
    // Batch norm's group is the channel: one reduction serves dx (scaled by w in the kernel) and dw/db.
    const sums = reduceGrad(op, x, dy, d, l, l, mean, rstd, null, 0, eps);
    const dx = x.requiresGrad
      ? gradInput(op, x, dy, d, l, mean, rstd, w, sums, BATCH_STATS | UNWEIGHTED_SUMS, eps)
      : null;
    return [dx, ...affineGrads(sums, d.c, w, b)];
  });
}

/** Shared by group_norm and layer_norm2d: statistics per group of `l`, per-channel affine. */
function groupedNorm(
  op: string,
  x: Tensor,
  d: Dims,
  l: Layout,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Tensor {
  checkVec(op, 'weight', weight, d.c);
  checkVec(op, 'bias', bias, d.c);
  const { mean, rstd, bvar } = stats(op, x, l, eps);
  bvar.dispose();
  const y = apply(op, x, d, l, mean, rstd, weight, bias, 0, eps);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record(y, op, inputs, (dy) => {
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      const sums = reduceGrad(op, x, dy, d, l, l, mean, rstd, weight, 0, eps);
      dx = gradInput(op, x, dy, d, l, mean, rstd, weight, sums, BATCH_STATS, eps);
      sums.dispose();
    }
    const affine =
      weight?.requiresGrad || bias?.requiresGrad
        ? reduceGrad(op, x, dy, d, perChannel(d), l, mean, rstd, null, 0, eps)
        : null;
    return [dx, ...affineGrads(affine, d.c, weight, bias)];
  });
}

/** torch.nn.functional.group_norm. x [N, C, *]; C divisible by numGroups. */
export function groupNorm(
  x: Tensor,
  numGroups: number,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const op = 'group_norm';
  const d = dimsOf(op, x);
  if (!Number.isInteger(numGroups) || numGroups < 1 || d.c % numGroups !== 0) {
    throw new Error(`${op}: ${d.c} channels of ${fmt(x.shape)} cannot be split into ${numGroups} groups`);
  }
  return groupedNorm(op, x, d, perGroup(d, numGroups), weight ?? null, bias ?? null, eps);
}

/** SAM's LayerNorm2d: x [N, C, H, W] (or [N, C, *]) normalised over C at every (n, h, w), eps 1e-6. */
export function layerNorm2d(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-6): Tensor {
  const op = 'layer_norm2d';
  const d = dimsOf(op, x);
  return groupedNorm(op, x, d, perPixel(d), weight ?? null, bias ?? null, eps);
}
