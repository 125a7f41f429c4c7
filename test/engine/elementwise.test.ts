// Elementwise ops, activations, var/std: forward and backward against PyTorch (float64) and a
// finite-difference check of every backward on the device.
import { describe, it } from 'vitest';
import {
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  abs,
  sin,
  cos,
  tanh,
  sigmoid,
  relu,
  softplus,
  silu,
  gelu,
  clamp,
  pow,
  sub,
  maximum,
  minimum,
  where,
  gt,
  div,
  variance,
  std,
  min,
  type Tensor,
} from '../../engine/index.ts';
import { loadGolden, checkGolden, checkFiniteDifferences } from '../helpers.ts';

const OPS: Record<string, (x: Tensor[]) => Tensor> = {
  neg: ([x]) => neg(x),
  exp: ([x]) => exp(x),
  log: ([x]) => log(x),
  sqrt: ([x]) => sqrt(x),
  rsqrt: ([x]) => rsqrt(x),
  abs: ([x]) => abs(x),
  sin: ([x]) => sin(x),
  cos: ([x]) => cos(x),
  tanh: ([x]) => tanh(x),
  sigmoid: ([x]) => sigmoid(x),
  relu: ([x]) => relu(x),
  softplus: ([x]) => softplus(x),
  silu: ([x]) => silu(x),
  gelu: ([x]) => gelu(x),
  gelu_tanh: ([x]) => gelu(x, 'tanh'),
  clamp: ([x]) => clamp(x, -0.3, 0.5),
  pow_scalar: ([x]) => pow(x, 3),
  pow_scalar_frac: ([x]) => pow(x, 0.5),
  pow_tensor: ([a, b]) => pow(a, b),
  sub_broadcast: ([a, b]) => sub(a, b),
  maximum: ([a, b]) => maximum(a, b),
  minimum: ([a, b]) => minimum(a, b),
  where: ([c, a, b]) => where(gt(c, 0), a, b),
  rsub_scalar: ([x]) => sub(2.5, x),
  rdiv_scalar: ([x]) => div(2.0, x),
  var: ([x]) => variance(x, 1, true),
  std_all: ([x]) => std(x),
  var_unbiased_false: ([x]) => variance(x, [0, 2], false, 0),
  min_axis: ([x]) => min(x, 0),
  std_constant_rows: ([x]) => std(x, 1),
  var_constant_rows: ([x]) => variance(x, 1, true),
  std_all_constant: ([x]) => std(x),
  std_size1_axis_biased: ([x]) => std(x, 1, false, 0),
  var_size1_axis_biased: ([x]) => variance(x, 1, false, 0),
  min_constant_rows: ([x]) => min(x, 0),
};

describe('elementwise ops against PyTorch', () => {
  for (const c of loadGolden('elementwise')) {
    it(c.name, async () => {
      await checkGolden(c, (xs) => OPS[c.name](xs), { atol: 2e-5, rtol: 2e-4 });
    });
  }
});

describe('elementwise backward by finite differences', () => {
  const smooth: [string, (x: Tensor) => Tensor, number, number][] = [
    ['exp', exp, -1, 1],
    ['log', log, 0.5, 2],
    ['sqrt', sqrt, 0.5, 2],
    ['rsqrt', rsqrt, 0.5, 2],
    ['sin', sin, -2, 2],
    ['cos', cos, -2, 2],
    ['tanh', tanh, -2, 2],
    ['sigmoid', sigmoid, -3, 3],
    ['softplus', softplus, -3, 3],
    ['silu', silu, -3, 3],
    ['gelu', (x) => gelu(x), -3, 3],
    ['gelu tanh', (x) => gelu(x, 'tanh'), -3, 3],
    ['pow 3', (x) => pow(x, 3), -1, 1],
    ['std', (x) => std(x, -1), -1, 1],
  ];
  for (const [name, f, lo, hi] of smooth) {
    it(name, async () => {
      await checkFiniteDifferences(f, [{ shape: [7, 33], low: lo, high: hi }]);
    });
  }
  it('pow with tensor exponent, broadcast', async () => {
    await checkFiniteDifferences(
      (a, b) => pow(a, b),
      [
        { shape: [7, 1], low: 0.5, high: 2 },
        { shape: [33], low: -1, high: 1 },
      ],
    );
  });
  it('division and subtraction with broadcasting', async () => {
    await checkFiniteDifferences(
      (a, b) => sub(div(a, b), b),
      [
        { shape: [1, 65], low: -1, high: 1 },
        { shape: [7, 1], low: 0.5, high: 2 },
      ],
    );
  });
});
