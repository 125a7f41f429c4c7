// Depthwise convolution on channels-last tokens: x [B, H * W, C] seen as an H x W grid, weight
// [C, 1, k, k] (PyTorch's depthwise Conv2d, groups = C), stride 1, zero padding p -> [B, OH * OW,
// C] with OH = H + 2p - k + 1. It is PVTv2's DWConv (Wang et al. 2022, "PVT v2", arXiv 2106.13797;
// whai362/PVT: `x.transpose(1, 2).view(B, C, H, W)`, `dwconv(x)`, `flatten(2).transpose(1, 2)`),
// which as that composition costs two transposing copies forward and two backward around a
// channels-first convolution. Here the kernels read and write tokens in place, 4 channels per
// invocation as vec4 (shaders/dwconv-tokens*.wgsl):
// - forward: one invocation per 8 output pixels of a row and 4 channels, taps shared along the row;
// - input gradient: the same kernel with the taps mirrored and padding k - 1 - p;
// - weight gradient: per-row partial sums [B * OH, C, k * k], then a column sum (reduce.ts);
// - bias gradient: the sum of dy over tokens.
// Channels not a multiple of 4, kernels over 7, and autocast take the composition
// (`depthwiseConvTokensReference`, also the tests' oracle), whose conv2d has every other path.
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch } from './kernel.ts';
import { autocastActive } from './autocast.ts';
import { reshape, transpose } from './movement.ts';
import { conv2d } from './conv.ts';
import { sum } from './reduce.ts';

const OP = 'dwconv_tokens';
const MAX_K = 7;
/** Output pixels of a row per invocation of dwconv-tokens.wgsl (taps shared along the row). */
const PX = 8;

interface Geom {
  b: number;
  h: number;
  w: number;
  c: number;
  k: number;
  pad: number;
  oh: number;
  ow: number;
}

function check(x: Tensor, weight: Tensor, bias: Tensor | null, h: number, w: number, pad: number): Geom {
  if (x.ndim !== 3 || x.dtype !== 'f32' || weight.dtype !== 'f32' || (bias && bias.dtype !== 'f32'))
    throw new Error(`${OP}: expected f32 tokens [B, H * W, C] and f32 weights, got x ${fmt(x.shape)} ${x.dtype}`);
  const [b, n, c] = x.shape;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h * w !== n)
    throw new Error(`${OP}: ${n} tokens of x ${fmt(x.shape)} are not a ${h} x ${w} grid`);
  const k = weight.shape[2];
  if (weight.ndim !== 4 || weight.shape[0] !== c || weight.shape[1] !== 1 || weight.shape[3] !== k)
    throw new Error(`${OP}: weight ${fmt(weight.shape)} must be [${c}, 1, k, k] for x ${fmt(x.shape)}`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== c))
    throw new Error(`${OP}: bias ${fmt(bias.shape)} must be [${c}]`);
  const oh = h + 2 * pad - k + 1,
    ow = w + 2 * pad - k + 1;
  if (!Number.isInteger(pad) || pad < 0 || oh < 1 || ow < 1)
    throw new Error(`${OP}: padding ${pad} with a ${k} x ${k} kernel leaves no output of a ${h} x ${w} grid`);
  return { b, h, w, c, k, pad, oh, ow };
}

/** The composition this op replaces: tokens to a map, conv2d with groups = C, back to tokens. */
export function depthwiseConvTokensReference(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  h: number,
  w: number,
  padding: number,
): Tensor {
  const g = check(x, weight, bias, h, w, padding);
  const map = reshape(transpose(x, 1, 2), [g.b, g.c, h, w]); // [B, N, C] -> [B, C, H, W]
  const y = conv2d(map, weight, bias, { padding, groups: g.c });
  return transpose(reshape(y, [g.b, g.c, g.oh * g.ow]), 1, 2); // [B, C, OH, OW] -> [B, OH * OW, C]
}

/** Depthwise k x k convolution, stride 1, of tokens x [B, H * W, C] on an H x W grid (see the header). */
export function depthwiseConvTokens(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  h: number,
  w: number,
  padding: number,
): Tensor {
  const g = check(x, weight, bias, h, w, padding);
  if (g.c % 4 !== 0 || g.k > MAX_K || autocastActive())
    return depthwiseConvTokensReference(x, weight, bias, h, w, padding);
  const y = taps(x, weight, bias, g.b, [g.h, g.w], [g.oh, g.ow], g.c, g.k, g.pad, false, OP);
  return record(y, OP, bias ? [x, weight, bias] : [x, weight], (dy) => [
    // dx: dy correlated with the mirrored kernel, from the output grid back to the input grid.
    x.requiresGrad
      ? taps(dy, weight, null, g.b, [g.oh, g.ow], [g.h, g.w], g.c, g.k, g.k - 1 - g.pad, true, `${OP}-backward-input`)
      : null,
    weight.requiresGrad ? weightGrad(x, dy, g) : null,
    bias?.requiresGrad ? sum(dy, [0, 1]) : null,
  ]);
}

/** out [b, OH * OW, c] = x [b, IH * IW, c] correlated with weight (mirrored when flip), plus bias. */
function taps(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  b: number,
  [ih, iw]: number[],
  [oh, ow]: number[],
  c: number,
  k: number,
  pad: number,
  flip: boolean,
  op: string,
): Tensor {
  const out = Tensor.empty([b, oh * ow, c], 'f32', op);
  const xblocks = Math.ceil(ow / PX);
  const total = (b * oh * xblocks * c) / 4;
  const noBias = bias ? null : Tensor.fromArray([0, 0, 0, 0], [4], 'f32', `${op}-no-bias`);
  launch({
    op,
    shader: 'dwconv-tokens',
    params: { K: k, PX },
    inputs: [x, weight, bias ?? noBias!],
    outputs: [out],
    uniforms: new Params()
      .u32({ total, ih, iw, oh, ow, c4: c / 4, xblocks, flip: flip ? 1 : 0, hasBias: bias ? 1 : 0 })
      .i32({ pad }),
    workgroups: grid(total),
  });
  noBias?.dispose();
  return out;
}

/** dW [C, 1, k, k]: per output row partial sums over its pixels, then summed over the rows. */
function weightGrad(x: Tensor, dy: Tensor, g: Geom): Tensor {
  const op = `${OP}-backward-weight`;
  const rows = g.b * g.oh;
  const partial = Tensor.empty([rows, g.c * g.k * g.k], 'f32', op);
  const total = (rows * g.c) / 4;
  launch({
    op,
    shader: 'dwconv-tokens-backward-weight',
    params: { K: g.k },
    inputs: [dy, x],
    outputs: [partial],
    uniforms: new Params().u32({ total, ih: g.h, iw: g.w, oh: g.oh, ow: g.ow, c4: g.c / 4 }).i32({ pad: g.pad }),
    workgroups: grid(total),
  });
  const dw = sum(partial, 0);
  partial.dispose();
  return reshape(dw, [g.c, 1, g.k, g.k]);
}
