// Core movement ops. reshape is a view; permute/expand/flip/slice are one strided gather
// (strided-copy.wgsl, or a fast path of layouts.ts: rows, transposes); the backward of a gather is
// a strided write into zeros (strided-write.wgsl).
import { Tensor, fmt, numel, type Shape } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch, WGSL_TYPE, MAX_RANK } from './kernel.ts';
import { stridesOf } from '../shape.ts';
import { copyFast, transposeFast, writeFast, fastPathsOn } from './layouts.ts';

/** Contiguous out[i] = src[offset + sum coord*stride] over `shape` (strides may be negative or 0). */
export function stridedCopy(op: string, src: Tensor, shape: Shape, strides: readonly number[], offset = 0): Tensor {
  const out = Tensor.empty(shape, src.dtype, op);
  if (out.size === 0) return out;
  if (copyFast(op, src, out, shape, strides, offset) || transposeFast(op, src, out, shape, strides, offset)) return out;
  if (shape.length > MAX_RANK) throw new Error(`${op}: rank ${shape.length} exceeds ${MAX_RANK}`);
  launch({
    op,
    shader: 'strided-copy',
    inputs: [src],
    outputs: [out],
    params: { T: WGSL_TYPE[src.dtype] },
    uniforms: new Params()
      .dims('shape', shape)
      .dims('strides', strides, true)
      .u32({ n: out.size, rank: shape.length })
      .i32({ offset }),
    workgroups: grid(out.size),
  });
  return out;
}

/** Writes contiguous `src` into `dst` at offset + sum coord*stride (in place on dst). */
export function stridedWrite(op: string, src: Tensor, dst: Tensor, strides: readonly number[], offset = 0): void {
  if (src.size === 0) return;
  if (src.dtype !== dst.dtype) throw new Error(`${op}: dtype ${src.dtype} cannot be written into ${dst.dtype}`);
  if (writeFast(op, src, dst, strides, offset)) return;
  launch({
    op,
    shader: 'strided-write',
    inputs: [src],
    outputs: [dst],
    params: { T: WGSL_TYPE[src.dtype] },
    uniforms: new Params()
      .dims('shape', src.shape)
      .dims('strides', strides, true)
      .u32({ n: src.size, rank: src.ndim })
      .i32({ offset }),
    workgroups: grid(src.size),
  });
}

export function fill(shape: Shape, value: number, dtype: Tensor['dtype'] = 'f32', op = 'full'): Tensor {
  const out = Tensor.empty(shape, dtype, op);
  if (out.size === 0) return out;
  const bits = new DataView(new ArrayBuffer(4));
  if (dtype === 'f32') bits.setFloat32(0, value, true);
  else if (dtype === 'i32') bits.setInt32(0, value, true);
  else if (dtype === 'u32') bits.setUint32(0, value, true);
  else throw new Error(`${op}: fill does not support ${dtype}`);
  const q = fastPathsOn() && out.size % 4 === 0 ? 4 : 1;
  launch({
    op,
    shader: 'fill',
    inputs: [],
    outputs: [out],
    params: { T: q === 4 ? 'vec4<u32>' : 'u32' },
    uniforms: new Params().u32({ n: out.size / q, bits: bits.getUint32(0, true) }),
    workgroups: grid(out.size / q),
  });
  return out;
}

// ---- reshape --------------------------------------------------------------------------------

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const infer = s.indexOf(-1);
  if (infer >= 0) {
    const rest = numel(s.filter((_, i) => i !== infer));
    if (rest === 0 || x.size % rest !== 0)
      throw new Error(`reshape: cannot infer -1 reshaping ${fmt(x.shape)} to ${fmt(shape)}`);
    s[infer] = x.size / rest;
  }
  if (numel(s) !== x.size)
    throw new Error(`reshape: ${fmt(x.shape)} (${x.size} elements) cannot become ${fmt(shape)} (${numel(s)} elements)`);
  return record(x.view(s, 'reshape'), 'reshape', [x], (dy) => [reshape(dy, x.shape)]);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const e = endDim < 0 ? endDim + x.ndim : endDim;
  const shape = [...x.shape.slice(0, startDim), numel(x.shape.slice(startDim, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = dim < 0 ? dim + x.ndim + 1 : dim;
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const d = dim < 0 ? dim + x.ndim : dim;
  if (x.shape[d] !== 1) return x;
  return reshape(
    x,
    x.shape.filter((_, i) => i !== d),
  );
}

// ---- permute / transpose --------------------------------------------------------------------

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const p = dims.map((d) => (d < 0 ? d + x.ndim : d));
  if (p.length !== x.ndim || new Set(p).size !== p.length || p.some((d) => d < 0 || d >= x.ndim)) {
    throw new Error(`permute: ${JSON.stringify(dims)} is not a permutation of the ${x.ndim} dims of ${fmt(x.shape)}`);
  }
  const st = stridesOf(x.shape);
  const y = stridedCopy(
    'permute',
    x,
    p.map((d) => x.shape[d]),
    p.map((d) => st[d]),
  );
  const inv = new Array<number>(p.length);
  p.forEach((d, i) => {
    inv[d] = i;
  });
  return record(y, 'permute', [x], (dy) => [permute(dy, inv)]);
}

export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const p = x.shape.map((_, i) => i);
  const a = d0 < 0 ? d0 + x.ndim : d0;
  const b = d1 < 0 ? d1 + x.ndim : d1;
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

// ---- expand ---------------------------------------------------------------------------------

export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.ndim;
  if (lead < 0) throw new Error(`expand: cannot expand ${fmt(x.shape)} to fewer dims ${fmt(shape)}`);
  const own = stridesOf(x.shape);
  const target = shape.map((d, i) => (d === -1 ? x.shape[i - lead] : d));
  const strides = target.map((d, i) => {
    const j = i - lead;
    if (j < 0) return 0;
    if (x.shape[j] === d) return own[j];
    if (x.shape[j] === 1) return 0;
    throw new Error(`expand: ${fmt(x.shape)} cannot be expanded to ${fmt(shape)} (dim ${i}: ${x.shape[j]} vs ${d})`);
  });
  if (target.every((d, i) => i >= lead && d === x.shape[i - lead])) return reshape(x, target);
  const y = stridedCopy('expand', x, target, strides);
  return record(y, 'expand', [x], (dy) => [dy]); // autograd's sumTo reduces it back
}

