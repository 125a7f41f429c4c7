// Elementwise ops: unary (unary.wgsl, one WGSL expression each), binary with broadcasting
// (binary.wgsl), where (where.wgsl) and comparisons. Backward rules are composites of these ops.
import { Tensor, fmt, type DType, type Shape } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch, WGSL_TYPE, MAX_RANK } from './kernel.ts';
import { broadcastShapes, broadcastStrides, stridesOf } from '../shape.ts';

export type Operand = Tensor | number;

/** Merges adjacent dimensions that are contiguous in every operand (fewer index divisions). */
function collapse(shape: number[], strides: number[][]): [number[], number[][]] {
  if (shape.length === 0) return [[1], strides.map(() => [0])];
  const s = [shape[0]];
  const st = strides.map((x) => [x[0]]);
  for (let i = 1; i < shape.length; i++) {
    const last = s.length - 1;
    if (strides.every((x, k) => st[k][last] === x[i] * shape[i])) {
      s[last] *= shape[i];
      strides.forEach((x, k) => { st[k][last] = x[i]; });
    } else {
      s.push(shape[i]);
      strides.forEach((x, k) => st[k].push(x[i]));
    }
  }
  return [s, st];
}

// ---- unary ----------------------------------------------------------------------------------

interface UnaryDef { expr: string; dtypes?: DType[]; out?: DType }

/** The WGSL expression of each unary op, in `x` and the parameters `p0`, `p1`. */
export const UNARY = {
  neg: { expr: '-x', dtypes: ['f32', 'i32'] },
  exp: { expr: 'exp(x)' },
  log: { expr: 'log(x)' },
  sqrt: { expr: 'sqrt(x)' },
  rsqrt: { expr: 'inverseSqrt(x)' },
  abs: { expr: 'abs(x)', dtypes: ['f32', 'i32'] },
  sign: { expr: 'sign(x)' },
  sin: { expr: 'sin(x)' },
  cos: { expr: 'cos(x)' },
  tanh: { expr: 'tanh(x)' },
  sigmoid: { expr: '1.0 / (1.0 + exp(-x))' },
  relu: { expr: 'max(x, 0.0)' },
  // softplus(x) = log(1 + e^x), evaluated without overflow; threshold 20 as PyTorch's default.
  softplus: { expr: 'select(max(x, 0.0) + log(1.0 + exp(-abs(x))), x, x > 20.0)' },
  silu: { expr: 'x / (1.0 + exp(-x))' },
  gelu: { expr: '0.5 * x * (1.0 + erf_f(x * 0.7071067811865476))' },
  gelu_tanh: { expr: '0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))' },
  // Derivatives of the activations, fused so a backward is one kernel.
  gelu_grad: { expr: '0.5 * (1.0 + erf_f(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x)' },
  gelu_tanh_grad: { expr: 'gelu_tanh_grad(x)' },
  silu_grad: { expr: '(1.0 / (1.0 + exp(-x))) * (1.0 + x * (1.0 - 1.0 / (1.0 + exp(-x))))' },
  pow_scalar: { expr: 'pow_signed(x, p0)' },
  clamp: { expr: 'clamp(x, p0, p1)' },
  add_scalar: { expr: 'x + p0' },
  mul_scalar: { expr: 'x * p0' },
  rsub_scalar: { expr: 'p0 - x' },
  rdiv_scalar: { expr: 'p0 / x' },
  cast_f32: { expr: 'f32(x)', dtypes: ['i32', 'u32', 'f32'], out: 'f32' },
  cast_i32: { expr: 'i32(x)', dtypes: ['f32', 'u32', 'i32'], out: 'i32' },
  cast_u32: { expr: 'u32(x)', dtypes: ['f32', 'i32', 'u32'], out: 'u32' },
  not: { expr: 'select(0.0, 1.0, x == 0.0)' },
} satisfies Record<string, UnaryDef>;

export type UnaryName = keyof typeof UNARY;

