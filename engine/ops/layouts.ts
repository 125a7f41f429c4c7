// Fast paths for the common layouts of elementwise and copy kernels. The general kernels
// (binary.wgsl, strided-copy.wgsl, strided-write.wgsl) find each element's position with an
// integer divide and modulo per dimension; on CPU drivers that runs lane by lane and moved only
// 33-64 M elements/s in a profiled ViT training step, while plain contiguous kernels on the same
// device were 2.4-3.8x faster, and 5-7.5x with 4-wide vectors. So, after merging the dimensions
// that are contiguous in every operand:
// - binary, rank 1: each operand contiguous or a single value -> binary-flat.wgsl (no index math);
// - binary, rank 2 [rows, cols]: each operand full, one row broadcast over the rows (a bias) or
//   one value per row -> binary-rows.wgsl (the row is the workgroup's, no division at all);
// - copy / write whose innermost dimension is contiguous -> strided-{copy,write}-rows.wgsl (one
//   division per invocation, only outer dims walked);
// - copy whose innermost output dim is strided in the source while the next one is contiguous
//   there (a transpose of the last two dims, NCHW <-> NHWC) -> transpose-{tiled,blocked}.wgsl
//   (a 16 x 16 workgroup-memory tile on GPUs; 4 x 4 blocks per invocation, no barriers, on CPU
//   drivers), index math per tile or block, not per element;
// each with vec4 loads and stores wherever sizes and offsets are multiples of 4. Anything else
// (negative strides, broadcasts in the middle) keeps the general kernel.
// Each function returns false when its fast path does not apply; the caller then launches the
// general kernel.
import { device, type Tensor } from '../tensor.ts';
import { Params, grid, launch, WGSL_TYPE, MAX_RANK } from './kernel.ts';

let enabled = true;

/** Turns the fast paths off (true restores them): tests and benchmarks compare both routes. */
export function setLayoutFastPaths(on: boolean): void {
  enabled = on;
}
export function fastPathsOn(): boolean {
  return enabled;
}

/** Merges adjacent dimensions that are contiguous in every operand (fewer index divisions). */
export function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): [number[], number[][]] {
  // Size-1 dims move nothing whatever their strides say: drop them first.
  const keep = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
  if (keep.length === 0) return [[1], strides.map(() => [0])];
  const s = [shape[keep[0]]];
  const st = strides.map((x) => [x[keep[0]]]);
  for (const i of keep.slice(1)) {
    const last = s.length - 1;
    if (strides.every((x, k) => st[k][last] === x[i] * shape[i])) {
      s[last] *= shape[i];
      strides.forEach((x, k) => {
        st[k][last] = x[i];
      });
    } else {
      s.push(shape[i]);
      strides.forEach((x, k) => st[k].push(x[i]));
    }
  }
  return [s, st];
}

/** Grid of [ceil(cols / 64), rows] workgroups, rows spilling into z past 65535. */
function rowGrid(cols: number, rows: number): [number, number, number] | null {
  const x = Math.ceil(cols / 64);
  if (x > 65535) return null;
  if (rows <= 65535) return [x, rows, 1];
  return [x, 65535, Math.ceil(rows / 65535)];
}

export interface BinaryKernel {
  op: string;
  expr: string;
  vec: boolean;
  outType: string;
}

/**
 * out = f(a, b) through binary-flat or binary-rows when the collapsed layout allows it.
 * `cs` is the collapsed output shape and `sa`/`sb` the operands' strides over it.
 */
export function binaryFast(
  k: BinaryKernel,
  a: Tensor,
  b: Tensor,
  out: Tensor,
  cs: number[],
  sa: number[],
  sb: number[],
): boolean {
  if (!enabled) return false;
  const t = WGSL_TYPE[a.dtype];
  const n = out.size;
  if (cs.length === 1) {
    // Each operand is contiguous (stride 1) or a single value (stride 0).
    const v = k.vec && n % 4 === 0;
    const load = (name: string, s: number) =>
      s === 1 ? [v ? `vec4<${t}>` : t, `${name}[i]`] : [t, v ? `vec4<${t}>(${name}[0])` : `${name}[0]`];
    const [ta, xa] = load('a', sa[0]),
      [tb, xb] = load('b', sb[0]);
    launch({
      op: k.op,
      shader: 'binary-flat',
      inputs: [a, b],
      outputs: [out],
      params: { TA: ta, TB: tb, TO: v ? `vec4<${k.outType}>` : k.outType, XA: xa, XB: xb, EXPR: k.expr },
      uniforms: new Params().u32({ n: v ? n / 4 : n }),
      workgroups: grid(v ? n / 4 : n),
    });
    return true;
  }
  if (cs.length !== 2) return false;
  const [rows, cols] = cs;
  // Per operand: along the row (column stride 1; row stride cols or 0) or one value per row
  // (column stride 0; row stride 1 or 0).
  const alongRow = (s: number[]) => s[1] === 1 && (s[0] === cols || s[0] === 0);
  const perRow = (s: number[]) => s[1] === 0 && (s[0] === 1 || s[0] === 0);
  if (![sa, sb].every((s) => alongRow(s) || perRow(s))) return false;
  const v = k.vec && cols % 4 === 0;
  const w = v ? cols / 4 : cols;
  const g = rowGrid(w, rows);
  if (!g) return false;
  const load = (name: string, s: number[]): [string, string, number] =>
    alongRow(s)
      ? [v ? `vec4<${t}>` : t, `${name}[r * u.r${name} + c]`, s[0] === 0 ? 0 : w]
      : [t, v ? `vec4<${t}>(${name}[r * u.r${name}])` : `${name}[r * u.r${name}]`, s[0]];
  const [ta, xa, ra] = load('a', sa),
    [tb, xb, rb] = load('b', sb);
  launch({
    op: k.op,
    shader: 'binary-rows',
    inputs: [a, b],
    outputs: [out],
    params: { TA: ta, TB: tb, TO: v ? `vec4<${k.outType}>` : k.outType, XA: xa, XB: xb, EXPR: k.expr },
    uniforms: new Params().u32({ rows, cols: w, ra, rb }),
    workgroups: g,
  });
  return true;
}

