// Reductions over any set of axes (reduce.wgsl): sum, mean, max, min, plus var/std as
// composites and sumTo (the broadcast-gradient reduction autograd uses).
import { Tensor, device, fmt, type Shape } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch, WGSL_TYPE } from './kernel.ts';
import { normAxes, stridesOf, type Axes } from '../shape.ts';
import { mul, div, sub, eq, safeSqrt } from './math.ts';
import { reshape, expand } from './movement.ts';

type Kind = 'sum' | 'max' | 'min';
const KIND: Record<Kind, { init: string; acc: string }> = {
  sum: { init: '{{T}}(0)', acc: 'acc + v' },
  max: { init: 'MIN', acc: 'max(acc, v)' },
  min: { init: 'MAX', acc: 'min(acc, v)' },
};
const LIMITS: Record<string, [string, string]> = {
  f32: ['-3.4028234663852886e38', '3.4028234663852886e38'],
  i32: ['i32(-2147483648)', '2147483647'],
  u32: ['0u', '4294967295u'],
};

/**
 * Merges adjacent dims of the same class (kept/reduced) that are contiguous. Dims of size 1 take no
 * part (they move no offset), so [1, C, H, W] summed over (0, 2, 3) is one run per channel.
 */
function groups(shape: Shape, axes: number[]): { kshape: number[]; kstr: number[]; rshape: number[]; rstr: number[] } {
  const strides = stridesOf(shape);
  const red = new Set(axes);
  const out = { kshape: [] as number[], kstr: [] as number[], rshape: [] as number[], rstr: [] as number[] };
  let prevClass: boolean | null = null;
  shape.forEach((d, i) => {
    if (d === 1) return;
    const isRed = red.has(i);
    const [s, st] = isRed ? [out.rshape, out.rstr] : [out.kshape, out.kstr];
    if (prevClass === isRed && s.length && st[st.length - 1] === strides[i] * d) {
      s[s.length - 1] *= d;
      st[st.length - 1] = strides[i];
    } else {
      s.push(d);
      st.push(strides[i]);
    }
    prevClass = isRed;
  });
  return out;
}

function reduceRaw(op: string, kind: Kind, x: Tensor, axes: number[], keepdim: boolean, final = 'acc'): Tensor {
  if (x.dtype === 'f16') throw new Error(`${op}: f16 tensors must be cast to f32 first`);
  const outShape = keepdim
    ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : x.shape.filter((_, i) => !axes.includes(i));
  const out = Tensor.empty(outShape, x.dtype, op);
  const rows = out.size;
  if (rows === 0) return out;
  const g = groups(x.shape, axes);
  const count = g.rshape.reduce((a, b) => a * b, 1);
  if (count === 0 && kind !== 'sum') throw new Error(`${op}: cannot reduce an empty dimension of ${fmt(x.shape)}`);
  if (g.rshape.length > 1 && final === 'acc' && count > 0) return twoPass(op, kind, x, axes, keepdim);
  const t = WGSL_TYPE[x.dtype];
  const [lo, hi] = LIMITS[x.dtype];
  const init = KIND[kind].init.replace('{{T}}', t).replace('MIN', lo).replace('MAX', hi);
  const params = { T: t, INIT: init, ACC: KIND[kind].acc, FINAL: final };
  // One strided run per output and enough outputs to keep the device busy (or short runs): one
  // invocation per output (reduce-serial.wgsl). Otherwise a workgroup per output (reduce.wgsl).
  // A CPU driver is busy with far fewer invocations (a few cores), and reduce.wgsl's per-element
  // index division and barriers cost it more than a short grid does (bias gradients [B N, C] ->
  // [C] at C = 192 were 12% of an EVA-02-Ti step's kernel time through reduce.wgsl).
  const enoughRows = device().isCpuAdapter ? 64 : 256;
  if (g.rshape.length <= 1 && (rows >= enoughRows || count <= 256)) {
    launch({
      op,
      shader: 'reduce-serial',
      inputs: [x],
      outputs: [out],
      params,
      uniforms: new Params()
        .dims('kshape', g.kshape)
        .dims('kstrides', g.kstr)
        .u32({ rows, count, krank: g.kshape.length, rstride: g.rstr[0] ?? 0 }),
      workgroups: grid(rows),
    });
    return out;
  }
  launch({
    op,
    shader: 'reduce',
    inputs: [x],
    outputs: [out],
    params,
    uniforms: new Params()
      .dims('kshape', g.kshape)
      .dims('kstrides', g.kstr)
      .dims('rshape', g.rshape)
      .dims('rstrides', g.rstr)
      .u32({ rows, count, krank: g.kshape.length, rrank: g.rshape.length }),
    workgroups: grid(rows, 1),
  });
  return out;
}

