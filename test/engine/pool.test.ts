// Pooling: PyTorch golden cases (forward and input gradient), finite differences on every
// backward, and the argument checks.
import { describe, it, expect } from 'vitest';
import { tensor, tidy, backward, requiresGrad, sum, device, type Tensor } from '../../engine/index.ts';
import { maxPool2d, avgPool2d, adaptiveAvgPool2d, adaptiveMaxPool2d } from '../../engine/ops/pool.ts';
import type { IntPair } from '../../engine/ops/conv.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, randomArray } from '../helpers.ts';

type Args = Record<string, unknown>;
const p = (v: unknown) => v as IntPair;

const OPS: Record<string, (x: Tensor, a: Args) => Tensor> = {
  max_pool2d: (x, a) => maxPool2d(x, p(a.kernel), a.stride as IntPair | undefined, (a.padding ?? 0) as IntPair),
  avg_pool2d: (x, a) =>
    avgPool2d(
      x,
      p(a.kernel),
      a.stride as IntPair | undefined,
      (a.padding ?? 0) as IntPair,
      (a.countIncludePad ?? true) as boolean,
    ),
  adaptive_avg_pool2d: (x, a) => adaptiveAvgPool2d(x, p(a.outputSize)),
  adaptive_max_pool2d: (x, a) => adaptiveMaxPool2d(x, p(a.outputSize)),
};
const opOf = (name: string) => Object.keys(OPS).find((k) => name.startsWith(k))!;

describe('pools against PyTorch', () => {
  for (const c of loadGolden('vision').filter((c) => c.name.includes('pool2d'))) {
    it(c.name, async () => {
      await checkGolden(c, ([x], a) => OPS[opOf(c.name)](x, a));
    });
  }
});

/** Distinct values 0.05 apart in random order: a finite-difference step cannot change an argmax. */
function spaced(shape: number[], seed: number): { shape: number[]; data: number[] } {
  const n = shape.reduce((a, b) => a * b, 1);
  const keys = randomArray(n, seed);
  const order = keys.map((_, i) => i).sort((a, b) => keys[a] - keys[b]);
  const data = new Array<number>(n);
  order.forEach((i, rank) => {
    data[i] = (rank - n / 2) * 0.05;
  });
  return { shape, data };
}

describe('pool backward: finite differences', () => {
  it('max_pool2d k3 s2 p1', async () => {
    await checkFiniteDifferences((x) => maxPool2d(x, 3, 2, 1), [spaced([2, 2, 9, 8], 1)]);
  });
  it('avg_pool2d k3 s2 p1, count_include_pad false', async () => {
    await checkFiniteDifferences((x) => avgPool2d(x, 3, 2, 1, false), [{ shape: [1, 2, 9, 8] }]);
  });
  it('avg_pool2d k7 s1 p3', async () => {
    await checkFiniteDifferences((x) => avgPool2d(x, 7, 1, 3), [{ shape: [1, 1, 10, 9] }]);
  });
  it('adaptive_avg_pool2d 7x9 -> 3x4', async () => {
    await checkFiniteDifferences((x) => adaptiveAvgPool2d(x, [3, 4]), [{ shape: [1, 2, 7, 9] }]);
  });
  it('adaptive_avg_pool2d upsampling 3x2 -> 5x5', async () => {
    await checkFiniteDifferences((x) => adaptiveAvgPool2d(x, 5), [{ shape: [1, 2, 3, 2] }]);
  });
  it('adaptive_max_pool2d 11x9 -> 3', async () => {
    await checkFiniteDifferences((x) => adaptiveMaxPool2d(x, 3), [spaced([2, 2, 11, 9], 2)]);
  });
});

describe('pool housekeeping', () => {
  it('frees every intermediate of forward + backward', async () => {
    const x = requiresGrad(tensor(randomArray(2 * 3 * 9 * 7, 1), [2, 3, 9, 7]));
    const step = () => tidy(() => backward(sum(adaptiveMaxPool2d(maxPool2d(avgPool2d(x, 3, 1, 1), 2), 2))));
    const clear = (t: Tensor) => {
      t.grad?.dispose();
      t.grad = null;
    };
    step();
    await device().sync();
    clear(x);
    const before = device().liveBuffers;
    step();
    clear(x);
    await device().sync();
    expect(device().liveBuffers).toBe(before);
    x.dispose();
  });

  it('rejects bad arguments with a message naming the op', () => {
    const x = tensor(randomArray(2 * 3 * 5 * 5, 1), [2, 3, 5, 5]);
    expect(() => maxPool2d(x, 3, 1, 2)).toThrow(/max_pool2d: padding \(2, 2\) must be at most half the kernel/);
    expect(() => avgPool2d(x, 7)).toThrow(/avg_pool2d: input \[2, 3, 5, 5\] is smaller than the kernel/);
    expect(() => adaptiveAvgPool2d(tensor([1, 2, 3], [3]), 1)).toThrow(
      /adaptive_avg_pool2d: expected an f32 input \[N, C, H, W\]/,
    );
    x.dispose();
  });
});
