import { describe, it, expect } from 'vitest';
import { Tensor, tensor, tidy, backward, requiresGrad, sum, sigmoid, Generator } from '../../engine/index.ts';
import { softDiceLoss, structureLoss, multilabelSoftMarginLoss, negCosineLoss } from '../../engine/ops/seg-losses.ts';
import { dropPath } from '../../engine/ops/drop-path.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, randomArray } from '../helpers.ts';

const LOSSES: Record<string, (x: Tensor[], a: Record<string, unknown>) => Tensor> = {
  soft_dice: ([p, t]) => softDiceLoss(p, t),
  soft_dice_per_class: ([p, t], a) => softDiceLoss(p, t, a.smooth as number, a.dims as number[]),
  structure_faithful: ([p, m]) => structureLoss(p, m),
  structure_weighted: ([p, m]) => structureLoss(p, m, { faithfulBce: false }),
  multilabel_soft_margin: ([x, y]) => multilabelSoftMarginLoss(x, y),
  neg_cosine: ([p, t]) => negCosineLoss(p, t),
  neg_cosine_zero_row: ([p, t]) => negCosineLoss(p, t),
};

describe('losses against PyTorch', () => {
  for (const c of loadGolden('attention_norm').filter((x) => x.name in LOSSES)) {
    it(c.name, async () => {
      await checkGolden(c, (xs) => LOSSES[c.name](xs, c.args));
    });
  }
});

const binary = (n: number, seed: number) => randomArray(n, seed, 0, 1).map((v) => (v > 0.5 ? 1 : 0));

describe('loss backward: finite differences', () => {
  it('soft Dice (through a sigmoid)', async () => {
    const t = tensor(binary(2 * 3 * 4, 1), [2, 1, 3, 4]);
    await checkFiniteDifferences((x) => softDiceLoss(sigmoid(x), t), [{ shape: [2, 1, 3, 4] }]);
    t.dispose();
  });
  it('structure loss, faithful and weighted BCE', async () => {
    const m = tensor(binary(2 * 9 * 8, 2), [2, 1, 9, 8]);
    await checkFiniteDifferences((x) => structureLoss(x, m), [{ shape: [2, 1, 9, 8], low: -3, high: 3 }]);
    await checkFiniteDifferences(
      (x) => structureLoss(x, m, { faithfulBce: false }),
      [{ shape: [2, 1, 9, 8], low: -3, high: 3 }],
    );
    m.dispose();
  });
  it('multilabel soft margin and negative cosine', async () => {
    const y = tensor(binary(3 * 5, 3), [3, 5]);
    await checkFiniteDifferences((x) => multilabelSoftMarginLoss(x, y), [{ shape: [3, 5], low: -4, high: 4 }]);
    await checkFiniteDifferences((p, t) => negCosineLoss(p, t), [{ shape: [4, 6] }, { shape: [4, 6] }]);
    y.dispose();
  });
});

describe('dropPath (per-sample stochastic depth)', () => {
  it('is the identity in eval and for p = 0', () => {
    const x = tensor([1, 2, 3, 4], [2, 2]);
    expect(dropPath(x, 0.5, false)).toBe(x);
    expect(dropPath(x, 0, true)).toBe(x);
    x.dispose();
  });

  it('drops whole samples and scales kept ones by 1/(1-p); the gradient uses the same mask', async () => {
    const b = 64,
      n = 6,
      p = 0.25;
    const xs = randomArray(b * n, 4, 0.5, 1.5); // no zeros, so a dropped sample is recognisable
    const x = requiresGrad(tensor(xs, [b, 2, 3]));
    const y = tidy(() => {
      const out = dropPath(x, p, true, new Generator(11));
      backward(sum(out));
      return out;
    });
    const yv = await y.data(),
      gv = await x.grad!.data();
    let dropped = 0;
    for (let s = 0; s < b; s++) {
      const kept = yv[s * n] !== 0;
      if (!kept) dropped++;
      for (let j = 0; j < n; j++) {
        const want = kept ? Math.fround(xs[s * n + j]) / (1 - p) : 0;
        expect(yv[s * n + j]).toBeCloseTo(want, 5);
        expect(gv[s * n + j]).toBeCloseTo(kept ? 1 / (1 - p) : 0, 6);
      }
    }
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(b);
    const again = dropPath(tensor(xs, [b, 2, 3]), p, true, new Generator(11));
    expect(Array.from(await again.data())).toEqual(Array.from(yv)); // same generator state, same mask
    for (const t of [x, x.grad!, y, again]) t.dispose();
  });

  it('backward: finite differences (fixed generator)', async () => {
    await checkFiniteDifferences((x) => dropPath(x, 0.5, true, new Generator(3)), [{ shape: [8, 3] }]);
  });
});
