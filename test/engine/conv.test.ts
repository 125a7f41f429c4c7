// conv2d / conv1d / conv_transpose2d: PyTorch golden cases (forward and every gradient) run on
// each conv2d kernel, each fast kernel against the reference on larger shapes, finite
// differences on every backward path, and a weight gradient large enough to take one split.
import { describe, it, expect, afterAll } from 'vitest';
import { Tensor, tensor, tidy, noGrad, backward, requiresGrad, sum, mul, device } from '../../engine/index.ts';
import { conv2d, conv1d, convTranspose2d, useConvKernel, type IntPair } from '../../engine/ops/conv.ts';
import { CONV_KERNELS } from '../../engine/ops/conv-kernels.ts';
import { loadGolden, checkGolden, checkFiniteDifferences, randomArray, expectClose } from '../helpers.ts';

type Args = Record<string, unknown>;
const pair = (v: unknown) => v as IntPair | undefined;
const opts = (a: Args) => ({
  stride: pair(a.stride),
  padding: pair(a.padding),
  dilation: pair(a.dilation),
  groups: a.groups as number | undefined,
});

function run(name: string, [x, w, b]: Tensor[], a: Args): Tensor {
  if (name.startsWith('conv1d')) {
    return conv1d(x, w, b ?? null, {
      stride: a.stride as number,
      padding: a.padding as number,
      groups: a.groups as number,
    });
  }
  if (name.startsWith('conv_transpose2d'))
    return convTranspose2d(x, w, b ?? null, { ...opts(a), outputPadding: pair(a.output_padding) });
  return conv2d(x, w, b ?? null, opts(a));
}

const cases = loadGolden('vision').filter((c) => c.name.startsWith('conv'));

afterAll(() => useConvKernel(null));

for (const kernel of CONV_KERNELS) {
  describe(`conv ops against PyTorch, conv2d kernel '${kernel}'`, () => {
    for (const c of cases) {
      it(c.name, async () => {
        useConvKernel(kernel);
        await checkGolden(c, (xs, a) => run(c.name, xs, a), { atol: 2e-5, rtol: 1e-4 });
      });
    }
  });
}

describe('conv2d kernels equal the reference', () => {
  const shapes: { name: string; x: number[]; w: number[]; o: Parameters<typeof conv2d>[3] }[] = [
    { name: '3x3 p1, 70 channels (partial tiles)', x: [2, 5, 9, 11], w: [70, 5, 3, 3], o: { padding: 1 } },
    {
      name: 'groups 2, stride 2, dilation 2',
      x: [1, 8, 13, 12],
      w: [12, 4, 3, 3],
      o: { stride: 2, padding: 2, dilation: 2, groups: 2 },
    },
    { name: 'depthwise 3x3', x: [2, 16, 9, 7], w: [16, 1, 3, 3], o: { padding: 1, groups: 16 } },
    { name: 'depthwise, multiplier 2', x: [1, 8, 7, 9], w: [16, 1, 3, 3], o: { padding: 1, groups: 8 } },
    { name: 'patchify 8', x: [1, 3, 32, 32], w: [16, 3, 8, 8], o: { stride: 8 } },
    { name: '1x1', x: [2, 24, 5, 5], w: [40, 24, 1, 1], o: {} },
    { name: '3x3 p1, 72 channels, rows of 11', x: [2, 5, 9, 11], w: [72, 5, 3, 3], o: { padding: 1 } },
    {
      name: 'groups 2 of 4 channels, 5x3 dilated in height',
      x: [1, 6, 10, 9],
      w: [8, 3, 5, 3],
      o: { padding: [4, 1], dilation: [2, 1], groups: 2 },
    },
    { name: '3x1, stride 2 in height only', x: [1, 4, 9, 7], w: [8, 4, 3, 1], o: { stride: [2, 1] } },
    { name: '7x7 s4 p3', x: [1, 3, 33, 31], w: [20, 3, 7, 7], o: { stride: 4, padding: 3 } },
    { name: 'dilated 3x3, dilation 6', x: [1, 8, 15, 17], w: [9, 8, 3, 3], o: { padding: 6, dilation: 6 } },
    { name: 'k = s = 4 (spatial reduction)', x: [2, 32, 16, 12], w: [32, 32, 4, 4], o: { stride: 4 } },
  ];
  for (const s of shapes) {
    it(s.name, async () => {
      const n = (d: number[]) => d.reduce((a, b) => a * b, 1);
      const x = tensor(randomArray(n(s.x), 1), s.x);
      const w = tensor(randomArray(n(s.w), 2, -0.5, 0.5), s.w);
      const b = tensor(randomArray(s.w[0], 3), [s.w[0]]);
      const outs: Record<string, Float32Array> = {};
      for (const k of CONV_KERNELS) {
        useConvKernel(k);
        const y = noGrad(() => conv2d(x, w, b, s.o));
        outs[k] = (await y.data()) as Float32Array;
        y.dispose();
      }
      useConvKernel(null);
      for (const k of CONV_KERNELS) expectClose(outs[k], outs.direct, `${s.name}: ${k} vs direct`, 1e-5, 1e-5);
      for (const t of [x, w, b]) t.dispose();
    });
  }
});

