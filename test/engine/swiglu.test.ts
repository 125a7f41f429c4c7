// The fused SwiGLU op (engine/ops/swiglu.ts), packed and two-tensor forms: forward and backward
// against PyTorch (float64, test/golden/gen_swiglu.py), a finite-difference check of each
// backward on the device, and agreement with the composite silu(a) * g it replaces.
import { describe, it, expect } from 'vitest';
import { swiglu, silu, mul, chunk, tensor, tidy, noGrad } from '../../engine/index.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, expectClose, randomArray } from '../helpers.ts';

describe('swiglu against PyTorch', () => {
  for (const c of loadGolden('swiglu')) {
    it(c.name, async () => {
      await checkGolden(c, (xs) => (c.name.startsWith('packed/') ? swiglu(xs[0]) : swiglu(xs[0], xs[1])));
    });
  }
});

describe('swiglu backward (finite differences)', () => {
  it('packed, scalar and vec4 widths', async () => {
    await checkFiniteDifferences((x) => swiglu(x), [{ shape: [5, 6], low: -3, high: 3 }]);
    await checkFiniteDifferences((x) => swiglu(x), [{ shape: [3, 16], low: -3, high: 3 }]);
  });
  it('two tensors, scalar and vec4 widths', async () => {
    await checkFiniteDifferences((a, g) => swiglu(a, g), [{ shape: [5, 3], low: -3, high: 3 }, { shape: [5, 3] }]);
    await checkFiniteDifferences((a, g) => swiglu(a, g), [{ shape: [2, 8], low: -3, high: 3 }, { shape: [2, 8] }]);
  });
});

describe('swiglu', () => {
  it('matches the composite it replaces on a GluMlp-sized packed input', async () => {
    const x = tensor(randomArray(4 * 2 * 40, 3, -4, 4), [4, 80]);
    const [fused, composite] = noGrad(() =>
      tidy(() => {
        const [a, g] = chunk(x, 2, -1);
        return [swiglu(x), mul(silu(a), g)];
      }),
    );
    expectClose(await fused.data(), Array.from(await composite.data()), 'swiglu vs silu(a) * g', 1e-6, 1e-5);
    for (const t of [x, fused, composite]) t.dispose();
  });
  it('rejects odd packed widths and mismatched shapes', () => {
    const x = tensor([1, 2, 3], [1, 3]);
    const g = tensor([1, 2], [1, 2]);
    expect(() => swiglu(x)).toThrow(/must be even/);
    expect(() => swiglu(x, g)).toThrow(/one shape/);
    x.dispose();
    g.dispose();
  });
});
