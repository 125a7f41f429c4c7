// Transposing copies (engine/ops/layouts.ts transposeFast): both kernels (workgroup-memory tiles
// and 4 x 4 register blocks) against the host and the general strided kernel, at odd sizes that
// leave partial tiles and blocks, with outer dims, offsets, integer dtypes and gradients.
import { describe, it, expect, afterEach } from 'vitest';
import { Tensor, tensor, tidy, device, permute, transpose, slice, expand } from '../../engine/index.ts';
import { setLayoutFastPaths, useTransposeKernel, type TransposeKernel } from '../../engine/ops/layouts.ts';
import { randomArray, checkFiniteDifferences, withDispatches } from '../helpers.ts';

afterEach(() => {
  useTransposeKernel(null);
  setLayoutFastPaths(true);
});

/** The shaders `fn` dispatches and its result, with the fast paths on or off. */
async function traced(fn: () => Tensor, fast: boolean): Promise<{ shaders: string[]; data: number[] }> {
  setLayoutFastPaths(fast);
  try {
    const { result, dispatches } = await withDispatches(async () => {
      const y = tidy(fn);
      const data = Array.from(await y.data());
      y.dispose();
      return data;
    });
    return { shaders: dispatches.map((d) => d.shader), data: result };
  } finally {
    setLayoutFastPaths(true);
  }
}

/** Host permute of a contiguous array. */
function hostPermute(x: number[], shape: number[], p: number[]): number[] {
  const st = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const os = p.map((d) => shape[d]);
  return Array.from({ length: x.length }, (_, i) => {
    let rem = i,
      j = 0;
    for (let d = os.length - 1; d >= 0; d--) {
      j += (rem % os[d]) * st[p[d]];
      rem = Math.floor(rem / os[d]);
    }
    return x[j];
  });
}

const cases: [string, number[], number[]][] = [
  ['last two dims, odd [3, 17, 9]', [3, 17, 9], [0, 2, 1]],
  ['a 2-d matrix [33, 5]', [33, 5], [1, 0]],
  ['NCHW -> NHWC [2, 5, 3, 7]', [2, 5, 3, 7], [0, 2, 3, 1]],
  ['NHWC -> NCHW [2, 3, 7, 5]', [2, 3, 7, 5], [0, 3, 1, 2]],
  ['heads to [B, H, D, N] [2, 19, 3, 6]', [2, 19, 3, 6], [0, 2, 3, 1]],
  ['tiles and blocks exactly full [2, 32, 64]', [2, 32, 64], [0, 2, 1]],
];

describe('transposing copies', () => {
  for (const kernel of ['tiled', 'blocked'] as TransposeKernel[]) {
    for (const [name, shape, p] of cases) {
      it(`${kernel}: ${name}`, async () => {
        const xs = randomArray(
          shape.reduce((a, b) => a * b, 1),
          4,
        );
        useTransposeKernel(kernel);
        const fast = await traced(() => permute(tensor(xs, shape), p), true);
        const general = await traced(() => permute(tensor(xs, shape), p), false);
        expect(fast.shaders).toContain(`transpose-${kernel}`);
        expect(fast.shaders).not.toContain('strided-copy');
        expect(general.shaders).toContain('strided-copy');
        expect(fast.data).toEqual(general.data);
        expect(fast.data).toEqual(Array.from(new Float32Array(hostPermute(xs, shape, p))));
      });
    }
    it(`${kernel}: an offset window (slice, then transpose) and i32`, async () => {
      useTransposeKernel(kernel);
      const xs = Array.from({ length: 4 * 9 * 6 }, (_, i) => i - 50);
      const fn = () => transpose(slice(tensor(xs, [4, 9, 6], 'i32'), [{ start: 1 }, { start: 2 }]), 1, 2);
      const fast = await traced(fn, true);
      const general = await traced(fn, false);
      expect(fast.shaders).toContain(`transpose-${kernel}`);
      expect(fast.data).toEqual(general.data);
    });
    it(`${kernel}: gradient by finite differences`, async () => {
      useTransposeKernel(kernel);
      await checkFiniteDifferences((x) => transpose(x, 0, 2), [{ shape: [5, 3, 7] }]);
    });
  }
  it('the per-adapter default is register blocks on CPU drivers, tiles on GPUs', async () => {
    const r = await traced(() => transpose(tensor(randomArray(6 * 10, 2), [6, 10]), 0, 1), true);
    expect(r.shaders).toContain(device().isCpuAdapter ? 'transpose-blocked' : 'transpose-tiled');
  });
  it('a broadcast innermost dim (stride 0) keeps the general kernel', async () => {
    const r = await traced(() => expand(tensor(randomArray(6, 2), [6, 1]), [6, 5]), true);
    expect(r.shaders).toEqual(['strided-copy']);
    expect(r.shaders).not.toContain('transpose-blocked');
    expect(r.shaders).not.toContain('transpose-tiled');
  });
});