/**
 * Reduced dims split by kept ones (a conv bias gradient: [N, C, H, W] over N, H and W): the
 * innermost reduced run first, kept as size-1 dims, then the rest. Each pass is one strided run per
 * output (reduce-serial.wgsl); the one-workgroup-per-output kernel, with its per-element index
 * division, moved 5-8x fewer elements per second on lavapipe for such shapes ([2, 512, 88, 88]:
 * 67 ms against 10 ms for its contiguous [1024, 7744] part). Sums, max and min compose; a mean's
 * final division needs the whole count, so `mean` keeps the one-pass kernel.
 */
function twoPass(op: string, kind: Kind, x: Tensor, axes: number[], keepdim: boolean): Tensor {
  const real = axes.filter((i) => x.shape[i] !== 1).sort((a, b) => a - b);
  let j = real.length - 1;
  while (j > 0 && real[j - 1] === real[j] - 1) j--;
  const part = reduceRaw(op, kind, x, real.slice(j), true);
  const out = reduceRaw(op, kind, part, axes, keepdim); // the inner dims are now of size 1
  part.dispose();
  return out;
}

function keptShape(x: Tensor, axes: number[]): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('sum', x.shape, axes);
  const y = reduceRaw('sum', 'sum', x, ax, keepdim);
  return record(y, 'sum', [x], (dy) => [expand(reshape(dy, keptShape(x, ax)), x.shape)]);
}

export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes('mean', x.shape, axes);
  const n = ax.reduce((a, i) => a * x.shape[i], 1);
  const y = reduceRaw('mean', 'sum', x, ax, keepdim, `acc / ${WGSL_TYPE[x.dtype]}(count)`);
  return record(y, 'mean', [x], (dy) => [expand(reshape(mul(dy, 1 / n), keptShape(x, ax)), x.shape)]);
}

function extreme(kind: 'max' | 'min', x: Tensor, axes: Axes, keepdim: boolean): Tensor {
  const ax = normAxes(kind, x.shape, axes);
  const y = reduceRaw(kind, kind, x, ax, keepdim);
  // The gradient is shared equally among tied extrema (PyTorch's amax/amin rule).
  return record(y, kind, [x], (dy) => {
    const ks = keptShape(x, ax);
    const hit = eq(x, reshape(y, ks));
    const ties = reduceRaw(`${kind}-ties`, 'sum', hit, ax, true);
    return [mul(div(hit, ties), reshape(dy, ks))];
  });
}

export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return extreme('max', x, axes, keepdim);
}
export function min(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return extreme('min', x, axes, keepdim);
}

/** Variance with Bessel's correction by default (`correction` = 1), as torch.var. */
export function variance(x: Tensor, axes?: Axes, keepdim = false, correction = 1): Tensor {
  const ax = normAxes('var', x.shape, axes);
  const n = ax.reduce((a, i) => a * x.shape[i], 1);
  const d = sub(x, mean(x, ax, true));
  return div(sum(mul(d, d), ax, keepdim), Math.max(n - correction, 0));
}

/** Standard deviation, as torch.std: where it is 0 (a constant row) its gradient is 0, not NaN. */
export function std(x: Tensor, axes?: Axes, keepdim = false, correction = 1): Tensor {
  return safeSqrt(variance(x, axes, keepdim, correction));
}

/** Sums a broadcast gradient back to `shape` (leading dims and dims of size 1). */
export function sumTo(x: Tensor, shape: Shape): Tensor {
  const lead = x.ndim - shape.length;
  if (lead < 0) throw new Error(`sumTo: cannot reduce ${fmt(x.shape)} to the larger shape ${fmt(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < x.ndim; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && x.shape[i] !== 1) axes.push(i);
    else if (shape[i - lead] !== x.shape[i])
      throw new Error(`sumTo: ${fmt(x.shape)} does not broadcast to ${fmt(shape)}`);
  }
  if (axes.length === 0) return reshape(x, shape);
  return reshape(sum(x, axes, true), shape);
}
