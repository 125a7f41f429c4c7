// Elementwise ops: unary (unary.wgsl, one WGSL expression each), binary with broadcasting
// (binary.wgsl), where (where.wgsl) and comparisons. Backward rules are composites of these ops.
import { Tensor, fmt, isGradEnabled, type DType } from '../tensor.ts';
import { record } from '../graph.ts';
import { Params, grid, launch, WGSL_TYPE, MAX_RANK } from './kernel.ts';
import { broadcastShapes, broadcastStrides } from '../shape.ts';
import { collapse, binaryFast, fastPathsOn } from './layouts.ts';

export type Operand = Tensor | number;

// ---- unary ----------------------------------------------------------------------------------

interface UnaryDef {
  expr: string;
  dtypes?: DType[];
  out?: DType;
}

/**
 * The WGSL expression of each unary op, in `x` and the parameters `p0`, `p1` (f32 scalars). One
 * expression serves unary.wgsl (scalars) and unary-vec4.wgsl: I and O are the input and output
 * types (`I(0.0)` is a zero of x's width), and the helper functions exist in both files.
 */
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
  relu: { expr: 'max(x, I(0.0))' },
  // softplus(x) = log(1 + e^x), evaluated without overflow; threshold 20 as PyTorch's default.
  softplus: { expr: 'select(max(x, I(0.0)) + log(1.0 + exp(-abs(x))), x, x > I(20.0))' },
  silu: { expr: 'x / (1.0 + exp(-x))' },
  gelu: { expr: '0.5 * x * (1.0 + erf_f(x * 0.7071067811865476))' },
  gelu_tanh: { expr: '0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))' },
  // Derivatives of the activations, fused so a backward is one kernel.
  gelu_grad: { expr: '0.5 * (1.0 + erf_f(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x)' },
  gelu_tanh_grad: { expr: 'gelu_tanh_grad(x)' },
  silu_grad: { expr: '(1.0 / (1.0 + exp(-x))) * (1.0 + x * (1.0 - 1.0 / (1.0 + exp(-x))))' },
  pow_scalar: { expr: 'pow_signed(x, p0)' },
  clamp: { expr: 'clamp(x, I(p0), I(p1))' },
  add_scalar: { expr: 'x + p0' },
  mul_scalar: { expr: 'x * p0' },
  rsub_scalar: { expr: 'p0 - x' },
  rdiv_scalar: { expr: 'p0 / x' },
  cast_f32: { expr: 'O(x)', dtypes: ['i32', 'u32', 'f32'], out: 'f32' },
  cast_i32: { expr: 'O(x)', dtypes: ['f32', 'u32', 'i32'], out: 'i32' },
  cast_u32: { expr: 'O(x)', dtypes: ['f32', 'i32', 'u32'], out: 'u32' },
  not: { expr: 'select(O(0.0), O(1.0), x == I(0.0))' },
} satisfies Record<string, UnaryDef>;

export type UnaryName = keyof typeof UNARY;

export function unary(name: UnaryName, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const def: UnaryDef = UNARY[name];
  const allowed = def.dtypes ?? ['f32'];
  if (!allowed.includes(x.dtype))
    throw new Error(`${name}: input ${fmt(x.shape)} has dtype ${x.dtype}, expected ${allowed.join(' or ')}`);
  const outType = def.out ?? x.dtype;
  const out = Tensor.empty(x.shape, outType, name);
  if (x.size === 0) return out;
  // Four elements per invocation where the size allows (the kernel is a pure stream).
  const q = fastPathsOn() && x.size % 4 === 0 ? 4 : 1;
  const ty = (t: DType) => (q === 4 ? `vec4<${WGSL_TYPE[t]}>` : WGSL_TYPE[t]);
  launch({
    op: name,
    shader: q === 4 ? 'unary-vec4' : 'unary',
    inputs: [x],
    outputs: [out],
    params: { TI: ty(x.dtype), TO: ty(outType), EXPR: def.expr },
    uniforms: new Params().u32({ n: x.size / q }).f32({ p0, p1 }),
    workgroups: grid(x.size / q),
  });
  return out;
}
// ---- binary ---------------------------------------------------------------------------------

interface BinaryDef extends UnaryDef {
  scalarOnly?: boolean;
}

