// Convolution kernels, chosen per adapter (as matmul-kernels.ts does). conv2d forward has:
// 'direct' (one invocation per output, the reference every other kernel is tested against),
// 'blocked' (register blocking over output channels x pixels, no barriers: CPU drivers, where
// loads dominate and barriers are expensive), 'blocked-row' (the same, specialised to unit width
// stride and dilation: taps shared along a row, vec4 weights; forcing it on a geometry it does
// not serve runs 'blocked') and 'tiled' (implicit GEMM with shared-memory tiles: GPUs). Also
// here: the transposed convolution as a gather, and the weight gradient with split-K.
// All take one geometry record; padding may be negative (the input-gradient path crops with it).
// Element type: every kernel reads its two operands (input and weight, or input and output
// gradient) as the template's T, f32 or f16 (autocast.ts), both the same, and accumulates in f32;
// with f16 operands each result is rounded to f16 and stored widened to f32, as matmul's are. A
// bias stays f32 and is added to the f32 sum before that rounding (one rounding per output).
import { device, Tensor } from '../tensor.ts';
import { Params, grid, launch } from './kernel.ts';
import { stridedCopy, stridedWrite, fill } from './movement.ts';
import { convertFloat, elementParams } from './autocast.ts';

/** A convolution's sizes: input [n, cin, h, w], output [n, cout, oh, ow], kernel kh x kw. */
export interface ConvGeom {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  oh: number;
  ow: number;
  groups: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
}

export type ConvKernelName = 'direct' | 'blocked' | 'blocked-row' | 'tiled';
export const CONV_KERNELS: readonly ConvKernelName[] = ['direct', 'blocked', 'blocked-row', 'tiled'];

let forced: ConvKernelName | null = null;

/** Forces one conv2d kernel (tests and benchmarks compare them); null restores the per-adapter choice. */
export function useConvKernel(name: ConvKernelName | null): void {
  forced = name;
}

export function chooseConvKernel(g: ConvGeom): ConvKernelName {
  const row = rowEligible(g);
  if (forced) return forced === 'blocked-row' && !row ? 'blocked' : forced;
  // A 64-channel tile would idle on depthwise and other narrow groups; so would a huge grid.
  const cog = g.cout / g.groups;
  if (!device().isCpuAdapter && cog >= 16 && Math.ceil((g.n * g.oh * g.ow) / 64) <= 65535) return 'tiled';
  return row ? 'blocked-row' : 'blocked';
}

/** blocked-row serves unit width stride and dilation and kernels up to 9 wide. */
function rowEligible(g: ConvGeom): boolean {
  return g.sw === 1 && g.dw === 1 && g.kw <= 9;
}

function uniforms(g: ConvGeom, hasBias: boolean, splits = 1): Params {
  return new Params()
    .u32({ n: g.n, cin: g.cin, h: g.h, w: g.w, cout: g.cout, oh: g.oh, ow: g.ow, groups: g.groups })
    .u32({ kh: g.kh, kw: g.kw, sh: g.sh, sw: g.sw })
    .i32({ ph: g.ph, pw: g.pw })
    .u32({ dh: g.dh, dw: g.dw, hasBias: hasBias ? 1 : 0, splits });
}

/** Output channels per invocation of the blocked kernels: as many as the group has, up to `max`. */
function blockRows(cog: number, max: number): number {
  return cog >= max ? max : cog >= 4 ? 4 : cog >= 2 ? 2 : 1;
}

/**
 * out[n, cout, oh, ow] = conv2d(x, W) + bias on geometry g, where W = weight, or with `flip`
 * W is weight flipped and regrouped (see flippedWeight: conv2d's input gradient and
 * conv_transpose2d at stride 1). Each kernel reads W in its own layout, copied here if needed.
 */
