// Cases for the public ops that had none: finite differences of the backward for the
// differentiable ones (movement ops, sumTo, safeSqrt, sign, clone), exact forward values for the
// comparisons, casts and creation ops, and distribution checks for the random ops.
// test/engine/op-coverage.test.ts keeps every public op covered from now on.
import { describe, it, expect } from 'vitest';
import {
  tensor,
  mul,
  add,
  sum,
  backward,
  requiresGrad,
  eq,
  ne,
  lt,
  le,
  ge,
  gt,
  safeSqrt,
  sign,
  cast,
  logicalNot,
  sumTo,
  flatten,
  unsqueeze,
  squeeze,
  permute,
  expand,
  narrow,
  flip,
  clone,
  scalar,
  full,
  zerosLike,
  onesLike,
  arange,
  manualSeed,
  rand,
  randn,
  bernoulli,
  Generator,
  type Tensor,
} from '../../engine/index.ts';
import { checkFiniteDifferences, expectClose } from '../helpers.ts';

async function values(t: Tensor): Promise<number[]> {
  const v = Array.from(await t.data());
  t.dispose();
  return v;
}

describe('finite differences of the movement ops and the rest', () => {
  it('permute, expand, narrow, flip (odd sizes, negative dims)', async () => {
    await checkFiniteDifferences((x) => permute(x, [2, 0, 1]), [{ shape: [2, 3, 5] }]);
    await checkFiniteDifferences((x) => expand(x, [4, 3, 7]), [{ shape: [3, 1] }]);
    await checkFiniteDifferences((x) => narrow(x, -1, 2, 4), [{ shape: [3, 7] }]);
    await checkFiniteDifferences((x) => flip(x, [0, -1]), [{ shape: [3, 5] }]);
  });

  it('flatten, unsqueeze, squeeze, clone', async () => {
    await checkFiniteDifferences((x) => mul(flatten(x, 1), 3), [{ shape: [2, 3, 5] }]);
    await checkFiniteDifferences((x) => mul(unsqueeze(x, -1), 2), [{ shape: [3, 5] }]);
    await checkFiniteDifferences((x) => mul(squeeze(x, 1), 2), [{ shape: [3, 1, 5] }]);
    await checkFiniteDifferences((x) => add(clone(x), x), [{ shape: [7] }]);
  });

  it('sumTo reduces broadcast dimensions back', async () => {
    await checkFiniteDifferences((x) => sumTo(x, [1, 5]), [{ shape: [3, 4, 5] }]);
  });

  it('safeSqrt away from 0, and sign (zero gradient) under a product', async () => {
    await checkFiniteDifferences((x) => safeSqrt(x), [{ shape: [33], low: 0.2, high: 2 }]);
    await checkFiniteDifferences((x) => mul(sign(x), x), [{ shape: [7], data: [-2, -1.5, -0.5, 0.5, 1, 1.5, 2] }]);
  });

  it('safeSqrt has gradient 0 (not NaN) at 0', async () => {
    const x = requiresGrad(tensor([0, 4], [2]));
    backward(sum(safeSqrt(x)));
    expect(await values(x.grad!)).toEqual([0, 0.25]);
  });
});

describe('exact forwards of the ops without a gradient', () => {
  it('comparisons broadcast and give 0/1 in f32', async () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]),
      b = tensor([2, 2, 5], [3]);
    expect(await values(eq(a, b))).toEqual([0, 1, 0, 0, 0, 0]);
    expect(await values(ne(a, b))).toEqual([1, 0, 1, 1, 1, 1]);
    expect(await values(lt(a, b))).toEqual([1, 0, 1, 0, 0, 0]);
    expect(await values(le(a, b))).toEqual([1, 1, 1, 0, 0, 0]);
    expect(await values(ge(a, 4))).toEqual([0, 0, 0, 1, 1, 1]);
    expect(await values(gt(a, 4))).toEqual([0, 0, 0, 0, 1, 1]);
  });

  it('sign, logicalNot and cast', async () => {
    expect(await values(sign(tensor([-3, 0, 0.5], [3])))).toEqual([-1, 0, 1]);
    expect(await values(logicalNot(tensor([0, 1, 2.5], [3])))).toEqual([1, 0, 0]);
    const i = cast(tensor([-2.7, 0.2, 3.9], [3]), 'i32');
    expect(i.dtype).toBe('i32');
    expect(await values(i)).toEqual([-2, 0, 3]); // toward zero, as torch's .to(int32)
    expect(await values(cast(tensor([7, 8], [2], 'i32'), 'f32'))).toEqual([7, 8]);
  });

  it('scalar, full, zerosLike, onesLike, arange', async () => {
    const s = scalar(2.5);
    expect(s.shape).toEqual([]);
    expect(await values(s)).toEqual([2.5]);
    expect(await values(full([2, 2], -1))).toEqual([-1, -1, -1, -1]);
    const like = tensor([1, 2, 3], [3], 'i32');
    const z = zerosLike(like),
      o = onesLike(like);
    expect([z.dtype, o.dtype]).toEqual(['i32', 'i32']);
    expect(await values(z)).toEqual([0, 0, 0]);
    expect(await values(o)).toEqual([1, 1, 1]);
    expect(await values(arange(5))).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('random ops', () => {
  it('rand, randn, bernoulli: seeded, with the requested distribution', async () => {
    manualSeed(3);
    const u1 = await values(rand([4096], -1, 3));
    manualSeed(3);
    expect(await values(rand([4096], -1, 3))).toEqual(u1);
    expect(Math.min(...u1)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...u1)).toBeLessThan(3);
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    expectClose([mean(u1)], [1], 'uniform mean', 0.1, 0);
    const n = await values(randn([4096], 2, 0.5, new Generator(11)));
    const m = mean(n),
      sd = Math.sqrt(mean(n.map((x) => (x - m) ** 2)));
    expectClose([m, sd], [2, 0.5], 'normal mean and std', 0.05, 0);
    const b = await values(bernoulli([4096], 0.25, new Generator(12)));
    expect(b.every((x) => x === 0 || x === 1)).toBe(true);
    expectClose([mean(b)], [0.25], 'bernoulli rate', 0.03, 0);
  });
});