/** Expressions are written for scalars and vec4s alike (O is the output type); pow is scalar only. */
export const BINARY = {
  add: { expr: 'x + y', dtypes: ['f32', 'i32', 'u32'] },
  sub: { expr: 'x - y', dtypes: ['f32', 'i32', 'u32'] },
  mul: { expr: 'x * y', dtypes: ['f32', 'i32', 'u32'] },
  div: { expr: 'x / y', dtypes: ['f32', 'i32', 'u32'] },
  pow: { expr: 'pow_signed(x, y)', scalarOnly: true },
  maximum: { expr: 'max(x, y)', dtypes: ['f32', 'i32', 'u32'] },
  minimum: { expr: 'min(x, y)', dtypes: ['f32', 'i32', 'u32'] },
  eq: { expr: 'select(O(0.0), O(1.0), x == y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  ne: { expr: 'select(O(0.0), O(1.0), x != y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  lt: { expr: 'select(O(0.0), O(1.0), x < y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  le: { expr: 'select(O(0.0), O(1.0), x <= y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  gt: { expr: 'select(O(0.0), O(1.0), x > y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
  ge: { expr: 'select(O(0.0), O(1.0), x >= y)', dtypes: ['f32', 'i32', 'u32'], out: 'f32' },
} satisfies Record<string, BinaryDef>;

export type BinaryName = keyof typeof BINARY;

export function binary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  const def: BinaryDef = BINARY[name];
  const allowed = def.dtypes ?? ['f32'];
  if (a.dtype !== b.dtype)
    throw new Error(
      `${name}: dtypes differ (${fmt(a.shape)} ${a.dtype} vs ${fmt(b.shape)} ${b.dtype}); cast one first`,
    );
  if (!allowed.includes(a.dtype))
    throw new Error(`${name}: dtype ${a.dtype} is not supported (expected ${allowed.join(' or ')})`);
  const shape = broadcastShapes(name, a.shape, b.shape);
  const outType = def.out ?? a.dtype;
  const out = Tensor.empty(shape, outType, name);
  if (out.size === 0) return out;
  const [cs, [sa, sb]] = collapse(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)]);
  if (cs.length > MAX_RANK) throw new Error(`${name}: rank ${cs.length} exceeds ${MAX_RANK}`);
  if (
    binaryFast({ op: name, expr: def.expr, vec: !def.scalarOnly, outType: WGSL_TYPE[outType] }, a, b, out, cs, sa, sb)
  )
    return out;
  const t = WGSL_TYPE[a.dtype];
  launch({
    op: name,
    shader: 'binary',
    inputs: [a, b],
    outputs: [out],
    params: { TA: t, TB: t, TO: WGSL_TYPE[outType], EXPR: def.expr },
    uniforms: new Params().dims('shape', cs).dims('sa', sa).dims('sb', sb).u32({ n: out.size, rank: cs.length }),
    workgroups: grid(out.size),
  });
  return out;
}

/** A scalar operand as a 1-element tensor of the other operand's dtype. */
export function lift(x: Operand, like: Tensor): Tensor {
  return typeof x === 'number' ? Tensor.fromArray([x], [], like.dtype, 'scalar') : x;
}

// ---- in-place accumulation ------------------------------------------------------------------

/**
 * acc += x in place (acc's bytes are rewritten; nothing is allocated) and returns acc. Both must be
 * f32 or i32 of one shape, in distinct buffers, and outside the graph: writing into a tensor that
 * autograd may read back would corrupt its backward. The caller vouches that no other tensor
 * shares acc's bytes (autograd checks `Tensor.soleOwner`).
 */
export function addInPlace(acc: Tensor, x: Tensor): Tensor {
  if (acc.dtype !== x.dtype || (acc.dtype !== 'f32' && acc.dtype !== 'i32'))
    throw new Error(`addInPlace: expected two f32 or two i32 tensors, got ${acc.dtype} and ${x.dtype}`);
  if (acc.shape.length !== x.shape.length || acc.shape.some((d, i) => d !== x.shape[i]))
    throw new Error(`addInPlace: shapes differ (${fmt(acc.shape)} += ${fmt(x.shape)}); in-place adds do not broadcast`);
  if (isGradEnabled() && (acc.requiresGrad || x.requiresGrad))
    throw new Error(
      'addInPlace: an operand requires grad; in-place writes are for tensors outside the graph (use add)',
    );
  if (acc.buffer('addInPlace') === x.buffer('addInPlace'))
    throw new Error('addInPlace: the accumulator and the addend share a buffer; use add');
  if (acc.size === 0) return acc;
  const q = acc.size % 4 === 0 ? 4 : 1;
  const t = WGSL_TYPE[acc.dtype];
  launch({
    op: 'addInPlace',
    shader: 'add-inplace',
    inputs: [x],
    outputs: [acc],
    params: { T: q === 4 ? `vec4<${t}>` : t },
    uniforms: new Params().u32({ n: acc.size / q }),
    workgroups: grid(acc.size / q),
  });
  return acc;
}

// ---- where ----------------------------------------------------------------------------------

export function whereRaw(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`where: branch dtypes differ (${a.dtype} vs ${b.dtype})`);
  const shape = broadcastShapes('where', cond.shape, a.shape, b.shape);
  const out = Tensor.empty(shape, a.dtype, 'where');
  if (out.size === 0) return out;
  const [cs, [sc, sa, sb]] = collapse(
    shape,
    [cond, a, b].map((t) => broadcastStrides(t.shape, shape)),
  );
  launch({
    op: 'where',
    shader: 'where',
    inputs: [cond, a, b],
    outputs: [out],
    params: { TC: WGSL_TYPE[cond.dtype], T: WGSL_TYPE[a.dtype] },
    uniforms: new Params()
      .dims('shape', cs)
      .dims('sc', sc)
      .dims('sa', sa)
      .dims('sb', sb)
      .u32({ n: out.size, rank: cs.length }),
    workgroups: grid(out.size),
  });
  return out;
}

export { record };
