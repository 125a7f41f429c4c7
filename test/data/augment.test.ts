import { describe, it, expect } from 'vitest';
import { tensor, flip, permute, tidy } from '../../engine/index.ts';
import { augmentBatch, endoExtendTrainAugment, type AugmentConfig } from '../../engine/data/augment.ts';
import { Rng } from '../../engine/data/random.ts';
import { randomArray, expectClose } from '../helpers.ts';

const B = 2,
  H = 9,
  W = 9;
const img = () => tensor(randomArray(B * 3 * H * W, 1, 0, 1), [B, 3, H, W]);

describe('GPU augmentation', () => {
  it('is the identity with nothing enabled', async () => {
    const x = img();
    const { images } = augmentBatch(x, null, { size: [H, W] }, new Rng(0));
    expectClose(await images.data(), await x.data(), 'identity', 1e-6);
  });

  it('flips and rotates exactly like the movement ops', async () => {
    const x = img();
    const h = augmentBatch(x, null, { size: [H, W], hflip: 1 }, new Rng(0)).images;
    expectClose(await h.data(), await flip(x, [3]).data(), 'hflip', 1e-6);
    const v = augmentBatch(x, null, { size: [H, W], vflip: 1 }, new Rng(0)).images;
    expectClose(await v.data(), await flip(x, [2]).data(), 'vflip', 1e-6);
    const { images: r, params } = augmentBatch(x, null, { size: [H, W], rot90: 1 }, new Rng(5));
    // Recover k from the drawn map and compare with np.rot90 (= flip(transpose)) applied k times.
    const got = await r.data();
    const a = params[0].affine;
    let k = a[0] === 0 && a[1] === -1 ? 1 : a[0] === -1 ? 2 : 3;
    let ref = x;
    for (; k > 0; k--) ref = flip(permute(ref, [0, 1, 3, 2]), [2]);
    expectClose(got.slice(0, 3 * H * W), (await ref.data()).slice(0, 3 * H * W), 'rot90 sample 0', 1e-6);
  });

  it('gives an image and its mask the same geometry, and masks stay binary', async () => {
    const n = 32;
    const m = Array.from({ length: n * n }, (_, i) =>
      ((i % n) - 12) ** 2 + (Math.floor(i / n) - 18) ** 2 < 60 ? 1 : 0,
    );
    const image = tensor([...m, ...m, ...m], [1, 3, n, n]);
    const mask = tensor(m, [1, 1, n, n]);
    const cfg: AugmentConfig = {
      ...endoExtendTrainAugment(24),
      colorJitter: undefined,
      gaussianBlur: undefined,
      normalize: undefined,
    };
    for (let seed = 0; seed < 4; seed++) {
      const { images, masks } = augmentBatch(image, mask, cfg, new Rng(seed));
      const im = await images.data();
      const mk = await masks!.data();
      expect(mk.every((v) => v === 0 || v === 1)).toBe(true);
      let agree = 0;
      for (let i = 0; i < mk.length; i++) if ((im[i] > 0.5 ? 1 : 0) === mk[i]) agree++;
      expect(agree / mk.length).toBeGreaterThan(0.95);
      expect(Array.from(mk).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    }
  });

  it('reproduces from the seed, and differs across seeds', async () => {
    const x = img();
    const cfg = endoExtendTrainAugment(8);
    const a = await augmentBatch(x, null, cfg, new Rng(3)).images.data();
    const b = await augmentBatch(x, null, cfg, new Rng(3)).images.data();
    const c = await augmentBatch(x, null, cfg, new Rng(4)).images.data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  it('blur keeps a constant image and spreads an impulse with unit mass', async () => {
    const n = 11;
    const imp = new Array(3 * n * n).fill(0);
    imp[5 * n + 5] = 1;
    const x = tensor(imp, [1, 3, n, n]);
    const cfg: AugmentConfig = { size: [n, n], gaussianBlur: { p: 1, kernel: [5, 5], sigma: [1, 1] } };
    const y = await augmentBatch(x, null, cfg, new Rng(0)).images.data();
    const plane = Array.from(y.slice(0, n * n));
    expect(plane.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
    expect(plane[5 * n + 5]).toBeLessThan(0.5);
    expect(plane[5 * n + 6]).toBeCloseTo(plane[5 * n + 4], 6);
    const c = tensor(new Array(3 * n * n).fill(0.3), [1, 3, n, n]);
    expectClose(
      await augmentBatch(c, null, cfg, new Rng(0)).images.data(),
      new Array(3 * n * n).fill(0.3),
      'constant',
      1e-6,
    );
  });

  it('normalises and jitters colour within range', async () => {
    const x = tensor(new Array(3 * 4 * 4).fill(0.5), [1, 3, 4, 4]);
    const nm = { mean: [0.5, 0.4, 0.3] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };
    const y = await augmentBatch(x, null, { size: [4, 4], normalize: nm }, new Rng(0)).images.data();
    expectClose(
      y,
      [...new Array(16).fill(0), ...new Array(16).fill(0.2), ...new Array(16).fill(0.4)],
      'normalize',
      1e-6,
    );
    const cfg: AugmentConfig = {
      size: [4, 4],
      colorJitter: { p: 1, brightness: 0.2, contrast: 0, saturation: 0, hue: 0 },
    };
    const { images, params } = augmentBatch(x, null, cfg, new Rng(9));
    const bf = params[0].color[0];
    expect(bf).toBeGreaterThanOrEqual(0.8);
    expect(bf).toBeLessThanOrEqual(1.2);
    expectClose(await images.data(), new Array(48).fill(Math.min(1, 0.5 * bf)), 'brightness', 1e-5);
  });

  it('rejects a mask that does not match its image, naming both shapes', () => {
    tidy(() => {
      expect(() =>
        augmentBatch(img(), tensor(new Array(2 * 8 * 8).fill(0), [2, 1, 8, 8]), { size: [4, 4] }, new Rng(0)),
      ).toThrow(/masks \[2, 1, 8, 8\] do not match images \[2, 3, 9, 9\]/);
    });
  });
});