describe('conv_transpose2d: the blocked gather equals the reference', () => {
  const shapes: { name: string; x: number[]; w: number[]; o: Parameters<typeof convTranspose2d>[3] }[] = [
    { name: 'k2 s2, 70 channels', x: [2, 6, 5, 7], w: [6, 70, 2, 2], o: { stride: 2 } },
    {
      name: 'k3 s2 p1 op1, groups 2 of 12',
      x: [1, 8, 9, 6],
      w: [8, 12, 3, 3],
      o: { stride: 2, padding: 1, outputPadding: 1, groups: 2 },
    },
    {
      name: 'k3 s3 p2, dilation 2',
      x: [1, 5, 4, 7],
      w: [5, 9, 3, 3],
      o: { stride: 3, padding: 2, dilation: 2, outputPadding: [1, 0] },
    },
  ];
  for (const s of shapes) {
    it(s.name, async () => {
      const n = (d: number[]) => d.reduce((a, b) => a * b, 1);
      const x = tensor(randomArray(n(s.x), 4), s.x);
      const w = tensor(randomArray(n(s.w), 5, -0.5, 0.5), s.w);
      const cout = s.w[1] * (s.o?.groups ?? 1);
      const b = tensor(randomArray(cout, 6), [cout]);
      const outs: Float32Array[] = [];
      for (const k of ['direct', 'blocked'] as const) {
        useConvKernel(k);
        const y = noGrad(() => convTranspose2d(x, w, b, s.o));
        outs.push((await y.data()) as Float32Array);
        y.dispose();
      }
      useConvKernel(null);
      expectClose(outs[1], outs[0], `${s.name}: blocked vs direct`, 1e-5, 1e-5);
      for (const t of [x, w, b]) t.dispose();
    });
  }
});

describe('conv backward: finite differences', () => {
  it('conv2d stride 1, groups 2 (input gradient through the flipped-weight conv2d)', async () => {
    await checkFiniteDifferences(
      (x, w, b) => conv2d(x, w, b, { padding: 1, groups: 2, dilation: [1, 2] }),
      [{ shape: [2, 4, 6, 7] }, { shape: [6, 2, 3, 3] }, { shape: [6] }],
    );
  });
  it('conv2d stride 2 (input gradient through the gather kernel)', async () => {
    await checkFiniteDifferences(
      (x, w, b) => conv2d(x, w, b, { stride: 2, padding: 1 }),
      [{ shape: [1, 3, 9, 8] }, { shape: [4, 3, 3, 3] }, { shape: [4] }],
    );
  });
  it('conv1d', async () => {
    await checkFiniteDifferences(
      (x, w) => conv1d(x, w, null, { stride: 2, padding: 1 }),
      [{ shape: [2, 3, 9] }, { shape: [4, 3, 3] }],
    );
  });
  it('conv_transpose2d k2 s2 (gather forward)', async () => {
    await checkFiniteDifferences(
      (x, w, b) => convTranspose2d(x, w, b, { stride: 2 }),
      [{ shape: [1, 4, 3, 5] }, { shape: [4, 3, 2, 2] }, { shape: [3] }],
    );
  });
  it('conv_transpose2d stride 1, groups 2 (forward through conv2d)', async () => {
    await checkFiniteDifferences(
      (x, w) => convTranspose2d(x, w, null, { padding: 1, groups: 2 }),
      [{ shape: [1, 4, 5, 4] }, { shape: [4, 3, 3, 3] }],
    );
  });
});