/**
 * The rows form of a strided gather/scatter: `shape`/`strides` (already collapsed) with a
 * contiguous innermost dimension. Returns the outer dims and whether vec4 applies.
 */
function rowsLayout(
  shape: number[],
  strides: number[],
  offset: number,
): { outer: number[]; ostr: number[]; cols: number; vec: boolean } | null {
  const r = shape.length;
  if (strides[r - 1] !== 1 || r - 1 > MAX_RANK) return null;
  const outer = shape.slice(0, r - 1),
    ostr = strides.slice(0, r - 1);
  const cols = shape[r - 1];
  const vec = cols % 4 === 0 && offset % 4 === 0 && ostr.every((s) => s % 4 === 0);
  return { outer, ostr, cols, vec };
}

/** Contiguous out[i] = src[offset + ...] through strided-copy-rows.wgsl when the layout allows. */
export function copyFast(
  op: string,
  src: Tensor,
  out: Tensor,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): boolean {
  if (!enabled) return false;
  const [cs, [st]] = collapse(shape, [strides]);
  const l = rowsLayout(cs, st, offset);
  if (!l) return false;
  const q = l.vec ? 4 : 1;
  const t = WGSL_TYPE[src.dtype];
  launch({
    op,
    shader: 'strided-copy-rows',
    inputs: [src],
    outputs: [out],
    params: { T: l.vec ? `vec4<${t}>` : t },
    uniforms: new Params()
      .dims('shape', l.outer)
      .dims(
        'strides',
        l.ostr.map((s) => s / q),
        true,
      )
      .u32({ n: out.size / q, rank: l.outer.length })
      .i32({ offset: offset / q })
      .u32({ cols: l.cols / q }),
    workgroups: grid(out.size / q),
  });
  return true;
}

/** dst[offset + ...] = contiguous src through strided-write-rows.wgsl when the layout allows. */
export function writeFast(op: string, src: Tensor, dst: Tensor, strides: readonly number[], offset: number): boolean {
  if (!enabled) return false;
  const [cs, [st]] = collapse(src.shape, [strides]);
  const l = rowsLayout(cs, st, offset);
  if (!l) return false;
  const q = l.vec ? 4 : 1;
  const t = WGSL_TYPE[src.dtype];
  launch({
    op,
    shader: 'strided-write-rows',
    inputs: [src],
    outputs: [dst],
    params: { T: l.vec ? `vec4<${t}>` : t },
    uniforms: new Params()
      .dims('shape', l.outer)
      .dims(
        'strides',
        l.ostr.map((s) => s / q),
        true,
      )
      .u32({ n: src.size / q, rank: l.outer.length })
      .i32({ offset: offset / q })
      .u32({ cols: l.cols / q }),
    workgroups: grid(src.size / q),
  });
  return true;
}

export type TransposeKernel = 'tiled' | 'blocked';
const TRANSPOSE_SHADER: Record<TransposeKernel, string> = { tiled: 'transpose-tiled', blocked: 'transpose-blocked' };
let transposeKernel: TransposeKernel | null = null;

/** Forces one transpose kernel (tests compare both); null restores the per-adapter choice. */
export function useTransposeKernel(k: TransposeKernel | null): void {
  transposeKernel = k;
}

/**
 * out[o, x, y] = src[offset + outer(o) + x + y * sy] through transpose-{tiled,blocked}.wgsl when the
 * collapsed layout ends in a source-contiguous dim followed by a strided one.
 */
export function transposeFast(
  op: string,
  src: Tensor,
  out: Tensor,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): boolean {
  if (!enabled || offset < 0 || strides.some((s) => s < 0)) return false;
  const [cs, [st]] = collapse(shape, [strides]);
  const r = cs.length;
  if (r < 2 || st[r - 2] !== 1 || st[r - 1] <= 1 || r - 2 > MAX_RANK) return false;
  const [x, y] = [cs[r - 2], cs[r - 1]];
  const outer = out.size / (x * y);
  const kernel = transposeKernel ?? (device().isCpuAdapter ? 'blocked' : 'tiled');
  const per = kernel === 'tiled' ? 16 : 32; // elements per workgroup along x and y
  const groups: [number, number, number] = [Math.ceil(y / per), Math.ceil(x / per), outer];
  if (groups.some((g) => g > 65535)) return false;
  launch({
    op,
    shader: TRANSPOSE_SHADER[kernel],
    inputs: [src],
    outputs: [out],
    params: { T: WGSL_TYPE[src.dtype] },
    uniforms: new Params()
      .dims('shape', cs.slice(0, r - 2))
      .dims('strides', st.slice(0, r - 2), true)
      .u32({ rank: r - 2, x, y, sy: st[r - 1] })
      .i32({ offset }),
    workgroups: groups,
  });
  return true;
}
