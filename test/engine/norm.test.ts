import { describe, it, expect } from 'vitest';
import {
  Tensor,
  tensor,
  tidy,
  device,
  requiresGrad,
  backward,
  sum,
  mul,
  sub,
  div,
  add,
  mean,
  variance,
  sqrt,
  reshape,
} from '../../engine/index.ts';
import { batchNorm, groupNorm, layerNorm2d } from '../../engine/ops/norm.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, expectClose, randomArray } from '../helpers.ts';

const cases = loadGolden('attention_norm');
const byName = (prefix: string) => cases.filter((c) => c.name.startsWith(prefix));

describe('batch_norm against PyTorch', () => {
  for (const c of byName('bn_')) {
    it(c.name, async () => {
      const a = c.args as { training: boolean; momentum?: number; eps: number; rm?: number[]; rv?: number[] };
      await checkGolden(c, ([x, w, b]) => {
        const rm = a.rm ? tensor(a.rm, [a.rm.length]) : null;
        const rv = a.rv ? tensor(a.rv, [a.rv.length]) : null;
        const y = batchNorm(x, rm, rv, w, b, a.training, a.momentum ?? 0.1, a.eps);
        // Training with running stats returns them too: they were updated in place.
        return a.training && rm && rv ? [y, rm, rv] : y;
      });
    });
  }
});

describe('group_norm and layer_norm2d against PyTorch', () => {
  for (const c of byName('gn_')) {
    it(c.name, async () => {
      await checkGolden(c, ([x, w, b], a) => groupNorm(x, a.g as number, w, b));
    });
  }
  for (const c of byName('ln2d')) {
    it(c.name, async () => {
      await checkGolden(c, ([x, w, b]) => layerNorm2d(x, w, b));
    });
  }
});

/** Normalisation over `axes` as a composite of engine ops (the reference for large shapes). */
function composite(x: Tensor, axes: number[], eps: number): Tensor {
  const m = mean(x, axes, true);
  return div(sub(x, m), sqrt(add(variance(x, axes, true, 0), eps)));
}

describe('norms on shapes that split a group into chunks', () => {
  it('batch_norm training, 6400 values per channel, matches the composite (forward and grads)', async () => {
    const shape = [4, 3, 40, 40];
    const xs = randomArray(4 * 3 * 1600, 3, -2, 5);
    const cot = tensor(randomArray(xs.length, 4), shape);
    const run = (fused: boolean) =>
      tidy(() => {
        const x = requiresGrad(tensor(xs, shape));
        const y = fused ? batchNorm(x, null, null, null, null, true) : composite(x, [0, 2, 3], 1e-5);
        backward(sum(mul(y, cot)));
        return [y.keep(), x.grad!.keep()];
      });
    const [yf, gf] = run(true);
    const [yr, gr] = run(false);
    expectClose(await yf.data(), await yr.data(), 'y', 1e-4, 1e-4);
    expectClose(await gf.data(), await gr.data(), 'dx', 1e-4, 1e-3);
    for (const t of [yf, gf, yr, gr, cot]) t.dispose();
  });

  it('group_norm with 2 groups of 4800 values matches the composite', async () => {
    const shape = [2, 6, 40, 40];
    const xs = randomArray(2 * 6 * 1600, 5, 10, 12); // offset data: Welford keeps the variance exact
    const y = tidy(() => groupNorm(tensor(xs, shape), 2));
    const r = tidy(() => reshape(composite(reshape(tensor(xs, shape), [2, 2, 3 * 1600]), [2], 1e-5), shape));
    expectClose(await y.data(), await r.data(), 'y', 1e-3, 1e-3);
    y.dispose();
    r.dispose();
  });
});