describe('conv2d weight gradient without split-K', () => {
  it('matches a host reference on 128 x 64 x 3 x 3', async () => {
    const [N, C, H, W, CO] = [1, 64, 5, 6, 128];
    const xs = randomArray(N * C * H * W, 11),
      ws = randomArray(CO * C * 9, 12, -0.1, 0.1),
      ds = randomArray(N * CO * H * W, 13);
    const x = requiresGrad(tensor(xs, [N, C, H, W]));
    const w = requiresGrad(tensor(ws, [CO, C, 3, 3]));
    tidy(() => backward(sum(mul(conv2d(x, w, null, { padding: 1 }), tensor(ds, [N, CO, H, W])))));
    const dw = new Float64Array(CO * C * 9);
    const dx = new Float64Array(N * C * H * W);
    for (let co = 0; co < CO; co++)
      for (let oy = 0; oy < H; oy++)
        for (let ox = 0; ox < W; ox++) {
          const d = ds[(co * H + oy) * W + ox];
          for (let ci = 0; ci < C; ci++)
            for (let ky = 0; ky < 3; ky++)
              for (let kx = 0; kx < 3; kx++) {
                const iy = oy - 1 + ky,
                  ix = ox - 1 + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                dw[((co * C + ci) * 3 + ky) * 3 + kx] += d * xs[(ci * H + iy) * W + ix];
                dx[(ci * H + iy) * W + ix] += d * ws[((co * C + ci) * 3 + ky) * 3 + kx];
              }
        }
    expectClose(await w.grad!.data(), dw, 'dW', 1e-4, 1e-4);
    expectClose(await x.grad!.data(), dx, 'dx', 1e-4, 1e-4);
    for (const t of [x, w]) {
      t.grad?.dispose();
      t.dispose();
    }
  });
});

describe('conv housekeeping', () => {
  it('frees every intermediate of forward + backward', async () => {
    const x = requiresGrad(tensor(randomArray(2 * 4 * 7 * 6, 5), [2, 4, 7, 6]));
    const w = requiresGrad(tensor(randomArray(8 * 2 * 3 * 3, 6), [8, 2, 3, 3]));
    const run1 = () =>
      tidy(() => {
        backward(sum(conv2d(x, w, null, { stride: 2, padding: 1, groups: 2 })));
        backward(sum(convTranspose2d(x, w.view([4, 4, 3, 3]), null, { padding: 1 })));
      });
    run1();
    await device().sync();
    for (const t of [x, w]) {
      t.grad?.dispose();
      t.grad = null;
    }
    const before = device().liveBuffers;
    run1();
    for (const t of [x, w]) {
      t.grad?.dispose();
      t.grad = null;
    }
    await device().sync();
    expect(device().liveBuffers).toBe(before);
    x.dispose();
    w.dispose();
  });

  it('rejects mismatched shapes with a message naming the op and shapes', () => {
    const x = tensor(randomArray(2 * 3 * 5 * 5, 1), [2, 3, 5, 5]);
    const w = tensor(randomArray(4 * 2 * 3 * 3, 2), [4, 2, 3, 3]);
    expect(() => conv2d(x, w)).toThrow(/conv2d: input \[2, 3, 5, 5\] and weight \[4, 2, 3, 3\]/);
    expect(() => conv2d(x, tensor(randomArray(4 * 3 * 7 * 7, 3), [4, 3, 7, 7]))).toThrow(
      /smaller than the dilated kernel/,
    );
    expect(() =>
      convTranspose2d(x, tensor(randomArray(3 * 2 * 2 * 2, 3), [3, 2, 2, 2]), null, { stride: 2, outputPadding: 2 }),
    ).toThrow(/outputPadding/);
    // f16 operands are autocast's (amp-conv.test.ts); a bias stays f32.
    const w3 = tensor(randomArray(4 * 3 * 3 * 3, 4), [4, 3, 3, 3]);
    const b16 = tensor([1, 2, 3, 4], [4], 'f16');
    expect(() => conv2d(x, w3, b16)).toThrow(/conv2d: expected f32 tensors .* bias f16/);
    for (const t of [x, w, w3, b16]) t.dispose();
  });
});
