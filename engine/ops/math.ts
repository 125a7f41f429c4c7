// Differentiable elementwise math: forward through elementwise.ts kernels, backward as
// composites of the same ops (micrograd style: each rule sits next to its forward).
import { Tensor } from '../tensor.ts';
import { record } from '../graph.ts';
import { unary, binary, whereRaw, lift, type Operand } from './elementwise.ts';
import { castFloat } from './autocast.ts';

// ---- binary arithmetic (tensor or scalar operands, broadcasting) -----------------------------

export function add(a: Operand, b: Operand): Tensor {
  if (typeof a === 'number') return add(b, a);
  if (typeof b === 'number') {
    if (a.dtype !== 'f32') return binary('add', a, lift(b, a));
    return record(unary('add_scalar', a, b), 'add', [a], (dy) => [dy]);
  }
  return record(binary('add', a, b), 'add', [a, b], (dy) => [dy, dy]);
}

export function sub(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number') return add(a, -b);
  if (typeof a === 'number') return record(unary('rsub_scalar', b, a), 'sub', [b], (dy) => [neg(dy)]);
  return record(binary('sub', a, b), 'sub', [a, b], (dy) => [dy, neg(dy)]);
}

export function mul(a: Operand, b: Operand): Tensor {
  if (typeof a === 'number') return mul(b, a);
  if (typeof b === 'number') {
    if (a.dtype !== 'f32') return binary('mul', a, lift(b, a));
    return record(unary('mul_scalar', a, b), 'mul', [a], (dy) => [mul(dy, b)]);
  }
  return record(binary('mul', a, b), 'mul', [a, b], (dy) => [
    a.requiresGrad || b.requiresGrad ? mul(dy, b) : null,
    a.requiresGrad || b.requiresGrad ? mul(dy, a) : null,
  ]);
}

export function div(a: Operand, b: Operand): Tensor {
  if (typeof b === 'number')
    return a instanceof Tensor && a.dtype !== 'f32' ? binary('div', a, lift(b, a)) : mul(a, 1 / b);
  if (typeof a === 'number') {
    const y = unary('rdiv_scalar', b, a);
    return record(y, 'div', [b], (dy) => [neg(div(mul(dy, y), b))]);
  }
  const y = binary('div', a, b);
  return record(y, 'div', [a, b], (dy) => [div(dy, b), b.requiresGrad ? neg(div(mul(dy, y), b)) : null]);
}

export function pow(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') {
    const y = unary('pow_scalar', a, b);
    return record(y, 'pow', [a], (dy) => [mul(dy, mul(pow(a, b - 1), b))]);
  }
  const y = binary('pow', a, b);
  return record(y, 'pow', [a, b], (dy) => [
    mul(dy, mul(b, pow(a, sub(b, 1)))),
    // d/db a^b = a^b log a (defined for a > 0, as in PyTorch; 0 where a == 0 contributes 0).
    b.requiresGrad ? mul(dy, mul(y, log(where(eq(a, 0), 1, a)))) : null,
  ]);
}

export function maximum(a: Tensor, b: Tensor): Tensor {
  const y = binary('maximum', a, b);
  // Ties split the gradient in half, as PyTorch does.
  return record(y, 'maximum', [a, b], (dy) => {
    const ga = add(gt(a, b), mul(eq(a, b), 0.5));
    return [mul(dy, ga), mul(dy, sub(1, ga))];
  });
}

export function minimum(a: Tensor, b: Tensor): Tensor {
  const y = binary('minimum', a, b);
  return record(y, 'minimum', [a, b], (dy) => {
    const ga = add(lt(a, b), mul(eq(a, b), 0.5));
    return [mul(dy, ga), mul(dy, sub(1, ga))];
  });
}

// ---- comparisons (no gradient; results are 0/1 in f32) ---------------------------------------

