import { describe, it, expect } from 'vitest';
import {
  tensor,
  add,
  mul,
  matmul,
  sum,
  permute,
  exp,
  backward,
  requiresGrad,
  tidy,
  device,
  randn,
  manualSeed,
} from '../engine/index.ts';

describe('smoke', () => {
  it('adds, multiplies, reduces and differentiates', async () => {
    const a = requiresGrad(tensor([1, 2, 3, 4, 5, 6], [2, 3]));
    const b = tensor([10, 20, 30], [3]);
    const y = add(mul(a, a), b);
    expect(Array.from(await y.data())).toEqual([11, 24, 39, 26, 45, 66]);
    const s = sum(y);
    expect(await s.item()).toBe(211);
    backward(s);
    expect(Array.from(await a.grad!.data())).toEqual([2, 4, 6, 8, 10, 12]);
  });
  it('matmul and permute', async () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tensor([1, 0, 0, 1, 1, 1], [3, 2]);
    expect(Array.from(await matmul(a, b).data())).toEqual([4, 5, 10, 11]);
    expect(Array.from(await permute(a, [1, 0]).data())).toEqual([1, 4, 2, 5, 3, 6]);
    expect((await exp(tensor([0], [1])).data())[0]).toBeCloseTo(1);
  });
  it('integer tensors take scalar operands (regression: add_scalar ran before the dtype check)', async () => {
    const t = tensor([1, 2, 3], [3], 'i32');
    expect(Array.from(await add(t, 5).data())).toEqual([6, 7, 8]);
    expect(Array.from(await mul(t, 2).data())).toEqual([2, 4, 6]);
  });
  it('tidy frees intermediates; rng reproduces', async () => {
    const base = device().liveBuffers;
    const r = tidy(() => sum(mul(randn([100]), 2)));
    expect(device().liveBuffers).toBe(base + 1);
    r.dispose();
    expect(device().liveBuffers).toBe(base);
    manualSeed(3);
    const x1 = await randn([5]).data();
    manualSeed(3);
    const x2 = await randn([5]).data();
    expect(Array.from(x1)).toEqual(Array.from(x2));
  });
});