describe('norm backward: finite differences', () => {
  it('batch_norm training (x, weight, bias)', async () => {
    await checkFiniteDifferences(
      (x, w, b) => batchNorm(x, null, null, w, b, true),
      [{ shape: [5, 3, 2, 3] }, { shape: [3] }, { shape: [3] }],
    );
  });
  it('batch_norm eval', async () => {
    const rm = tensor([0.1, -0.2, 0.3], [3]),
      rv = tensor([0.5, 1.5, 2], [3]);
    await checkFiniteDifferences(
      (x, w, b) => batchNorm(x, rm, rv, w, b, false),
      [{ shape: [4, 3, 5] }, { shape: [3] }, { shape: [3] }],
    );
    rm.dispose();
    rv.dispose();
  });
  it('group_norm', async () => {
    await checkFiniteDifferences(
      (x, w, b) => groupNorm(x, 2, w, b),
      [{ shape: [2, 4, 3, 3] }, { shape: [4] }, { shape: [4] }],
    );
  });
  it('layer_norm2d', async () => {
    await checkFiniteDifferences(
      (x, w, b) => layerNorm2d(x, w, b),
      [{ shape: [2, 5, 2, 3] }, { shape: [5] }, { shape: [5] }],
    );
  });
});

describe('norm behaviour', () => {
  it('training updates running stats in place (unbiased variance), outside autograd', async () => {
    const rm = tensor([0, 0], [2]),
      rv = tensor([1, 1], [2]);
    // channel 0: 1,2,10,20; channel 1: 3,4,30,40
    const x = requiresGrad(tensor([1, 2, 3, 4, 10, 20, 30, 40], [2, 2, 2]));
    const y = batchNorm(x, rm, rv, null, null, true, 0.5);
    expect(rm.requiresGrad).toBe(false);
    expect(rm.gradFn).toBeNull();
    const m0 = (1 + 2 + 10 + 20) / 4,
      m1 = (3 + 4 + 30 + 40) / 4;
    const v0 = [1, 2, 10, 20].reduce((a, v) => a + (v - m0) ** 2, 0) / 3,
      v1 = [3, 4, 30, 40].reduce((a, v) => a + (v - m1) ** 2, 0) / 3;
    expectClose(await rm.data(), [0.5 * m0, 0.5 * m1], 'running_mean');
    expectClose(await rv.data(), [0.5 + 0.5 * v0, 0.5 + 0.5 * v1], 'running_var');
    for (const t of [rm, rv, x, y]) t.dispose();
  });

  it('frees every intermediate (forward and backward in a scope)', async () => {
    const x = requiresGrad(tensor(randomArray(2 * 4 * 9, 1), [2, 4, 3, 3]));
    const w = requiresGrad(tensor(randomArray(4, 2), [4]));
    const rm = tensor([0, 0, 0, 0], [4]),
      rv = tensor([1, 1, 1, 1], [4]);
    const base = device().liveBuffers;
    tidy(() => {
      backward(sum(batchNorm(x, rm, rv, w, null, true)));
      backward(sum(groupNorm(x, 2, w, null)));
      backward(sum(layerNorm2d(x, w, null)));
    });
    await device().sync();
    expect(device().liveBuffers).toBe(base + 2); // x.grad and w.grad
    for (const t of [x, w, rm, rv]) {
      t.grad?.dispose();
      t.dispose();
    }
  });

  it('rejects bad inputs with the op name and shapes', () => {
    const x = tensor(randomArray(2 * 6 * 4, 1), [2, 6, 4]);
    expect(() => groupNorm(x, 4)).toThrow(/group_norm: 6 channels of \[2, 6, 4\] cannot be split into 4 groups/);
    expect(() => batchNorm(x, null, null)).toThrow(
      /batch_norm: running_mean and running_var are required in eval mode/,
    );
    const one = tensor([1, 2, 3], [1, 3]);
    expect(() => batchNorm(one, null, null, null, null, true)).toThrow(/expected more than 1 value per channel/);
    const w = tensor([1, 2], [2]);
    expect(() => layerNorm2d(x, w)).toThrow(/layer_norm2d: weight must be an f32 \[6\], got \[2\]/);
    for (const t of [x, one, w]) t.dispose();
  });
});