const cmp =
  (name: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge') =>
  (a: Tensor, b: Operand): Tensor =>
    binary(name, a, lift(b, a));
export const eq = cmp('eq');
export const ne = cmp('ne');
export const lt = cmp('lt');
export const le = cmp('le');
export const gt = cmp('gt');
export const ge = cmp('ge');

/** cond ? a : b, cond any numeric dtype (non-zero is true). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : cond;
  const ta = lift(a, like.dtype === 'f32' ? like : cond);
  const tb = lift(b, ta);
  const y = whereRaw(cond, ta, tb);
  return record(y, 'where', [ta, tb], (dy) => [
    whereRaw(cond, dy, zerosScalar(dy)),
    whereRaw(cond, zerosScalar(dy), dy),
  ]);
}

function zerosScalar(like: Tensor): Tensor {
  return Tensor.fromArray([0], [], like.dtype, 'zeros');
}

// ---- unary ----------------------------------------------------------------------------------

export function neg(x: Tensor): Tensor {
  return record(unary('neg', x), 'neg', [x], (dy) => [neg(dy)]);
}

export function exp(x: Tensor): Tensor {
  const y = unary('exp', x);
  return record(y, 'exp', [x], (dy) => [mul(dy, y)]);
}

export function log(x: Tensor): Tensor {
  return record(unary('log', x), 'log', [x], (dy) => [div(dy, x)]);
}

export function sqrt(x: Tensor): Tensor {
  const y = unary('sqrt', x);
  return record(y, 'sqrt', [x], (dy) => [div(mul(dy, 0.5), y)]);
}

/**
 * sqrt whose gradient is 0 where the result is 0, PyTorch's rule for std and norms (its
 * std_backward / norm_backward mask those entries). Plain sqrt's gradient there is Inf, which the
 * chain rule turns into Inf * 0 = NaN (a constant row's std, a zero vector's norm).
 */
export function safeSqrt(x: Tensor): Tensor {
  const y = unary('sqrt', x);
  return record(y, 'safeSqrt', [x], (dy) => [where(eq(y, 0), 0, div(mul(dy, 0.5), y))]);
}

export function rsqrt(x: Tensor): Tensor {
  const y = unary('rsqrt', x);
  return record(y, 'rsqrt', [x], (dy) => [mul(dy, mul(pow(y, 3), -0.5))]);
}

export function abs(x: Tensor): Tensor {
  return record(unary('abs', x), 'abs', [x], (dy) => [mul(dy, unary('sign', x))]);
}

export function sign(x: Tensor): Tensor {
  return unary('sign', x);
}

export function sin(x: Tensor): Tensor {
  return record(unary('sin', x), 'sin', [x], (dy) => [mul(dy, unary('cos', x))]);
}

export function cos(x: Tensor): Tensor {
  return record(unary('cos', x), 'cos', [x], (dy) => [neg(mul(dy, unary('sin', x)))]);
}

export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor {
  const lo = Math.max(min, -3.4e38);
  const hi = Math.min(max, 3.4e38);
  // Gradient passes where min <= x <= max (PyTorch includes the bounds).
  return record(unary('clamp', x, lo, hi), 'clamp', [x], (dy) => [mul(dy, mul(ge(x, lo), le(x, hi)))]);
}

// ---- activations ----------------------------------------------------------------------------

export function relu(x: Tensor): Tensor {
  return record(unary('relu', x), 'relu', [x], (dy) => [mul(dy, gt(x, 0))]);
}

export function sigmoid(x: Tensor): Tensor {
  const y = unary('sigmoid', x);
  return record(y, 'sigmoid', [x], (dy) => [mul(dy, mul(y, sub(1, y)))]);
}

export function tanh(x: Tensor): Tensor {
  const y = unary('tanh', x);
  return record(y, 'tanh', [x], (dy) => [mul(dy, sub(1, mul(y, y)))]);
}

export function softplus(x: Tensor): Tensor {
  return record(unary('softplus', x), 'softplus', [x], (dy) => [mul(dy, unary('sigmoid', x))]);
}

export function silu(x: Tensor): Tensor {
  return record(unary('silu', x), 'silu', [x], (dy) => [mul(dy, unary('silu_grad', x))]);
}

/** GELU, exact (erf) by default; `approximate: 'tanh'` as PyTorch. */
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  const [fwd, grad] =
    approximate === 'tanh' ? (['gelu_tanh', 'gelu_tanh_grad'] as const) : (['gelu', 'gelu_grad'] as const);
  return record(unary(fwd, x), 'gelu', [x], (dy) => [mul(dy, unary(grad, x))]);
}

export function cast(x: Tensor, dtype: 'f32' | 'i32' | 'u32' | 'f16'): Tensor {
  if (x.dtype === dtype) return x.view(x.shape, 'cast');
  if (dtype === 'f16' || x.dtype === 'f16') return castFloat(x, dtype); // differentiable (autocast.ts)
  return unary(dtype === 'f32' ? 'cast_f32' : dtype === 'i32' ? 'cast_i32' : 'cast_u32', x);
}

export function logicalNot(x: Tensor): Tensor {
  return unary('not', x);
}
