// argmax / argmin along one dim, as torch.argmax / torch.argmin with a dim: i32 indices, the
// first index among ties, NaN counted as the extreme (PyTorch's rule). No gradient.
// One kernel (arg-reduce.wgsl), one workgroup per row, rows read through a stride.
import { Tensor, fmt } from '../tensor.ts';
import { Params, grid, launch, WGSL_TYPE } from './kernel.ts';
import { rowLayout } from '../shape.ts';

const NAN: Record<string, string> = {
  f32: '(bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u', // exponent all ones, mantissa non-zero
  i32: 'false',
  u32: 'false',
};

function argReduce(op: 'argmax' | 'argmin', x: Tensor, dim: number, keepdim: boolean): Tensor {
  if (!(x.dtype in NAN)) throw new Error(`${op}: input ${fmt(x.shape)} has dtype ${x.dtype}, expected f32, i32 or u32`);
  const l = rowLayout(op, x.shape, dim);
  const d = x.ndim === 0 ? 0 : dim < 0 ? dim + x.ndim : dim;
  if (l.len === 0) throw new Error(`${op}: cannot reduce the empty dim ${d} of ${fmt(x.shape)}`);
  // [..., n, ...] -> [..., ...] (or [..., 1, ...] with keepdim)
  const shape =
    x.ndim === 0 ? [] : keepdim ? x.shape.map((s, i) => (i === d ? 1 : s)) : x.shape.filter((_, i) => i !== d);
  const out = Tensor.empty(shape, 'i32', op);
  if (out.size === 0) return out;
  launch({
    op,
    shader: 'arg-reduce',
    inputs: [x],
    outputs: [out],
    params: { T: WGSL_TYPE[x.dtype], BEATS: op === 'argmax' ? 'b > a' : 'b < a', ISNAN: NAN[x.dtype] },
    uniforms: new Params().u32({ rows: l.rows, len: l.len, inner: l.inner }),
    workgroups: grid(l.rows, 1),
  });
  return out;
}

/** Index of the largest element along `dim` (i32). */
export function argmax(x: Tensor, dim: number, keepdim = false): Tensor {
  return argReduce('argmax', x, dim, keepdim);
}

/** Index of the smallest element along `dim` (i32). */
export function argmin(x: Tensor, dim: number, keepdim = false): Tensor {
  return argReduce('argmin', x, dim, keepdim);
}
