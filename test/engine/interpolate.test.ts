// interpolate: PyTorch golden cases (bilinear with and without align_corners at x0.5, x2, x8,
// x2.5 and arbitrary sizes; nearest), finite differences on both backwards, argument checks.
import { describe, it, expect } from 'vitest';
import { tensor, type Tensor } from '../../engine/index.ts';
import { interpolate, type InterpolateOptions } from '../../engine/ops/interpolate.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, randomArray } from '../helpers.ts';

function opts(a: Record<string, unknown>): InterpolateOptions {
  return {
    mode: a.mode as InterpolateOptions['mode'],
    size: a.size as [number, number] | undefined,
    scaleFactor: a.scale_factor as number | undefined,
    alignCorners: a.align_corners as boolean | undefined,
  };
}

describe('interpolate against PyTorch', () => {
  for (const c of loadGolden('vision').filter((c) => c.name.startsWith('bilinear') || c.name.startsWith('nearest'))) {
    it(c.name, async () => {
      await checkGolden(c, ([x], a) => interpolate(x, opts(a)));
    });
  }
});

describe('interpolate backward: finite differences', () => {
  const fd = (o: InterpolateOptions, shape: number[]) =>
    checkFiniteDifferences((x: Tensor) => interpolate(x, o), [{ shape }]);
  it('bilinear x2', async () => {
    await fd({ mode: 'bilinear', scaleFactor: 2 }, [1, 2, 5, 4]);
  });
  it('bilinear x0.5, align_corners', async () => {
    await fd({ mode: 'bilinear', scaleFactor: 0.5, alignCorners: true }, [1, 2, 9, 11]);
  });
  it('bilinear 7x5 -> 16x3', async () => {
    await fd({ mode: 'bilinear', size: [16, 3] }, [2, 1, 7, 5]);
  });
  it('nearest 7x5 -> 16x3', async () => {
    await fd({ mode: 'nearest', size: [16, 3] }, [2, 1, 7, 5]);
  });
});

describe('interpolate arguments', () => {
  it('output size is floor(in * scale_factor)', () => {
    const x = tensor(randomArray(13 * 11, 1), [1, 1, 13, 11]);
    const y = interpolate(x, { mode: 'bilinear', scaleFactor: 0.5 });
    expect([...y.shape]).toEqual([1, 1, 6, 5]);
    x.dispose();
    y.dispose();
  });
  it('rejects bad arguments with a message naming the op', () => {
    const x = tensor(randomArray(2 * 3 * 5 * 5, 1), [2, 3, 5, 5]);
    expect(() => interpolate(x, { mode: 'bilinear' })).toThrow(
      /interpolate_bilinear: give exactly one of size and scaleFactor/,
    );
    expect(() => interpolate(x, { mode: 'nearest', scaleFactor: 2, alignCorners: true })).toThrow(
      /alignCorners only applies/,
    );
    expect(() => interpolate(x, { mode: 'bilinear', scaleFactor: 0.1 })).toThrow(/output size \[0, 0\]/);
    x.dispose();
  });
});
