// depthwiseConvTokens (PVTv2's DWConv on channels-last tokens) against its composition (transpose,
// conv2d with groups = C, transpose back): output and the gradients of x, weight and bias, on
// kernels 1, 3, 5 and 7, paddings that keep, shrink and grow the grid, batches, non-square grids;
// by finite differences; the fallbacks; and the dispatches (no transposing copies).
import { describe, it, expect } from 'vitest';
import { Tensor, tensor, tidy, backward, requiresGrad, sum, mul, autocast } from '../../engine/index.ts';
import { depthwiseConvTokens, depthwiseConvTokensReference } from '../../engine/ops/dwconv-tokens.ts';
import { checkFiniteDifferences, expectClose, randomArray, withDispatches } from '../helpers.ts';

type Fn = typeof depthwiseConvTokens;

/** [b, h, w, c, k, pad] -> output and the gradients of x, weight, bias. */
function run(fn: Fn, s: number[], withBias: boolean, seed: number): Tensor[] {
  const [b, h, w, c, k, pad] = s;
  return tidy(() => {
    const x = requiresGrad(tensor(randomArray(b * h * w * c, seed), [b, h * w, c]));
    const wt = requiresGrad(tensor(randomArray(c * k * k, seed + 1), [c, 1, k, k]));
    const bias = withBias ? requiresGrad(tensor(randomArray(c, seed + 2), [c])) : null;
    const y = fn(x, wt, bias, h, w, pad);
    backward(sum(mul(y, tensor(randomArray(y.size, seed + 3), y.shape))));
    return [y, x.grad!, wt.grad!, ...(bias ? [bias.grad!] : [])].map((t) => t.keep());
  });
}

async function compare(s: number[], withBias = true, seed = 3): Promise<void> {
  const got = run(depthwiseConvTokens, s, withBias, seed);
  const want = run(depthwiseConvTokensReference, s, withBias, seed);
  const [b, h, w, c, k, pad] = s;
  expect(got[0].shape).toEqual([b, (h + 2 * pad - k + 1) * (w + 2 * pad - k + 1), c]);
  const names = ['out', 'dx', 'dweight', 'dbias'];
  for (let i = 0; i < got.length; i++) {
    expect(got[i].shape, names[i]).toEqual(want[i].shape);
    expectClose(await got[i].data(), await want[i].data(), names[i], 1e-5, 1e-4);
  }
  [...got, ...want].forEach((t) => t.dispose());
}

describe('depthwiseConvTokens equals transpose + depthwise conv2d + transpose', () => {
  const cases: [string, number[]][] = [
    ['3x3, padding 1 (PVTv2), batch 2, 5 x 7 grid', [2, 5, 7, 8, 3, 1]],
    ['1x1, no padding', [1, 4, 4, 4, 1, 0]],
    ['5x5, padding 1 (shrinks the grid)', [2, 6, 9, 12, 5, 1]],
    ['7x7, padding 4 (grows the grid)', [1, 3, 5, 4, 7, 4]],
    ['1x1 on a 1 x 9 grid, batch 3', [3, 1, 9, 8, 1, 0]],
  ];
  for (const [name, s] of cases) it(name, async () => await compare(s));
  it('without bias', async () => await compare([2, 5, 4, 8, 3, 1], false));
  it('channels not a multiple of 4 and autocast take the composition', async () => {
    await compare([1, 4, 5, 6, 3, 1]);
    const x = tensor(randomArray(2 * 20 * 8, 5), [2, 20, 8]);
    const wt = tensor(randomArray(8 * 9, 6), [8, 1, 3, 3]);
    const a = autocast(() => depthwiseConvTokens(x, wt, null, 4, 5, 1));
    const r = autocast(() => depthwiseConvTokensReference(x, wt, null, 4, 5, 1));
    expect(await a.data()).toEqual(await r.data());
    [x, wt, a, r].forEach((t) => t.dispose());
  });
});

describe('depthwiseConvTokens gradients by finite differences', () => {
  it('x, weight and bias', async () => {
    await checkFiniteDifferences(
      (x, w, b) => depthwiseConvTokens(x, w, b, 3, 4, 1),
      [{ shape: [2, 12, 4] }, { shape: [4, 1, 3, 3] }, { shape: [4] }],
    );
  });
});

describe('depthwiseConvTokens dispatches and errors', () => {
  it('no transposing copies forward or backward', async () => {
    const { dispatches } = await withDispatches(async () => {
      const t = run(depthwiseConvTokens, [2, 5, 7, 8, 3, 1], true, 7);
      await t[2].data();
      t.forEach((x) => x.dispose());
    });
    const seen = dispatches.map((d) => d.op);
    for (const copy of ['permute', 'transpose', 'conv2d']) expect(seen, seen.join(' ')).not.toContain(copy);
    expect(seen).toContain('dwconv_tokens-backward-weight');
  });

  it('rejects a grid that does not match the tokens and a weight of another shape', () => {
    const x = tensor(randomArray(2 * 12 * 4, 1), [2, 12, 4]);
    const w = tensor(randomArray(4 * 9, 2), [4, 1, 3, 3]);
    const w2 = tensor(randomArray(8 * 9, 2), [8, 1, 3, 3]);
    expect(() => depthwiseConvTokens(x, w, null, 3, 5, 1)).toThrow(/12 tokens of x \[2, 12, 4\] are not a 3 x 5 grid/);
    expect(() => depthwiseConvTokens(x, w2, null, 3, 4, 1)).toThrow(/weight \[8, 1, 3, 3\] must be \[4, 1, k, k\]/);
    [x, w, w2].forEach((t) => t.dispose());
  });
});