export function conv2dKernel(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  g: ConvGeom,
  op: string,
  flip = false,
): Tensor {
  const out = Tensor.empty([g.n, g.cout, g.oh, g.ow], 'f32', op);
  const el = operandParams(op, x, weight);
  if (out.size === 0) return out;
  const kernel = chooseConvKernel(g);
  const w =
    kernel === 'blocked-row'
      ? weightLayout(weight, (w32) => transposedWeight(w32, g.groups, flip, op), op)
      : flip
        ? weightLayout(weight, (w32) => flippedWeight(w32, g.groups, op), op)
        : weight;
  const inputs = [x, w, bias ?? w]; // an unused binding when there is no bias
  const u = uniforms(g, bias !== null);
  const cog = g.cout / g.groups;
  const npix = g.n * g.oh * g.ow;
  switch (kernel) {
    case 'direct':
      launch({
        op,
        shader: 'conv2d-direct',
        params: el,
        inputs,
        outputs: [out],
        uniforms: u,
        workgroups: grid(out.size),
      });
      break;
    case 'blocked': {
      const TM = blockRows(cog, 8),
        TN4 = 2,
        WG = 16;
      launch({
        op,
        shader: 'conv2d-blocked',
        params: { TM, TN4, WG, ...el },
        inputs,
        outputs: [out],
        uniforms: u,
        workgroups: [Math.ceil(npix / (4 * TN4) / WG), Math.ceil(cog / TM), g.groups],
      });
      break;
    }
    case 'blocked-row': {
      const TM4 = cog > 4 ? 2 : 1,
        TN = 8,
        WG = 32;
      const blocks = g.n * g.oh * Math.ceil(g.ow / TN);
      launch({
        op,
        shader: 'conv2d-blocked-row',
        params: { TM4, TN, KW: g.kw, WG, ...el },
        inputs,
        outputs: [out],
        uniforms: u,
        workgroups: [Math.ceil(blocks / WG), Math.ceil(Math.ceil(cog / 4) / TM4), g.groups],
      });
      break;
    }
    case 'tiled':
      launch({
        op,
        shader: 'conv2d-tiled',
        params: el,
        inputs,
        outputs: [out],
        uniforms: u,
        workgroups: [Math.ceil(npix / 64), Math.ceil(cog / 64), g.groups],
      });
  }
  if (w !== weight) w.dispose();
  return out;
}

/**
 * Transposed convolution as a gather: x [n, cin, h, w], weight [cin, cout/groups, kh, kw] ->
 * [n, cout, oh, ow] with output row oy = iy*sh - ph + ky*dh (oh, ow given by the caller).
 * Register-blocked unless useConvKernel('direct') forces the one-output-per-invocation reference.
 */
export function convTranspose2dKernel(x: Tensor, weight: Tensor, bias: Tensor | null, g: ConvGeom, op: string): Tensor {
  const out = Tensor.empty([g.n, g.cout, g.oh, g.ow], 'f32', op);
  const el = operandParams(op, x, weight);
  if (out.size === 0) return out;
  const inputs = [x, weight, bias ?? weight];
  const u = uniforms(g, bias !== null);
  if (forced === 'direct') {
    const wg = grid(out.size);
    launch({ op, shader: 'conv-transpose2d', params: el, inputs, outputs: [out], uniforms: u, workgroups: wg });
    return out;
  }
  const cog = g.cout / g.groups;
  const TM = blockRows(cog, 8),
    TN = 8;
  const blocks = g.n * g.oh * g.sw * Math.ceil(Math.ceil(g.ow / g.sw) / TN);
  const [gx, gy] = grid(blocks, 32);
  launch({
    op,
    shader: 'conv-transpose2d-blocked',
    params: { TM, TN, ...el },
    inputs,
    outputs: [out],
    uniforms: u,
    workgroups: [gx, gy, g.groups * Math.ceil(cog / TM)],
  });
  return out;
}

/**
 * conv2d's weight gradient [cout, cin/groups, kh, kw] from x [n, cin, h, w] and dy
 * [n, cout, oh, ow]. The reduction over n*oh*ow is split so that enough invocations run; the
 * partial sums are then added in split order (deterministic).
 */
