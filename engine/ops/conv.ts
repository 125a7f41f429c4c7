// Convolutions (PyTorch semantics, NCHW): conv2d, conv1d (a view onto conv2d) and
// conv_transpose2d, forward and backward. Kernels live in conv-kernels.ts.
// Backward of conv2d: dx is a transposed convolution of dy (at stride 1 exactly a conv2d with
// the flipped, regrouped weight, so it runs on the fast forward kernels; otherwise the gather
// kernel), dW a correlation of x with dy reduced over the batch and pixels, db = sum(dy).
// conv_transpose2d is the mirror image: its dx is a conv2d of dy with the same weight, its dW
// conv2d's weight gradient with the roles of input and output swapped.
// Under autocast (autocast.ts), as in PyTorch's, x and the weight are cast to f16 (differentiable
// casts: the f32 master weights get f32 gradients) and every kernel, forward and backward, reads
// f16 operands with f32 accumulation; the bias stays f32, added to the f32 sum, and each output is
// rounded to f16 and stored in f32. The backward casts dy to f16 for the dx and dW convolutions.
// References: PyTorch torch.nn.functional.conv2d / conv_transpose2d (shapes, output sizes,
// output_padding rule); Dumoulin & Visin, "A guide to convolution arithmetic" (arXiv 1603.07285).
import { Tensor, fmt } from '../tensor.ts';
import { record } from '../graph.ts';
import { castFloat, halfOperands } from './autocast.ts';
import { sum } from './reduce.ts';
import { reshape } from './movement.ts';
import { conv2dKernel, convTranspose2dKernel, conv2dBackwardWeight, type ConvGeom } from './conv-kernels.ts';

export type IntPair = number | [number, number];

export interface Conv2dOptions {
  stride?: IntPair;
  padding?: IntPair;
  dilation?: IntPair;
  groups?: number;
}
export interface Conv1dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
}
export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: IntPair;
}

function pair(op: string, name: string, v: IntPair | undefined, def: number, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [def, def] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (p.some((d) => !Number.isInteger(d) || d < min))
    throw new Error(`${op}: ${name} must be integers >= ${min}, got ${JSON.stringify(v)}`);
  return p;
}

/** Checks x [N, Cin, H, W], a 4-d weight, bias [outCh] and the channel split into groups. */
function check(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  groups: number,
  inCh: number,
  outCh: number,
): void {
  const float = x.dtype === 'f32' || x.dtype === 'f16';
  if (!float || weight.dtype !== x.dtype || (bias && bias.dtype !== 'f32')) {
    throw new Error(
      `${op}: expected f32 tensors (input and weight may both be f16; the bias is f32), got input ${x.dtype}, ` +
        `weight ${weight.dtype}${bias ? `, bias ${bias.dtype}` : ''}`,
    );
  }
  if (x.ndim !== 4 || weight.ndim !== 4)
    throw new Error(
      `${op}: expected input [N, C, H, W] and a 4-d weight, got ${fmt(x.shape)} and ${fmt(weight.shape)}`,
    );
  if (!Number.isInteger(groups) || groups < 1 || outCh % groups !== 0 || inCh !== x.shape[1]) {
    throw new Error(
      `${op}: input ${fmt(x.shape)} and weight ${fmt(weight.shape)} do not match with groups=${groups} ` +
        `(input channels ${x.shape[1]}, expected ${inCh}; channels must divide by groups)`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outCh))
    throw new Error(`${op}: bias ${fmt(bias.shape)} must be [${outCh}]`);
}

export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const half = halfOperands(x, weight); // autocast: f16 operands, f16 kernels (autocast.ts)
  if (half) return conv2d(half[0], half[1], bias, opts);
  const op = 'conv2d';
  const groups = opts.groups ?? 1;
  const [cout, cig, kh, kw] = weight.shape;
  check(op, x, weight, bias, groups, cig * groups, cout);
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding, 0, 0);
  const [dh, dw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const [n, cin, h, w] = x.shape;
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (oh < 1 || ow < 1)
    throw new Error(
      `${op}: input ${fmt(x.shape)} is smaller than the dilated kernel ${kh}x${kw} ` +
        `(dilation ${dh}, ${dw}; padding ${ph}, ${pw})`,
    );
  const g: ConvGeom = { n, cin, h, w, cout, oh, ow, groups, kh, kw, sh, sw, ph, pw, dh, dw };
  const y = conv2dKernel(x, weight, bias, g, op); // [N, Cin, H, W] -> [N, Cout, OH, OW]
  return record(y, op, bias ? [x, weight, bias] : [x, weight], (dy) => {
    const d = operandGrad(dy, x);
    const grads = [
      x.requiresGrad ? conv2dInputGrad(d, weight, g) : null,
      weight.requiresGrad ? conv2dBackwardWeight(x, d, g, 'conv2d-backward-weight') : null,
      bias?.requiresGrad ? sum(dy, [0, 2, 3]) : null,
    ];
    if (d !== dy) d.dispose();
    return grads;
  });
}

/** dy as the backward convolutions read it: f16 when the forward's operands were (autocast). */
function operandGrad(dy: Tensor, x: Tensor): Tensor {
  return x.dtype === 'f16' ? castFloat(dy, 'f16') : dy;
}