export function unary(name: UnaryName, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const def: UnaryDef = UNARY[name];
  const allowed = def.dtypes ?? ['f32'];
  if (!allowed.includes(x.dtype)) throw new Error(`${name}: input ${fmt(x.shape)} has dtype ${x.dtype}, expected ${allowed.join(' or ')}`);
  const outType = def.out ?? x.dtype;
  const out = Tensor.empty(x.shape, outType, name);
  if (x.size === 0) return out;
  launch({
    op: name, shader: 'unary', inputs: [x], outputs: [out],
    params: { TI: WGSL_TYPE[x.dtype], TO: WGSL_TYPE[outType], EXPR: def.expr },
    uniforms: new Params().u32(x.size).f32(p0, p1), workgroups: grid(x.size),
  });
  return out;
}
// ---- binary ---------------------------------------------------------------------------------

export const BINARY = {
  add: { expr: 'x + y', dtypes: ['f32', 'i32', 'u32'] },
  sub: { expr: 'x - y', dtypes: ['f32', 'i32', 'u32'] },
  mul: { expr: 'x * y', dtypes: ['f32', 'i32', 'u32'] },
  div: { expr: 'x / y', dtypes: ['f32', 'i32', 'u32'] },
  pow: { expr: 'pow_signed(x, y)' },
  maximum: { expr: 'max(x, y)', dtypes: ['f32', 'i32', 'u32'] },
  minimum: { expr: 'min(x, y)', dtypes: ['f32', 'i32', 'u32'] },
  eq: { expr: 'select(0.0, 1.0, x == y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  ne: { expr: 'select(0.0, 1.0, x != y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  lt: { expr: 'select(0.0, 1.0, x < y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  le: { expr: 'select(0.0, 1.0, x <= y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  gt: { expr: 'select(0.0, 1.0, x > y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  ge: { expr: 'select(0.0, 1.0, x >= y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
} satisfies Record<string, UnaryDef>;

export type BinaryName = keyof typeof BINARY;

export function binary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  const def: UnaryDef = BINARY[name];
  const allowed = def.dtypes ?? ['f32'];
  if (a.dtype !== b.dtype) throw new Error(`${name}: dtypes differ (${fmt(a.shape)} ${a.dtype} vs ${fmt(b.shape)} ${b.dtype}); cast one first`);
  if (!allowed.includes(a.dtype)) throw new Error(`${name}: dtype ${a.dtype} is not supported (expected ${allowed.join(' or ')})`);
  const shape = broadcastShapes(name, a.shape, b.shape);
  const outType = def.out ?? a.dtype;
  const out = Tensor.empty(shape, outType, name);
  if (out.size === 0) return out;
  const [cs, [sa, sb]] = collapse(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)]);
  if (cs.length > MAX_RANK) throw new Error(`${name}: rank ${cs.length} exceeds ${MAX_RANK}`);
  const t = WGSL_TYPE[a.dtype];
  launch({
    op: name, shader: 'binary', inputs: [a, b], outputs: [out],
    params: { TA: t, TB: t, TO: WGSL_TYPE[outType], EXPR: def.expr },
    uniforms: new Params().dims(cs).dims(sa).dims(sb).u32(out.size, cs.length), workgroups: grid(out.size),
  });
  return out;
}

/** A scalar operand as a 1-element tensor of the other operand's dtype. */
export function lift(x: Operand, like: Tensor): Tensor {
  return typeof x === 'number' ? Tensor.fromArray([x], [], like.dtype, 'scalar') : x;
}

// ---- where ----------------------------------------------------------------------------------

export function whereRaw(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`where: branch dtypes differ (${a.dtype} vs ${b.dtype})`);
  const shape = broadcastShapes('where', cond.shape, a.shape, b.shape);
  const out = Tensor.empty(shape, a.dtype, 'where');
  if (out.size === 0) return out;
  const [cs, [sc, sa, sb]] = collapse(shape, [cond, a, b].map((t) => broadcastStrides(t.shape, shape)));
  launch({
    op: 'where', shader: 'where', inputs: [cond, a, b], outputs: [out],
    params: { TC: WGSL_TYPE[cond.dtype], T: WGSL_TYPE[a.dtype] },
    uniforms: new Params().dims(cs).dims(sc).dims(sa).dims(sb).u32(out.size, cs.length), workgroups: grid(out.size),
  });
  return out;
}

export { record };
