// linear (x W^T + b with the bias fused into the matmul's store, engine/ops/epilogue.ts) through
// every matmul kernel: forward and gradients against PyTorch (test/golden/gen_linear.py), a
// finite-difference check of the backward, and nn.Linear on top of it.
import { afterEach, describe, expect, it } from 'vitest';
import { linear, Linear, tensor, tidy, noGrad, matmul, add } from '../../engine/index.ts';
import { useMatmulKernel, MATMUL_KERNELS } from '../../engine/ops/matmul-kernels.ts';
import { checkFiniteDifferences, checkGolden, expectClose, loadGolden, randomArray } from '../helpers.ts';

afterEach(() => useMatmulKernel(null));

describe('linear against PyTorch, every matmul kernel', () => {
  for (const kernel of MATMUL_KERNELS) {
    for (const c of loadGolden('linear')) {
      it(`${kernel}: ${c.name}`, async () => {
        useMatmulKernel(kernel);
        await checkGolden(c, (xs) => linear(xs[0], xs[1], xs[2]));
      });
    }
  }
});

describe('linear', () => {
  it('backward (finite differences), with and without bias', async () => {
    await checkFiniteDifferences(
      (x, w, b) => linear(x, w, b),
      [{ shape: [2, 3, 5] }, { shape: [4, 5] }, { shape: [4] }],
    );
    await checkFiniteDifferences((x, w) => linear(x, w), [{ shape: [7, 6] }, { shape: [9, 6] }]);
  });

  it('nn.Linear matches matmul + add, the composite the epilogue replaces', async () => {
    const lin = new Linear(12, 20);
    const x = tensor(randomArray(3 * 5 * 12, 5), [3, 5, 12]);
    const [fused, composite] = noGrad(() =>
      tidy(() => [lin.forward(x), add(matmul(x, lin.weight, { transB: true }), lin.bias!)]),
    );
    expect([...fused.shape]).toEqual([3, 5, 20]);
    expectClose(await fused.data(), Array.from(await composite.data()), 'Linear vs matmul + add', 1e-6, 1e-5);
    for (const t of [x, fused, composite, ...lin.parameters()]) t.dispose();
  });

  it('names the mismatch in its errors', () => {
    const x = tensor([1, 2, 3], [1, 3]);
    const w = tensor([1, 2, 3, 4], [2, 2]);
    const b = tensor([1, 2, 3], [3]);
    expect(() => linear(x, w)).toThrow(/does not end in the weight's in_features 2/);
    const w3 = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(() => linear(x, w3, b)).toThrow(/bias \[3\] must be \[2\]/);
    for (const t of [x, w, b, w3]) t.dispose();
  });
});