// ---- slice / flip ---------------------------------------------------------------------------

export interface SliceSpec {
  start?: number;
  end?: number;
  step?: number;
}

/** Strided slice: one spec per leading dim (missing specs take the whole dim); steps > 0. */
export function slice(x: Tensor, specs: readonly (SliceSpec | null | undefined)[]): Tensor {
  const st = stridesOf(x.shape);
  const shape: number[] = [];
  const strides: number[] = [];
  const starts: number[] = [];
  let offset = 0;
  x.shape.forEach((d, i) => {
    const s = specs[i] ?? {};
    const step = s.step ?? 1;
    if (!Number.isInteger(step) || step <= 0)
      throw new Error(`slice: step must be a positive integer, got ${step} (dim ${i} of ${fmt(x.shape)})`);
    const norm = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const start = norm(s.start ?? 0);
    const end = norm(s.end ?? d);
    const len = Math.max(0, Math.ceil((end - start) / step));
    shape.push(len);
    starts.push(step === 1 ? start : -1);
    strides.push(st[i] * step);
    offset += start * st[i];
  });
  const y = stridedCopy('slice', x, shape, strides, offset);
  return record(y, 'slice', [x], (dy) => {
    const one = narrowBackward(x.shape, shape, starts, dy);
    if (one) return [one];
    const dx = fill(x.shape, 0, dy.dtype, 'slice-backward');
    stridedWrite('slice-backward', dy, dx, strides, offset);
    return [dx];
  });
}

/**
 * The gradient of a slice that narrows one dimension with step 1 (chunk, split, cat's backward,
 * a token range), in one pass (narrow-backward.wgsl); null for any other slice.
 */
function narrowBackward(xs: Shape, ys: readonly number[], starts: readonly number[], dy: Tensor): Tensor | null {
  // Dims taken whole (a step > 1 over a size-1 dim also takes it whole) vs the one narrowed.
  const cut = xs.map((_, i) => i).filter((i) => ys[i] !== xs[i]);
  if (!fastPathsOn() || cut.length > 1 || dy.size === 0) return null;
  const d = cut[0] ?? 0;
  const start = cut.length ? starts[d] : 0;
  if (start < 0) return null; // a step > 1
  const inner = numel(xs.slice(d + 1));
  const [cols, lo, hi] = [xs[d] * inner, start * inner, (start + ys[d]) * inner];
  const q = cols % 4 === 0 && lo % 4 === 0 && hi % 4 === 0 ? 4 : 1;
  const dx = Tensor.empty(xs, dy.dtype, 'slice-backward');
  const t = WGSL_TYPE[dy.dtype];
  launch({
    op: 'slice-backward',
    shader: 'narrow-backward',
    inputs: [dy],
    outputs: [dx],
    params: { T: q === 4 ? `vec4<${t}>` : t },
    uniforms: new Params().u32({ n: dx.size / q, cols: cols / q, lo: lo / q, hi: hi / q }),
    workgroups: grid(dx.size / q),
  });
  return dx;
}

/** Slice along one dim: narrow(x, dim, start, length). */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = dim < 0 ? dim + x.ndim : dim;
  const specs: SliceSpec[] = [];
  specs[d] = { start, end: start + length };
  return slice(x, specs);
}

export function flip(x: Tensor, dims: readonly number[]): Tensor {
  const ds = new Set(dims.map((d) => (d < 0 ? d + x.ndim : d)));
  const st = stridesOf(x.shape);
  let offset = 0;
  const strides = x.shape.map((d, i) => {
    if (!ds.has(i)) return st[i];
    offset += (d - 1) * st[i];
    return -st[i];
  });
  const y = stridedCopy('flip', x, x.shape, strides, offset);
  return record(y, 'flip', [x], (dy) => [flip(dy, [...ds])]);
}

/** A contiguous copy (a new storage). */
export function clone(x: Tensor): Tensor {
  const y = stridedCopy('clone', x, x.shape, stridesOf(x.shape));
  return record(y, 'clone', [x], (dy) => [dy]);
}