/** dx [N, Cin, H, W] of conv2d from dy [N, Cout, OH, OW]. */
function conv2dInputGrad(dy: Tensor, weight: Tensor, g: ConvGeom): Tensor {
  const op = 'conv2d-backward-input';
  if (g.sh === 1 && g.sw === 1) {
    // Stride 1: a conv2d of dy with the flipped, regrouped weight ([Cout, Cin/G, kh, kw] read as
    // [Cin, Cout/G, kh, kw]), padded by dilation*(k-1) - padding.
    return conv2dKernel(
      dy,
      weight,
      null,
      {
        n: g.n,
        cin: g.cout,
        h: g.oh,
        w: g.ow,
        cout: g.cin,
        oh: g.h,
        ow: g.w,
        groups: g.groups,
        kh: g.kh,
        kw: g.kw,
        sh: 1,
        sw: 1,
        ph: g.dh * (g.kh - 1) - g.ph,
        pw: g.dw * (g.kw - 1) - g.pw,
        dh: g.dh,
        dw: g.dw,
      },
      op,
      true,
    );
  }
  // The conv2d weight [Cout, Cin/G, kh, kw] is already laid out as a transposed-conv weight.
  return convTranspose2dKernel(
    dy,
    weight,
    null,
    { ...g, cin: g.cout, h: g.oh, w: g.ow, cout: g.cin, oh: g.h, ow: g.w },
    op,
  );
}

/** conv1d: x [N, Cin, L], weight [Cout, Cin/groups, k] -> [N, Cout, Lout], through conv2d. */
export function conv1d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv1dOptions = {}): Tensor {
  if (x.ndim !== 3 || weight.ndim !== 3)
    throw new Error(
      `conv1d: expected input [N, C, L] and weight [Cout, Cin/groups, k], got ${fmt(x.shape)} and ${fmt(weight.shape)}`,
    );
  const y = conv2d(
    reshape(x, [x.shape[0], x.shape[1], 1, x.shape[2]]),
    reshape(weight, [weight.shape[0], weight.shape[1], 1, weight.shape[2]]),
    bias,
    {
      stride: [1, opts.stride ?? 1],
      padding: [0, opts.padding ?? 0],
      dilation: [1, opts.dilation ?? 1],
      groups: opts.groups,
    },
  );
  return reshape(y, [y.shape[0], y.shape[1], y.shape[3]]); // [N, Cout, 1, Lout] -> [N, Cout, Lout]
}

/** conv_transpose2d: x [N, Cin, H, W], weight [Cin, Cout/groups, kh, kw] -> [N, Cout, OH, OW]. */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  opts: ConvTranspose2dOptions = {},
): Tensor {
  const half = halfOperands(x, weight); // autocast: f16 operands, f16 kernels (autocast.ts)
  if (half) return convTranspose2d(half[0], half[1], bias, opts);
  const op = 'conv_transpose2d';
  const groups = opts.groups ?? 1;
  const [wcin, cog, kh, kw] = weight.shape;
  check(op, x, weight, bias, groups, wcin, cog * groups);
  if (wcin % groups !== 0)
    throw new Error(`${op}: weight ${fmt(weight.shape)} has ${wcin} input channels, not divisible by groups=${groups}`);
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding, 0, 0);
  const [dh, dw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const [oph, opw] = pair(op, 'outputPadding', opts.outputPadding, 0, 0);
  if (oph >= Math.max(sh, dh) || opw >= Math.max(sw, dw)) {
    throw new Error(
      `${op}: outputPadding (${oph}, ${opw}) must be smaller than stride or dilation ` +
        `(stride ${sh}, ${sw}; dilation ${dh}, ${dw})`,
    );
  }
  const [n, cin, h, w] = x.shape;
  const cout = cog * groups;
  const oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1;
  const ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1;
  if (oh < 1 || ow < 1) throw new Error(`${op}: input ${fmt(x.shape)} with padding (${ph}, ${pw}) leaves no output`);
  // The geometry of the conv2d whose input gradient this is: input [N, Cout, OH, OW], output x.
  const g: ConvGeom = { n, cin: cout, h: oh, w: ow, cout: cin, oh: h, ow: w, groups, kh, kw, sh, sw, ph, pw, dh, dw };
  let y: Tensor;
  if (sh === 1 && sw === 1 && oph === 0 && opw === 0) {
    // A conv2d with the flipped, regrouped weight ([Cin, Cout/G, kh, kw] read as [Cout, Cin/G, kh, kw]).
    y = conv2dKernel(
      x,
      weight,
      bias,
      { ...g, cin, h, w, cout, oh, ow, ph: dh * (kh - 1) - ph, pw: dw * (kw - 1) - pw },
      op,
      true,
    );
  } else {
    y = convTranspose2dKernel(x, weight, bias, { ...g, cin, h, w, cout, oh, ow }, op);
  }
  return record(y, op, bias ? [x, weight, bias] : [x, weight], (dy) => {
    const d = operandGrad(dy, x);
    const grads = [
      x.requiresGrad ? conv2dKernel(d, weight, null, g, 'conv_transpose2d-backward-input') : null,
      weight.requiresGrad ? conv2dBackwardWeight(d, x, g, 'conv_transpose2d-backward-weight') : null,
      bias?.requiresGrad ? sum(dy, [0, 2, 3]) : null,
    ];
    if (d !== dy) d.dispose();
    return grads;
  });
}

export { useConvKernel, chooseConvKernel, type ConvKernelName } from './conv-kernels.ts';
