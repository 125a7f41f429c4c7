// Both reduction kernels (a workgroup per output; an invocation per output walking one strided
// run) against a float64 host reference, on shapes that select each of them, and the two-pass
// split of sums and extrema whose reduced dims are separated by kept ones (mean stays one pass).
import { describe, it, expect } from 'vitest';
import { tensor, sum, max, mean } from '../../engine/index.ts';
import { randomArray, expectClose } from '../helpers.ts';

function hostReduce(data: number[], shape: number[], axes: number[], op: 'sum' | 'max' | 'mean'): number[] {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = outShape.reduce((a, b) => a * b, 1);
  const acc = new Array(n).fill(op === 'max' ? -Infinity : 0);
  const cnt = axes.reduce((a, i) => a * shape[i], 1);
  data.forEach((v, flat) => {
    let o = 0,
      mul = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = Math.floor(flat / strides[d]) % shape[d];
      if (!axes.includes(d)) {
        o += c * mul;
        mul *= shape[d];
      }
    }
    acc[o] = op === 'max' ? Math.max(acc[o], v) : acc[o] + v;
  });
  return op === 'mean' ? acc.map((v) => v / cnt) : acc;
}

describe('reductions on both kernels', () => {
  const cases: [number[], number[]][] = [
    [[300, 257], [0]], // bias-gradient shape: many outputs, long strided runs (serial kernel)
    [[300, 257], [1]], // last axis, many rows (serial kernel)
    [[3, 1000], [1]], // few outputs, long contiguous runs (workgroup kernel)
    [[5000], [0]], // full reduction (workgroup kernel)
    [
      [4, 33, 65],
      [0, 2],
    ], // two separate reduced blocks (sum/max: two serial passes; mean: workgroup kernel)
    [
      [2, 5, 1, 3, 40],
      [0, 3, 4],
    ], // a conv bias gradient's shape with a size-1 dim between: two passes
    [
      [1, 6, 7, 7],
      [0, 2, 3],
    ], // batch 1: the size-1 dim takes no part, one serial pass
    [
      [3, 4, 5, 6, 7],
      [0, 2, 4],
    ], // three separate reduced blocks: three passes
    [
      [7, 9, 300],
      [0, 1],
    ], // adjacent reduced dims collapse into one run (serial kernel)
  ];
  for (const [shape, axes] of cases) {
    it(`sum/max/mean of ${JSON.stringify(shape)} over ${JSON.stringify(axes)}`, async () => {
      const data = randomArray(
        shape.reduce((a, b) => a * b, 1),
        shape.length * 10 + axes[0],
      ).map(Math.fround);
      const x = tensor(data, shape);
      expectClose(await sum(x, axes).data(), hostReduce(data, shape, axes, 'sum'), 'sum', 1e-3, 1e-4);
      expectClose(await max(x, axes).data(), hostReduce(data, shape, axes, 'max'), 'max', 0, 0);
      expectClose(await mean(x, axes).data(), hostReduce(data, shape, axes, 'mean'), 'mean', 1e-5, 1e-4);
      const kept = await sum(x, axes, true);
      expect(kept.shape).toEqual(shape.map((d, i) => (axes.includes(i) ? 1 : d)));
      expectClose(await kept.data(), hostReduce(data, shape, axes, 'sum'), 'sum keepdim', 1e-3, 1e-4);
    });
  }
});
