import { describe, it } from 'vitest';
import { add, mul, div, sum, mean, max, matmul, transpose } from '../../engine/index.ts';
import { loadGolden, checkGolden } from '../helpers.ts';

const OPS: Record<string, (x: import('../../engine/index.ts').Tensor[]) => import('../../engine/index.ts').Tensor> = {
  add_broadcast: ([a, b]) => add(a, b),
  mul_broadcast: ([a, b]) => mul(a, b),
  div: ([a, b]) => div(a, b),
  sum_axes: ([a]) => sum(a, [0, 2]),
  mean_keepdim: ([a]) => mean(a, 1, true),
  max_axis: ([a]) => max(a, -1),
  matmul_batched_broadcast: ([a, b]) => matmul(a, b),
  matmul_vec: ([a, b]) => matmul(a, b),
  matmul_transA: ([a, b]) => matmul(a, b, { transA: true }),
  matmul_transB: ([a, b]) => matmul(a, transpose(b, -1, -2)),
  matmul_transA_transB: ([a, b]) => matmul(a, b, { transA: true, transB: true }),
  sum_size1_axis: ([a]) => sum(a, 1),
  mean_size1_axis: ([a]) => mean(a, 1, true),
  max_constant_rows: ([a]) => max(a, -1),
  mean_constant_rows: ([a]) => mean(a, -1),
};

describe('core ops against PyTorch', () => {
  for (const c of loadGolden('core')) {
    it(c.name, async () => {
      await checkGolden(c, (xs) => OPS[c.name](xs));
    });
  }
});