export function conv2dBackwardWeight(x: Tensor, dy: Tensor, g: ConvGeom, op: string): Tensor {
  const el = operandParams(op, x, dy);
  const cig = g.cin / g.groups,
    cog = g.cout / g.groups;
  const K = cig * g.kh * g.kw;
  const TM = blockRows(cog, 8),
    TN4 = K >= 8 ? 2 : 1;
  const blocks = Math.ceil(K / (4 * TN4)) * Math.ceil(cog / TM) * g.groups;
  const rows = g.n * g.oh;
  const target = device().isCpuAdapter ? 1024 : 65536;
  const splits = Math.max(1, Math.min(rows, Math.ceil(target / blocks)));
  const partial = Tensor.empty([splits, g.cout, cig, g.kh, g.kw], 'f32', op);
  if (partial.size === 0) return partial;
  launch({
    op,
    shader: 'conv2d-backward-weight',
    // With split-K the partial sums stay exact (f32) and their sum is rounded once.
    params: { TM, TN4, ...el, ROUND: splits === 1 ? el.ROUND : '' },
    inputs: [x, dy],
    outputs: [partial],
    uniforms: uniforms(g, false, splits),
    workgroups: grid(blocks * splits),
  });
  if (splits === 1) {
    const dw = partial.view([g.cout, cig, g.kh, g.kw], op);
    partial.dispose();
    return dw;
  }
  const dw = Tensor.empty([g.cout, cig, g.kh, g.kw], 'f32', op);
  launch({
    op,
    shader: 'conv2d-backward-weight-sum',
    params: { ROUND: el.ROUND, ROUND_F16: el.ROUND_F16 },
    inputs: [partial],
    outputs: [dw],
    uniforms: new Params().u32({ n: dw.size, splits }),
    workgroups: grid(dw.size),
  });
  partial.dispose();
  return dw;
}

/** The element type's template values for two operands, which must share f32 or f16. */
function operandParams(op: string, a: Tensor, b: Tensor): Record<string, string> {
  if (a.dtype !== b.dtype || (a.dtype !== 'f32' && a.dtype !== 'f16'))
    throw new Error(`${op}: expected two f32 or two f16 operands, got ${a.dtype} and ${b.dtype}`);
  return elementParams(a.dtype);
}

/**
 * A scratch layout of the weight made by `make` in f32. An f16 weight is widened first and the
 * result narrowed back, both exact (the values are f16 already): the layout copies (strided
 * gathers and writes, zero fill) work on 32-bit words, and weights are small next to activations.
 */
function weightLayout(weight: Tensor, make: (w32: Tensor) => Tensor, op: string): Tensor {
  if (weight.dtype === 'f32') return make(weight);
  const w32 = convertFloat(weight, 'f32', op);
  const t = make(w32);
  w32.dispose();
  const h = convertFloat(t, weight.dtype, op);
  t.dispose();
  return h;
}

/**
 * With `flip`, a conv2d weight W [G*cog, cig, kh, kw] is made from weight [G*cig, cog, kh, kw]:
 * W[gi*cog + j, i, ky, kx] = weight[gi*cig + i, j, kh-1-ky, kw-1-kx]. That is the weight of the
 * conv2d that computes a conv2d's input gradient at stride 1 (from the conv2d's weight), and of
 * the conv2d equal to a conv_transpose2d at stride 1 (from its weight).
 */
function flipShape(weight: Tensor, groups: number): { cog: number; cig: number } {
  return { cog: weight.shape[1], cig: weight.shape[0] / groups };
}

/** W (flipped as above) in the natural layout [G*cog, cig, kh, kw]: one strided gather. */
export function flippedWeight(weight: Tensor, groups: number, op: string): Tensor {
  const [A, B, kh, kw] = weight.shape;
  const { cog, cig } = flipShape(weight, groups);
  const k = kh * kw;
  // [G, cog, cig, kh, kw] read from weight [G, cig, cog, kh, kw] with both taps reversed.
  const y = stridedCopy(op, weight, [groups, cog, cig, kh, kw], [(A * B * k) / groups, k, B * k, -kw, -1], k - 1);
  const out = y.view([groups * cog, cig, kh, kw], op);
  y.dispose();
  return out;
}

/**
 * W (optionally flipped) laid out [G, cig*kh*kw, 4*ceil(cog/4)] with zero padding: channels
 * fastest, for the vec4 weight loads of conv2d-blocked-row. One fill and one strided write.
 */
export function transposedWeight(weight: Tensor, groups: number, flip: boolean, op: string): Tensor {
  const [A, B, kh, kw] = weight.shape;
  const { cog, cig } = flip ? flipShape(weight, groups) : { cog: A / groups, cig: B };
  const k = kh * kw;
  const cp = Math.ceil(cog / 4) * 4;
  const out = fill([groups, cig * k, cp], 0, 'f32', op);
  // weight is walked in its own order: [G, cog, cig, kh, kw], or [G, cig, cog, kh, kw] when flipped.
  const strides = flip ? [cig * k * cp, k * cp, 1, -kw * cp, -cp] : [cig * k * cp, 1, k * cp, kw * cp, cp];
  const src = weight.view([groups, A / groups, B, kh, kw], op);
  stridedWrite(op, src, out, strides, flip ? (k - 1) * cp : 0);
  src.dispose();
  return out;
}
